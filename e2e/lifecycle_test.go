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
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/e2e/images"
	"github.com/kk-project/kk/e2e/mirror"
	"github.com/kk-project/kk/e2e/testbed"
	"github.com/kk-project/kk/modules/reset"
)

// e2eOldK8s is the minor before e2eK8s: the HA cluster is created on it and upgraded.
const e2eOldK8s = "v1.36.3"

// withVersion writes a copy of the Cluster file cfg at Kubernetes version v.
func withVersion(t *testing.T, cfg, v string) string {
	t.Helper()
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := regexp.MustCompile(`version: v[0-9.]+`).ReplaceAllString(string(data), "version: "+v)
	return writeClusterFile(t, strings.TrimSuffix(filepath.Base(cfg), ".yaml")+"-"+v+".yaml", s)
}

// onlyHosts writes a copy of the Cluster file cfg whose hosts and role groups hold only keep.
func onlyHosts(t *testing.T, cfg, name string, keep ...string) string {
	t.Helper()
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	group := regexp.MustCompile(`^(\s+[a-z-]+: )\[(.*)\]$`)
	for _, line := range strings.Split(string(data), "\n") {
		if m := regexp.MustCompile(`^\s+- \{name: (\w+),`).FindStringSubmatch(line); m != nil && !slices.Contains(keep, m[1]) {
			continue
		}
		if m := group.FindStringSubmatch(line); m != nil {
			var names []string
			for _, n := range strings.Split(m[2], ",") {
				if n = strings.TrimSpace(n); slices.Contains(keep, n) {
					names = append(names, n)
				}
			}
			line = m[1] + "[" + strings.Join(names, ", ") + "]"
		}
		out = append(out, line)
	}
	return writeClusterFile(t, name, strings.Join(out, "\n"))
}

// existingNodeChanges lists the "task host" pairs a dry run plans on hosts.
func plannedOn(out string, hosts ...string) []string {
	var got []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "~" && slices.Contains(hosts, f[2]) {
			got = append(got, f[1]+" "+f[2])
		}
	}
	return got
}

// haproxyBackends counts the API servers in worker m's haproxy configuration: its checked
// servers, each of which must have its unchecked backup twin.
func haproxyBackends(t *testing.T, bed *testbed.Bed, m testbed.Machine) int {
	cfg := rootSSH(t, bed, m, "cat /etc/kubekey/haproxy/haproxy.cfg")
	checked := regexp.MustCompile(`(?m)^    server (\S+) (\S+) check `).FindAllStringSubmatch(cfg, -1)
	for _, s := range checked {
		if !strings.Contains(cfg, "\n    server "+s[1]+"-unchecked "+s[2]+" backup") {
			t.Errorf("%s: haproxy has no unchecked backup of %s %s:\n%s", m.Name, s[1], s[2], cfg)
		}
	}
	return len(checked)
}

// etcdMembers counts the started members of kk's etcd, asked on m.
func etcdMembers(t *testing.T, bed *testbed.Bed, m testbed.Machine) int {
	out := rootSSH(t, bed, m, "ETCDCTL_API=3 etcdctl --cacert /etc/ssl/etcd/ssl/ca.pem --cert /etc/ssl/etcd/ssl/admin.pem "+
		"--key /etc/ssl/etcd/ssl/admin-key.pem --endpoints https://127.0.0.1:2379 member list")
	return strings.Count(out, ", started, ")
}

// kubeletVersions returns every node's kubelet version, one per line "name version".
func kubeletVersions(t *testing.T, kcfg string) string {
	return mustKubectl(t, kcfg, "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name} {.status.nodeInfo.kubeletVersion}{"\n"}{end}`)
}

// webProbe is the workload that must keep serving through the upgrade and node deletions:
// 2 replicas (not on control planes), a PodDisruptionBudget of minAvailable 1, a Service.
const webProbe = `apiVersion: apps/v1
kind: Deployment
metadata: {name: e2e-web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: e2e-web}}
  template:
    metadata: {labels: {app: e2e-web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - {name: web, image: %s, args: [sleep]}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: e2e-web, namespace: default}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: e2e-web}}
---
apiVersion: v1
kind: Service
metadata: {name: e2e-web, namespace: default}
spec:
  selector: {app: e2e-web}
  ports: [{port: 80}]
`

// endpointWatch samples the ready endpoints of the e2e-web Service every 2 s from this
// machine until stop; stop returns the fewest seen, the samples, and the failed reads (an API
// server restarting during the upgrade).
func endpointWatch(t *testing.T, kcfg string) (stop func() (min, samples, errs int)) {
	bin := filepath.Join(envOr("KK_MIRROR_DIR", images.DefaultMirrorDir), mirror.KubernetesPath(e2eK8s, "kubectl"))
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	minReady, n, errs := 1<<30, 0, 0
	var zero []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			c, cc := context.WithTimeout(ctx, 15*time.Second)
			out, err := exec.CommandContext(c, bin, "--kubeconfig", kcfg, "--request-timeout=10s", "get", "endpointslices", "-n", "default",
				"-l", "kubernetes.io/service-name=e2e-web", "-o", `jsonpath={range .items[*].endpoints[*]}{.conditions.ready}{"\n"}{end}`).Output()
			cc()
			mu.Lock()
			if err != nil {
				errs++
			} else {
				ready := strings.Count(string(out), "true")
				n++
				minReady = min(minReady, ready)
				if ready == 0 {
					zero = append(zero, time.Now().Format("15:04:05"))
				}
			}
			mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	}()
	return func() (int, int, int) {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if len(zero) > 0 {
			t.Logf("e2e-web had no ready endpoint at %s", strings.Join(zero, " "))
		}
		return minReady, n, errs
	}
}

