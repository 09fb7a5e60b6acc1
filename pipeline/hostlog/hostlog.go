// Package hostlog writes a run's events to a log directory: one file per host with every
// command, its exit code and output, plus results.json with the final report.
package hostlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kk-project/kk/pipeline"
)

// Dir is an Observer writing under one run directory.
type Dir struct {
	Path string

	mu    sync.Mutex
	files map[string]*os.File
	err   error
}

// New creates <workdir>/logs/<timestamp>-<run name>/ and returns the observer writing there.
func New(workdir, run string) (*Dir, error) {
	name := time.Now().Format("20060102-150405") + "-" + strings.NewReplacer(" ", "-", "/", "-").Replace(run)
	p := filepath.Join(workdir, "logs", name)
	if err := os.MkdirAll(p, 0o700); err != nil {
		return nil, fmt.Errorf("log directory: %w", err)
	}
	return &Dir{Path: p, files: map[string]*os.File{}}, nil
}

// HostFile returns the path of host's log file.
func (d *Dir) HostFile(host string) string { return filepath.Join(d.Path, host+".log") }

// Observe implements pipeline.Observer.
func (d *Dir) Observe(e pipeline.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch e.Kind {
	case pipeline.EventRunEnd:
		d.writeReport(e.Report)
		return
	case pipeline.EventRunStart:
		return
	}
	if e.Host == "" {
		return
	}
	f := d.file(e.Host)
	if f == nil {
		return
	}
	ts := e.Time.Format("15:04:05.000")
	var b strings.Builder
	switch e.Kind {
	case pipeline.EventTaskStart:
		fmt.Fprintf(&b, "%s [%s] start\n", ts, e.Task)
	case pipeline.EventTaskEnd:
		r := e.Result
		fmt.Fprintf(&b, "%s [%s] %s in %s", ts, e.Task, r.Status, r.Duration.Round(time.Millisecond))
		if r.Message != "" {
			fmt.Fprintf(&b, " (%s)", r.Message)
		}
		if r.Err != nil {
			fmt.Fprintf(&b, ": %v", r.Err)
		}
		b.WriteString("\n")
	case pipeline.EventCommand:
		who := "user"
		if e.Sudo {
			who = "root"
		}
		fmt.Fprintf(&b, "%s [%s] $ (%s) %s\n", ts, e.Task, who, e.Cmd)
		if e.Err != nil {
			fmt.Fprintf(&b, "    error: %v\n", e.Err)
		} else {
			fmt.Fprintf(&b, "    exit %d in %s\n", e.ExitCode, e.Duration.Round(time.Millisecond))
		}
		writeIndented(&b, "stdout", e.Stdout)
		writeIndented(&b, "stderr", e.Stderr)
	case pipeline.EventUpload:
		state := "unchanged"
		if e.Changed {
			state = "written"
		}
		if e.Err != nil {
			state = "error: " + e.Err.Error()
		}
		fmt.Fprintf(&b, "%s [%s] upload %s: %s\n", ts, e.Task, e.Path, state)
	case pipeline.EventLog:
		fmt.Fprintf(&b, "%s [%s] %s\n", ts, e.Task, e.Message)
	}
	if _, err := f.WriteString(b.String()); err != nil && d.err == nil {
		d.err = err
	}
}

func writeIndented(b *strings.Builder, label, s string) {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return
	}
	const max = 64 << 10
	if len(s) > max {
		s = "…" + s[len(s)-max:]
	}
	fmt.Fprintf(b, "    %s:\n", label)
	for _, l := range strings.Split(s, "\n") {
		b.WriteString("      " + l + "\n")
	}
}

func (d *Dir) file(host string) *os.File {
	if f, ok := d.files[host]; ok {
		return f
	}
	f, err := os.OpenFile(d.HostFile(host), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		if d.err == nil {
			d.err = err
		}
		d.files[host] = nil
		return nil
	}
	d.files[host] = f
	return f
}

type jsonResult struct {
	Task       string  `json:"task"`
	Host       string  `json:"host"`
	Status     string  `json:"status"`
	DurationMS float64 `json:"durationMs"`
	Attempts   int     `json:"attempts,omitempty"`
	Message    string  `json:"message,omitempty"`
	Error      string  `json:"error,omitempty"`
}

func (d *Dir) writeReport(r *pipeline.Report) {
	if r == nil {
		return
	}
	out := struct {
		Run        string       `json:"run"`
		DryRun     bool         `json:"dryRun"`
		DurationMS float64      `json:"durationMs"`
		Totals     string       `json:"totals"`
		Results    []jsonResult `json:"results"`
	}{Run: r.Name, DryRun: r.DryRun, DurationMS: ms(r.Duration), Totals: r.Totals()}
	for _, res := range r.Results {
		jr := jsonResult{Task: res.Task, Host: res.Host, Status: res.Status.String(), DurationMS: ms(res.Duration), Attempts: res.Attempts, Message: res.Message}
		if res.Err != nil {
			jr.Error = res.Err.Error()
		}
		out.Results = append(out.Results, jr)
	}
	data, _ := json.MarshalIndent(out, "", "  ")
	if err := os.WriteFile(filepath.Join(d.Path, "results.json"), data, 0o600); err != nil && d.err == nil {
		d.err = err
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Close closes every host file and returns the first write error, if any.
func (d *Dir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	errs := []error{d.err}
	for _, f := range d.files {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	d.files = map[string]*os.File{}
	return errors.Join(errs...)
}
