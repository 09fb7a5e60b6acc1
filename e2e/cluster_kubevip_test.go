//go:build e2e

package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/e2e/images"
	"github.com/kk-project/kk/e2e/mirror"
	"github.com/kk-project/kk/e2e/testbed"
)

// healthz is a shell command (python3: the machines have no curl) that prints the body of
// GET https://host:6443/healthz, certificate unchecked.
func healthz(host string) string {
	return `python3 -c 'import ssl,urllib.request; print(urllib.request.urlopen("https://` + host +
		`:6443/healthz", context=ssl._create_unverified_context(), timeout=5).read().decode())'`
}

// healthzOK waits up to within for host's /healthz, asked on m, to answer ok: an API server
// that just started (or whose etcd is slow on a loaded machine) answers 500 for a while.
// It fails the test with the last answer's last line.
func healthzOK(t *testing.T, bed *testbed.Bed, m testbed.Machine, host, what string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		out, err := sshOut(bed, m, healthz(host))
		out = strings.TrimSpace(out)
		if err == nil && out == "ok" {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: /healthz through %s %s: not ok within %s: %s", m.Name, host, what, within, out[strings.LastIndexByte(out, '\n')+1:])
			return
		}
		time.Sleep(2 * time.Second)
	}
}

// vipHolders lists the machines of ms that hold addr on an interface.
func vipHolders(t *testing.T, bed *testbed.Bed, ms []testbed.Machine, addr string) []string {
	t.Helper()
	var out []string
	for _, m := range ms {
		if strings.TrimSpace(rootSSH(t, bed, m, "ip -o addr show to "+addr)) != "" {
			out = append(out, m.Name)
		}
	}
	return out
}

