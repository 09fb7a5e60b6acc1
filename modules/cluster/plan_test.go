package cluster

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/pipeline"
)

func task(name string, after ...string) pipeline.Task {
	return pipeline.Task{Name: name, Hosts: pipeline.AllHosts(), After: after,
		Run: func(context.Context, *pipeline.Target) (bool, error) { return false, nil }}
}

func testPlan() *Plan {
	phases := []Phase{
		{Name: "a", Tasks: []pipeline.Task{task("a/1", facts.TaskName), task("a/2", "a/1")}},
		{Name: "b", Tasks: []pipeline.Task{task("b/1", facts.TaskName), task("b/2", facts.TaskName)}},
		{Name: "c", Tasks: []pipeline.Task{task("c/1", "b/2")}},
		{Name: "empty"},
		{Name: "d", Tasks: []pipeline.Task{task("d/1", facts.TaskName)}},
	}
	chain(phases)
	return &Plan{Phases: phases}
}

func after(ts []pipeline.Task, name string) []string {
	for _, t := range ts {
		if t.Name == name {
			return t.After
		}
	}
	return nil
}

func TestPhasesRunInOrder(t *testing.T) {
	ts, err := testPlan().Tasks(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ts[0].Name != facts.TaskName {
		t.Errorf("first task %s, want facts", ts[0].Name)
	}
	for name, want := range map[string][]string{
		"a/1": {facts.TaskName},
		"a/2": {"a/1"},
		"b/1": {facts.TaskName, "a/2"},
		"b/2": {facts.TaskName, "a/2"},
		"c/1": {"b/2", "b/1"},
		"d/1": {facts.TaskName, "c/1"},
	} {
		if got := after(ts, name); !slices.Equal(got, want) {
			t.Errorf("%s after %v, want %v", name, got, want)
		}
	}
	// The engine accepts the graph.
	if _, err := pipeline.NewGraph(ts, []*pipeline.Host{pipeline.NewHost("h", nil, nil)}); err != nil {
		t.Fatal(err)
	}
}

// etcd runs beside the runtime: both follow os, and what comes next waits for both.
func TestEtcdBesideRuntime(t *testing.T) {
	phases := []Phase{
		{Name: "os", Tasks: []pipeline.Task{task("os/1", facts.TaskName)}},
		{Name: "runtime", Tasks: []pipeline.Task{task("runtime/1", facts.TaskName), task("runtime/2", "runtime/1")}},
		{Name: "etcd", Tasks: []pipeline.Task{task("etcd/1", facts.TaskName), task("etcd/2", "etcd/1")}},
		{Name: "loadbalancer", Tasks: []pipeline.Task{task("lb/1", facts.TaskName)}},
	}
	chain(phases)
	ts, err := (&Plan{Phases: phases}).Tasks(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{
		"runtime/1": {facts.TaskName, "os/1"},
		"etcd/1":    {facts.TaskName, "os/1"},
		"etcd/2":    {"etcd/1"},
		"lb/1":      {facts.TaskName, "etcd/2", "runtime/2"},
	} {
		if got := after(ts, name); !slices.Equal(got, want) {
			t.Errorf("%s after %v, want %v", name, got, want)
		}
	}
}

func TestSkipAndOnlyPhases(t *testing.T) {
	ts, err := testPlan().Tasks(Options{SkipPhases: []string{"b"}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, x := range ts {
		names = append(names, x.Name)
	}
	if strings.Join(names, ",") != "facts,a/1,a/2,c/1,d/1" {
		t.Errorf("tasks %v", names)
	}
	// c/1 waited only for skipped tasks: it now follows facts.
	if got := after(ts, "c/1"); !slices.Equal(got, []string{facts.TaskName}) {
		t.Errorf("c/1 after %v", got)
	}
	if _, err := pipeline.NewGraph(ts, []*pipeline.Host{pipeline.NewHost("h", nil, nil)}); err != nil {
		t.Fatal(err)
	}
	ts, err = testPlan().Tasks(Options{Only: []string{"d"}})
	if err != nil || len(ts) != 2 || ts[1].Name != "d/1" || !slices.Equal(ts[1].After, []string{facts.TaskName}) {
		t.Errorf("only d: %v %v", ts, err)
	}
	if _, err := testPlan().Tasks(Options{SkipPhases: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), `unknown phase nope (phases: a, b, c, empty, d)`) {
		t.Errorf("unknown phase: %v", err)
	}
}

func TestInstallName(t *testing.T) {
	for _, c := range []struct{ comp, member, want string }{
		{"cni-plugins", "cni-plugins/v1.9.1/amd64/bridge", "cni/bridge"},
		{"runc", "runc/v1.1.5/amd64/runc.amd64", "runc"},
		{"containerd", "containerd/v2.2.9/amd64/containerd-shim-runc-v2", "containerd-shim-runc-v2"},
		{"docker", "docker/28.3.3/amd64/dockerd", "docker/dockerd"},
		{"nvidia-driver", "nvidia-driver/570.195.03/arm64/NVIDIA-Linux-aarch64-570.195.03.run", "nvidia-driver"},
		{"kubeadm", "kubeadm/v1.34.4/amd64/kubeadm", "kubeadm"},
	} {
		if got := InstallName(c.comp, c.member); got != c.want {
			t.Errorf("InstallName(%s, %s) = %s, want %s", c.comp, c.member, got, c.want)
		}
	}
}

func TestPhaseTimes(t *testing.T) {
	p := testPlan()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rep := &pipeline.Report{Results: []pipeline.Result{
		{Task: "a/1", Host: "h1", Status: pipeline.StatusChanged, Start: t0, Duration: 2 * time.Second},
		{Task: "a/2", Host: "h2", Status: pipeline.StatusOK, Start: t0.Add(time.Second), Duration: 3 * time.Second},
		{Task: "b/1", Host: "h1", Status: pipeline.StatusChanged, Start: t0.Add(5 * time.Second), Duration: time.Second},
		{Task: "c/1", Host: "h1", Status: pipeline.StatusSkipped},
	}}
	got := p.Times(rep)
	if len(got) != 2 || got[0] != (PhaseTime{"a", 4 * time.Second, 1}) || got[1] != (PhaseTime{"b", time.Second, 1}) {
		t.Errorf("Times = %+v", got)
	}
}
