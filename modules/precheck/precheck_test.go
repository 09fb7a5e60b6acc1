package precheck

import (
	"errors"
	"strings"
	"testing"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/pipeline"
)

func goodFacts() *pipeline.Facts {
	return &pipeline.Facts{OSID: "debian", OSVersion: "12", Kernel: "6.1", Arch: "amd64", CPUs: 2, MemoryMiB: 4096,
		DiskFreeMiB: 50000, Init: "systemd", Commands: map[string]bool{"iptables": true, "conntrack": true}, ListeningPorts: []int{22}}
}

func TestEvaluate(t *testing.T) {
	req := For([]string{"control-plane", "etcd"}, "amd64", []string{"iptables", "conntrack"})
	if r := Evaluate("n1", goodFacts(), nil, req); !r.OK() {
		t.Fatalf("good host failed: %v", r.Problems)
	}
	f := goodFacts()
	f.SwapMiB, f.MemoryMiB, f.CPUs, f.TimeSkewSec = 512, 1000, 1, -42
	f.ListeningPorts = []int{22, 2379, 6443}
	delete(f.Commands, "conntrack")
	f.Arch = "arm64"
	r := Evaluate("n2", f, nil, req)
	got := strings.Join(r.Problems, "\n")
	for _, want := range []string{"swap is on (512 MiB)", "1000 MiB memory, need at least 1700", "1 CPU(s), need at least 2",
		"-42s off", "missing commands conntrack", "ports in use: 6443,2379", "arch is arm64 but the config says amd64"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	// a worker may have 1 CPU and 1 GiB and does not need 6443 free
	w := goodFacts()
	w.CPUs, w.MemoryMiB, w.ListeningPorts = 1, 1024, []int{6443}
	if r := Evaluate("w1", w, nil, For([]string{"worker"}, "", nil)); !r.OK() {
		t.Errorf("worker failed: %v", r.Problems)
	}
	r = Evaluate("n3", nil, errors.New("host n3: sudo needs a password"), req)
	if r.OK() || !strings.Contains(r.Problems[0], "sudo needs a password") {
		t.Errorf("gather error not reported: %v", r.Problems)
	}
	var b strings.Builder
	WriteTable(&b, []Row{Evaluate("n1", goodFacts(), nil, req), r})
	if !strings.Contains(b.String(), "n3    failed") && !strings.Contains(b.String(), "n3") {
		t.Errorf("table:\n%s", b.String())
	}
}

// TestImageGCWarning: /var/lib past kubelet's image garbage collection threshold is a
// warning (not a failure) where the images live only on the nodes; at 100 (collection off)
// or unchecked (0) there is none.
func TestImageGCWarning(t *testing.T) {
	f := goodFacts()
	f.DiskFreeMiB, f.DiskSizeMiB = 13000, 100000 // 87% used
	req := For([]string{"worker"}, "", nil)
	req.ImageGCHighPercent = ImageGCHighPercent
	r := Evaluate("n1", f, nil, req)
	if !r.OK() || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "/var/lib is 87% used: above 85%") ||
		!strings.Contains(r.Warnings[0], "imageGCHighThresholdPercent") {
		t.Errorf("87%% used, threshold 85: ok %v, warnings %q", r.OK(), r.Warnings)
	}
	var b strings.Builder
	WriteTable(&b, []Row{r})
	if !strings.Contains(b.String(), "n1: warning: /var/lib is 87% used") {
		t.Errorf("table does not print the warning:\n%s", b.String())
	}
	for _, gc := range []int{0, 90, 100} {
		req.ImageGCHighPercent = gc
		if r := Evaluate("n1", f, nil, req); len(r.Warnings) != 0 {
			t.Errorf("threshold %d, 87%% used: warnings %q", gc, r.Warnings)
		}
	}
	f.DiskSizeMiB = 0 // unknown size (an old facts script)
	req.ImageGCHighPercent = ImageGCHighPercent
	if r := Evaluate("n1", f, nil, req); len(r.Warnings) != 0 {
		t.Errorf("unknown disk size: warnings %q", r.Warnings)
	}
}

func TestImageGCOf(t *testing.T) {
	c := &config.Cluster{}
	c.Kubernetes.ContainerManager = "containerd"
	if got := ImageGCOf(c); got != 0 {
		t.Errorf("containerd (the imported images pinned): %d, want 0", got)
	}
	c.Kubernetes.ContainerManager = "docker"
	if got := ImageGCOf(c); got != ImageGCHighPercent {
		t.Errorf("default: %d", got)
	}
	c.Kubernetes.KubeletConfiguration = map[string]any{"imageGCHighThresholdPercent": float64(100)}
	if got := ImageGCOf(c); got != 100 {
		t.Errorf("kubeletConfiguration 100: %d", got)
	}
	c.Registry.PrivateRegistry = "registry.local:5000"
	if got := ImageGCOf(c); got != 0 {
		t.Errorf("with a registry: %d, want 0 (not checked)", got)
	}
}

