package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/pipeline/retry"
)

// FailurePolicy says what happens to the rest of the run when a task fails on a host.
type FailurePolicy int

const (
	// DropFailedHosts (the default) removes a host from the rest of the run when a task fails
	// on it: its remaining tasks are skipped, the other hosts go on. A barrier task goes on
	// without the dropped hosts, unless more than Options.MaxFailPercent of the hosts it waits
	// for have failed: then the run stops. A task that needs a dropped host's result (a
	// dependency that runs only on other hosts, e.g. init on the first control plane) is skipped.
	DropFailedHosts FailurePolicy = iota
	// StopOnFailure starts nothing new after the first failure; running tasks finish.
	StopOnFailure
	// ContinueOnFailure skips only what depends on the failed task on that host (or on every
	// host, for barrier dependencies) and carries on with the others, the failed host's
	// independent tasks included (e.g. every check of a precheck).
	ContinueOnFailure
)

// Options tune one run.
type Options struct {
	Name        string // run name, shown in events and reports (e.g. "init os")
	Concurrency int    // bound on task×host executions at once, over all hosts (default 32)
	// Handshakes bounds simultaneous dials (TCP connect, SSH handshake, authentication) over
	// all hosts, apart from Concurrency (default DefaultHandshakes).
	Handshakes int
	// Redial is how an attempt that failed on a transient connection error is tried again,
	// with a fresh connection, before it counts as a failure (default DefaultRedial). It does
	// not use up the task's own Retries.
	Redial  retry.Policy
	Timeout time.Duration
	DryRun  bool
	Failure FailurePolicy
	// MaxFailPercent (DropFailedHosts): a barrier task stops the run when more than this
	// percentage of the hosts it waits for have failed. 0 = no limit.
	MaxFailPercent int
	// Grace is how long running tasks may go on after the run's context is cancelled (Ctrl-C)
	// before their own contexts are cancelled too. Default 30s; negative = cancel at once.
	Grace    time.Duration
	Observer Observer
	Logger   *slog.Logger // engine debug log (nil = discard)
}

// Run executes the graph: a unit starts when its dependencies are done, with at most
// Concurrency units at once. It returns the report and, when anything failed or the run was
// cancelled, an error listing each failure with its host and task.
func Run(ctx context.Context, g *Graph, o Options) (*Report, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Minute
	}
	if o.Grace == 0 {
		o.Grace = 30 * time.Second
	}
	if o.Handshakes <= 0 {
		o.Handshakes = DefaultHandshakes
	}
	if o.Redial.Attempts <= 0 {
		o.Redial = DefaultRedial
	}
	gate := newDialGate(o.Handshakes)
	obs := o.Observer
	if obs == nil {
		obs = ObserverFunc(func(Event) {})
	}
	emit := func(e Event) {
		e.Run = o.Name
		if e.Time.IsZero() {
			e.Time = time.Now()
		}
		obs.Observe(e)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	// Work keeps going for a grace period after ctx is cancelled, so that a command half way
	// through (a package install, a file rename) finishes and leaves the host consistent.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopGrace := context.AfterFunc(ctx, func() {
		if o.Grace < 0 {
			cancelWork()
			return
		}
		t := time.NewTimer(o.Grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancelWork()
		case <-workCtx.Done():
		}
	})
	defer stopGrace()

	start := time.Now()
	emit(Event{Kind: EventRunStart, Total: len(g.units)})
	done := make(chan *unit)
	var ready []*unit
	for _, u := range g.units {
		u.state, u.pending = unitWaiting, len(u.deps)
		if u.pending == 0 {
			ready = append(ready, u)
		}
	}
	running, finished := 0, 0
	stopped := ""
	dropped := map[*Host]string{} // DropFailedHosts: host → the task that failed on it
	for finished < len(g.units) {
		if stopped == "" && ctx.Err() != nil {
			stopped = "run cancelled"
		}
		// settle units that can no longer run
		for i := 0; i < len(ready); {
			u := ready[i]
			reason := ""
			if o.Failure == DropFailedHosts {
				reason, stopped = dropReason(u, dropped, stopped, o.MaxFailPercent)
			} else {
				reason = skipReason(u, stopped)
			}
			if reason != "" {
				ready = slices.Delete(ready, i, i+1)
				u.state = unitDone
				u.result = Result{Task: u.task.Name, Host: u.host.Name, Status: StatusSkipped, Message: reason}
				emit(Event{Kind: EventTaskEnd, Task: u.task.Name, Host: u.host.Name, Result: &u.result})
				finished++
				ready = append(ready, release(u)...)
				continue
			}
			i++
		}
		slices.SortFunc(ready, func(a, b *unit) int {
			if a.taskIdx != b.taskIdx {
				return a.taskIdx - b.taskIdx
			}
			return a.hostIdx - b.hostIdx
		})
		for running < o.Concurrency && len(ready) > 0 {
			u := ready[0]
			ready = ready[1:]
			u.state = unitRunning
			running++
			go func() {
				u.result = execute(workCtx, u, o, gate, emit)
				done <- u
			}()
		}
		if finished == len(g.units) {
			break
		}
		if running == 0 && len(ready) == 0 {
			// cannot happen with an acyclic graph; guard against a scheduler bug hanging forever
			return nil, fmt.Errorf("pipeline %s: scheduler stalled with %d of %d units finished", o.Name, finished, len(g.units))
		}
		var u *unit
		select {
		case u = <-done:
		case <-ctx.Done():
			if stopped == "" {
				stopped = "run cancelled"
				log.Debug("run cancelled; waiting for running tasks", "running", running)
			}
			u = <-done
		}
		running--
		finished++
		u.state = unitDone
		if u.result.Status == StatusFailed {
			if _, ok := dropped[u.host]; !ok {
				dropped[u.host] = u.task.Name
			}
			if o.Failure == StopOnFailure && stopped == "" {
				stopped = fmt.Sprintf("run stopped after %s failed on %s", u.task.Name, u.host.Name)
			}
		}
		ready = append(ready, release(u)...)
	}
	rep := newReport(o.Name, g, time.Since(start), o.DryRun)
	rep.PeakHandshakes, rep.Redials = int(gate.peak.Load()), int(gate.redials.Load())
	if stopped != "" && ctx.Err() == nil {
		rep.Stopped = stopped
	}
	emit(Event{Kind: EventRunEnd, Report: rep})
	return rep, rep.Err(ctx)
}

