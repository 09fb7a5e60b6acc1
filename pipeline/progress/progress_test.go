package progress

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/pipeline"
)

func TestPlainOutputForNonTerminals(t *testing.T) {
	var b strings.Builder
	v := New(&b, false)
	v.Observe(pipeline.Event{Kind: pipeline.EventRunStart, Run: "init os", Total: 2})
	v.Observe(pipeline.Event{Kind: pipeline.EventCommand, Host: "n1", Cmd: "true"})
	v.Observe(pipeline.Event{Kind: pipeline.EventTaskEnd, Result: &pipeline.Result{Task: "os/sysctl", Host: "n1", Status: pipeline.StatusChanged, Duration: 1500 * time.Millisecond}})
	v.Observe(pipeline.Event{Kind: pipeline.EventTaskEnd, Result: &pipeline.Result{Task: "os/sysctl", Host: "n2", Status: pipeline.StatusFailed,
		Err: &pipeline.TaskError{Host: "n2", Task: "os/sysctl", Err: errors.New("exit 1")}}})
	v.Observe(pipeline.Event{Kind: pipeline.EventLog, Task: "precheck", Host: "n1", Message: "disk nearly full", Warn: true})
	v.Observe(pipeline.Event{Kind: pipeline.EventLog, Task: "precheck", Host: "n1", Message: "an info line"})
	v.Observe(pipeline.Event{Kind: pipeline.EventRunEnd})
	out := b.String()
	if strings.Contains(out, "an info line") {
		t.Error("a module's info log is printed only with --debug")
	}
	for _, want := range []string{"init os: 2 tasks×hosts", "warning precheck", "n1: disk nearly full", "changed os/sysctl", "n1 (1.5s)", "FAILED  os/sysctl", "host n2, task os/sysctl: exit 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "$ true") {
		t.Error("commands are printed only with --debug")
	}
	var d strings.Builder
	v = New(&d, true)
	v.Observe(pipeline.Event{Kind: pipeline.EventCommand, Host: "n1", Cmd: "true"})
	if !strings.Contains(d.String(), "n1 $ true") {
		t.Errorf("verbose view does not show commands: %q", d.String())
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 330825728: "315.5 MiB", 3 << 30: "3.0 GiB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
