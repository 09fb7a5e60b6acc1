package hostlog

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/pipeline"
)

func TestHostLogsAndResults(t *testing.T) {
	d, err := New(t.TempDir(), "init os")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	res := &pipeline.Result{Task: "os/swap-off", Host: "n1", Status: pipeline.StatusFailed, Duration: time.Second,
		Err: &pipeline.TaskError{Host: "n1", Task: "os/swap-off", Err: errors.New("boom")}}
	for _, e := range []pipeline.Event{
		{Kind: pipeline.EventTaskStart, Time: now, Host: "n1", Task: "os/swap-off"},
		{Kind: pipeline.EventCommand, Time: now, Host: "n1", Task: "os/swap-off", Cmd: "swapoff -a", Sudo: true, ExitCode: 1, Stderr: "swapoff: not permitted"},
		{Kind: pipeline.EventUpload, Time: now, Host: "n2", Task: "os/etc-hosts", Path: "/etc/hosts", Changed: true},
		{Kind: pipeline.EventTaskEnd, Time: now, Host: "n1", Task: "os/swap-off", Result: res},
		{Kind: pipeline.EventRunEnd, Report: &pipeline.Report{Name: "init os", Results: []pipeline.Result{*res}}},
	} {
		d.Observe(e)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	n1, _ := os.ReadFile(d.HostFile("n1"))
	for _, want := range []string{"[os/swap-off] start", "$ (root) swapoff -a", "exit 1", "swapoff: not permitted", "failed in 1s: host n1, task os/swap-off: boom"} {
		if !strings.Contains(string(n1), want) {
			t.Errorf("n1.log lacks %q:\n%s", want, n1)
		}
	}
	n2, _ := os.ReadFile(d.HostFile("n2"))
	if !strings.Contains(string(n2), "upload /etc/hosts: written") {
		t.Errorf("n2.log:\n%s", n2)
	}
	var rep struct {
		Results []struct{ Host, Status, Error string }
	}
	data, err := os.ReadFile(d.Path + "/results.json")
	if err != nil || json.Unmarshal(data, &rep) != nil || len(rep.Results) != 1 || rep.Results[0].Status != "failed" {
		t.Errorf("results.json: %v %s", err, data)
	}
	if st, _ := os.Stat(d.HostFile("n1")); st.Mode().Perm() != 0o600 {
		t.Errorf("host log mode %v: logs may hold secrets' surroundings, keep them private", st.Mode().Perm())
	}
}
