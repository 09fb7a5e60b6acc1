package gpu

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

// factsHost answers `kk node facts` with facts and records the rest.
type factsHost struct {
	scripted
	facts string
}

func (f *factsHost) Exec(ctx context.Context, cmd string, o connector.ExecOptions) (connector.Result, error) {
	if strings.Contains(cmd, RemoteKK+" node facts") {
		f.mu.Lock()
		f.cmds = append(f.cmds, cmd)
		f.mu.Unlock()
		return connector.Result{Cmd: cmd, Stdout: f.facts}, nil
	}
	return f.scripted.Exec(ctx, cmd, o)
}

const a100Facts = `{"driver": "570.195.03", "cuda": "12.8", "gpus": [
  {"index": 0, "uuid": "GPU-1", "name": "NVIDIA A100-SXM4-40GB", "memoryMiB": 40960, "computeCapability": "8.0", "mig": "disabled"},
  {"index": 1, "uuid": "GPU-2", "name": "NVIDIA A100-SXM4-40GB", "memoryMiB": 40960, "computeCapability": "8.0", "mig": "disabled"}]}`

// labelRun runs the labels task on g1 (a GPU host answering kk node facts with facts) and c1
// (no GPU), and returns the report and g1's connection.
func labelRun(t *testing.T, cs k8s.Interface, s LabelSpec, facts string) (*pipeline.Report, *factsHost, error) {
	t.Helper()
	s.Client = func(context.Context) (k8s.Interface, error) { return cs, nil }
	g1 := &factsHost{facts: facts}
	var hosts []*pipeline.Host
	for _, n := range []string{"g1", "c1"} {
		var conn connector.Connector = &scripted{code: 1}
		f := &pipeline.Facts{Arch: "amd64"}
		if n == "g1" {
			conn, f.NvidiaPCI = g1, []string{"0000:3b:00.0 0x20b0"}
		}
		h := pipeline.NewHost(n, nil, func(context.Context) (connector.Connector, error) { return conn, nil })
		h.SetFacts(f)
		hosts = append(hosts, h)
	}
	g, err := pipeline.NewGraph([]pipeline.Task{NodeLabelsTask(s, nil)}, hosts)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := pipeline.Run(context.Background(), g, pipeline.Options{Name: "create cluster"})
	return rep, g1, err
}

func nodes() k8s.Interface {
	return fake.NewSimpleClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "g1", Labels: map[string]string{"kubernetes.io/hostname": "g1"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "c1"}})
}

func labelsOf(t *testing.T, cs k8s.Interface, name string) map[string]string {
	t.Helper()
	n, err := cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n.Labels
}

// TestNodeLabelsPCI: where kk cannot read NVML on the host, the node of the host with NVIDIA
// GPUs gets nvidia.com/gpu.present=true, the other is not touched, and a second run changes
// nothing.
func TestNodeLabelsPCI(t *testing.T) {
	cs := nodes()
	for run, wantChanged := range []int{1, 0} {
		rep, _, err := labelRun(t, cs, LabelSpec{}, "")
		if err != nil {
			t.Fatal(err)
		}
		if n := rep.Count(pipeline.StatusChanged); n != wantChanged {
			t.Errorf("run %d: %d changed, want %d", run+1, n, wantChanged)
		}
	}
	if l := labelsOf(t, cs, "g1"); l[LabelPresent] != "true" || l["kubernetes.io/hostname"] != "g1" || l[LabelProduct] != "" {
		t.Errorf("g1 labels: %v", l)
	}
	if l := labelsOf(t, cs, "c1"); len(l) != 0 {
		t.Errorf("c1 (no GPU) labelled: %v", l)
	}
}

// TestNodeLabelsNVML: kk put on the host reads NVML there; the node gets the inventory's
// labels, and the driver NVML reports must be spec.gpu.driver.version's.
func TestNodeLabelsNVML(t *testing.T) {
	self := Self{Path: "/proc/self/exe", Arch: "amd64"}
	cs := nodes()
	rep, g1, err := labelRun(t, cs, LabelSpec{Self: self, DriverVersion: "570.195.03"}, a100Facts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count(pipeline.StatusChanged) != 1 || !strings.Contains(strings.Join(g1.cmds, "\n"), "UPLOAD "+RemoteKK) {
		t.Errorf("%s; g1 was asked %q", rep.Totals(), g1.cmds)
	}
	l := labelsOf(t, cs, "g1")
	for k, v := range map[string]string{LabelPresent: "true", LabelCount: "2", LabelProduct: "NVIDIA-A100-SXM4-40GB",
		LabelDriverMajor: "570", LabelCUDAMajor: "12", LabelMIGCapable: "true"} {
		if l[k] != v {
			t.Errorf("g1 %s=%q, want %q (all: %v)", k, l[k], v, l)
		}
	}
	// a driver other than the Cluster file's fails naming both
	_, _, err = labelRun(t, nodes(), LabelSpec{Self: self, DriverVersion: "580.95.05"}, a100Facts)
	if err == nil || !strings.Contains(err.Error(), "NVML reports NVIDIA driver 570.195.03, spec.gpu.driver.version is 580.95.05") {
		t.Errorf("driver mismatch: %v", err)
	}
	// no driver answering after the install fails; without spec.gpu.driver it is the PCI label
	if _, _, err = labelRun(t, nodes(), LabelSpec{Self: self, DriverVersion: "570.195.03"}, `{"gpus": null, "noDriver": true}`); err == nil ||
		!strings.Contains(err.Error(), "NVML finds no NVIDIA driver") {
		t.Errorf("no driver after the install: %v", err)
	}
	cs = nodes()
	if _, _, err = labelRun(t, cs, LabelSpec{Self: self}, `{"gpus": null, "noDriver": true}`); err != nil {
		t.Fatal(err)
	}
	if l := labelsOf(t, cs, "g1"); l[LabelPresent] != "true" || l[LabelCount] != "" {
		t.Errorf("no driver: g1 labels %v", l)
	}
}