// recordDay2 appends the wall time of a day-2 command per node to $KK_E2E_RESULTS.
func recordDay2(t *testing.T, what string, took time.Duration, nodes int) {
	t.Logf("%s: %s for %d nodes (%s per node)", what, took.Round(time.Second), nodes, (took / time.Duration(nodes)).Round(time.Second))
	appendResults(t, func(f io.Writer) {
		fmt.Fprintf(f, "\n### %s\n\n| nodes | wall time | per node |\n|---|---|---|\n| %d | %s | %s |\n",
			what, nodes, took.Round(time.Second), (took / time.Duration(nodes)).Round(time.Second))
	})
}

// kkOn runs a kk command that acts on bed's machines with workdir work; it must succeed.
func kkOn(t *testing.T, bin string, bed *testbed.Bed, work string, args ...string) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	r := kkLong(t, bin, append(args, "-y", "--known-hosts", bed.KnownHosts, "--workdir", work)...)
	took := time.Since(start)
	if r.code != 0 {
		t.Fatalf("kk %s: exit %d", strings.Join(args, " "), r.code)
	}
	return r.out, took
}

// addNodes grows the cluster created from n1 (control plane, etcd) and n4 (worker) to the
// whole of fullOld: n2 and n3 join as control planes and etcd members, n5 as a worker.
func addNodes(t *testing.T, bin string, bed *testbed.Bed, fullOld, bundle, work, kcfg string) {
	t.Helper()
	// what a dry run plans on the nodes already in the cluster: only what follows the node
	// list (hosts files, haproxy backends, a join token, the admin kubeconfig's contexts)
	plan, _ := kkOn(t, bin, bed, work, "add", "nodes", "-f", fullOld, "-a", bundle, "--dry-run")
	allowed := []string{"os/etc-hosts", "dns/node-etc-hosts", "loadbalancer/haproxy-config", "loadbalancer/haproxy-manifest",
		"etcd/health", "kubernetes/kubeadm-config", // new members to wait for; the first control plane's kubeadm file lists every SAN
		"kubernetes/etcd-configmap", "kubernetes/etcd-endpoints", // the API servers reach the new etcd members
		"kubernetes/join-credentials", "kubernetes/node-roles", "kubernetes/kubeconfig"}
	for _, p := range plannedOn(plan, "n1", "n4") {
		if task, _, _ := strings.Cut(p, " "); !slices.Contains(allowed, task) {
			t.Errorf("kk add nodes would change %s on a node already in the cluster", p)
		}
	}
	out, took := kkOn(t, bin, bed, work, "add", "nodes", "-f", fullOld, "-a", bundle)
	recordDay2(t, "kk add nodes (2 control planes with etcd members, 1 worker)", took, 3)
	// the joining control planes read the new etcd members from the kubeadm-config ConfigMap,
	// written before they join: only n1's API server restarts for them
	for _, m := range regexp.MustCompile(`(?m)^\s*changed +kubernetes/etcd-endpoints +(\S+)`).FindAllStringSubmatch(out, -1) {
		if m[1] != "n1" {
			t.Errorf("kk add nodes restarted %s's API server for the etcd members it joined with", m[1])
		}
	}
	mustKubectl(t, kcfg, "wait", "--for=condition=Ready", "node", "--all", "--timeout=300s")
	if n := strings.Count(mustKubectl(t, kcfg, "get", "nodes", "-o", "name"), "node/"); n != 5 {
		t.Fatalf("%d nodes after kk add nodes, want 5", n)
	}
	for _, w := range []testbed.Machine{bed.Machines[3], bed.Machines[4]} {
		if n := haproxyBackends(t, bed, w); n != 3 {
			t.Errorf("%s: haproxy lists %d API servers, want 3", w.Name, n)
		}
	}
	if n := etcdMembers(t, bed, bed.Machines[0]); n != 3 {
		t.Errorf("%d etcd members after kk add nodes, want 3", n)
	}
	// the new members joined the running cluster (not a new one of their own)
	for _, m := range bed.Machines[1:3] {
		if env := rootSSH(t, bed, m, "cat /etc/etcd.env"); !strings.Contains(env, "ETCD_INITIAL_CLUSTER_STATE=existing\n") {
			t.Errorf("%s joined the running etcd cluster without state existing:\n%s", m.Name, env)
		}
	}
	apiServersReachEtcd(t, bed, bed.Machines[:3], 3)
	// the new worker's kubelet reaches the API through the load-balancer name, and kk's join
	// file (a bootstrap token) is gone
	if out := rootSSH(t, bed, bed.Machines[4], "grep -c server:.https://lb.kubesphere.local:6443 /etc/kubernetes/kubelet.conf; [ ! -e /etc/kubernetes/kk-join.yaml ] && echo no-join-file"); out != "1\nno-join-file\n" {
		t.Errorf("n5: kubelet.conf / join file: %q", out)
	}
}