// TestCreateClusterKubeVIP builds a cluster whose API endpoint is a virtual IP held by
// kube-vip (ARP mode) on 2 machines that are both control plane and worker (etcd on n1), with
// Calico's VXLAN pod network: the VIP answers, exactly one control plane holds it, it moves
// when that control plane's kubelet, API server and kube-vip stop, and the re-run on the
// healthy cluster changes nothing. n2 is declared a GPU host: it gets NVIDIA's container
// toolkit (gpuToolkitWorks), a pod of the RuntimeClass nvidia runs there, and NVIDIA's device
// plugin runs there alone, time-sliced as the file says, waiting for a GPU (devicePluginWaits);
// kk's GPU exporter serves there, its dashboard and rules in the cluster (gpuExporterServes).
// Its file carries KubeSphere's ClusterConfiguration: the platform phase installs local storage (a claim binds on n2 and holds a pod's file),
// metrics-server (kubectl top answers for every node) and the gateway (an Ingress routes
// through port 80 of every node) from the bundle, and removes metrics-server and the gateway
// once switched off.
func TestCreateClusterKubeVIP(t *testing.T) {
	lane(t)
	bin := kkBinary(t)
	bed := testbed.Require(t, testbed.Options{Name: "kkvip"}, 2)
	cps := bed.Machines
	// the VIP: .100 of the bed's subnet, which no machine (.11 on) and not the bridge (.1) has
	vip := cps[0].Address[:strings.LastIndexByte(cps[0].Address, '.')] + ".100"
	s := bedCluster(t, bed, append([][2]string{
		{"control-plane: [n1]", "control-plane: [n1, n2]"},
		{`address: "", port: 6443}`, `address: "` + vip + `", port: 6443, internalLoadbalancer: kube-vip}`},
		{"plugin: flannel", "plugin: " + calicoCNI},
	}, gpuHost("n2")...))
	// The file carries KubeSphere's ClusterConfiguration with metrics_server and the gateway
	// on: the platform phase installs them from the bundle.
	cfg := writeClusterFile(t, "cluster-vip.yaml", withKubeSphere(s, true))
	bundle, export := exportBundleOut(t, bin, "vip", "-c", cfg)
	gpuDryRun(t, bin, bed, cfg, bundle, cps[1], cps[0])
	c, kcfg := createOnBed(t, bin, bundle, cfg, bed, "work-vip")
	if out := mustKubectl(t, kcfg, "config", "view", "-o", "jsonpath={.clusters[0].cluster.server}"); out != "https://"+vip+":6443" {
		t.Errorf("admin kubeconfig server %q, want the VIP", out)
	}
	mustKubectl(t, kcfg, "wait", "--for=condition=Ready", "node", "--all", "--timeout=300s")
	if n := strings.Count(mustKubectl(t, kcfg, "get", "nodes", "-o", "name"), "node/"); n != len(cps) {
		t.Fatalf("%d nodes, want %d", n, len(cps))
	}
	mustKubectl(t, kcfg, "-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=300s")
	// Calico (VXLAN) carries the pod network: a pod on n2 reaches CoreDNS and the API.
	calicoChecks(t, kcfg)
	podNetworkChecks(t, bed, kcfg, "n2")

	// kubeadm's endpoint is the domain, which every node maps to the VIP.
	for _, m := range cps {
		if out := rootSSH(t, bed, m, "getent hosts lb.kubesphere.local"); !strings.HasPrefix(out, vip+" ") {
			t.Errorf("%s: lb.kubesphere.local resolves to %q, want %s", m.Name, out, vip)
		}
		healthzOK(t, bed, m, vip, "(the VIP)", time.Minute)
		// kube-vip runs on admin.conf everywhere once kubeadm is done (not super-admin.conf)
		if out := rootSSH(t, bed, m, "grep -c super-admin.conf /etc/kubernetes/manifests/kube-vip.yaml || true"); strings.TrimSpace(out) != "0" {
			t.Errorf("%s: kube-vip still mounts super-admin.conf", m.Name)
		}
	}
	rootSSH(t, bed, cps[0], "grep -q 'controlPlaneEndpoint: lb.kubesphere.local:6443' /etc/kubernetes/kubeadm-config.yaml")
	if out := mustKubectl(t, kcfg, "-n", "kube-system", "get", "pods", "-l", "app.kubernetes.io/name=kube-vip", "-o", "name"); strings.Count(out, "pod/") != len(cps) {
		t.Errorf("kube-vip pods: %q, want one per control plane", out)
	}

	defer func() {
		if t.Failed() {
			for _, m := range cps {
				out, _ := sshOut(bed, m, "ip -o addr; crictl ps -a --name kube-vip; id=$(crictl ps -a -q --name '^kube-vip$' | head -n1); [ -z \"$id\" ] || crictl logs --tail 30 $id")
				t.Logf("%s:\n%s", m.Name, out)
			}
		}
	}()

	// Exactly one control plane holds the VIP.
	holders := vipHolders(t, bed, cps, vip)
	if len(holders) != 1 {
		t.Fatalf("VIP %s held by %v, want exactly one control plane", vip, holders)
	}
	var holder testbed.Machine
	var others []testbed.Machine
	for _, m := range cps {
		if m.Name == holders[0] {
			holder = m
		} else {
			others = append(others, m)
		}
	}
	t.Logf("VIP %s on %s", vip, holder.Name)

	// The holder's control plane goes away: kubelet stopped, then its kube-vip (SIGTERM: it
	// gives up the lease and the address) and its API server.
	failStart := time.Now()
	rootSSH(t, bed, holder, "systemctl stop kubelet && crictl stop -t 20 $(crictl ps -q --name '^kube-vip$') >/dev/null && "+
		"crictl stop -t 20 $(crictl ps -q --name '^kube-apiserver$') >/dev/null")
	var moved []string
	waitFor(t, 2*time.Minute, "the VIP on exactly one other control plane", func() bool {
		moved = vipHolders(t, bed, cps, vip)
		return len(moved) == 1 && moved[0] != holder.Name
	})
	t.Logf("VIP moved from %s to %s within %s of the stop", holder.Name, moved[0], time.Since(failStart).Round(time.Second))
	kubectlBin := filepath.Join(envOr("KK_MIRROR_DIR", images.DefaultMirrorDir), mirror.KubernetesPath(e2eK8s, "kubectl"))
	waitFor(t, time.Minute, "the API through the VIP", func() bool {
		_, err := kubectl(t, kcfg, "--request-timeout=5s", "get", "--raw", "/readyz")
		return err == nil
	})
	mustKubectl(t, kcfg, "get", "nodes")
	for _, m := range others {
		healthzOK(t, bed, m, vip, "(the VIP) after the failover", time.Minute)
	}
	copyToMachine(t, bed, others[0], kubectlBin, "/root/kubectl")
	rootSSH(t, bed, others[0], "/root/kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes")

	// Back to healthy: kubelet restarts the stopped static pods.
	rootSSH(t, bed, holder, "systemctl start kubelet")
	waitFor(t, 3*time.Minute, holder.Name+"'s API server back", func() bool {
		out, err := sshOut(bed, holder, healthz("127.0.0.1"))
		return err == nil && strings.TrimSpace(out) == "ok"
	})
	mustKubectl(t, kcfg, "wait", "--for=condition=Ready", "node", "--all", "--timeout=300s")
	waitFor(t, 2*time.Minute, holder.Name+"'s kube-vip running", func() bool {
		out, err := sshOut(bed, holder, "crictl ps -q --state running --name '^kube-vip$'")
		return err == nil && strings.TrimSpace(out) != ""
	})
	if h := vipHolders(t, bed, cps, vip); len(h) != 1 {
		t.Errorf("after recovery the VIP is held by %v, want exactly one control plane", h)
	}

	platformInstalled(t, bed, kcfg, c.out, export)
	gpuToolkitWorks(t, bed, kcfg, cps[1], cps[:1])
	devicePluginWaits(t, kcfg, cps[1])
	gpuExporterServes(t, bed, kcfg, cps[1], cps[0])

	c.rerunChangesNothing(t, "kube-vip create (2 machines: control plane + worker, etcd on n1, ARP VIP; calico; the whole platform: local storage, metrics-server, monitoring, alerting, logging, gateway, app store, a workspace)")

	// metrics_server and the gateway switched off: kk removes them.
	platformSwitchedOff(t, bin, bed, writeClusterFile(t, "cluster-vip-off.yaml", withKubeSphere(s, false)), bundle, kcfg)
}
