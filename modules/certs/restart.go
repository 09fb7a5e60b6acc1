package certs

import (
	"strconv"
	"strings"

	"github.com/kk-project/kk/modules/etcd"
	"github.com/kk-project/kk/modules/kubernetes"
	"github.com/kk-project/kk/pipeline/connector"
)

// The programs the scripts run on the control planes: kk installs them there.
const (
	kubeadm = kubernetes.BinDir + "/kubeadm"
	kubectl = kubernetes.BinDir + "/kubectl"
)

// ParkDir is where a renewal parks a static pod's manifest while that pod must stay down
// (the API server while the stacked etcd beside it restarts). A run interrupted there puts
// it back first thing when run again.
const ParkDir = "/etc/kubernetes/kk-renew"

// restartFuncs defines the shell functions the restart scripts use:
//
//	stop_static NAME     stops NAME's running container (not waiting for the next)
//	restart_static NAME  stops NAME's running container (crictl stop: SIGTERM, the API
//	                     server's graceful shutdown: it fails /readyz and serves on for its
//	                     shutdown delay, so the load balancers take it out first, then
//	                     finishes what it serves; after 30 s only watches are left, which
//	                     clients resume elsewhere) and waits for the kubelet to run the next;
//	                     nothing when the host has no NAME manifest
//	park NAME, unpark NAME  take NAME's manifest away (its pod stops) and bring it back
//	api_ready URL        waits for the API server at URL to answer /readyz with admin.conf
//	etcd_ready           waits for the stacked etcd beside it to report healthy
const restartFuncs = `say() { echo "$(date +%T) $*"; }
running() { crictl ps -q --state running --name "^$1\$" | head -n1; }
wait_new() {
  i=0
  while :; do
    new=$(running "$1")
    [ -n "$new" ] && [ "$new" != "$2" ] && return 0
    i=$((i+1)); [ $i -ge 180 ] && { echo "$1 did not run again within 3 minutes (crictl ps -a --name $1; crictl logs)" >&2; return 1; }
    sleep 1
  done
}
stop_static() {
  [ -f ` + etcd.ManifestsDir + `/"$1".yaml ] || return 0
  id=$(running "$1"); say "stop $1 ${id:-(not running)}"
  [ -n "$id" ] && crictl stop --timeout 30 "$id" >/dev/null
  return 0
}
restart_static() {
  [ -f ` + etcd.ManifestsDir + `/"$1".yaml ] || return 0
  old=$(running "$1")
  stop_static "$1"
  wait_new "$1" "$old"
  say "$1 runs again"
}
park() {
  [ -f ` + etcd.ManifestsDir + `/"$1".yaml ] || return 0
  say "park $1"
  id=$(running "$1")
  mkdir -p ` + ParkDir + ` && mv ` + etcd.ManifestsDir + `/"$1".yaml ` + ParkDir + `/
  # the kubelet's grace period (30 s) would come only when it notices the manifest gone
  [ -n "$id" ] && crictl stop --timeout 30 "$id" >/dev/null 2>&1
  i=0
  while [ -n "$(running "$1")" ]; do
    i=$((i+1)); [ $i -ge 120 ] && { echo "$1 still runs 2 minutes after its manifest was moved to ` + ParkDir + `" >&2; return 1; }
    sleep 1
  done
}
unpark() {
  [ -f ` + ParkDir + `/"$1".yaml ] || return 0
  say "unpark $1"
  mv ` + ParkDir + `/"$1".yaml ` + etcd.ManifestsDir + `/
  wait_new "$1" ""
  say "$1 runs again"
}
api_ready() {
  i=0
  until ` + kubectl + ` --kubeconfig ` + kubernetes.AdminConf + ` --server "$1" --request-timeout=5s get --raw /readyz >/dev/null 2>&1; do
    i=$((i+1)); [ $i -ge 90 ] && { echo "the API server at $1 is not ready 3 minutes after its restart:" >&2; ` + kubectl + ` --kubeconfig ` + kubernetes.AdminConf + ` --server "$1" get --raw '/readyz?verbose' >&2; return 1; }
    sleep 2
  done
  say "the API server at $1 is ready"
}
etcd_ready() {
  i=0
  until id=$(running etcd) && [ -n "$id" ] && crictl exec "$id" etcdctl --endpoints=` + etcd.KubeadmEndpoint + ` \
      --cacert=` + etcd.KubeadmCA + ` --cert=` + etcd.KubeadmHealthCert + ` --key=` + etcd.KubeadmHealthKey + ` \
      --dial-timeout=3s --command-timeout=5s endpoint health >/dev/null 2>&1; do
    i=$((i+1)); [ $i -ge 90 ] && { echo "the stacked etcd is not healthy 3 minutes after its restart" >&2; return 1; }
    sleep 2
  done
  say "etcd is healthy"
}
`

// RestartScript restarts this control plane's static pods (those it has: an etcd-only host
// has none) and waits for each. With a stacked etcd the API server beside it, which reads
// only from it, is taken down first (haproxy sends its clients to the others), etcd
// restarts and is waited healthy, then the API server comes back and is waited ready at
// apiServer (https://address:port); then the controller manager and the scheduler. haproxy
// on the workers marks an API server up after two good checks 2 seconds apart: the script
// waits for that too, so that the next control plane's turn never leaves the load balancer
// short of two API servers.
func RestartScript(apiServer string) string {
	url := connector.Quote(apiServer)
	return "set -e\n" + restartFuncs +
		"unpark kube-apiserver\n" + // a run interrupted while it was parked
		"if [ -f " + etcd.ManifestsDir + "/etcd.yaml ]; then\n" +
		"  park kube-apiserver\n  restart_static etcd\n  etcd_ready\n  unpark kube-apiserver\n" +
		"else\n  restart_static kube-apiserver\nfi\n" +
		"if [ -f " + etcd.ManifestsDir + "/kube-apiserver.yaml ]; then api_ready " + url + "; sleep 6; fi\n" +
		"cm=$(running kube-controller-manager); sch=$(running kube-scheduler)\n" +
		"stop_static kube-controller-manager\nstop_static kube-scheduler\n" +
		"[ ! -f " + etcd.ManifestsDir + "/kube-controller-manager.yaml ] || wait_new kube-controller-manager \"$cm\"\n" +
		"[ ! -f " + etcd.ManifestsDir + "/kube-scheduler.yaml ] || wait_new kube-scheduler \"$sch\"\n" +
		"say \"the control plane runs with the renewed certificates\"\n"
}

// APIServerURL is https://address:port of one control plane's API server.
func APIServerURL(address string, port int) string {
	if strings.Contains(address, ":") {
		address = "[" + address + "]"
	}
	return "https://" + address + ":" + strconv.Itoa(port)
}

// KubeadmRenewScript renews every certificate kubeadm manages on this control plane (its
// kubeconfigs' client certificates included; never a CA) with the lifetime of the cluster's
// kubeadm-config, then restarts the control plane's static pods (RestartScript).
func KubeadmRenewScript(apiServer string) string {
	return "set -e\n" + kubeadm + " certs renew all >/dev/null\necho \"$(date +%T) kubeadm certs renew all: done\"\n" + RestartScript(apiServer)
}
