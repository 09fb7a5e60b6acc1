package gpu

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

// TestNodeLabels: the node of the host with NVIDIA GPUs gets nvidia.com/gpu.present=true, the
// other is not touched, and a second run changes nothing.
func TestNodeLabels(t *testing.T) {
	cs := fake.NewSimpleClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "g1", Labels: map[string]string{"kubernetes.io/hostname": "g1"}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "c1"}},
	)
	client := func(context.Context) (k8s.Interface, error) { return cs, nil }
	hosts := func() []*pipeline.Host {
		var out []*pipeline.Host
		for _, n := range []string{"g1", "c1"} {
			h := pipeline.NewHost(n, nil, func(context.Context) (connector.Connector, error) { return &scripted{}, nil })
			f := &pipeline.Facts{Arch: "amd64"}
			if n == "g1" {
				f.NvidiaPCI = []string{"0000:3b:00.0 0x20b0"}
			}
			h.SetFacts(f)
			out = append(out, h)
		}
		return out
	}
	for run, wantChanged := range []int{1, 0} {
		g, err := pipeline.NewGraph([]pipeline.Task{NodeLabelsTask(client, nil)}, hosts())
		if err != nil {
			t.Fatal(err)
		}
		rep, err := pipeline.Run(context.Background(), g, pipeline.Options{Name: "create cluster"})
		if err != nil {
			t.Fatal(err)
		}
		if n := rep.Count(pipeline.StatusChanged); n != wantChanged {
			t.Errorf("run %d: %d changed, want %d", run+1, n, wantChanged)
		}
	}
	g1, _ := cs.CoreV1().Nodes().Get(context.Background(), "g1", metav1.GetOptions{})
	if g1.Labels[LabelPresent] != "true" || g1.Labels["kubernetes.io/hostname"] != "g1" {
		t.Errorf("g1 labels: %v", g1.Labels)
	}
	c1, _ := cs.CoreV1().Nodes().Get(context.Background(), "c1", metav1.GetOptions{})
	if len(c1.Labels) != 0 {
		t.Errorf("c1 (no GPU) labelled: %v", c1.Labels)
	}
}
