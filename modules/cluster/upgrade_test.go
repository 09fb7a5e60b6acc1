package cluster

import (
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/artifacts/bundle"
	"github.com/kk-project/kk/modules/kubernetes"
)

func TestUpgradeSteps(t *testing.T) {
	running := func(api string, kubelets ...string) kubernetes.Running {
		r := kubernetes.Running{APIServer: api, Kubelets: map[string]string{}}
		for i, k := range kubelets {
			r.Kubelets[string(rune('a'+i))] = k
		}
		return r
	}
	for _, tc := range []struct {
		name      string
		running   kubernetes.Running
		target    string
		available []string
		want      []string
		err       string
	}{
		{name: "one minor", running: running("v1.36.3", "v1.36.3"), target: "v1.37.2", want: []string{"v1.37.2"}},
		{name: "same release converges", running: running("v1.37.2", "v1.37.2"), target: "v1.37.2", want: []string{"v1.37.2"}},
		{name: "patch", running: running("v1.36.1", "v1.36.1"), target: "v1.36.3", want: []string{"v1.36.3"}},
		{name: "three minors through the bundle's newest of each", running: running("v1.34.4", "v1.34.4"), target: "v1.37.2",
			available: []string{"v1.35.1", "v1.35.4", "v1.36.3", "v1.37.2", "v1.33.1"}, want: []string{"v1.35.4", "v1.36.3", "v1.37.2"}},
		{name: "a minor missing from the bundle", running: running("v1.35.4"), target: "v1.37.2", available: []string{"v1.37.2"},
			err: "goes through v1.36"},
		{name: "downgrade", running: running("v1.37.2"), target: "v1.36.3", err: "downgrades are not supported"},
		{name: "kubelet too old for the target", running: running("v1.36.3", "v1.32.1"), target: "v1.37.2", err: "more than 3 minors older"},
		{name: "no cluster", running: kubernetes.Running{}, target: "v1.37.2", err: "no running cluster"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := UpgradeSteps(tc.running, tc.target, tc.available)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("steps %v (%v), want %v", got, err, tc.want)
			}
		})
	}
}

func TestClusterComponentsTakesTheClustersRelease(t *testing.T) {
	all := []bundle.ComponentEntry{
		{Name: "kubeadm", Version: "v1.36.3", Arch: "amd64"}, {Name: "kubelet", Version: "v1.36.3", Arch: "amd64"},
		{Name: "kubeadm", Version: "v1.37.2", Arch: "amd64"}, {Name: "kubelet", Version: "v1.37.2", Arch: "amd64"},
		{Name: "etcd", Version: "v3.6.5", Arch: "amd64"},
	}
	got, err := clusterComponents(all, "v1.37.2")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range got {
		names = append(names, c.Name+"@"+c.Version)
	}
	if want := []string{"kubeadm@v1.37.2", "kubelet@v1.37.2", "etcd@v3.6.5"}; !slices.Equal(names, want) {
		t.Errorf("components %v, want %v", names, want)
	}
	if _, err := clusterComponents(all, "v1.35.4"); err == nil || !strings.Contains(err.Error(), "holds Kubernetes v1.36.3, v1.37.2, not v1.35.4") {
		t.Errorf("a bundle without the cluster's release: %v", err)
	}
	if v := KubernetesVersions(&bundle.Index{Components: all}); !slices.Equal(v, []string{"v1.36.3", "v1.37.2"}) {
		t.Errorf("KubernetesVersions %v", v)
	}
}

func TestUpgradePhaseRunsBetweenLoadBalancerAndControlPlane(t *testing.T) {
	phases := insertPhase(phaseSkeleton(), "loadbalancer", Phase{Name: PhaseUpgrade})
	var names []string
	for _, p := range phases {
		names = append(names, p.Name)
	}
	i := slices.Index(names, PhaseUpgrade)
	if i < 1 || names[i-1] != "loadbalancer" || names[i+1] != "control-plane" {
		t.Errorf("phases %v", names)
	}
}
