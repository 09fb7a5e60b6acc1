//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kk-project/kk/e2e/images"
	"github.com/kk-project/kk/e2e/mirror"
	"github.com/kk-project/kk/e2e/testbed"
	"github.com/kk-project/kk/e2e/upstream"
	"github.com/kk-project/kk/modules/kubernetes"
)

// The e2e clusters' Kubernetes versions: the newest minor kk installs, on these cgroup v1
// machines (kubelet's failCgroupV1: false), and for the all-in-one v1.30, the newest minor on
// kubeadm's v1beta3 configuration. (The mirror builds v1.30.14 with upstream's later fix of its
// HTTPProxyCIDR preflight for today's Go: see e2e/mirror/backport.go.)
const (
	e2eK8s = "v1.37.2"
	aioK8s = "v1.30.14"
)

// calicoCNI is the kube-vip cluster's network plugin: Calico, KubeKey's default, with its VXLAN
// backend. Calico's BGP daemon (its own fork of BIRD, in C) cannot be built here, so the
// calico/node image of the test machines has none and IPIP/BGP pools are not run (see
// e2e/images/calico.go). (Calico's felix polls nftables and its probes exec into calico-node:
// on the 5-machine lifecycle cluster that was a large share of the CI machine's CPU, so the
// longest-lived cluster runs flannel, the testbed's default.)
const calicoCNI = "calico, calico: {ipipMode: Never, vxlanMode: Always}"

// podNetworkChecks loads the probe image on every machine and runs the probe DaemonSet: a pod
// Running on every node, and a pod on node resolves kubernetes.default through CoreDNS and
// reaches the API through the service IP (across nodes, over the pod network). It returns the
// probe image.
func podNetworkChecks(t *testing.T, bed *testbed.Bed, kcfg, node string) string {
	t.Helper()
	probe := loadProbe(t, bed, bed.Machines...)
	manifest := filepath.Join(t.TempDir(), "probe.yaml")
	os.WriteFile(manifest, []byte(fmt.Sprintf(probeDaemonSet, probe, node)), 0o644)
	mustKubectl(t, kcfg, "apply", "-f", manifest)
	mustKubectl(t, kcfg, "rollout", "status", "daemonset/e2e-probe", "--timeout=300s")
	if out := mustKubectl(t, kcfg, "get", "daemonset", "e2e-probe", "-o", "jsonpath={.status.numberReady}"); strings.TrimSpace(out) != strconv.Itoa(len(bed.Machines)) {
		t.Errorf("probe DaemonSet ready on %s nodes, want %d", out, len(bed.Machines))
	}
	mustKubectl(t, kcfg, "wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/e2e-probe-dns", "--timeout=180s")
	if out := mustKubectl(t, kcfg, "logs", "e2e-probe-dns", "-c", "dns"); !strings.Contains(out, "OK dns") {
		t.Errorf("DNS from a pod on %s: %s", node, out)
	}
	if out := mustKubectl(t, kcfg, "logs", "e2e-probe-dns", "-c", "api"); !strings.Contains(out, "OK api") {
		t.Errorf("API through the service IP from a pod on %s: %s", node, out)
	}
	return probe
}

// calicoChecks: calico-node ready on every node with the VXLAN pool kk's manifest asked for,
// and its controllers running.
func calicoChecks(t *testing.T, kcfg string) {
	t.Helper()
	mustKubectl(t, kcfg, "-n", "kube-system", "rollout", "status", "daemonset/calico-node", "--timeout=300s")
	mustKubectl(t, kcfg, "-n", "kube-system", "rollout", "status", "deployment/calico-kube-controllers", "--timeout=300s")
	if out := mustKubectl(t, kcfg, "get", "ippools.crd.projectcalico.org", "-o", "jsonpath={range .items[*]}{.spec.cidr} {.spec.vxlanMode} {.spec.ipipMode}{end}"); out != "10.233.64.0/18 Always Never" {
		t.Errorf("calico IP pools: %q, want 10.233.64.0/18 with VXLAN Always and IPIP Never", out)
	}
}

