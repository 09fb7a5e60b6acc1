package gpu

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"runtime"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

// TaskNodeLabels labels the node of each host with NVIDIA GPUs.
const TaskNodeLabels = "gpu/node-labels"

// RemoteKK is where kk puts itself on a GPU host to read NVML there (`kk node facts`).
const RemoteKK = "/var/lib/kk/bin/kk"

// Self is kk's own program, for the hosts of its OS and arch (Path "" where it is not a
// Linux program).
type Self struct {
	Path string
	Arch string
}

// runsOn tells whether this kk runs on t's host, and when not, why (for a warning).
func (s Self) runsOn(t *pipeline.Target) (bool, string) {
	if s.Path == "" || s.Arch != binaries.HostArch(t) {
		return false, "this kk is no program for linux/" + binaries.HostArch(t) + " (run kk from a Linux machine of that arch)"
	}
	return true, ""
}

// SelfProgram is the kk running now.
func SelfProgram() Self {
	if runtime.GOOS != "linux" {
		return Self{}
	}
	p, err := os.Executable()
	if err != nil {
		return Self{}
	}
	return Self{Path: p, Arch: runtime.GOARCH}
}

// LabelSpec says how GPU nodes are labelled.
type LabelSpec struct {
	// Client talks to the API server from the machine kk runs on.
	Client func(context.Context) (k8s.Interface, error)
	// Self is uploaded to the GPU hosts of its arch to read NVML there; on other hosts (or
	// with none) the nodes get the PCI labels only.
	Self Self
	// DriverVersion, when set, is the driver NVML must report (spec.gpu.driver.version).
	DriverVersion string
}

// PCILabels are the labels a host's PCI facts give its node, before any driver: the GPUs are
// there (what the device plugin's DaemonSet selects).
func PCILabels(f *pipeline.Facts) map[string]string {
	if f == nil || len(f.NvidiaPCI) == 0 {
		return nil
	}
	return map[string]string{LabelPresent: "true"}
}

// NodeLabelsTask labels the node of every host with NVIDIA GPUs: PCILabels, and once a driver
// answers, the labels of its NVML inventory (Labels: model, memory, count, compute
// capability, driver and CUDA versions, MIG) read on the host by kk itself (uploaded to
// RemoteKK, skipped when the same). With s.DriverVersion, NVML must report that driver. A
// node that has its labels is left alone; hosts without a GPU are not asked. It runs once
// the nodes are registered (after).
func NodeLabelsTask(s LabelSpec, after []string) pipeline.Task {
	// missing is the labels t's node lacks, and the client that read the node
	missing := func(ctx context.Context, t *pipeline.Target) (map[string]string, k8s.Interface, error) {
		want := PCILabels(t.Facts())
		if len(want) == 0 {
			return nil, nil, nil
		}
		inv, err := s.inventory(ctx, t)
		if err != nil {
			return nil, nil, err
		}
		if inv != nil {
			maps.Copy(want, Labels(*inv))
		}
		cs, err := s.Client(ctx)
		if err != nil {
			return nil, nil, err
		}
		n, err := cs.CoreV1().Nodes().Get(ctx, t.Name, metav1.GetOptions{})
		if err != nil {
			return nil, nil, fmt.Errorf("node %s: %w", t.Name, err)
		}
		out := map[string]string{}
		for k, v := range want {
			if n.Labels[k] != v {
				out[k] = v
			}
		}
		return out, cs, nil
	}
	return pipeline.Task{
		Name: TaskNodeLabels, Desc: "the GPU labels (nvidia.com/gpu.*, from PCI and NVML) on the nodes of the hosts with NVIDIA GPUs",
		Hosts: pipeline.AllHosts(), After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			m, _, err := missing(ctx, t)
			if err != nil && t.DryRun {
				return false, nil // a cluster (or node, or driver) this run would make
			}
			return len(m) == 0, err
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			m, cs, err := missing(ctx, t)
			if err != nil || len(m) == 0 {
				return false, err
			}
			patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": m}})
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

// inventory reads t's NVML inventory with kk on the host: nil where kk cannot run there (its
// OS or arch differs) or no driver answers. A dry run uploads nothing: it reads NVML only
// where kk already is.
func (s LabelSpec) inventory(ctx context.Context, t *pipeline.Target) (*Inventory, error) {
	if ok, why := s.Self.runsOn(t); !ok {
		if s.DriverVersion != "" {
			t.Log.Warn("the NVIDIA driver is not verified through NVML and the node gets no NVML labels: kk reads NVML on the host with itself, and " + why)
		}
		return nil, nil
	}
	if t.DryRun {
		if there, err := t.Test(ctx, "test -x "+RemoteKK); err != nil || !there {
			return nil, err
		}
	} else if _, err := t.Upload(ctx, connector.File{Path: RemoteKK, LocalPath: s.Self.Path, Mode: 0o755}); err != nil {
		return nil, fmt.Errorf("put kk on the host to read NVML: %w", err)
	}
	out, err := t.Sudo(ctx, RemoteKK+" node facts")
	if err != nil {
		return nil, fmt.Errorf("kk node facts: %w", err)
	}
	var f NodeFacts
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		return nil, fmt.Errorf("kk node facts printed %q: %w", out, err)
	}
	if f.NoDriver {
		if s.DriverVersion != "" {
			return nil, fmt.Errorf("NVML finds no NVIDIA driver (libnvidia-ml.so.1) after installing %s", s.DriverVersion)
		}
		return nil, nil
	}
	if s.DriverVersion != "" && f.Driver != s.DriverVersion {
		return nil, fmt.Errorf("NVML reports NVIDIA driver %s, spec.gpu.driver.version is %s", f.Driver, s.DriverVersion)
	}
	return &f.Inventory, nil
}
