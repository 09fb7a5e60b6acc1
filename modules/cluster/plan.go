// Package cluster is `kk create cluster`: the list of phases that turns machines into a
// Kubernetes cluster, each phase a set of tasks from a module (OS, container runtime, etcd,
// load balancer, kubeadm, CNI, addons) on the one task-graph engine.
//
// Like kubeadm's phase workflow, phases have names, run in order (etcd beside the container
// runtime), and can be skipped
// (--skip-phases) or run alone (kk create phase NAME); every task checks before it acts, so
// running the whole list again on a healthy cluster changes nothing, and a run that failed or
// was interrupted in any phase converges when run again.
package cluster

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/modules/osprep"
	"github.com/kk-project/kk/modules/precheck"
	"github.com/kk-project/kk/pipeline"
)

// Phase is one named step of cluster creation.
type Phase struct {
	Name  string
	Desc  string
	Tasks []pipeline.Task
}

// Options configure a plan.
type Options struct {
	Workdir string
	// SkipPhases are left out; Only, when set, are the only phases kept (facts always run).
	SkipPhases []string
	Only       []string
	// Warn receives the warnings found while the run goes (CAs close to expiry); nil
	// discards them.
	Warn io.Writer
	// Upgrade, when set, makes the plan one step of kk upgrade (see UpgradeOptions).
	Upgrade *UpgradeOptions
	// AllowReboot lets the gpu phase reboot a host whose NVIDIA driver needs it (--allow-reboot).
	AllowReboot bool
}

// Plan is the phases of one `kk create cluster` run, ready to run.
type Plan struct {
	Cluster   *config.Cluster
	Artifacts *Artifacts
	Phases    []Phase
	// Kubeconfig is where the admin kubeconfig is written on the machine kk runs on.
	Kubeconfig string
	// Warnings are settings the modules could not honour, shown before the run.
	Warnings []string
}

// PhaseNames lists the phases in order, for help texts and validation.
func PhaseNames() []string {
	return []string{"precheck", "os", "runtime", "etcd", "gpu", "loadbalancer", "control-plane", "workers", "network", "platform", "addons"}
}

// PrecheckTaskName is the task that stops the run before anything changes when a host is unfit.
const PrecheckTaskName = "precheck"

// PrecheckTask judges each host's facts against what its roles need (CPU, memory, disk, swap
// off, clock skew, arch, commands); an unfit host fails with every problem listed, before any
// host is changed (the task is a barrier).
func PrecheckTask(c *config.Cluster) pipeline.Task {
	var cmds []string
	for _, p := range osprep.DefaultPackages {
		cmds = append(cmds, p.Command)
	}
	return pipeline.Task{
		Name: PrecheckTaskName, Desc: "check every host is fit (CPU, memory, disk, swap, clock, arch)",
		Hosts: pipeline.AllHosts(), After: []string{facts.TaskName}, Barrier: true, Gate: true, ReadOnly: true,
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			h := c.Host(t.Name)
			if h == nil {
				return false, fmt.Errorf("host %s is not in the cluster", t.Name)
			}
			roles := make([]string, len(h.Roles))
			for i, r := range h.Roles {
				roles[i] = string(r)
			}
			req := precheck.For(roles, h.Arch, nil).Of(c, t.Name)
			// Ports in use are not checked here: on a re-run they are this cluster's own
			// components. Packages are installed by the os phase.
			req.Ports = nil
			row := precheck.Evaluate(t.Name, t.Facts(), nil, req)
			if !row.OK() {
				return false, fmt.Errorf("not fit for its roles (%s): %s", strings.Join(roles, ", "), strings.Join(row.Problems, "; "))
			}
			for _, w := range row.Warnings {
				t.Log.Warn(w)
			}
			return false, nil
		},
	}
}