// release marks u done for its waiters and returns the ones that became ready.
func release(u *unit) []*unit {
	var out []*unit
	for _, w := range u.waiters {
		w.pending--
		if w.pending == 0 {
			out = append(out, w)
		}
	}
	return out
}

// skipReason says why a ready unit must not run, or "".
// A task left out by configuration (Task.Skip) counts as finished for its waiters, unless it
// was skipped for a failure before it.
func skipReason(u *unit, stopped string) string {
	for _, d := range u.deps {
		switch d.result.Status {
		case StatusFailed:
			return fmt.Sprintf("%s failed on %s", d.task.Name, d.host.Name)
		case StatusSkipped:
			leftOut := d.task.Skip != "" && d.result.Message == d.task.Skip
			if !leftOut && (d.host == u.host || u.task.Barrier) {
				return fmt.Sprintf("%s was skipped on %s", d.task.Name, d.host.Name)
			}
		}
	}
	if u.task.Skip != "" {
		return u.task.Skip
	}
	return stopped
}

// dropReason is skipReason under DropFailedHosts: it says why a ready unit must not run (or
// "") and returns the run's stop reason, set when a barrier finds too many hosts failed.
func dropReason(u *unit, dropped map[*Host]string, stopped string, maxFailPercent int) (reason, stop string) {
	if task, ok := dropped[u.host]; ok {
		return fmt.Sprintf("host dropped from the run: %s failed on it", task), stopped
	}
	if stopped != "" {
		return stopped, stopped
	}
	waited, failed := map[*Host]bool{}, map[*Host]bool{}
	for _, d := range u.deps {
		waited[d.host] = true
		if d.result.Status != StatusFailed && d.result.Status != StatusSkipped {
			continue
		}
		if d.task.Skip != "" && d.result.Message == d.task.Skip {
			continue // left out by configuration: counts as finished
		}
		_, gone := dropped[d.host]
		if gone {
			failed[d.host] = true
		}
		if d.host == u.host || !u.task.Barrier || !gone || d.task.Gate {
			// this host's own step, or another host's result this task needs
			return fmt.Sprintf("%s %s on %s", d.task.Name, d.result.Status, d.host.Name), stopped
		}
	}
	if u.task.Barrier && maxFailPercent > 0 && len(failed)*100 > maxFailPercent*len(waited) {
		stop = fmt.Sprintf("run stopped at %s: %d of %d hosts failed, more than the %d%% allowed",
			u.task.Name, len(failed), len(waited), maxFailPercent)
		return stop, stop
	}
	if u.task.Skip != "" {
		return u.task.Skip, stopped
	}
	return "", stopped
}

