package gpu

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kk-project/kk/artifacts/catalog"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// scripted is a host that answers every command with code (0: every test passes) and
// records what it was asked.
type scripted struct {
	mu   sync.Mutex
	code int
	cmds []string
}

func (s *scripted) Exec(_ context.Context, cmd string, _ connector.ExecOptions) (connector.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmds = append(s.cmds, cmd)
	if strings.HasPrefix(cmd, "uname -r") {
		return connector.Result{Cmd: cmd, Stdout: "6.1.0-28-amd64\n"}, nil
	}
	return connector.Result{Cmd: cmd, ExitCode: s.code}, nil
}

func (s *scripted) Upload(_ context.Context, f connector.File) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmds = append(s.cmds, "UPLOAD "+f.Path)
	return true, nil
}

func (s *scripted) Fetch(context.Context, string) ([]byte, error) { return nil, nil }
func (s *scripted) Close() error                                  { return nil }

const testDriver = "570.195.03"

// driverHosts are g1 (a GPU host without the driver), g2 (a GPU host with it, all set up)
// and c1 (no GPU).
func driverHosts(t *testing.T) ([]*pipeline.Host, map[string]*scripted) {
	t.Helper()
	conns := map[string]*scripted{"g1": {code: 1}, "g2": {code: 0}, "c1": {code: 1}}
	var hosts []*pipeline.Host
	for _, n := range []string{"g1", "g2", "c1"} {
		c := conns[n]
		h := pipeline.NewHost(n, nil, func(context.Context) (connector.Connector, error) { return c, nil })
		f := &pipeline.Facts{Arch: "amd64", PackageManager: "apt-get", Init: "systemd", Privileged: true}
		if n != "c1" {
			f.NvidiaPCI = []string{"0000:17:00.0 0x2330"}
		}
		h.SetFacts(f)
		hosts = append(hosts, h)
	}
	return hosts, conns
}

func driverSpec(t *testing.T) DriverSpec {
	t.Helper()
	run := filepath.Join(t.TempDir(), "NVIDIA-Linux-x86_64-"+testDriver+".run")
	if err := os.WriteFile(run, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var files binaries.Files
	files.Add("amd64", catalog.NvidiaDriver, run)
	return DriverSpec{Version: testDriver, Files: files}
}

// runTasks runs tasks on hosts (a dry run when dry) and returns the report.
func runTasks(t *testing.T, tasks []pipeline.Task, hosts []*pipeline.Host, dry bool) *pipeline.Report {
	t.Helper()
	g, err := pipeline.NewGraph(tasks, hosts)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := pipeline.Run(context.Background(), g, pipeline.Options{Name: "create cluster", DryRun: dry})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update writes it)", err, t.Name())
	}
	if string(want) != got {
		t.Errorf("%s differs from what kk renders now (go test -update rewrites it after a review):\n--- got\n%s\n--- want\n%s", p, got, want)
	}
}

// TestDriverDryRun: a dry run plans every driver task on the GPU host without the driver, none
// on the one that has it, none on the host without a GPU, and asks the hosts nothing that
// changes them.
func TestDriverDryRun(t *testing.T) {
	hosts, conns := driverHosts(t)
	tasks, err := DriverTasks(driverSpec(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := runTasks(t, tasks, hosts, true)
	var plan strings.Builder
	rep.WritePlan(&plan)
	golden(t, "driver-plan.golden", plan.String())
	if n := len(conns["c1"].cmds); n != 0 {
		t.Errorf("the host without a GPU was asked %d commands: %q", n, conns["c1"].cmds)
	}
	for _, c := range conns["g1"].cmds {
		if strings.HasPrefix(c, "UPLOAD") || strings.Contains(c, "--silent") || strings.Contains(c, "apt-get") {
			t.Errorf("a dry run changed g1: %s", c)
		}
	}
}

// TestDriverRun: on the GPU host without the driver the steps run in order, the installer
// from the bundle (the host answers 1 to every task's check, 0 to every step).
func TestDriverRun(t *testing.T) {
	checks := map[string]bool{prereqsPresent: true, nouveauUnloaded: true, DriverLoaded(testDriver): true, "systemctl is-active": true}
	g1 := &scripted{}
	h := pipeline.NewHost("g1", nil, func(context.Context) (connector.Connector, error) {
		return &stepHost{scripted: g1, checks: checks}, nil
	})
	h.SetFacts(&pipeline.Facts{Arch: "amd64", PackageManager: "apt-get", NvidiaPCI: []string{"0000:17:00.0 0x2330"}, Privileged: true})
	tasks, err := DriverTasks(driverSpec(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := runTasks(t, tasks, []*pipeline.Host{h}, false)
	if n := rep.Count(pipeline.StatusChanged); n != 4 {
		t.Errorf("%d tasks changed g1, want 4: %s", n, rep.Totals())
	}
	var steps []string
	for _, c := range g1.cmds {
		if !isCheck(c, checks) {
			steps = append(steps, c)
		}
	}
	golden(t, "driver-steps.golden", strings.Join(steps, "\n----\n")+"\n")
}

// stepHost answers 1 to the commands that hold one of checks, 0 to the others.
type stepHost struct {
	*scripted
	checks map[string]bool
}

func (s *stepHost) Exec(ctx context.Context, cmd string, o connector.ExecOptions) (connector.Result, error) {
	r, err := s.scripted.Exec(ctx, cmd, o)
	if isCheck(cmd, s.checks) {
		r.ExitCode = 1
	}
	return r, err
}
func isCheck(cmd string, checks map[string]bool) bool {
	for c := range checks {
		if strings.Contains(cmd, c) {
			return true
		}
	}
	return false
}

// TestDriverScriptsParse: the shell kk runs on a GPU host is valid sh.
func TestDriverScriptsParse(t *testing.T) {
	for name, script := range map[string]string{
		"nouveau":  NouveauScript,
		"driver":   DriverScript(testDriver, "/var/lib/kk/gpu/NVIDIA-driver-"+testDriver+".run"),
		"prereqs":  prereqsPresent,
		"loaded":   DriverLoaded(testDriver),
		"unloaded": nouveauUnloaded,
	} {
		if out, err := exec.Command("sh", "-n", "-c", script).CombinedOutput(); err != nil {
			t.Errorf("%s: %v: %s\n%s", name, err, out, script)
		}
	}
}

func TestPrereqPackages(t *testing.T) {
	for pm, want := range map[string]string{
		"apt-get": "linux-headers-6.1.0-28-amd64 gcc make dkms",
		"dnf":     "kernel-devel-6.1.0-28-amd64 kernel-headers-6.1.0-28-amd64 gcc make dkms elfutils-libelf-devel",
		"zypper":  "kernel-default-devel gcc make dkms",
	} {
		got, err := prereqPackages(pm, "6.1.0-28-amd64")
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("%s: %q %v, want %q", pm, got, err, want)
		}
	}
	if _, err := prereqPackages("", "6.1"); err == nil || !strings.Contains(err.Error(), "install them by hand") {
		t.Errorf("no package manager: %v", err)
	}
}
