package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a run did: one result per task×host, plus per-task totals.
type Report struct {
	Name     string
	DryRun   bool
	Duration time.Duration
	Results  []Result // in task order, then host order
	Tasks    []TaskSummary
	// Hosts is how many hosts the run had a task for.
	Hosts int
	// Stopped says why the run stopped starting tasks ("" when it did not stop early, or
	// stopped on cancellation).
	Stopped string
	// PeakHandshakes is the most dials (connect + SSH handshake) that ran at once; Redials
	// counts attempts tried again after a transient connection error.
	PeakHandshakes, Redials int
}

// TaskSummary totals one task over its hosts.
type TaskSummary struct {
	Task                         string
	Desc                         string
	Hosts                        int
	OK, Changed, Skipped, Failed int
	Planned                      int
	Longest                      time.Duration // slowest host
	Total                        time.Duration // sum over hosts
}

func newReport(name string, g *Graph, d time.Duration, dry bool) *Report {
	r := &Report{Name: name, Duration: d, DryRun: dry}
	for _, t := range g.Tasks {
		s := TaskSummary{Task: t.Name, Desc: t.Desc}
		for _, u := range g.byTask[t.Name] {
			res := u.result
			r.Results = append(r.Results, res)
			s.Hosts++
			s.Total += res.Duration
			s.Longest = max(s.Longest, res.Duration)
			switch res.Status {
			case StatusOK:
				s.OK++
			case StatusChanged:
				s.Changed++
			case StatusSkipped:
				s.Skipped++
			case StatusFailed:
				s.Failed++
			case StatusPlanned:
				s.Planned++
			}
		}
		r.Tasks = append(r.Tasks, s)
	}
	seen := map[string]bool{}
	for _, res := range r.Results {
		if !seen[res.Host] {
			seen[res.Host] = true
			r.Hosts++
		}
	}
	return r
}

// FailedHosts names the hosts on which a task failed, in the order of the results.
func (r *Report) FailedHosts() []string {
	var out []string
	for _, f := range r.Failures() {
		if !slices.Contains(out, f.Host) {
			out = append(out, f.Host)
		}
	}
	return out
}

// failedHostsLine is the summary line naming the failed hosts ("" when none failed).
func (r *Report) failedHostsLine() string {
	hs := r.FailedHosts()
	if len(hs) == 0 {
		return ""
	}
	return fmt.Sprintf("%d of %d hosts failed: %s", len(hs), r.Hosts, strings.Join(hs, ", "))
}

// Count returns how many results have status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, res := range r.Results {
		if res.Status == s {
			n++
		}
	}
	return n
}

// Failures returns the failed results.
func (r *Report) Failures() []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Status == StatusFailed {
			out = append(out, res)
		}
	}
	return out
}

// Err joins every failure (each names its host and task); nil when all went well.
func (r *Report) Err(ctx context.Context) error {
	var errs []error
	if line := r.failedHostsLine(); line != "" {
		errs = append(errs, errors.New(line))
	}
	if r.Stopped != "" {
		errs = append(errs, errors.New(r.Stopped))
	}
	for _, f := range r.Failures() {
		errs = append(errs, f.Err)
	}
	if ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("%s: %w", r.Name, ctx.Err()))
	}
	return errors.Join(errs...)
}

// Totals is the one-line summary: "12 ok, 3 changed, 0 skipped, 0 failed".
func (r *Report) Totals() string {
	if r.DryRun {
		return fmt.Sprintf("%d ok, %d would change, %d skipped, %d failed (dry run: nothing was changed)",
			r.Count(StatusOK), r.Count(StatusPlanned), r.Count(StatusSkipped), r.Count(StatusFailed))
	}
	return fmt.Sprintf("%d ok, %d changed, %d skipped, %d failed",
		r.Count(StatusOK), r.Count(StatusChanged), r.Count(StatusSkipped), r.Count(StatusFailed))
}

// WriteTable prints the per-task summary with timings, then every failure in full.
func (r *Report) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	changedCol := "CHANGED"
	if r.DryRun {
		changedCol = "WOULD CHANGE"
	}
	fmt.Fprintf(tw, "TASK\tHOSTS\tOK\t%s\tSKIPPED\tFAILED\tSLOWEST\n", changedCol)
	for _, s := range r.Tasks {
		changed := s.Changed
		if r.DryRun {
			changed = s.Planned
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", s.Task, s.Hosts, s.OK, changed, s.Skipped, s.Failed, s.Longest.Round(time.Millisecond))
	}
	tw.Flush()
	fmt.Fprintf(w, "%s: %s in %s\n", r.Name, r.Totals(), r.Duration.Round(time.Millisecond))
	for _, f := range r.Failures() {
		fmt.Fprintf(w, "FAILED %v\n", f.Err)
	}
	if line := r.failedHostsLine(); line != "" {
		fmt.Fprintln(w, line)
	}
	if r.Stopped != "" {
		fmt.Fprintln(w, r.Stopped)
	}
}

// WritePlan prints, for a dry run, what would change on which host.
func (r *Report) WritePlan(w io.Writer) {
	for _, res := range r.Results {
		switch res.Status {
		case StatusPlanned:
			fmt.Fprintf(w, "  ~ %-28s %-16s %s\n", res.Task, res.Host, res.Message)
		case StatusOK:
			fmt.Fprintf(w, "  = %-28s %-16s up to date\n", res.Task, res.Host)
		case StatusSkipped:
			fmt.Fprintf(w, "  - %-28s %-16s skipped: %s\n", res.Task, res.Host, res.Message)
		case StatusFailed:
			fmt.Fprintf(w, "  ! %-28s %-16s %v\n", res.Task, res.Host, res.Err)
		}
	}
}

// Plan describes a graph without running it: each task, the hosts it would run on, and what
// it waits for.
func (g *Graph) Plan(w io.Writer) {
	for i, t := range g.Tasks {
		deps := ""
		if len(t.After) > 0 {
			deps = " after " + strings.Join(t.After, ", ")
		}
		hosts := g.HostsOf(t.Name)
		on := strings.Join(hosts, ", ")
		if len(hosts) == 0 {
			on = "(no host)"
		}
		desc := ""
		if t.Desc != "" {
			desc = " — " + t.Desc
		}
		fmt.Fprintf(w, "%2d. %s%s\n      on %s [%s]%s\n", i+1, t.Name, desc, on, t.Hosts.Desc, deps)
	}
}

// eventHandler turns a task's slog records into EventLog events, so module code logs through
// the same channel as everything else and nothing in modules prints.
type eventHandler struct {
	emit  func(Event)
	host  string
	task  string
	attrs []slog.Attr
}

func (h *eventHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *eventHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true }
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.emit(Event{Kind: EventLog, Time: r.Time, Host: h.host, Task: h.task, Message: b.String(), Warn: r.Level >= slog.LevelWarn})
	return nil
}

func (h *eventHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr{}, h.attrs...), as...)
	return &c
}

func (h *eventHandler) WithGroup(string) slog.Handler { return h }
