// Package hooks runs the user's scripts of spec.system, as KubeKey does: preInstall before the
// OS is prepared, postClusterInstall once the cluster is up (before the addons), postInstall at
// the end. Each script runs as root with bash on the hosts whose role matches its `role` (every
// host when empty), in a directory of its own where its `materials` were uploaded first
// (uploads skip files the host already has): KubeKey's /tmp/kubekey/<Stage>-<index>-script
// (e.g. /tmp/kubekey/PreInstall-0-script), so scripts that name their materials by that path
// work unchanged. It is kept after the run.
//
// Scripts are user code, and not idempotent by nature: unlike kk's own tasks, a script has no
// check, so it runs once on each of its hosts in every kk run (a re-run runs it again, and a
// dry run lists it as "would run"). A script that must not repeat its work checks for itself.
// It is never retried; its output goes to the host's log, and a non-zero exit fails the task
// on that host with the script's stderr.
package hooks

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

// Stage is when scripts run; its value is the spec.system field that lists them.
type Stage string

// The stages of spec.system.
const (
	PreInstall         Stage = "preInstall"
	PostClusterInstall Stage = "postClusterInstall"
	PostInstall        Stage = "postInstall"
)

// Dir holds one directory per script on each host, the script and its materials, named as
// KubeKey names them (ScriptDir).
const Dir = "/tmp/kubekey"

// ScriptDir is the directory of script i (from 0) of stage on a host.
func ScriptDir(stage Stage, i int) string {
	s := string(stage)
	return path.Join(Dir, fmt.Sprintf("%s%s-%d-script", strings.ToUpper(s[:1]), s[1:], i))
}

// Tasks returns one task per script of stage, in the file's order: each waits for the one
// before it (and the first for after). Materials must exist on the machine kk runs on (a
// relative path is relative to the current directory, as with KubeKey).
func Tasks(stage Stage, scripts []config.Script, after []string) ([]pipeline.Task, error) {
	var out []pipeline.Task
	for i, sc := range scripts {
		field := fmt.Sprintf("spec.system.%s[%d]", stage, i)
		sel, err := selector(sc.Role)
		if err != nil {
			return nil, fmt.Errorf("%s.role: %w", field, err)
		}
		files, err := materials(sc.Materials)
		if err != nil {
			return nil, fmt.Errorf("%s.materials: %w", field, err)
		}
		label := sc.Name
		if label == "" {
			label = "script"
		}
		t := pipeline.Task{
			Name:  fmt.Sprintf("hooks/%s/%d-%s", stage, i+1, slug(label)),
			Desc:  fmt.Sprintf("%s %q (user script: runs on every kk run)", field, label),
			Hosts: sel, After: after,
			Run: run(field, ScriptDir(stage, i), sc.Bash, files),
		}
		out = append(out, t)
		after = []string{t.Name}
	}
	return out, nil
}

// Sequence joins groups of tasks so that each group starts after every task of the nearest
// non-empty group before it (e.g. preInstall scripts, then the OS tasks).
func Sequence(groups ...[]pipeline.Task) []pipeline.Task {
	var out []pipeline.Task
	var prev []string
	for _, g := range groups {
		if len(g) == 0 {
			continue
		}
		names := make([]string, 0, len(g))
		for _, t := range g {
			t.After = append(append([]string(nil), t.After...), prev...)
			out = append(out, t)
			names = append(names, t.Name)
		}
		prev = names
	}
	return out
}

// material is one local file and where it goes, relative to the script's directory.
type material struct {
	local, rel string
	mode       fs.FileMode
}

// materials lists the files to upload: a file under its base name, a directory's files under
// the directory's base name.
func materials(paths []string) ([]material, error) {
	var out []material
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		base := filepath.Base(filepath.Clean(p))
		if !info.IsDir() {
			out = append(out, material{local: p, rel: base, mode: info.Mode().Perm()})
			continue
		}
		err = filepath.WalkDir(p, func(f string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if !d.Type().IsRegular() {
				return fmt.Errorf("%s: only regular files and directories can be materials", f)
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(p, f)
			if err != nil {
				return err
			}
			out = append(out, material{local: f, rel: path.Join(base, filepath.ToSlash(rel)), mode: info.Mode().Perm()})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// run uploads the materials and the script into dir, then runs the script there.
func run(field, dir, bash string, files []material) func(context.Context, *pipeline.Target) (bool, error) {
	script := path.Join(dir, "script.sh")
	return func(ctx context.Context, t *pipeline.Target) (bool, error) {
		// Dir is in /tmp: refuse one that another user made (or a link to elsewhere)
		guard := fmt.Sprintf(`install -d -m 0755 %[1]s && [ ! -L %[1]s ] && [ "$(stat -c %%u %[1]s)" = 0 ] || { echo "%[1]s is not a directory owned by root" >&2; exit 1; }`, Dir)
		if _, err := t.Sudo(ctx, guard+" && install -d -m 0700 "+connector.Quote(dir)); err != nil {
			return false, fmt.Errorf("%s: %w", field, err)
		}
		for _, m := range files {
			target := path.Join(dir, m.rel)
			if _, err := t.Sudo(ctx, "install -d -m 0700 "+connector.Quote(path.Dir(target))); err != nil {
				return true, err
			}
			if _, err := t.Upload(ctx, connector.File{Path: target, LocalPath: m.local, Mode: m.mode}); err != nil {
				return true, fmt.Errorf("%s: upload material %s: %w", field, m.local, err)
			}
		}
		if _, err := t.Upload(ctx, connector.File{Path: script, Data: []byte(bash), Mode: 0o700}); err != nil {
			return true, fmt.Errorf("%s: upload the script: %w", field, err)
		}
		res, err := t.Exec(ctx, "cd "+connector.Quote(dir)+" && /bin/bash ./script.sh", connector.ExecOptions{Sudo: true})
		if err != nil {
			return true, err
		}
		if err := res.Err(); err != nil {
			return true, fmt.Errorf("%s (%s): %w", field, script, err)
		}
		return true, nil
	}
}

// selector picks a script's hosts by its role, KubeKey's names included.
func selector(role string) (pipeline.Selector, error) {
	switch strings.TrimSpace(role) {
	case "":
		return pipeline.AllHosts(), nil
	case "master", string(config.RoleControlPlane):
		return pipeline.Role(string(config.RoleControlPlane)), nil
	case "k8s":
		return pipeline.Role(string(config.RoleControlPlane), string(config.RoleWorker)), nil
	case string(config.RoleWorker), string(config.RoleEtcd), string(config.RoleRegistry):
		return pipeline.Role(strings.TrimSpace(role)), nil
	}
	return pipeline.Selector{}, fmt.Errorf("unknown role %q (etcd, master or control-plane, worker, k8s, registry)", role)
}

// slug makes a script's name usable in a task name.
func slug(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '/' || r == '\n' {
			return '-'
		}
		return r
	}, strings.TrimSpace(s))
}
