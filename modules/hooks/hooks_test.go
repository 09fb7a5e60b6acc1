package hooks

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/pipeline/connector/connectortest"
)

// runHosts runs tasks on a control plane cp1 and a worker w1, each with its own scripted connector.
func runHosts(t *testing.T, tasks []pipeline.Task, o pipeline.Options, fail ...string) (map[string]*connectortest.Script, *pipeline.Report, error) {
	t.Helper()
	conns := map[string]*connectortest.Script{}
	var hs []*pipeline.Host
	for name, role := range map[string]string{"cp1": "control-plane", "w1": "worker"} {
		c := &connectortest.Script{Fail: fail}
		conns[name] = c
		hs = append(hs, pipeline.NewHost(name, []string{role}, func(context.Context) (connector.Connector, error) { return c, nil }))
	}
	slices.SortFunc(hs, func(a, b *pipeline.Host) int { return strings.Compare(a.Name, b.Name) })
	g, err := pipeline.NewGraph(tasks, hs)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := pipeline.Run(context.Background(), g, o)
	return conns, rep, err
}

func TestScriptsRunOnTheirRoleWithMaterials(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tool.conf")
	if err := os.WriteFile(file, []byte("a=1\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "bundle", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bundle", "sub", "x.sh"), []byte("echo x\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	scripts := []config.Script{
		{Name: "prepare disks", Bash: "echo one\necho two >&2\n", Role: "worker", Materials: []string{file, filepath.Join(dir, "bundle")}},
		{Bash: "touch /tmp/done"},
	}
	tasks, err := Tasks(PreInstall, scripts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 2 || tasks[0].Name != "hooks/preInstall/1-prepare-disks" || tasks[1].Name != "hooks/preInstall/2-script" ||
		!slices.Equal(tasks[1].After, []string{tasks[0].Name}) || tasks[0].Check != nil || tasks[0].Retries != 0 {
		t.Fatalf("tasks: %+v", tasks)
	}
	conns, rep, err := runHosts(t, tasks, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count(pipeline.StatusChanged) != 3 {
		t.Errorf("changed %d, want 3 (script 1 on the worker, script 2 on both)", rep.Count(pipeline.StatusChanged))
	}
	w := conns["w1"].Files()
	for p, want := range map[string]string{
		"/tmp/kubekey/PreInstall-0-script/script.sh":       "echo one\necho two >&2\n",
		"/tmp/kubekey/PreInstall-0-script/tool.conf":       "", // streamed from LocalPath
		"/tmp/kubekey/PreInstall-0-script/bundle/sub/x.sh": "",
		"/tmp/kubekey/PreInstall-1-script/script.sh":       "touch /tmp/done",
	} {
		if _, ok := w[p]; !ok {
			t.Errorf("w1 lacks %s (has %v)", p, w)
		} else if want != "" && string(w[p]) != want {
			t.Errorf("%s = %q, want %q", p, w[p], want)
		}
	}
	if _, ok := conns["cp1"].Files()["/tmp/kubekey/PreInstall-0-script/script.sh"]; ok {
		t.Error("the worker's script was uploaded to the control plane")
	}
	cmds := strings.Join(conns["w1"].Commands(), "\n")
	if !strings.Contains(cmds, "cd /tmp/kubekey/PreInstall-0-script && /bin/bash ./script.sh") || strings.Contains(cmds, "echo one") {
		t.Errorf("the script must run from its file, never on the command line:\n%s", cmds)
	}

	// a dry run runs nothing and says each script would run
	conns, rep, err = runHosts(t, tasks, pipeline.Options{DryRun: true})
	if err != nil || rep.Count(pipeline.StatusPlanned) != 3 || len(conns["w1"].Commands()) != 0 {
		t.Errorf("dry run: %v %s %v", err, rep.Totals(), conns["w1"].Commands())
	}
}

func TestFailingScriptFailsItsHost(t *testing.T) {
	tasks, err := Tasks(PostInstall, []config.Script{{Name: "check", Bash: "exit 3"}}, []string{})
	if err != nil {
		t.Fatal(err)
	}
	_, rep, err := runHosts(t, tasks, pipeline.Options{Failure: pipeline.ContinueOnFailure}, "/bin/bash ./script.sh")
	var te *pipeline.TaskError
	if !errors.As(err, &te) || !strings.HasPrefix(te.Task, "hooks/postInstall/1-check") || !strings.Contains(err.Error(), "spec.system.postInstall[0]") {
		t.Fatalf("error: %v", err)
	}
	if rep.Count(pipeline.StatusFailed) != 2 {
		t.Errorf("failed %d, want 2", rep.Count(pipeline.StatusFailed))
	}
}

func TestPlanTimeErrors(t *testing.T) {
	if _, err := Tasks(PreInstall, []config.Script{{Bash: "true", Materials: []string{"/nonexistent/kk-material"}}}, nil); err == nil ||
		!strings.Contains(err.Error(), "spec.system.preInstall[0].materials") {
		t.Errorf("missing material: %v", err)
	}
	if _, err := Tasks(PostClusterInstall, []config.Script{{Bash: "true"}, {Bash: "true", Role: "db"}}, nil); err == nil ||
		!strings.Contains(err.Error(), `spec.system.postClusterInstall[1].role: unknown role "db"`) {
		t.Errorf("unknown role: %v", err)
	}
	for role, want := range map[string]string{"master": "control-plane", "k8s": "control-plane|worker", "": "all", "etcd": "etcd"} {
		sel, err := selector(role)
		if err != nil || sel.Desc != want {
			t.Errorf("role %q: %q %v, want %q", role, sel.Desc, err, want)
		}
	}
}

func TestScriptDirIsKubeKeys(t *testing.T) {
	if got := ScriptDir(PostClusterInstall, 0); got != "/tmp/kubekey/PostClusterInstall-0-script" {
		t.Errorf("ScriptDir = %s", got)
	}
}

func TestSequence(t *testing.T) {
	task := func(name string, after ...string) pipeline.Task { return pipeline.Task{Name: name, After: after} }
	got := Sequence([]pipeline.Task{task("h1"), task("h2", "h1")}, nil, []pipeline.Task{task("a", "facts"), task("b", "a")}, []pipeline.Task{task("p")})
	want := map[string][]string{"h1": nil, "h2": {"h1"}, "a": {"facts", "h1", "h2"}, "b": {"a", "h1", "h2"}, "p": {"a", "b"}}
	if len(got) != 5 {
		t.Fatalf("%v", got)
	}
	for _, x := range got {
		if !slices.Equal(x.After, want[x.Name]) {
			t.Errorf("%s after %v, want %v", x.Name, x.After, want[x.Name])
		}
	}
}
