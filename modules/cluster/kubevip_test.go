package cluster

import (
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/kubernetes"
	"github.com/kk-project/kk/modules/loadbalancer"
	"github.com/kk-project/kk/pipeline"
)

const vipCluster = `apiVersion: kubekey.kubesphere.io/v1alpha2
kind: Cluster
metadata: {name: t}
spec:
  hosts:
  - {name: cp1, address: 10.0.0.1, internalAddress: 10.0.0.1, user: root, password: x}
  - {name: cp2, address: 10.0.0.2, internalAddress: 10.0.0.2, user: root, password: x}
  - {name: cp3, address: 10.0.0.3, internalAddress: 10.0.0.3, user: root, password: x}
  - {name: w, address: 10.0.0.4, internalAddress: 10.0.0.4, user: root, password: x}
  roleGroups: {etcd: [cp1, cp2, cp3], control-plane: [cp1, cp2, cp3], worker: [w]}
  controlPlaneEndpoint: {domain: lb.kubesphere.local, address: 10.0.0.100, port: 6443, internalLoadbalancer: kube-vip}
  kubernetes: {version: v1.34.4}
`

// TestKubeVIPPlan: with kube-vip, the first control plane gets kube-vip before kubeadm init
// (loadbalancer phase), its switch to admin.conf comes after init and before any join, the
// other control planes get it after their join, and kubeadm's endpoint is the domain every
// node maps to the VIP.
func TestKubeVIPPlan(t *testing.T) {
	c, _, err := v1alpha2.Parse("t.yaml", []byte(vipCluster))
	if err != nil {
		t.Fatal(err)
	}
	a := &Artifacts{}
	for _, b := range []string{"etcd", "etcdctl", "etcdutl"} {
		a.Files.Add("amd64", b, "/nonexistent/"+b)
	}
	p, err := NewPlan(c, a, Options{Workdir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	phaseOf := map[string]string{}
	for _, ph := range p.Phases {
		for _, tk := range ph.Tasks {
			phaseOf[tk.Name] = ph.Name
		}
	}
	for name, want := range map[string]string{
		loadbalancer.TaskKubeVIP: "loadbalancer", loadbalancer.TaskKubeVIPAdmin: "control-plane", loadbalancer.TaskKubeVIPJoined: "control-plane",
	} {
		if phaseOf[name] != want {
			t.Errorf("%s in phase %q, want %s", name, phaseOf[name], want)
		}
	}
	ts, err := p.Tasks(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{
		loadbalancer.TaskKubeVIPAdmin:   {kubernetes.TaskInit},
		loadbalancer.TaskKubeVIPJoined:  {kubernetes.TaskJoinControlPlane},
		kubernetes.TaskJoinControlPlane: {loadbalancer.TaskKubeVIPAdmin},
		kubernetes.TaskJoinWorker:       {loadbalancer.TaskKubeVIPAdmin},
	} {
		for _, w := range want {
			if got := after(ts, name); !slices.Contains(got, w) {
				t.Errorf("%s after %v, want %s among them", name, got, w)
			}
		}
	}
	var hosts []*pipeline.Host
	for _, h := range c.Hosts {
		hosts = append(hosts, pipeline.NewHost(h.Name, nil, nil))
	}
	if _, err := pipeline.NewGraph(ts, hosts); err != nil {
		t.Fatalf("the engine refuses the plan: %v", err)
	}

	s := osSpec(c)
	for _, h := range c.Hosts {
		if e := s.PerHost[h.Name]; len(e) != 1 || e[0].Address != "10.0.0.100" || e[0].Names[0] != "lb.kubesphere.local" {
			t.Errorf("%s maps the API domain to %+v, want the VIP", h.Name, e)
		}
	}
	ks, err := kubernetes.SpecFor(c, t.TempDir(), binaries.Files{})
	if err != nil {
		t.Fatal(err)
	}
	if ks.ControlPlaneEndpoint != "lb.kubesphere.local:6443" || ks.KubeconfigServer != "https://10.0.0.100:6443" || !slices.Contains(ks.CertSANs, "10.0.0.100") {
		t.Errorf("endpoint %s, kubeconfig server %s, SANs %s", ks.ControlPlaneEndpoint, ks.KubeconfigServer, strings.Join(ks.CertSANs, ","))
	}
	if len(ks.KubeconfigServers) != 1 {
		t.Errorf("kubeconfig servers %v, want the VIP alone", ks.KubeconfigServers)
	}
}