// bootstrapTokens counts the cluster's bootstrap token secrets.
func bootstrapTokens(t *testing.T, kcfg string) int {
	return len(strings.Fields(mustKubectl(t, kcfg, "get", "secrets", "-n", "kube-system", "--field-selector", "type=bootstrap.kubernetes.io/token", "-o", "name")))
}

// apiServersReachEtcd checks that the API server of each control plane in cps lists n etcd
// members.
func apiServersReachEtcd(t *testing.T, bed *testbed.Bed, cps []testbed.Machine, n int) {
	for _, m := range cps {
		out := rootSSH(t, bed, m, "grep -e '--etcd-servers=' /etc/kubernetes/manifests/kube-apiserver.yaml")
		if c := strings.Count(out, "https://"); c != n {
			t.Errorf("%s: kube-apiserver %s: %d etcd members, want %d", m.Name, strings.TrimSpace(out), c, n)
		}
	}
}

// upgradeCluster upgrades the cluster to fullNew's version from bundle while e2e-web serves:
// every node on the new kubelet, the Service never without a ready endpoint. Two workers go at
// once, so the PodDisruptionBudget holds the second drain until the first worker is back.
func upgradeCluster(t *testing.T, bin string, bed *testbed.Bed, fullNew, bundle, work, kcfg string) {
	t.Helper()
	stop := endpointWatch(t, kcfg)
	// the workers two at a time (the e2e-web replicas are spread over the control planes too)
	out, took := kkOn(t, bin, bed, work, "upgrade", "-f", fullNew, "-a", bundle, "--max-unavailable", "2")
	minReady, samples, errs := stop()
	t.Logf("e2e-web during the upgrade: %d samples (%d failed reads), fewest ready endpoints %d", samples, errs, minReady)
	if samples == 0 || minReady < 1 {
		t.Errorf("e2e-web had %d ready endpoints at worst during the upgrade (%d samples)", minReady, samples)
	}
	kubelets := strings.Split(strings.TrimSpace(kubeletVersions(t, kcfg)), "\n")
	recordDay2(t, "kk upgrade "+e2eOldK8s+" → "+e2eK8s, took, len(kubelets))
	for _, line := range kubelets {
		if !strings.HasSuffix(line, " "+e2eK8s) {
			t.Errorf("after kk upgrade: %s, want kubelet %s", line, e2eK8s)
		}
	}
	if v := mustKubectl(t, kcfg, "get", "--raw", "/version"); !strings.Contains(v, `"gitVersion": "`+e2eK8s+`"`) {
		t.Errorf("API server %s after kk upgrade, want %s", v, e2eK8s)
	}
	if strings.Contains(out, "upgrade to "+e2eOldK8s) {
		t.Errorf("kk upgrade stepped through %s", e2eOldK8s)
	}
}