// TestDiskEviction: a node with less free on /var/lib than kubelet's disk eviction threshold
// (kk's 5%, or the Cluster file's evictionHard) fails the check: kubelet would taint it
// disk-pressure. A host without kubelet (etcd only) is not held to it.
func TestDiskEviction(t *testing.T) {
	c := &config.Cluster{}
	c.Kubernetes.ContainerManager = "containerd"
	f := goodFacts()
	f.DiskFreeMiB, f.DiskSizeMiB = 4000, 100000 // 4% free: under kk's 5%
	r := Evaluate("n1", f, nil, For([]string{"worker"}, "", nil).Of(c, "n1"))
	if r.OK() || len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "4000 MiB (4%) free on /var/lib, under kubelet's evictionHard imagefs.available 5%") ||
		!strings.Contains(r.Problems[0], "disk-pressure") {
		t.Errorf("4%% free, threshold 5%%: %q", r.Problems)
	}
	if r := Evaluate("e1", f, nil, For([]string{"etcd"}, "", nil).Of(c, "n1")); !r.OK() {
		t.Errorf("an etcd-only host is held to kubelet's threshold: %q", r.Problems)
	}
	if r := Evaluate("n1", f, nil, For([]string{"worker"}, "", nil)); !r.OK() {
		t.Errorf("without the cluster's thresholds: %q", r.Problems)
	}
	// the Cluster file's thresholds, key by key over kk's
	c.Kubernetes.KubeletConfiguration = map[string]any{"evictionHard": map[string]any{"nodefs.available": "2Gi", "imagefs.available": "3%"}}
	if r := Evaluate("n1", f, nil, For([]string{"control-plane"}, "", nil).Of(c, "n1")); !r.OK() {
		t.Errorf("4%% free, thresholds 2Gi and 3%%: %q", r.Problems)
	}
	c.Kubernetes.KubeletConfiguration = map[string]any{"evictionHard": map[string]any{"nodefs.available": "5Gi"}}
	r = Evaluate("n1", f, nil, For([]string{"worker"}, "", nil).Of(c, "n1"))
	if r.OK() || !strings.Contains(r.Problems[0], "evictionHard imagefs.available 5%") {
		t.Errorf("imagefs at kk's 5%%: %q", r.Problems)
	}
	f.DiskFreeMiB = 6000
	if r := Evaluate("n1", f, nil, For([]string{"worker"}, "", nil).Of(c, "n1")); !r.OK() {
		t.Errorf("6%% (5.9 GiB) free, thresholds 5Gi and 5%%: %q", r.Problems)
	}
	f.DiskFreeMiB = 5000
	r = Evaluate("n1", f, nil, For([]string{"worker"}, "", nil).Of(c, "n1"))
	if r.OK() || !strings.Contains(r.Problems[0], "evictionHard nodefs.available 5Gi") {
		t.Errorf("5000 MiB free, nodefs 5Gi: %q", r.Problems)
	}
	for _, c := range []struct {
		v    string
		size int
		want int
		ok   bool
	}{{"5%", 100000, 5000, true}, {"2Gi", 0, 2048, true}, {"500Mi", 1, 500, true}, {"x%", 1, 0, false}, {"lots", 1, 0, false}, {"120%", 1, 0, false}} {
		if got, ok := evictionMiB(c.v, c.size); got != c.want || ok != c.ok {
			t.Errorf("evictionMiB(%q, %d) = %d %v, want %d %v", c.v, c.size, got, ok, c.want, c.ok)
		}
	}
}

// TestToolkitNeedsDeb: with NVIDIA's toolkit on, a GPU host (on its PCI bus, or declared)
// whose packages are not Debian's fails; a host without a GPU, or with apt-get, does not.
func TestToolkitNeedsDeb(t *testing.T) {
	src := `apiVersion: kubekey.kubesphere.io/v1alpha2
kind: Cluster
metadata: {name: t}
spec:
  hosts:
  - {name: n1, address: 10.0.0.1, user: root, password: x}
  - {name: n2, address: 10.0.0.2, user: root, password: x, labels: {nvidia.com/gpu.present: "true"}}
  roleGroups: {etcd: [n1], control-plane: [n1], worker: [n1, n2]}
  gpu: {}
`
	c, _, err := v1alpha2.Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	f := goodFacts()
	f.PackageManager = "dnf"
	if r := Evaluate("n1", f, nil, For([]string{"worker"}, "", nil).Of(c, "n1")); !r.OK() {
		t.Errorf("a dnf host without a GPU: %q", r.Problems)
	}
	r := Evaluate("n2", f, nil, For([]string{"worker"}, "", nil).Of(c, "n2"))
	if r.OK() || !strings.Contains(strings.Join(r.Problems, "; "), "NVIDIA's container toolkit from its Debian package, and this host's package manager is dnf") {
		t.Errorf("a declared dnf GPU host: %q", r.Problems)
	}
	f.NvidiaPCI = []string{"0000:17:00.0 0x2330"}
	if r := Evaluate("n1", f, nil, For([]string{"worker"}, "", nil).Of(c, "n1")); r.OK() {
		t.Error("a dnf host with a GPU on its bus passed")
	}
	f.PackageManager = "apt-get"
	if r := Evaluate("n1", f, nil, For([]string{"worker"}, "", nil).Of(c, "n1")); !r.OK() {
		t.Errorf("an apt-get GPU host: %q", r.Problems)
	}
}
