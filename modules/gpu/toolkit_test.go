package gpu

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kk-project/kk/artifacts/catalog"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/runtime"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

const testToolkit = "v1.20.2"

func toolkitSpec(t *testing.T, declared ...string) ToolkitSpec {
	t.Helper()
	deb := filepath.Join(t.TempDir(), "nvidia-container-toolkit-base_1.20.2-1_amd64.deb")
	if err := os.WriteFile(deb, []byte("!<arch>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var files binaries.Files
	files.Add("amd64", catalog.NvidiaContainerToolkit, deb)
	return ToolkitSpec{Version: testToolkit, Files: files, GPUHosts: Hosts{Declared: declared}}
}

// TestToolkitDryRun: a dry run plans the toolkit on the GPU host without it (g1, its GPUs on
// the PCI bus) and on the host the file declares a GPU host (c1, none on its bus), none on the
// one that has it (g2), and changes nothing.
func TestToolkitDryRun(t *testing.T) {
	hosts, conns := driverHosts(t)
	rep := runTasks(t, ToolkitTasks(toolkitSpec(t, "c1"), nil, nil), hosts, true)
	var plan strings.Builder
	rep.WritePlan(&plan)
	golden(t, "toolkit-plan.golden", plan.String())
	for _, n := range []string{"g1", "c1"} {
		for _, c := range conns[n].cmds {
			if strings.HasPrefix(c, "UPLOAD") || strings.Contains(c, "dpkg -i") || strings.Contains(c, "systemctl restart") || strings.Contains(c, "install -D") {
				t.Errorf("a dry run changed %s: %s", n, c)
			}
		}
	}
	// a host neither on the bus nor declared is not asked
	hosts, conns = driverHosts(t)
	runTasks(t, ToolkitTasks(toolkitSpec(t), nil, nil), hosts, true)
	if n := len(conns["c1"].cmds); n != 0 {
		t.Errorf("the host without a GPU was asked %d commands: %q", n, conns["c1"].cmds)
	}
}

// TestToolkitRun: on a GPU host without the toolkit, its package is uploaded and installed,
// then nvidia-ctk writes containerd's drop-in (from a scratch copy of kk's configuration,
// with an explicit drop-in path) and containerd restarts; nvidiaRuntime makes nvidia the
// default runtime.
func TestToolkitRun(t *testing.T) {
	for _, def := range []bool{false, true} {
		g1 := &scripted{}
		h := pipeline.NewHost("g1", nil, func(context.Context) (connector.Connector, error) {
			return &toolkitHost{scripted: g1}, nil
		})
		h.SetFacts(&pipeline.Facts{Arch: "amd64", PackageManager: "apt-get", NvidiaPCI: []string{"0000:17:00.0 0x2330"}, Privileged: true})
		s := toolkitSpec(t)
		s.DefaultRuntime = def
		rep := runTasks(t, ToolkitTasks(s, nil, nil), []*pipeline.Host{h}, false)
		if n := rep.Count(pipeline.StatusChanged); n != 2 {
			t.Errorf("%d tasks changed g1, want 2: %s", n, rep.Totals())
		}
		var steps []string
		for _, c := range g1.cmds {
			if !toolkitCheck(c) {
				steps = append(steps, c)
			}
		}
		got := strings.Join(steps, "\n----\n") + "\n"
		if def {
			if !strings.Contains(got, "--set-as-default") {
				t.Errorf("nvidiaRuntime: nvidia is not made the default runtime:\n%s", got)
			}
			continue
		}
		golden(t, "toolkit-steps.golden", got)
	}
}

// TestToolkitDocker: with docker, the toolkit's second task writes no containerd drop-in and
// restarts nothing: nvidia-container-runtime's configuration names docker's own runc (the
// restricted one on a host in a container) and docker must report nvidia as its default
// runtime (the runtime phase's daemon.json).
func TestToolkitDocker(t *testing.T) {
	for _, container := range []string{"", "systemd-nspawn"} {
		g1 := &scripted{}
		h := pipeline.NewHost("g1", nil, func(context.Context) (connector.Connector, error) {
			return &toolkitHost{scripted: g1}, nil
		})
		h.SetFacts(&pipeline.Facts{Arch: "amd64", PackageManager: "apt-get", NvidiaPCI: []string{"0000:17:00.0 0x2330"}, Privileged: true, Container: container})
		s := toolkitSpec(t)
		s.Docker = true
		tasks := ToolkitTasks(s, nil, nil)
		if tasks[1].Name != TaskDocker {
			t.Fatalf("tasks %s, %s: want %s second", tasks[0].Name, tasks[1].Name, TaskDocker)
		}
		rep := runTasks(t, tasks, []*pipeline.Host{h}, false)
		if n := rep.Count(pipeline.StatusChanged); n != 2 {
			t.Errorf("%d tasks changed g1, want 2: %s", n, rep.Totals())
		}
		all := strings.Join(g1.cmds, "\n")
		runc := "/usr/local/bin/runc"
		if container != "" {
			runc = runtime.RestrictedRunc
		}
		for _, want := range []string{"--set nvidia-container-runtime.runtimes=" + runc + " ", "install -m 0644 \"$d/config.toml\" " + RuntimeConfig,
			"docker info --format '{{.DefaultRuntime}}'"} {
			if !strings.Contains(all, want) {
				t.Errorf("in a container %q: no %q in:\n%s", container, want, all)
			}
		}
		for _, not := range []string{ContainerdDropIn, "systemctl restart"} {
			if strings.Contains(all, not) {
				t.Errorf("docker: %q in:\n%s", not, all)
			}
		}
		if out, err := exec.Command("sh", "-n", "-c", all).CombinedOutput(); err != nil {
			t.Errorf("not sh: %v: %s", err, out)
		}
	}
}

// toolkitHost is a GPU host without the toolkit: its checks answer 1, every step 0.
type toolkitHost struct{ *scripted }

func (s *toolkitHost) Exec(ctx context.Context, cmd string, o connector.ExecOptions) (connector.Result, error) {
	r, err := s.scripted.Exec(ctx, cmd, o)
	if toolkitCheck(cmd) {
		r.ExitCode = 1
	}
	return r, err
}

// toolkitCheck tells the toolkit tasks' checks (the package's version, the drop-in compared)
// from their steps.
func toolkitCheck(cmd string) bool {
	return strings.HasPrefix(cmd, ToolkitInstalled(testToolkit)) || strings.Contains(cmd, "cmp -s")
}

// TestToolkitScriptsParse: the shell kk runs on a GPU host is valid sh.
func TestToolkitScriptsParse(t *testing.T) {
	for name, script := range map[string]string{
		"installed": ToolkitInstalled(testToolkit),
		"configure": ConfigureScript(true),
		"current":   dropInCurrent(false),
	} {
		if out, err := exec.Command("sh", "-n", "-c", script).CombinedOutput(); err != nil {
			t.Errorf("%s: %v: %s\n%s", name, err, out, script)
		}
	}
}
