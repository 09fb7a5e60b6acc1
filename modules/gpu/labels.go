package gpu

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/kk-project/kk/pipeline"
)

// TaskNodeLabels labels the node of each host with NVIDIA GPUs.
const TaskNodeLabels = "gpu/node-labels"

// PCILabels are the labels a host's PCI facts give its node, before any driver: the GPUs are
// there (what the device plugin's DaemonSet selects).
func PCILabels(f *pipeline.Facts) map[string]string {
	if f == nil || len(f.NvidiaPCI) == 0 {
		return nil
	}
	return map[string]string{LabelPresent: "true"}
}

// NodeLabelsTask sets PCILabels on the node of every host with NVIDIA GPUs through client
// (kk's admin kubeconfig); a node that has them is left alone, and hosts without a GPU are
// not asked. It runs once the nodes are registered (after).
func NodeLabelsTask(client func(context.Context) (k8s.Interface, error), after []string) pipeline.Task {
	missing := func(ctx context.Context, t *pipeline.Target) (map[string]string, error) {
		want := PCILabels(t.Facts())
		if len(want) == 0 {
			return nil, nil
		}
		cs, err := client(ctx)
		if err != nil {
			return nil, err
		}
		n, err := cs.CoreV1().Nodes().Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", t.Name, err)
		}
		out := map[string]string{}
		for k, v := range want {
			if n.Labels[k] != v {
				out[k] = v
			}
		}
		return out, nil
	}
	return pipeline.Task{
		Name: TaskNodeLabels, Desc: "nvidia.com/gpu.present on the nodes of the hosts with NVIDIA GPUs",
		Hosts: pipeline.AllHosts(), After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			m, err := missing(ctx, t)
			if err != nil && t.DryRun {
				return false, nil // a cluster (or node) this run would make
			}
			return len(m) == 0, err
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			m, err := missing(ctx, t)
			if err != nil || len(m) == 0 {
				return false, err
			}
			patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": m}})
			if err != nil {
				return false, err
			}
			cs, err := client(ctx)
			if err != nil {
				return false, err
			}
			if _, err := cs.CoreV1().Nodes().Patch(ctx, t.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				if apierrors.IsNotFound(err) {
					return false, fmt.Errorf("node %s is not registered", t.Name)
				}
				return false, fmt.Errorf("label node %s: %w", t.Name, err)
			}
			return true, nil
		},
	}
}
