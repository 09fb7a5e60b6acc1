package cluster

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/modules/etcd"
	"github.com/kk-project/kk/modules/kubernetes"
	"github.com/kk-project/kk/modules/osprep"
	"github.com/kk-project/kk/pipeline"
)

func loadExample(t *testing.T, name string) *config.Cluster {
	t.Helper()
	p := filepath.Join("..", "..", "examples", name)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := v1alpha2.ParseWithOptions(p, data, v1alpha2.ParseOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDeleteNodeRefusals(t *testing.T) {
	c := loadExample(t, "ha-3cp-2w.yaml")
	o := DeleteNodeOptions{Workdir: t.TempDir()}
	for node, want := range map[string]string{
		"nope": "host nope is not in spec.hosts",
	} {
		o.Node = node
		if _, err := DeleteNodeTasks(c, o); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("delete %s: %v, want %q", node, err, want)
		}
	}
	// the last control plane
	one := Without(Without(c, "cp2"), "cp3")
	o.Node = "cp1"
	if _, err := DeleteNodeTasks(one, o); err == nil || !strings.Contains(err.Error(), "last control plane") {
		t.Errorf("delete the last control plane: %v", err)
	}
}

func TestDeleteNodeSteps(t *testing.T) {
	c := loadExample(t, "ha-3cp-2w.yaml")
	c.Etcd.Type = config.EtcdKubeKey
	names := func(node string) []string {
		ts, err := DeleteNodeTasks(c, DeleteNodeOptions{Node: node, Workdir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tk := range ts {
			out = append(out, tk.Name)
		}
		return out
	}
	cp := names("cp2")
	for _, want := range []string{etcd.TaskQuorum, TaskDrain, etcd.TaskMemberRemove, "reset/host", TaskNodeDelete, osprep.TaskEtcHosts,
		"loadbalancer/haproxy-config", kubernetes.TaskKubeadmConfig, "kubernetes/kubeconfig"} {
		if !slices.Contains(cp, want) {
			t.Errorf("deleting control plane cp2: no %s in %v", want, cp)
		}
	}
	// what stays is rewritten on what stays only: the deleted host's own files went with reset
	ts, err := DeleteNodeTasks(c, DeleteNodeOptions{Node: "cp2", Workdir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var all []*pipeline.Host
	for _, h := range c.Hosts {
		all = append(all, pipeline.NewHost(h.Name, nil, nil))
	}
	for _, tk := range ts {
		if tk.Name != osprep.TaskEtcHosts && tk.Name != kubernetes.TaskKubeadmConfig {
			continue
		}
		var on []string
		for _, h := range tk.Hosts.Select(all) {
			on = append(on, h.Name)
		}
		if slices.Contains(on, "cp2") || !slices.Contains(on, "cp1") || !slices.Equal(tk.After, []string{TaskNodeDelete}) {
			t.Errorf("%s: on %v after %v, want cp1 and not cp2, after %s", tk.Name, on, tk.After, TaskNodeDelete)
		}
	}
	if w := names("worker1"); slices.Contains(w, etcd.TaskQuorum) || slices.Contains(w, etcd.TaskMemberRemove) {
		t.Errorf("deleting a worker touches etcd: %v", w)
	}
}
