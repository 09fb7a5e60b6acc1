package mirror

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/artifacts/versions"
)

// TestLoggingIsKKs: the mirror builds the VictoriaLogs release whose images kk deploys, the
// store's and the collector's (one module, one release).
func TestLoggingIsKKs(t *testing.T) {
	s, a := DefaultSpec(), versions.DefaultAddons()
	if s.VictoriaLogs == "" || s.VictoriaLogs != a.VictoriaLogs || s.VictoriaLogs != a.VLAgent {
		t.Errorf("the mirror builds victoria-logs %q, kk deploys victoria-logs %s and vlagent %s (artifacts/versions)",
			s.VictoriaLogs, a.VictoriaLogs, a.VLAgent)
	}
	if err := s.validate(); err != nil {
		t.Fatal(err)
	}
	s.VictoriaLogs = "1.52.2"
	if err := s.validate(); err == nil || !strings.Contains(err.Error(), "victoria-logs") {
		t.Errorf("validate accepted victoria-logs 1.52.2: %v", err)
	}
}

// One job builds both programs of the release, each with its checksum, and Artifacts lists
// them under the component; a spec without the release builds neither.
func TestVictoriaLogsJob(t *testing.T) {
	s := DefaultSpec()
	if !slices.Contains(Components, "victoria-logs") {
		t.Fatal("Components has no victoria-logs")
	}
	b := &builder{dir: t.TempDir(), spec: s, log: io.Discard, out: io.Discard}
	var only []job
	for _, j := range b.jobs() {
		if j.component == "victoria-logs" {
			only = append(only, j)
		}
	}
	if len(only) != 1 {
		t.Fatalf("%d victoria-logs jobs, want 1", len(only))
	}
	paths := []string{VictoriaLogsPath(s.VictoriaLogs), VLAgentPath(s.VictoriaLogs)}
	var want []string
	for _, p := range paths {
		if !strings.HasPrefix(p, "/bin/victoria-logs/"+s.VictoriaLogs+"/linux/") {
			t.Errorf("path %s is not under the release's BinPath", p)
		}
		want = append(want, p[1:], p[1:]+".sha256")
	}
	if j := only[0]; j.version != s.VictoriaLogs || !slices.Equal(j.outputs, want) {
		t.Errorf("job %s %s outputs %q, want %q", j.name, j.version, j.outputs, want)
	}
	var got []string
	for _, a := range s.Artifacts() {
		if a.Component != "victoria-logs" {
			continue
		}
		got = append(got, a.Path)
		if a.Checksum != a.Path+".sha256" || a.ChecksumFormat != HexOnly || a.Version != s.VictoriaLogs {
			t.Errorf("artifact %+v", a)
		}
	}
	if !slices.Equal(got, paths) {
		t.Errorf("Artifacts of victoria-logs: %q, want %q", got, paths)
	}

	s.VictoriaLogs = ""
	b = &builder{dir: t.TempDir(), spec: s, log: io.Discard, out: io.Discard}
	for _, j := range b.jobs() {
		if j.component == "victoria-logs" {
			t.Errorf("a spec without VictoriaLogs builds %s", j.name)
		}
	}
	for _, a := range s.Artifacts() {
		if a.Component == "victoria-logs" {
			t.Errorf("a spec without VictoriaLogs lists %s", a.Path)
		}
	}
}

// The version linked in has upstream's shape and the release, which is what buildinfo's
// ShortVersion (the version the program reports in its metrics and UI) looks for.
func TestVictoriaLogsVersion(t *testing.T) {
	got := victoriaLogsVersion("vlagent", "v1.52.2", "20260716-022047")
	if !strings.HasPrefix(got, "vlagent-20260716-022047-") || !strings.Contains(got, "-tags-v1.52.2-") {
		t.Errorf("victoriaLogsVersion = %q", got)
	}
}
