package mirror

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestRunAllProgress: one numbered line per step on the progress writer, the commands' own
// output (the go tool's "go: downloading") only in the job's log file, which a failure names;
// a second run reports the built job as cached.
func TestRunAllProgress(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{".stamps", ".tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var progress bytes.Buffer
	b := &builder{dir: dir, log: &progress}
	ok := job{component: "etcd", name: "good", version: "v1.0.0", recipe: "r", outputs: []string{"good/file"},
		build: func(ctx context.Context, stage string) error {
			if err := os.MkdirAll(filepath.Join(stage, "good"), 0o755); err != nil {
				return err
			}
			return b.cmd(ctx, stage, nil, "sh", "-c", "echo 'go: downloading example.com/m v1.0.0' >&2; echo hi > good/file")
		}}
	bad := job{component: "crictl", name: "bad", version: "v2.0.0", recipe: "r", outputs: []string{"bad/file"},
		build: func(ctx context.Context, stage string) error {
			b.step("go build (1 packages)")
			return b.cmd(ctx, stage, nil, "sh", "-c", "echo 'go: downloading example.com/n v2.0.0'; echo 'compile error' >&2; exit 3")
		}}
	err := b.runAll(context.Background(), []job{ok, bad})
	if err == nil {
		t.Fatal("runAll: no error for a failing job")
	}
	badLog := filepath.Join(dir, ".logs", "bad-v2.0.0.log")
	if !strings.Contains(err.Error(), badLog) || !strings.Contains(err.Error(), "compile error") {
		t.Errorf("error %q does not name %s and quote the output's tail", err, badLog)
	}
	out := progress.String()
	if strings.Contains(out, "go: downloading") {
		t.Errorf("the go tool's output reached the progress lines:\n%s", out)
	}
	for _, re := range []string{
		`(?m)^mirror: \[1/2\] good v1\.0\.0: building \(log .*/\.logs/good-v1\.0\.0\.log\)$`,
		`(?m)^mirror: \[1/2\] good v1\.0\.0: built in \d+s$`,
		`(?m)^mirror: \[2/2\] bad v2\.0\.0: go build \(1 packages\)$`,
		`(?m)^mirror: \[2/2\] bad v2\.0\.0: FAILED \(log .*/\.logs/bad-v2\.0\.0\.log\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("progress lines do not match %s:\n%s", re, out)
		}
	}
	for p, want := range map[string]string{filepath.Join(dir, ".logs", "good-v1.0.0.log"): "go: downloading example.com/m", badLog: "go: downloading example.com/n"} {
		data, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(data), want) {
			t.Errorf("log %s: %v; want it to hold %q, got:\n%s", p, err, want, data)
		}
	}

	progress.Reset()
	if err := b.runAll(context.Background(), []job{ok}); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(progress.String()); got != "mirror: [1/1] good v1.0.0: cached" {
		t.Errorf("second run: %q, want the job cached", got)
	}
}

func TestSelectKubernetes(t *testing.T) {
	s := Spec{Kubernetes: []string{"v1.37.2", "v1.30.14"}, Etcd: "v3.6.5"}
	got, err := s.SelectKubernetes([]string{"v1.30.14"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Kubernetes, []string{"v1.30.14"}) || got.Etcd != "v3.6.5" {
		t.Errorf("SelectKubernetes(v1.30.14) = %+v", got)
	}
	if !slices.Equal(s.Kubernetes, []string{"v1.37.2", "v1.30.14"}) {
		t.Errorf("SelectKubernetes changed its receiver: %v", s.Kubernetes)
	}
	if _, err := s.SelectKubernetes([]string{"v1.37.2", "v1.29.0"}); err == nil || !strings.Contains(err.Error(), "v1.29.0") {
		t.Errorf("SelectKubernetes(v1.29.0) = %v, want an error naming it", err)
	}
}