// Tasks flattens the phases into the engine's task list, leaving out skipped phases and the
// dependencies on their tasks (a skipped phase is assumed done, as with kubeadm's
// --skip-phases). The facts task is always first.
func (p *Plan) Tasks(o Options) ([]pipeline.Task, error) {
	known := map[string]bool{}
	for _, ph := range p.Phases {
		known[ph.Name] = true
	}
	var unknown []string
	for _, n := range append(slices.Clone(o.SkipPhases), o.Only...) {
		if !known[n] {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		names := make([]string, 0, len(p.Phases))
		for _, ph := range p.Phases {
			names = append(names, ph.Name)
		}
		return nil, fmt.Errorf("unknown phase %s (phases: %s)", strings.Join(unknown, ", "), strings.Join(names, ", "))
	}
	tasks := []pipeline.Task{facts.Task()}
	for _, ph := range p.Phases {
		if slices.Contains(o.SkipPhases, ph.Name) || (len(o.Only) > 0 && !slices.Contains(o.Only, ph.Name)) {
			continue
		}
		tasks = append(tasks, ph.Tasks...)
	}
	have := map[string]bool{}
	for _, t := range tasks {
		have[t.Name] = true
	}
	for i := range tasks {
		var after []string
		for _, a := range tasks[i].After {
			if have[a] {
				after = append(after, a)
			}
		}
		if len(after) == 0 && tasks[i].Name != facts.TaskName {
			after = []string{facts.TaskName}
		}
		tasks[i].After = after
	}
	return tasks, nil
}

// besidePrevious names the phases that run beside the phase before them rather than after
// it: etcd (kk's own members are systemd services that need no container runtime) installs
// while the runtime imports its images, and the GPU hosts' driver builds beside both. They
// follow the phase before those, and the phase after waits for them all.
var besidePrevious = map[string]bool{"etcd": true, "gpu": true}

// chain makes every task of later depend on the last tasks of earlier phases that none of
// their own phase depends on, so phases run in order (a phase of besidePrevious beside the
// one before it) while tasks inside a phase keep their own graph.
func chain(phases []Phase) {
	// prev: the sinks the next phase waits for; before: what the last phase waited for
	var prev, before []string
	for i := range phases {
		ph := &phases[i]
		if len(ph.Tasks) == 0 {
			continue
		}
		beside := besidePrevious[ph.Name] && i > 0 && len(phases[i-1].Tasks) > 0
		deps := prev
		if beside {
			deps = before
		}
		inPhase := map[string]bool{}
		for _, t := range ph.Tasks {
			inPhase[t.Name] = true
		}
		for j := range ph.Tasks {
			t := &ph.Tasks[j]
			internal := false
			for _, a := range t.After {
				internal = internal || inPhase[a]
			}
			if !internal {
				for _, p := range deps {
					if !slices.Contains(t.After, p) {
						t.After = append(t.After, p)
					}
				}
			}
		}
		// the phase's sinks: tasks no other task of the phase waits for
		waited := map[string]bool{}
		for _, t := range ph.Tasks {
			for _, a := range t.After {
				waited[a] = true
			}
		}
		var sinks []string
		if beside {
			sinks = slices.Clone(prev)
		}
		for _, t := range ph.Tasks {
			if !waited[t.Name] {
				sinks = append(sinks, t.Name)
			}
		}
		sort.Strings(sinks)
		before, prev = deps, sinks
	}
}

// PhaseTime is how long one phase took in a run: from its first task's start to its last
// task's end, over all hosts.
type PhaseTime struct {
	Phase    string
	Duration time.Duration
	Changed  int
}

// Times reports the wall time of each phase that ran in rep.
func (p *Plan) Times(rep *pipeline.Report) []PhaseTime {
	phaseOf := map[string]string{}
	for _, ph := range p.Phases {
		for _, t := range ph.Tasks {
			phaseOf[t.Name] = ph.Name
		}
	}
	type span struct {
		start, end time.Time
		changed    int
	}
	spans := map[string]*span{}
	for _, r := range rep.Results {
		ph, ok := phaseOf[r.Task]
		if !ok || r.Start.IsZero() {
			continue
		}
		s := spans[ph]
		if s == nil {
			s = &span{start: r.Start, end: r.Start.Add(r.Duration)}
			spans[ph] = s
		}
		if r.Start.Before(s.start) {
			s.start = r.Start
		}
		if e := r.Start.Add(r.Duration); e.After(s.end) {
			s.end = e
		}
		if r.Status == pipeline.StatusChanged {
			s.changed++
		}
	}
	var out []PhaseTime
	for _, ph := range p.Phases {
		if s := spans[ph.Name]; s != nil {
			out = append(out, PhaseTime{Phase: ph.Name, Duration: s.end.Sub(s.start), Changed: s.changed})
		}
	}
	return out
}
