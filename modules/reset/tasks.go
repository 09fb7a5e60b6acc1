package reset

import (
	"context"
	"fmt"

	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

// TaskName is the reset of one host.
const TaskName = "reset/host"

// Tasks returns the reset of the hosts hosts picks, all in parallel: done when the residue
// check finds nothing (a second kk delete cluster changes nothing); otherwise the reset
// script runs, and the task fails naming what the residue check still finds.
func Tasks(s Spec, hosts pipeline.Selector) []pipeline.Task {
	desc := "kk's Kubernetes, etcd, pod network and files removed; the container runtime kept, its pods removed"
	if s.All {
		desc = "kk's Kubernetes, etcd, pod network, files and the container runtime removed"
	}
	return []pipeline.Task{{
		Name: TaskName, Desc: desc, Hosts: hosts,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			left, err := residue(ctx, t, s)
			if err != nil {
				return false, err
			}
			if len(left) > 0 {
				t.Log.Info(fmt.Sprintf("%d leftovers: %s", len(left), describe(left)))
			}
			if s.OnResidue != nil {
				s.OnResidue(t.Name, left)
			}
			return len(left) == 0, nil
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			return true, reset(ctx, t, s)
		},
	}}
}

// reset runs the reset script, a second time when something is left (a mount or a process
// that was still going away), then fails naming what the residue check still finds.
func reset(ctx context.Context, t *pipeline.Target, s Spec) error {
	var left []string
	for try := 0; try < 2; try++ {
		if _, err := runScript(ctx, t, Script(s)); err != nil {
			return err
		}
		var err error
		if left, err = residue(ctx, t, s); err != nil || len(left) == 0 {
			return err
		}
	}
	return fmt.Errorf("host %s: left after the reset (%d): %s", t.Name, len(left), describe(left))
}

// residue runs the residue check on the host.
func residue(ctx context.Context, t *pipeline.Target, s Spec) ([]string, error) {
	out, err := runScript(ctx, t, ResidueScript(s))
	if err != nil {
		return nil, fmt.Errorf("residue check: %w", err)
	}
	return ParseResidue(out), nil
}

// runScript runs script as root and returns its stdout; a non-zero exit is an error.
func runScript(ctx context.Context, t *pipeline.Target, script string) (string, error) {
	res, err := t.Exec(ctx, runCommand, connector.ExecOptions{Sudo: true, Stdin: []byte(script)})
	if err != nil {
		return "", err
	}
	return res.Stdout, res.Err()
}