// execute runs one unit: dial, check, run with retries and a per-attempt timeout.
func execute(ctx context.Context, u *unit, o Options, gate *dialGate, emit func(Event)) (res Result) {
	t, h := u.task, u.host
	res = Result{Task: t.Name, Host: h.Name}
	emit(Event{Kind: EventTaskStart, Task: t.Name, Host: h.Name})
	start := time.Now()
	res.Start = start
	defer func() {
		res.Duration = time.Since(start)
		if res.Err != nil {
			res.Status = StatusFailed
			var te *TaskError
			if !errors.As(res.Err, &te) {
				res.Err = &TaskError{Host: h.Name, Task: t.Name, Err: res.Err}
			}
		}
		emit(Event{Kind: EventTaskEnd, Task: t.Name, Host: h.Name, Result: &res, Duration: res.Duration})
	}()

	timeout := t.Timeout
	if timeout <= 0 {
		timeout = o.Timeout
	}
	backoff := t.Backoff
	if backoff <= 0 {
		backoff = time.Second
	}
	var status Status
	var msg string
	policy := retry.Policy{Attempts: t.Retries + 1, Initial: backoff, Factor: 2, Cap: time.Minute}
	attempts, err := retry.Do(ctx, policy, nil, func(ctx context.Context, _ int) error {
		var err error
		status, msg, err = attemptRedialing(ctx, u, o, gate, emit, timeout)
		return err
	}, func(attempt int, err error, wait time.Duration) {
		emit(Event{Kind: EventLog, Task: t.Name, Host: h.Name, Message: fmt.Sprintf("attempt %d failed, retrying in %s: %v", attempt, wait, err)})
	})
	res.Attempts = attempts
	switch {
	case err == nil:
		res.Status, res.Message = status, msg
	case attempts > 1:
		res.Err = fmt.Errorf("after %d attempts: %w", attempts, err)
	default:
		res.Err = err
	}
	return res
}

// attemptRedialing is one attempt of a task, tried again with a fresh connection (o.Redial)
// while it fails on a transient connection error: a handshake storm costs time, not a host.
func attemptRedialing(ctx context.Context, u *unit, o Options, gate *dialGate, emit func(Event), timeout time.Duration) (Status, string, error) {
	var status Status
	var msg string
	_, err := retry.Do(ctx, o.Redial, connector.IsTransient, func(ctx context.Context, _ int) error {
		var err error
		status, msg, err = attemptOnce(ctx, u, o, gate, emit, timeout)
		return err
	}, func(attempt int, err error, wait time.Duration) {
		gate.redials.Add(1)
		emit(Event{Kind: EventLog, Task: u.task.Name, Host: u.host.Name,
			Message: fmt.Sprintf("connection failed (try %d of %d), redialing in %s: %v", attempt, o.Redial.Attempts, wait.Round(time.Millisecond), err)})
	})
	return status, msg, err
}

// attemptOnce dials the host when needed, then checks and runs the task once. A transient
// connection error drops the host's connection, so that the next try dials afresh.
func attemptOnce(ctx context.Context, u *unit, o Options, gate *dialGate, emit func(Event), timeout time.Duration) (_ Status, _ string, err error) {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := u.host.connect(actx, gate)
	if err != nil {
		return 0, "", err
	}
	defer func() {
		if connector.IsTransient(err) {
			u.host.forget(conn)
		}
	}()
	tg := &Target{Host: u.host, Task: u.task.Name, Conn: conn, DryRun: o.DryRun, emit: emit}
	tg.Log = slog.New(&eventHandler{emit: emit, host: u.host.Name, task: u.task.Name})
	wrap := func(err error) error {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("timed out after %s: %w", timeout, err)
		}
		return err
	}
	if u.task.Check != nil {
		ok, err := u.task.Check(actx, tg)
		if err != nil && o.DryRun && !u.task.ReadOnly && errors.Is(err, ErrNotYet) {
			// what the check reads comes from a task this dry run only plans
			return StatusPlanned, "would change (after what this run makes first)", nil
		}
		if err != nil {
			return 0, "", wrap(fmt.Errorf("check: %w", err))
		}
		if ok {
			return StatusOK, "", nil
		}
	}
	if o.DryRun && !u.task.ReadOnly {
		msg := "would run"
		if u.task.Check != nil {
			msg = "would change"
		}
		return StatusPlanned, msg, nil
	}
	changed, err := u.task.Run(actx, tg)
	if err != nil {
		return 0, "", wrap(err)
	}
	if changed {
		return StatusChanged, "", nil
	}
	return StatusOK, "", nil
}