// deleteControlPlane deletes control plane n3 (an etcd member) from the cluster of file full
// while e2e-web serves: 2 etcd members left, each API server and each worker's haproxy on the
// 2 left, nothing on them naming n3. It runs before the upgrade, which then has one control
// plane fewer to go through.
func deleteControlPlane(t *testing.T, bin string, bed *testbed.Bed, full, work, kcfg string) {
	t.Helper()
	deleteServing(t, bin, bed, full, work, kcfg, "n3")
	if nodes := mustKubectl(t, kcfg, "get", "nodes", "-o", "name"); strings.Contains(nodes, "node/n3") || strings.Count(nodes, "node/") != 4 {
		t.Errorf("nodes after deleting n3:\n%s", nodes)
	}
	if n := etcdMembers(t, bed, bed.Machines[0]); n != 2 {
		t.Errorf("%d etcd members after deleting n3, want 2", n)
	}
	apiServersReachEtcd(t, bed, bed.Machines[:2], 2)
	for _, w := range bed.Machines[3:] {
		if n := haproxyBackends(t, bed, w); n != 2 {
			t.Errorf("%s: haproxy lists %d API servers after deleting n3, want 2", w.Name, n)
		}
	}
	// kubeadm's file on the control planes no longer names n3 (its SANs)
	for _, m := range bed.Machines[:2] {
		if out := rootSSH(t, bed, m, "grep -cwF "+bed.Machines[2].Address+" /etc/kubernetes/kubeadm-config.yaml || true"); strings.TrimSpace(out) != "0" {
			t.Errorf("%s: the kubeadm file still names n3's address after kk delete node", m.Name)
		}
	}
	hostsBlocksWithout(t, bed, []testbed.Machine{bed.Machines[0], bed.Machines[1], bed.Machines[3], bed.Machines[4]}, "n3")
	mustKubectl(t, kcfg, "wait", "--for=condition=Ready", "node", "--all", "--timeout=120s")
}

// deleteWorker deletes worker n5 from the cluster of file full (without n3) while e2e-web
// serves, and returns the Cluster file of what is left (n1, n2, n4).
func deleteWorker(t *testing.T, bin string, bed *testbed.Bed, full, work, kcfg string) string {
	t.Helper()
	deleteServing(t, bin, bed, full, work, kcfg, "n5")
	if nodes := mustKubectl(t, kcfg, "get", "nodes", "-o", "name"); strings.Contains(nodes, "node/n5") || strings.Count(nodes, "node/") != 3 {
		t.Errorf("nodes after deleting n3 and n5:\n%s", nodes)
	}
	hostsBlocksWithout(t, bed, []testbed.Machine{bed.Machines[0], bed.Machines[1], bed.Machines[3]}, "n3", "n5")
	mustKubectl(t, kcfg, "wait", "--for=condition=Ready", "node", "--all", "--timeout=120s")
	return onlyHosts(t, full, "cluster-left.yaml", "n1", "n2", "n4")
}

// deleteServing runs kk delete node name while e2e-web serves: it must keep a ready endpoint.
func deleteServing(t *testing.T, bin string, bed *testbed.Bed, full, work, kcfg, name string) {
	t.Helper()
	stop := endpointWatch(t, kcfg)
	kkOn(t, bin, bed, work, "delete", "node", name, "-f", full)
	minReady, samples, _ := stop()
	if samples == 0 || minReady < 1 {
		t.Errorf("e2e-web had %d ready endpoints at worst while %s was deleted", minReady, name)
	}
}

// hostsBlocksWithout checks kk's block of /etc/hosts on machines (the testbed's own lines name
// every machine): it names n1 and none of the deleted hosts.
func hostsBlocksWithout(t *testing.T, bed *testbed.Bed, machines []testbed.Machine, deleted ...string) {
	t.Helper()
	re := regexp.MustCompile(`\b(` + strings.Join(deleted, "|") + `)\b`)
	for _, m := range machines {
		block := rootSSH(t, bed, m, "sed -n '/^# BEGIN kk managed hosts/,/^# END kk managed hosts/p' /etc/hosts")
		if !strings.Contains(block, " n1") || re.MatchString(block) {
			t.Errorf("%s: kk's /etc/hosts block after kk delete node of %s:\n%s", m.Name, strings.Join(deleted, " and "), block)
		}
	}
}

// deleteCluster runs kk delete cluster --all and checks every host for what kk leaves
// behind, with kk's own residue check.
func deleteCluster(t *testing.T, bin string, bed *testbed.Bed, full, work string) {
	t.Helper()
	kkOn(t, bin, bed, work, "delete", "cluster", "-f", full, "--all")
	cl, _, err := v1alpha2.Load(full)
	if err != nil {
		t.Fatal(err)
	}
	check := reset.ResidueScript(reset.SpecFor(cl, true))
	for _, m := range bed.Machines {
		if left := reset.ParseResidue(rootSSH(t, bed, m, check)); len(left) > 0 {
			t.Errorf("%s after kk delete cluster --all: %s", m.Name, strings.Join(left, "; "))
		}
	}
}