// haCluster writes the Cluster file of the HA layout on bed's 5 machines: n1-n3 hold etcd
// (kk's binary etcd) and the control plane, n4-n5 are workers reaching the API servers
// through haproxy on themselves.
func haCluster(t *testing.T, bed *testbed.Bed) string {
	t.Helper()
	s := bedCluster(t, bed, [][2]string{
		{"etcd: [n1]", "etcd: [n1, n2, n3]"},
		{"control-plane: [n1]", "control-plane: [n1, n2, n3]"},
		{"worker: [n1, n2, n3, n4, n5]", "worker: [n4, n5]"},
		{`port: 6443}`, `port: 6443, internalLoadbalancer: haproxy}`},
		{"containerManager: containerd}", "containerManager: containerd, audit: {enabled: true}, certificateValidityPeriod: " + certLifetime + "}"},
	})
	// One addon from a YAML file, installed last (and waited for) by the addons phase.
	addon := filepath.Join(t.TempDir(), "addon.yaml")
	if err := os.WriteFile(addon, []byte(addonYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	s = strings.TrimRight(s, "\n") + "\n  addons:\n  - name: e2e-addon\n    namespace: e2e-addon\n    sources:\n      yaml:\n        path:\n        - " + addon + "\n"
	return writeClusterFile(t, "cluster-ha.yaml", s)
}

// writeClusterFile writes the Cluster file s as name in a directory of the test's own and
// returns its path.
func writeClusterFile(t *testing.T, name, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// bedCluster is the testbed's Cluster file with each replacement made once (a missing one
// fails the test) and Kubernetes at the e2e version.
func bedCluster(t *testing.T, bed *testbed.Bed, replacements [][2]string) string {
	t.Helper()
	data, err := os.ReadFile(bed.ClusterFile)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for _, r := range replacements {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("testbed cluster file has no %q", r[0])
		}
		s = strings.Replace(s, r[0], r[1], 1)
	}
	return regexp.MustCompile(`version: v[0-9.]+`).ReplaceAllString(s, "version: "+e2eK8s)
}

// kubectl is the mirror's kubectl of the e2e version, run on this machine.
func kubectl(t *testing.T, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	bin := filepath.Join(envOr("KK_MIRROR_DIR", images.DefaultMirrorDir), mirror.KubernetesPath(e2eK8s, "kubectl"))
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	t.Logf("$ kubectl %s\n%s", strings.Join(args, " "), out)
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// dumpOnFailure logs the cluster's nodes, pods and events when the test has failed (it runs
// before the machines go down; kubectl logs what it prints).
func dumpOnFailure(t *testing.T, kubeconfig string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		t.Log(testbed.AfterFailureMarker)
		for _, args := range [][]string{
			{"get", "nodes", "-o", "wide"},
			{"get", "pods", "-A", "-o", "wide"},
			{"get", "events", "-A", "--sort-by=.lastTimestamp"},
		} {
			_, _ = kubectl(t, kubeconfig, append(args, "--request-timeout=20s")...)
		}
	})
}

func mustKubectl(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	out, err := kubectl(t, kubeconfig, args...)
	// a connection to the API that broke (an API server restarted by its liveness probe on
	// the loaded test machine) is tried again, for verbs that can be repeated
	for try := 1; err != nil && try < 4 && repeatable(args) && transientAPIError.MatchString(out); try++ {
		time.Sleep(5 * time.Second)
		out, err = kubectl(t, kubeconfig, args...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// transientAPIError is how kubectl reports a connection to the API that failed on the way,
// not an answer of the API.
var transientAPIError = regexp.MustCompile(`connection lost|connection refused|connection reset|i/o timeout|TLS handshake timeout|unexpected EOF|http2: server sent GOAWAY`)

// repeatable says kubectl args run a verb that may run twice: the first of args that is a
// verb decides (flags and their values come before it).
func repeatable(args []string) bool {
	for _, a := range args {
		switch a {
		case "get", "apply", "wait", "rollout", "top", "describe", "config":
			return true
		case "create", "delete", "exec", "patch", "label", "annotate", "scale", "cordon", "drain", "run", "replace", "edit", "cp":
			return false
		}
	}
	return false
}

const addonYAML = `apiVersion: v1
kind: ConfigMap
metadata: {name: e2e-addon}
data: {installed-by: kk}
`

const probeDaemonSet = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: e2e-probe, namespace: default}
spec:
  selector: {matchLabels: {app: e2e-probe}}
  template:
    metadata: {labels: {app: e2e-probe}}
    spec:
      tolerations: [{operator: Exists}]
      containers:
      - {name: probe, image: %[1]s, args: [sleep]}
---
apiVersion: v1
kind: Pod
metadata: {name: e2e-probe-dns, namespace: default}
spec:
  nodeName: %[2]s
  restartPolicy: Never
  containers:
  - {name: dns, image: %[1]s, args: [dns, kubernetes.default.svc.cluster.local]}
  - {name: api, image: %[1]s, args: [api]}
`

// TestCreateClusterHA walks one HA cluster through its life: created on the minor before
// the newest with one control plane and one worker, grown by kk add nodes to 3 control planes
// (kk's etcd on each) and 2 workers behind haproxy, checked; then, while a workload serves,
// a control plane deleted, upgraded to the newest minor and a worker deleted; its certificates
// renewed, etcd backed up and restored, and finally the cluster deleted, leaving nothing on
// any host.
func TestCreateClusterHA(t *testing.T) {
	lane(t)
	bin := kkBinary(t)
	bed := testbed.Require(t, testbed.Options{Name: "kkha"}, 5)
	cfg := haCluster(t, bed)
	oldCfg := withVersion(t, cfg, e2eOldK8s)
	small := onlyHosts(t, oldCfg, "cluster-ha-small.yaml", "n1", "n4")
	// The user's air-gapped flow: kk create manifest -c cluster.yaml, kk artifact export, for
	// the release the cluster starts on and the one it is upgraded to.
	oldBundle := exportBundle(t, bin, "ha-"+e2eOldK8s, "-c", oldCfg)
	bundle := exportBundle(t, bin, "ha", "-c", cfg)
	first, kcfg := createOnBed(t, bin, oldBundle, small, bed, "work-ha")
	work := workdirOf(kcfg)
	if st, err := os.Stat(kcfg); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("admin kubeconfig %s: %v (mode %v), want mode 0600", kcfg, err, st)
	}
	dumpOnFailure(t, kcfg)
	mustKubectl(t, kcfg, "wait", "--for=condition=Ready", "node", "--all", "--timeout=300s")

	// Grown to 5 nodes: every node Ready, 3 API servers behind each worker's haproxy, 3 etcd
	// members.
	addNodes(t, bin, bed, oldCfg, oldBundle, work, kcfg)
	// the admin kubeconfig names every control plane (one context each)
	if n := strings.Count(mustKubectl(t, kcfg, "config", "get-contexts", "-o", "name"), "\n"); n != 3 {
		t.Errorf("admin kubeconfig has %d contexts, want one per control plane (3)", n)
	}

	// A DaemonSet pod Running on every node; a pod on a worker resolves kubernetes.default
	// through CoreDNS and reaches the API through the service IP.
	probe := podNetworkChecks(t, bed, kcfg, "n4")

	// Every pod runs an image of the bundle (the probe, the test's own workload, aside).
	podImagesInBundle(t, kcfg, oldBundle, "default")

	// The addon is there.
	if out := mustKubectl(t, kcfg, "-n", "e2e-addon", "get", "configmap", "e2e-addon", "-o", "jsonpath={.data.installed-by}"); out != "kk" {
		t.Errorf("addon ConfigMap: %q", out)
	}

	// etcd: every member healthy.
	n1 := bed.Machines[0]
	health := rootSSH(t, bed, n1, "ETCDCTL_API=3 etcdctl --cacert /etc/ssl/etcd/ssl/ca.pem --cert /etc/ssl/etcd/ssl/admin.pem "+
		"--key /etc/ssl/etcd/ssl/admin-key.pem --endpoints https://127.0.0.1:2379 endpoint health --cluster")
	if c := strings.Count(health, "is healthy"); c != 3 {
		t.Errorf("etcd: %d healthy members, want 3:\n%s", c, health)
	}

	// kubernetes.audit: the API server logs to its audit log.
	if out := rootSSH(t, bed, n1, "grep -c '\"kind\":\"Event\"' /var/log/kubernetes/audit/audit.log"); strings.TrimSpace(out) == "0" {
		t.Errorf("n1's audit log has no events")
	}

	// From the workers, the API answers through the internal load balancer; kubectl on a
	// worker goes through it too.
	lbCheck := healthz("lb.kubesphere.local")
	workers := bed.Machines[3:]
	for _, w := range workers {
		healthzOK(t, bed, w, "lb.kubesphere.local", "(the LB)", time.Minute)
	}
	kubectlBin := filepath.Join(envOr("KK_MIRROR_DIR", images.DefaultMirrorDir), mirror.KubernetesPath(e2eK8s, "kubectl"))
	copyToMachine(t, bed, workers[0], kubectlBin, "/usr/local/bin/kubectl")
	copyToMachine(t, bed, workers[0], kcfg, "/root/admin.conf")
	rootSSH(t, bed, workers[0], "kubectl --kubeconfig /root/admin.conf --server https://lb.kubesphere.local:6443 get nodes")

	// Stop n1's API server: workers stay Ready and kubectl through the LB still works.
	rootSSH(t, bed, n1, "mkdir -p /root/stopped && mv /etc/kubernetes/manifests/kube-apiserver.yaml /root/stopped/")
	waitFor(t, 2*time.Minute, "n1's API server to stop", func() bool {
		_, err := sshOut(bed, n1, healthz("127.0.0.1"))
		return err != nil
	})
	for i := 0; i < 3; i++ {
		rootSSH(t, bed, workers[0], "kubectl --kubeconfig /root/admin.conf --server https://lb.kubesphere.local:6443 get nodes")
		for _, w := range workers {
			if out := rootSSH(t, bed, w, lbCheck); strings.TrimSpace(out) != "ok" {
				t.Errorf("%s: /healthz through the LB with n1's API server down: %q", w.Name, out)
			}
		}
		time.Sleep(3 * time.Second)
	}
	// the workers stay Ready (n1's own kubelet reaches the API through n1's API server, so
	// n1 itself may turn NotReady while it is down)
	out := rootSSH(t, bed, workers[0], "kubectl --kubeconfig /root/admin.conf --server https://lb.kubesphere.local:6443 get nodes --no-headers n4 n5")
	if strings.Count(out, " Ready") != 2 {
		t.Errorf("with n1's API server down, workers:\n%s", out)
	}
	// kk's machine keeps a way in: kk kubeconfig makes a control plane that answers current
	kkOn(t, bin, bed, work, "kubeconfig", "-f", oldCfg)
	mustKubectl(t, kcfg, "get", "nodes")
	rootSSH(t, bed, n1, "mv /root/stopped/kube-apiserver.yaml /etc/kubernetes/manifests/")
	waitFor(t, 3*time.Minute, "n1's API server back", func() bool {
		_, err := sshOut(bed, n1, healthz("127.0.0.1"))
		return err == nil
	})
	// n1's kubelet reached the API through its own API server: it reports again (kk upgrade
	// refuses a node that is not Ready)
	mustKubectl(t, kcfg, "wait", "--for=condition=Ready", "node", "--all", "--timeout=300s")

	// e2e-web serves through a Service from here on: shrunk by control plane n3 (an etcd
	// member), upgraded to the newest minor (2 control planes, 2 workers), shrunk by worker n5.
	mustKubectl(t, kcfg, "apply", "-f", writeClusterFile(t, "web.yaml", fmt.Sprintf(webProbe, probe)))
	mustKubectl(t, kcfg, "rollout", "status", "deployment/e2e-web", "--timeout=180s")
	deleteControlPlane(t, bin, bed, oldCfg, work, kcfg)
	withoutN3 := onlyHosts(t, cfg, "cluster-no-n3.yaml", "n1", "n2", "n4", "n5")
	upgradeCluster(t, bin, bed, withoutN3, bundle, work, kcfg)
	rest := deleteWorker(t, bin, bed, withoutN3, work, kcfg)

	// Certificates (kk's etcd PKI and kubeadm's, 3-hour lifetime): renewed while a client on
	// n4 polls the API through haproxy, then by the timer.
	renewCerts(t, bin, rest, kcfg, bed, bed.Machines[:2],
		renewOptions{pollFrom: &workers[0], server: "https://lb.kubesphere.local:6443", runTimer: true, nodesReady: true})
	// kk upgrade again, after the timer renewed n1's certificates there: nothing is left to
	// upgrade, and kk keeps the renewed certificates (same CA, current) rather than push its
	// older copies and restart etcd; only the admin kubeconfig, renewed on n1, is copied again.
	tokens := bootstrapTokens(t, kcfg)
	again, took := kkOn(t, bin, bed, work, "upgrade", "-f", rest, "-a", bundle)
	changed(t, again)
	if n := bootstrapTokens(t, kcfg); n != tokens {
		t.Errorf("kk upgrade again made bootstrap tokens: %d -> %d", tokens, n)
	}
	// kk delete node rewrote what names the hosts on the nodes that stay: this first run on
	// the file without n3 and n5 finds them current.
	for _, m := range regexp.MustCompile(`(?m)^\s*changed +(\S+) +(\S+)`).FindAllStringSubmatch(again, -1) {
		if m[1] != "kubernetes/kubeconfig" || m[2] != "n1" {
			t.Errorf("kk upgrade again, after the upgrade, delete node and the timer's renewal, changed %s on %s", m[1], m[2])
		}
	}
	recordTimes(t, "HA: create of n1 (control plane, etcd) and n4 (worker); re-run: kk upgrade again on the 3 machines left after add nodes, the upgrade, delete node and the certificates' renewal",
		first.took, took, first.out, again)

	// etcd: backup, a namespace deleted, restore (2 members).
	backupRestore(t, bin, rest, kcfg, bed, 2)

	// Finally the whole cluster deleted, nothing of it left on any host (n3 and n5 too).
	deleteCluster(t, bin, bed, cfg, work)
}

// created is a kk create cluster that succeeded: what it printed, how long it took, and how
// to run it again.
type created struct {
	out   string
	took  time.Duration
	again func() (string, error)
}

// timedCreate runs create, failing the test when it fails.
func timedCreate(t *testing.T, create func() (string, error)) created {
	t.Helper()
	start := time.Now()
	out, err := create()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("kk create cluster failed: %v", err)
	}
	return created{out: out, took: took, again: create}
}

// createOnBed runs kk create cluster -f cfg -a bundle from this machine on bed's machines,
// with its workdir (emptied first) under e2eDir, and returns the run and the admin kubeconfig
// kk wrote.
func createOnBed(t *testing.T, bin, bundle, cfg string, bed *testbed.Bed, workdir string) (created, string) {
	t.Helper()
	work := filepath.Join(e2eDir(t), workdir)
	os.RemoveAll(work)
	args := []string{"create", "cluster", "-f", cfg, "-a", bundle, "-y", "--known-hosts", bed.KnownHosts, "--workdir", work}
	c := timedCreate(t, func() (string, error) {
		r := kkLong(t, bin, args...)
		if r.code != 0 {
			return r.out, fmt.Errorf("exit %d", r.code)
		}
		return r.out, nil
	})
	return c, filepath.Join(work, "config-"+bed.Name)
}

// rerunChangesNothing runs the create again on the converged cluster: it must succeed and
// change nothing. Both wall times are recorded under what.
func (c created) rerunChangesNothing(t *testing.T, what string) {
	t.Helper()
	start := time.Now()
	out, err := c.again()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("re-run failed: %v", err)
	}
	if n := changed(t, out); n != "0" {
		t.Errorf("re-run changed %s tasks, want 0", n)
	}
	recordTimes(t, what, c.took, took, c.out, out)
}

// recordTimes appends the create and re-run wall times, with kk's own per-phase times, to
// $KK_E2E_RESULTS (make bench). No time is asserted.
func recordTimes(t *testing.T, what string, create, rerun time.Duration, outs ...string) {
	t.Logf("%s: create %s, re-run %s (%.0f%%)", what, create.Round(time.Second), rerun.Round(time.Second), 100*rerun.Seconds()/create.Seconds())
	appendResults(t, func(f io.Writer) { writeTimes(f, what, create, rerun, outs...) })
}

// resultsMu keeps one test's results together in the file when tests run in parallel.
var resultsMu sync.Mutex

// appendResults appends what write writes to $KK_E2E_RESULTS (make bench), when set.
func appendResults(t *testing.T, write func(io.Writer)) {
	p := os.Getenv("KK_E2E_RESULTS")
	if p == "" {
		return
	}
	resultsMu.Lock()
	defer resultsMu.Unlock()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	write(f)
}

func writeTimes(f io.Writer, what string, create, rerun time.Duration, outs ...string) {
	fmt.Fprintf(f, "\n### %s\n\n| run | wall time |\n|---|---|\n| create | %s |\n| re-run | %s (%.0f%% of create) |\n",
		what, create.Round(time.Second), rerun.Round(time.Second), 100*rerun.Seconds()/create.Seconds())
	names := []string{"create", "re-run"}
	for i, out := range outs {
		if i >= len(names) {
			break
		}
		if _, table, ok := strings.Cut(out, "PHASE           TIME     CHANGED\n"); ok {
			fmt.Fprintf(f, "\nPhases of the %s (kk's own report):\n\n| phase | time | changed |\n|---|---|---|\n", names[i])
			for _, line := range strings.Split(table, "\n") {
				fs := strings.Fields(line)
				if len(fs) != 3 {
					break
				}
				fmt.Fprintf(f, "| %s | %s | %s |\n", fs[0], fs[1], fs[2])
			}
		}
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %s", what, d)
		}
		time.Sleep(2 * time.Second)
	}
}

func sshOut(bed *testbed.Bed, m testbed.Machine, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append(bed.SSHArgs(m)[1:], cmd)
	out, err := exec.CommandContext(ctx, "ssh", args...).CombinedOutput()
	return string(out), err
}

func copyToMachine(t *testing.T, bed *testbed.Bed, m testbed.Machine, local, remote string) {
	t.Helper()
	f, err := os.Open(local)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := append(bed.SSHArgs(m)[1:], "cat > "+remote+".tmp && chmod 0755 "+remote+".tmp && mv "+remote+".tmp "+remote)
	cmd := exec.CommandContext(ctx, "ssh", args...)
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("copy %s to %s:%s: %v: %s", local, m.Name, remote, err, out)
	}
}

// kkLong runs kk with a long time limit (a whole cluster).
func kkLong(t *testing.T, bin string, args ...string) run {
	t.Helper()
	return kkTimeout(t, 30*time.Minute, bin, args...)
}

// TestCreateClusterAllInOne runs kk on a machine itself, without a Cluster file: the machine
// becomes a one-node cluster (etcd, control plane and workloads) from the bundle of `kk create
// manifest --with-kubernetes`, with the local connector (no SSH). Each create is stopped while
// kubeadm init runs, after it wrote the certificates and kubeconfigs, and run again without
// any cleanup: the second run converges to a healthy cluster and a third changes nothing.
// First on the oldest minor tested (kubeadm's v1beta3), stopped by SIGINT (Ctrl-C: kk ends what
// it started); then, after kk delete cluster on the same machine, on the newest, stopped by
// SIGKILL (a crash, or the jump host gone: kubeadm init goes on without it, and the next run
// stops that kubeadm and finishes the half-done init over its certificates and kubeconfigs).
func TestCreateClusterAllInOne(t *testing.T) {
	lane(t)
	bin := kkBinary(t)
	// The bundles of `kk create manifest --with-kubernetes`: KubeKey's defaults for the
	// version, the cluster `kk create cluster --with-kubernetes` builds.
	oldest := exportBundle(t, bin, "aio-"+aioK8s, "--with-kubernetes", aioK8s)
	newest := exportBundle(t, bin, "aio-"+e2eK8s, "--with-kubernetes", e2eK8s)
	// kk runs here without the bed's Cluster file, so kubelet has kk's own disk thresholds
	// (shares of the disk): the machine gets a disk of its own, as a real one has; on this
	// machine's shared disk those would taint the node with disk-pressure whenever the other
	// beds and the caches leave less than 5% of it free.
	bed := testbed.Require(t, testbed.Options{Name: "kkaio", DiskGiB: 20}, 1)
	m := bed.Machines[0]
	copyToMachine(t, bed, m, bin, "/usr/local/bin/kk")
	copyToMachine(t, bed, m, oldest, "/root/bundle-"+aioK8s+".tar.gz")
	copyToMachine(t, bed, m, newest, "/root/bundle-"+e2eK8s+".tar.gz")

	out := testResume(t, bed, m, aioK8s, "INT")
	kcfg := "/root/kubekey/config-" + m.Name
	if !strings.Contains(out, "export KUBECONFIG="+kcfg) {
		t.Errorf("kk did not name the kubeconfig %s", kcfg)
	}
	rootSSH(t, bed, m, "ETCDCTL_API=3 etcdctl --cacert /etc/ssl/etcd/ssl/ca.pem --cert /etc/ssl/etcd/ssl/admin.pem "+
		"--key /etc/ssl/etcd/ssl/admin-key.pem --endpoints https://127.0.0.1:2379 endpoint health")
	// kubeadm read the configuration API of its minor
	if out := rootSSH(t, bed, m, "head -3 /etc/kubernetes/kubeadm-config.yaml"); !strings.Contains(out, kubernetes.KubeadmAPI(aioK8s)) {
		t.Errorf("kubeadm configuration of %s:\n%s", aioK8s, out)
	}
	if v := rootSSH(t, bed, m, "kubectl --kubeconfig "+kcfg+" get node -o jsonpath={.items[0].status.nodeInfo.kubeletVersion}"); v != aioK8s {
		t.Errorf("kubelet %q, want %s", v, aioK8s)
	}
	podImagesInBundle(t, machineKubeconfig(t, bed, m, kcfg), oldest)

	// kk delete cluster without -f: this machine's all-in-one cluster (the runtime and its
	// images stay); the next create starts from nothing again
	out = rootSSH(t, bed, m, "cd /root && kk delete cluster -y 2>&1 && rm -rf /root/kubekey/logs /root/first.log /root/first.rc")
	t.Logf("$ kk delete cluster -y\n%s", out)
	testResume(t, bed, m, e2eK8s, "KILL")
	if v := rootSSH(t, bed, m, "kubectl --kubeconfig "+kcfg+" get node -o jsonpath={.items[0].status.nodeInfo.kubeletVersion}"); v != e2eK8s {
		t.Errorf("kubelet %q, want %s", v, e2eK8s)
	}
}

// sshLong runs cmd as root on m with a long time limit.
func sshLong(bed *testbed.Bed, m testbed.Machine, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	args := append(bed.SSHArgs(m)[1:], cmd)
	out, err := exec.CommandContext(ctx, "ssh", args...).CombinedOutput()
	return string(out), err
}

// testResume runs kk create cluster --with-kubernetes version on m (from
// /root/bundle-version.tar.gz), stops it with signal once kubeadm init wrote the kubeconfigs,
// runs it again to a healthy cluster, and then once more: 0 changed. It returns what the
// resumed run printed.
func testResume(t *testing.T, bed *testbed.Bed, m testbed.Machine, version, signal string) string {
	t.Helper()
	create := "cd /root && kk create cluster -a /root/bundle-" + version + ".tar.gz --with-kubernetes " + version + " -y"

	rootSSH(t, bed, m, "cd /root && setsid sh -c '"+create+" > /root/first.log 2>&1; echo $? > /root/first.rc' > /dev/null 2>&1 < /dev/null &")
	// stopped once kubeadm init has written the kubeconfigs: the next run finds an init that
	// is under way or half done (certificates and admin.conf there, its later phases not run)
	waitFor(t, 10*time.Minute, "kubeadm init to write "+"/etc/kubernetes/admin.conf", func() bool {
		out, _ := sshOut(bed, m, "grep -qh 'kubernetes/init. start' /root/kubekey/logs/*/*.log && test -f /etc/kubernetes/admin.conf && echo yes")
		return strings.Contains(out, "yes")
	})
	rootSSH(t, bed, m, "pkill -"+signal+" -x kk")
	// (sshOut returns stderr too: only an exit status counts)
	waitFor(t, 3*time.Minute, "the stopped kk to exit", func() bool {
		out, err := sshOut(bed, m, "test -s /root/first.rc && cat /root/first.rc")
		return err == nil && strings.TrimSpace(out) != ""
	})
	first := rootSSH(t, bed, m, "cat /root/first.rc; tail -40 /root/first.log; echo kubeadm still running: $(pgrep -x kubeadm || echo no)")
	t.Logf("run stopped with SIG%s:\n%s", signal, first)
	if strings.HasPrefix(first, "0\n") {
		t.Fatalf("the stopped run exited 0")
	}
	leftRunning := !strings.HasSuffix(strings.TrimSpace(first), "kubeadm still running: no")
	switch {
	case signal == "INT" && leftRunning:
		// kk ends what it started before it exits (after its grace period)
		t.Errorf("the interrupted kk left kubeadm running")
	case signal == "KILL" && !leftRunning:
		// its output went to the killed kk: the next write ended it (SIGPIPE)
		t.Logf("kubeadm ended with the killed kk: the next run finds a half-done init")
	}

	out, err := sshLong(bed, m, create+" 2>&1")
	t.Logf("$ %s (after SIG%s)\n%s", create, signal, out)
	if err != nil {
		// what held the node back: its conditions and taints (disk pressure on a full disk?)
		diag, _ := sshOut(bed, m, "kubectl --kubeconfig /root/kubekey/config-"+m.Name+" --request-timeout=20s get node "+m.Name+
			` -o jsonpath='{range .spec.taints[*]}taint {.key}={.value}:{.effect}{"\n"}{end}{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}'; df -h / /var/lib/containerd`)
		t.Logf("node %s after the failed run:\n%s", m.Name, diag)
		t.Fatalf("the run after SIG%s failed: %v", signal, err)
	}
	kcfg := "/root/kubekey/config-" + m.Name
	rootSSH(t, bed, m, "kubectl --kubeconfig "+kcfg+" wait --for=condition=Ready node --all --timeout=300s")
	rootSSH(t, bed, m, "kubectl --kubeconfig "+kcfg+" -n kube-system rollout status deployment/coredns --timeout=300s")
	again, err := sshLong(bed, m, create+" 2>&1")
	if err != nil {
		t.Fatalf("re-run: %v\n%s", err, again)
	}
	if c := changed(t, again); c != "0" {
		t.Errorf("re-run after the resumed run changed %s tasks, want 0", c)
	}
	return out
}

// loadProbe loads the e2e probe image (the test's own workload; no bundle holds it) into
// containerd on machines and returns its reference.
func loadProbe(t *testing.T, bed *testbed.Bed, machines ...testbed.Machine) string {
	t.Helper()
	return loadProbeWith(t, bed, "ctr -n k8s.io images import", machines...)
}

// loadProbeWith is loadProbe with the container manager's command that loads an image
// archive (its path appended).
func loadProbeWith(t *testing.T, bed *testbed.Bed, load string, machines ...testbed.Machine) string {
	t.Helper()
	return loadTestImage(t, bed, images.ProbeRepository+":"+images.ProbeTag, load, machines...)
}

// loadBusybox loads the tests' busybox image (their pods' shell, sleep and httpd; no component
// of kk runs it, so no bundle holds it) into containerd on machines and returns its reference.
func loadBusybox(t *testing.T, bed *testbed.Bed, machines ...testbed.Machine) string {
	t.Helper()
	return loadTestImage(t, bed, images.BusyboxRepository+":"+images.BusyboxTag, "ctr -n k8s.io images import", machines...)
}

// loadTestImage loads the built test image ref into each of machines with load (the container
// manager's command that loads an image archive, its path appended) and returns ref.
func loadTestImage(t *testing.T, bed *testbed.Bed, ref, load string, machines ...testbed.Machine) string {
	t.Helper()
	tar := filepath.Join(t.TempDir(), "e2e-image.tar")
	if err := upstream.ImageArchive(upstream.DefaultDirs(), ref, tar); err != nil {
		t.Fatal(err)
	}
	for _, m := range machines {
		copyToMachine(t, bed, m, tar, "/root/e2e-image.tar")
		rootSSH(t, bed, m, load+" /root/e2e-image.tar && rm /root/e2e-image.tar")
	}
	return ref
}

// machineKubeconfig copies the kubeconfig kk wrote on m (at path) to this machine, pointed at
// m's address, and returns its local path.
func machineKubeconfig(t *testing.T, bed *testbed.Bed, m testbed.Machine, path string) string {
	t.Helper()
	data := rootSSH(t, bed, m, "cat "+path)
	data = regexp.MustCompile(`server: https://[^\s]+`).ReplaceAllString(data, "server: https://"+m.Address+":6443")
	local := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(local, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return local
}

// TestCreateClusterNoNetwork: `network.plugin: none` (the user brings a network) installs the
// control plane and nodelocaldns without any CNI, does not wait for what cannot run without a
// pod network (CoreDNS), bundles no network plugin, and a re-run changes nothing.
func TestCreateClusterNoNetwork(t *testing.T) {
	lane(t)
	bin := kkBinary(t)
	bed := testbed.Require(t, testbed.Options{Name: "kknone"}, 1)
	// stacked etcd (kubeadm's static pod) with 3-hour certificates: the certificate step
	// below renews the etcd mode the HA test does not
	cfg := writeClusterFile(t, "cluster-none.yaml", bedCluster(t, bed, [][2]string{{"plugin: flannel", "plugin: none"},
		{"etcd: {type: kubekey}", "etcd: {type: kubeadm}"},
		{"containerManager: containerd}", "containerManager: containerd, certificateValidityPeriod: " + certLifetime + "}"}}))
	bundle := exportBundle(t, bin, "none", "-c", cfg)
	c, kcfg := createOnBed(t, bin, bundle, cfg, bed, "work-none")
	dumpOnFailure(t, kcfg)
	if n := strings.Count(mustKubectl(t, kcfg, "get", "nodes", "-o", "name"), "node/"); n != 1 {
		t.Fatalf("%d nodes, want 1", n)
	}
	// no pod network: the node waits for one, and kk deployed none
	if out := mustKubectl(t, kcfg, "get", "node", "-o", `jsonpath={.items[0].status.conditions[?(@.type=="Ready")].message}`); !strings.Contains(strings.ToLower(out), "network") {
		t.Errorf("node Ready condition %q, want the kubelet waiting for a network plugin", out)
	}
	if out := mustKubectl(t, kcfg, "get", "daemonsets", "-A", "-o", "name"); strings.Contains(out, "flannel") || strings.Contains(out, "calico") {
		t.Errorf("a network plugin was deployed: %s", out)
	}
	// nodelocaldns runs on the host network and is ready without a pod network
	mustKubectl(t, kcfg, "-n", "kube-system", "rollout", "status", "daemonset/nodelocaldns", "--timeout=120s")
	podImagesInBundle(t, kcfg, bundle)
	c.rerunChangesNothing(t, "all-in-one create with network.plugin none (1 machine)")

	// Certificates with stacked etcd: kk certs renew parks the API server while etcd
	// restarts (the timer runs the same steps: the HA test starts it); kk etcd backup runs
	// etcdctl inside etcd's static pod.
	renewCerts(t, bin, cfg, kcfg, bed, bed.Machines, renewOptions{})
	dir := t.TempDir()
	if r := kk(t, bin, "etcd", "backup", "-f", cfg, "-o", dir, "--known-hosts", bed.KnownHosts, "--workdir", workdirOf(kcfg)); r.code != 0 {
		t.Fatalf("kk etcd backup (stacked etcd): exit %d", r.code)
	}
	if snaps, _ := filepath.Glob(filepath.Join(dir, "*.db")); len(snaps) != 1 {
		t.Errorf("kk etcd backup (stacked etcd) wrote %v, want one snapshot", snaps)
	}

	// kubernetes.autoRenewCerts (default true): the timer and kk's program are on the host;
	// set to false, the next run removes them and changes nothing else.
	m := bed.Machines[0]
	if out := rootSSH(t, bed, m, "systemctl is-active kk-certs-renew.timer; test -x /usr/local/lib/kk/kk && echo kk"); out != "active\nkk\n" {
		t.Errorf("autoRenewCerts default: %q, want the timer active and kk on the host", out)
	}
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	off := strings.Replace(string(data), "containerManager: containerd,", "containerManager: containerd, autoRenewCerts: false,", 1)
	if err := os.WriteFile(cfg, []byte(off), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := c.again()
	if err != nil {
		t.Fatalf("re-run with autoRenewCerts: false: %v", err)
	}
	if n := changed(t, out); n != "1" || !strings.Contains(out, "changed certs/auto-renew") {
		t.Errorf("re-run with autoRenewCerts: false changed %s tasks, want 1 (certs/auto-renew)", n)
	}
	left := rootSSH(t, bed, m, "for f in /usr/local/lib/kk /etc/systemd/system/kk-certs-renew.service /etc/systemd/system/kk-certs-renew.timer "+
		"/etc/ssl/etcd/ssl/ca-key.pem; do [ -e $f ] && echo $f; done; systemctl is-enabled kk-certs-renew.timer 2>/dev/null; true")
	if left != "" {
		t.Errorf("with autoRenewCerts: false, still on the host:\n%s", left)
	}
}
