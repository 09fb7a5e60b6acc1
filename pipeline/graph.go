package pipeline

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// unit is one task on one host: the node the scheduler runs.
type unit struct {
	idx     int
	task    *Task
	taskIdx int
	host    *Host
	hostIdx int
	deps    []*unit
	waiters []*unit
	pending int // deps not finished yet
	state   unitState
	result  Result
}

type unitState int

const (
	unitWaiting unitState = iota
	unitRunning
	unitDone
)

// Graph is a validated set of tasks expanded over hosts.
type Graph struct {
	Tasks []*Task
	Hosts []*Host
	units []*unit
	// per task: its units, in host order
	byTask map[string][]*unit
}

// NewGraph checks the tasks (unique names, known dependencies, no cycles, a Run function) and
// expands each over the hosts its selector picks.
func NewGraph(tasks []Task, hosts []*Host) (*Graph, error) {
	g := &Graph{Hosts: hosts, byTask: map[string][]*unit{}}
	index := map[string]int{}
	var errs []error
	for i := range tasks {
		t := &tasks[i]
		switch {
		case t.Name == "":
			errs = append(errs, fmt.Errorf("task #%d has no name", i+1))
			continue
		case t.Run == nil:
			errs = append(errs, fmt.Errorf("task %s has no Run function", t.Name))
		case t.Hosts.Select == nil:
			errs = append(errs, fmt.Errorf("task %s has no host selector", t.Name))
		}
		if _, dup := index[t.Name]; dup {
			errs = append(errs, fmt.Errorf("task %s is defined twice", t.Name))
			continue
		}
		index[t.Name] = i
		g.Tasks = append(g.Tasks, t)
	}
	for _, t := range g.Tasks {
		for _, d := range t.After {
			if _, ok := index[d]; !ok {
				errs = append(errs, fmt.Errorf("task %s depends on unknown task %s", t.Name, d))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// no errors: g.Tasks[i] is tasks[i], so index positions hold for g.Tasks
	if cycle := findCycle(g.Tasks, index); cycle != nil {
		return nil, fmt.Errorf("task dependency cycle: %s", strings.Join(cycle, " -> "))
	}
	hostIdx := map[*Host]int{}
	for i, h := range hosts {
		hostIdx[h] = i
	}
	for ti, t := range g.Tasks {
		for _, h := range t.Hosts.Select(hosts) {
			u := &unit{idx: len(g.units), task: t, taskIdx: ti, host: h, hostIdx: hostIdx[h]}
			g.units = append(g.units, u)
			g.byTask[t.Name] = append(g.byTask[t.Name], u)
		}
	}
	for _, u := range g.units {
		for _, d := range u.task.After {
			deps := g.byTask[d]
			// a gate is awaited on every host (its failure anywhere stops what follows)
			if !u.task.Barrier && !(len(deps) > 0 && deps[0].task.Gate) {
				if i := slices.IndexFunc(deps, func(x *unit) bool { return x.host == u.host }); i >= 0 {
					deps = deps[i : i+1]
				}
			}
			for _, du := range deps {
				u.deps = append(u.deps, du)
				du.waiters = append(du.waiters, u)
			}
		}
		u.pending = len(u.deps)
	}
	return g, nil
}

// Units returns the number of task×host executions in the graph.
func (g *Graph) Units() int { return len(g.units) }

// HostsOf returns the host names a task runs on.
func (g *Graph) HostsOf(task string) []string {
	var out []string
	for _, u := range g.byTask[task] {
		out = append(out, u.host.Name)
	}
	return out
}

func findCycle(tasks []*Task, index map[string]int) []string {
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(tasks))
	var stack []string
	var visit func(i int) []string
	visit = func(i int) []string {
		color[i] = grey
		stack = append(stack, tasks[i].Name)
		for _, d := range tasks[i].After {
			j := index[d]
			switch color[j] {
			case grey:
				start := slices.Index(stack, d)
				return append(slices.Clone(stack[start:]), d)
			case white:
				if c := visit(j); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
		return nil
	}
	for i := range tasks {
		if color[i] == white {
			if c := visit(i); c != nil {
				return c
			}
		}
	}
	return nil
}
