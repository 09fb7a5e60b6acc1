package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/pipeline/retry"
)

// fakeConn is a connector that records commands and answers them with a function.
type fakeConn struct {
	answer func(cmd string) connector.Result
}

func (f *fakeConn) Exec(ctx context.Context, cmd string, _ connector.ExecOptions) (connector.Result, error) {
	if f.answer == nil {
		return connector.Result{Cmd: cmd}, ctx.Err()
	}
	r := f.answer(cmd)
	r.Cmd = cmd
	return r, ctx.Err()
}
func (f *fakeConn) Upload(context.Context, connector.File) (bool, error) { return true, nil }
func (f *fakeConn) Fetch(context.Context, string) ([]byte, error)        { return nil, nil }
func (f *fakeConn) Close() error                                         { return nil }

func hosts(n int, roles ...string) []*Host {
	var out []*Host
	for i := 1; i <= n; i++ {
		out = append(out, NewHost(fmt.Sprintf("h%d", i), roles, func(context.Context) (connector.Connector, error) {
			return &fakeConn{}, nil
		}))
	}
	return out
}

// recorder logs "task@host" in start order.
type recorder struct {
	mu  sync.Mutex
	seq []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.seq = append(r.seq, s)
	r.mu.Unlock()
}

func (r *recorder) index(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, x := range r.seq {
		if x == s {
			return i
		}
	}
	return -1
}

func recTask(r *recorder, name string, sel Selector, after ...string) Task {
	return Task{Name: name, Hosts: sel, After: after, Run: func(ctx context.Context, t *Target) (bool, error) {
		r.add(name + "@" + t.Name)
		return true, nil
	}}
}

func mustRun(t *testing.T, tasks []Task, hs []*Host, o Options) *Report {
	t.Helper()
	g, err := NewGraph(tasks, hs)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), g, o)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return rep
}

func TestOrderingPerHostAndBarrier(t *testing.T) {
	r := &recorder{}
	hs := hosts(3)
	hs[0].Roles = []string{"cp"}
	tasks := []Task{
		recTask(r, "a", AllHosts()),
		recTask(r, "b", AllHosts(), "a"),
		recTask(r, "init", FirstOf("cp"), "b"),
		// join runs on hosts other than the first: it must wait for init on h1 (not its own host)
		recTask(r, "join", Named("h2", "h3"), "init"),
		{Name: "sync", Hosts: AllHosts(), After: []string{"b"}, Barrier: true, Run: func(ctx context.Context, tg *Target) (bool, error) {
			r.add("sync@" + tg.Name)
			return false, nil
		}},
	}
	rep := mustRun(t, tasks, hs, Options{Concurrency: 4})
	for _, h := range []string{"h1", "h2", "h3"} {
		if r.index("a@"+h) > r.index("b@"+h) {
			t.Errorf("b ran before a on %s: %v", h, r.seq)
		}
		if r.index("join@"+h) >= 0 && r.index("join@"+h) < r.index("init@h1") {
			t.Errorf("join on %s before init: %v", h, r.seq)
		}
		for _, h2 := range []string{"h1", "h2", "h3"} {
			if r.index("sync@"+h) < r.index("b@"+h2) {
				t.Errorf("barrier sync@%s before b@%s: %v", h, h2, r.seq)
			}
		}
	}
	if got := rep.Count(StatusChanged); got != 3+3+1+2 {
		t.Errorf("changed = %d, want 9", got)
	}
	if got := rep.Count(StatusOK); got != 3 {
		t.Errorf("ok = %d, want 3", got)
	}
}

func TestConcurrencyBound(t *testing.T) {
	var cur, peak atomic.Int32
	task := Task{Name: "slow", Hosts: AllHosts(), Run: func(ctx context.Context, t *Target) (bool, error) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		cur.Add(-1)
		return true, nil
	}}
	mustRun(t, []Task{task}, hosts(12), Options{Concurrency: 3})
	if p := peak.Load(); p != 3 {
		t.Errorf("peak concurrency = %d, want exactly 3", p)
	}
}

func TestRetryWithBackoff(t *testing.T) {
	var calls atomic.Int32
	task := Task{Name: "flaky", Hosts: AllHosts(), Retries: 2, Backoff: time.Millisecond,
		Run: func(ctx context.Context, t *Target) (bool, error) {
			if calls.Add(1) < 3 {
				return false, errors.New("transient")
			}
			return true, nil
		}}
	rep := mustRun(t, []Task{task}, hosts(1), Options{})
	if rep.Results[0].Attempts != 3 || rep.Results[0].Status != StatusChanged {
		t.Errorf("got %+v, want changed after 3 attempts", rep.Results[0])
	}

	calls.Store(-10) // now it keeps failing: retries exhausted
	g, _ := NewGraph([]Task{task}, hosts(1))
	rep, err := Run(context.Background(), g, Options{})
	if err == nil || !strings.Contains(err.Error(), "after 3 attempts") || !strings.Contains(err.Error(), "host h1, task flaky") {
		t.Errorf("err = %v", err)
	}
	if rep.Results[0].Status != StatusFailed {
		t.Errorf("status = %v", rep.Results[0].Status)
	}
}

func TestTimeout(t *testing.T) {
	task := Task{Name: "hang", Hosts: AllHosts(), Timeout: 30 * time.Millisecond,
		Run: func(ctx context.Context, t *Target) (bool, error) {
			<-ctx.Done()
			return false, ctx.Err()
		}}
	g, _ := NewGraph([]Task{task}, hosts(1))
	_, err := Run(context.Background(), g, Options{})
	if err == nil || !strings.Contains(err.Error(), "timed out after 30ms") {
		t.Errorf("err = %v, want a timeout naming the limit", err)
	}
}

func TestFailurePolicies(t *testing.T) {
	failOnH2 := Task{Name: "step1", Hosts: AllHosts(), Run: func(ctx context.Context, t *Target) (bool, error) {
		if t.Name == "h2" {
			return false, &connector.CommandError{Cmd: "false", ExitCode: 1, Stderr: "boom"}
		}
		return true, nil
	}}
	r := &recorder{}
	step2 := recTask(r, "step2", AllHosts(), "step1")

	g, _ := NewGraph([]Task{failOnH2, step2}, hosts(3))
	rep, err := Run(context.Background(), g, Options{Failure: ContinueOnFailure})
	if err == nil || !strings.Contains(err.Error(), `host h2, task step1: command "false" exited 1: boom`) {
		t.Fatalf("err = %v", err)
	}
	if r.index("step2@h1") < 0 || r.index("step2@h3") < 0 || r.index("step2@h2") >= 0 {
		t.Errorf("continue policy: step2 ran on %v, want h1 and h3 only", r.seq)
	}
	if rep.Count(StatusSkipped) != 1 {
		t.Errorf("skipped = %d, want 1", rep.Count(StatusSkipped))
	}
	if ce, ok := CommandError(rep.Failures()[0].Err); !ok || ce.ExitCode != 1 {
		t.Errorf("failure does not carry the command error: %v", rep.Failures()[0].Err)
	}

	// stop policy, serial: after h2 fails nothing new starts
	r2 := &recorder{}
	step2b := recTask(r2, "step2", AllHosts(), "step1")
	g, _ = NewGraph([]Task{failOnH2, step2b}, hosts(3))
	rep, _ = Run(context.Background(), g, Options{Concurrency: 1, Failure: StopOnFailure})
	// with one slot, earlier tasks go first: step1@h1, step1@h2 fails -> nothing else starts
	if len(r2.seq) != 0 {
		t.Errorf("stop policy ran %v after the failure", r2.seq)
	}
	if rep.Count(StatusSkipped) != 4 || rep.Count(StatusChanged) != 1 {
		t.Errorf("got %s, want step1@h1 changed and 4 skipped", rep.Totals())
	}
}

func TestCancellationLetsRunningTasksFinish(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	var finished atomic.Bool
	r := &recorder{}
	tasks := []Task{
		{Name: "long", Hosts: AllHosts(), Run: func(c context.Context, t *Target) (bool, error) {
			close(started)
			time.Sleep(50 * time.Millisecond) // a command that must not be cut in half
			finished.Store(c.Err() == nil)
			return true, nil
		}},
		recTask(r, "next", AllHosts(), "long"),
	}
	g, _ := NewGraph(tasks, hosts(1))
	go func() { <-started; cancel() }()
	rep, err := Run(ctx, g, Options{Grace: time.Second})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if !finished.Load() {
		t.Error("running task was cut off inside the grace period")
	}
	if len(r.seq) != 0 || rep.Count(StatusSkipped) != 1 {
		t.Errorf("tasks started after cancel: %v", r.seq)
	}

	// without grace, the running task's context is cancelled at once
	ctx, cancel = context.WithCancel(context.Background())
	started = make(chan struct{})
	tasks[0].Run = func(c context.Context, t *Target) (bool, error) {
		close(started)
		select {
		case <-c.Done():
			return false, c.Err()
		case <-time.After(5 * time.Second):
			return true, nil
		}
	}
	g, _ = NewGraph(tasks, hosts(1))
	go func() { <-started; cancel() }()
	t0 := time.Now()
	if _, err := Run(ctx, g, Options{Grace: -1}); err == nil {
		t.Error("want an error")
	}
	if time.Since(t0) > 4*time.Second {
		t.Error("no-grace cancellation did not interrupt the running task")
	}
}

func TestDryRunCallsOnlyCheck(t *testing.T) {
	var ran atomic.Int32
	task := Task{Name: "swap-off", Hosts: AllHosts(),
		Check: func(ctx context.Context, t *Target) (bool, error) { return t.Name == "h1", nil },
		Run:   func(ctx context.Context, t *Target) (bool, error) { ran.Add(1); return true, nil }}
	noCheck := Task{Name: "cmd", Hosts: AllHosts(), After: []string{"swap-off"},
		Run: func(ctx context.Context, t *Target) (bool, error) { ran.Add(1); return true, nil }}
	var looked atomic.Int32
	inspect := Task{Name: "facts", Hosts: AllHosts(), ReadOnly: true,
		Run: func(ctx context.Context, t *Target) (bool, error) { looked.Add(1); return false, nil }}
	rep := mustRun(t, []Task{inspect, task, noCheck}, hosts(2), Options{DryRun: true})
	if looked.Load() != 2 {
		t.Errorf("read-only task ran %d times in dry-run, want 2", looked.Load())
	}
	if ran.Load() != 0 {
		t.Fatalf("Run was called %d times in dry-run", ran.Load())
	}
	var plan strings.Builder
	rep.WritePlan(&plan)
	for _, want := range []string{"= swap-off", "h1", "~ swap-off", "would change", "~ cmd", "would run"} {
		if !strings.Contains(plan.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, plan.String())
		}
	}
	if rep.Count(StatusPlanned) != 3 || rep.Count(StatusOK) != 3 {
		t.Errorf("planned=%d ok=%d", rep.Count(StatusPlanned), rep.Count(StatusOK))
	}
}

func TestGraphValidation(t *testing.T) {
	run := func(ctx context.Context, t *Target) (bool, error) { return false, nil }
	cases := map[string][]Task{
		"depends on unknown task x": {{Name: "a", Hosts: AllHosts(), Run: run, After: []string{"x"}}},
		"defined twice":             {{Name: "a", Hosts: AllHosts(), Run: run}, {Name: "a", Hosts: AllHosts(), Run: run}},
		"cycle: a -> b -> a":        {{Name: "a", Hosts: AllHosts(), Run: run, After: []string{"b"}}, {Name: "b", Hosts: AllHosts(), Run: run, After: []string{"a"}}},
		"has no Run":                {{Name: "a", Hosts: AllHosts()}},
	}
	for want, tasks := range cases {
		if _, err := NewGraph(tasks, hosts(1)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want error %q, got %v", want, err)
		}
	}
}

func TestUnreachableHostNamed(t *testing.T) {
	hs := hosts(2)
	hs[1] = NewHost("db7", nil, func(context.Context) (connector.Connector, error) {
		return nil, errors.New("dial tcp 10.0.0.7:22: connect: no route to host")
	})
	r := &recorder{}
	g, _ := NewGraph([]Task{recTask(r, "a", AllHosts()), recTask(r, "b", AllHosts(), "a")}, hs)
	rep, err := Run(context.Background(), g, Options{Failure: ContinueOnFailure})
	if err == nil || !strings.Contains(err.Error(), "host db7, task a: dial tcp") {
		t.Errorf("err = %v", err)
	}
	if rep.Count(StatusFailed) != 1 || rep.Count(StatusSkipped) != 1 || r.index("b@h1") < 0 {
		t.Errorf("report: %s, ran %v", rep.Totals(), r.seq)
	}
}

func TestEventsAndTargetCommandsReachObservers(t *testing.T) {
	var mu sync.Mutex
	kinds := map[EventKind]int{}
	var warns []string
	obs := ObserverFunc(func(e Event) {
		mu.Lock()
		kinds[e.Kind]++
		if e.Warn {
			warns = append(warns, e.Message)
		}
		mu.Unlock()
	})
	hs := []*Host{NewHost("h1", nil, func(context.Context) (connector.Connector, error) {
		return &fakeConn{answer: func(cmd string) connector.Result {
			if cmd == "false" {
				return connector.Result{ExitCode: 1, Stderr: "nope"}
			}
			return connector.Result{Stdout: "hi"}
		}}, nil
	})}
	task := Task{Name: "t", Hosts: AllHosts(), Run: func(ctx context.Context, t *Target) (bool, error) {
		out, err := t.Run(ctx, "echo hi")
		if err != nil || out != "hi" {
			return false, fmt.Errorf("echo: %q %v", out, err)
		}
		t.Log.Info("said hi", "n", 1)
		t.Log.Warn("disk nearly full", "used", "90%")
		_, err = t.Sudo(ctx, "false")
		return false, err
	}}
	g, _ := NewGraph([]Task{task}, hs)
	_, err := Run(context.Background(), g, Options{Observer: obs})
	if err == nil || !strings.Contains(err.Error(), `command "false" exited 1: nope`) {
		t.Errorf("err = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if kinds[EventRunStart] != 1 || kinds[EventRunEnd] != 1 || kinds[EventTaskStart] != 1 || kinds[EventTaskEnd] != 1 || kinds[EventCommand] != 2 || kinds[EventLog] != 2 {
		t.Errorf("events: %v", kinds)
	}
	if len(warns) != 1 || warns[0] != "disk nearly full used=90%" {
		t.Errorf("warnings: %q, want the one t.Log.Warn", warns)
	}
}

type nilConn struct{ fakeConn }

func (*nilConn) Close() error { panic("Close on a connector whose dial failed") }

func TestFailedDialLeavesNothingToClose(t *testing.T) {
	h := NewHost("h1", nil, func(context.Context) (connector.Connector, error) {
		var c *nilConn // a typed nil, as a dial function returning (*T)(nil), err does
		return c, errors.New("refused")
	})
	if _, err := h.Connector(context.Background()); err == nil {
		t.Fatal("want the dial error")
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSkippedByConfigurationLetsLaterTasksRun(t *testing.T) {
	r := &recorder{}
	fail := Task{Name: "bad", Hosts: AllHosts(), Run: func(ctx context.Context, t *Target) (bool, error) {
		if t.Name == "h2" {
			return false, errors.New("boom")
		}
		return false, nil
	}}
	left := recTask(r, "left-out", AllHosts())
	left.Skip = "not configured"
	after := recTask(r, "after", AllHosts(), "left-out")
	// a left-out task after a failure still stops what follows it on that host
	left2 := recTask(r, "left-out-2", AllHosts(), "bad")
	left2.Skip = "not configured"
	after2 := recTask(r, "after-2", AllHosts(), "left-out-2")
	g, err := NewGraph([]Task{fail, left, after, left2, after2}, hosts(2))
	if err != nil {
		t.Fatal(err)
	}
	rep, _ := Run(context.Background(), g, Options{Failure: ContinueOnFailure})
	if r.index("left-out@h1") >= 0 || r.index("left-out-2@h1") >= 0 {
		t.Errorf("a left-out task ran: %v", r.seq)
	}
	if r.index("after@h1") < 0 || r.index("after@h2") < 0 || r.index("after-2@h1") < 0 {
		t.Errorf("tasks after a left-out task did not run: %v", r.seq)
	}
	if r.index("after-2@h2") >= 0 {
		t.Errorf("after-2 ran on h2 after a failure: %v", r.seq)
	}
	var plan strings.Builder
	rep.WritePlan(&plan)
	if !strings.Contains(plan.String(), "skipped: not configured") {
		t.Errorf("plan lacks the reason:\n%s", plan.String())
	}
}

// fastRedial keeps the redial tests quick.
var fastRedial = retry.Policy{Attempts: 6, Initial: time.Millisecond, Cap: 5 * time.Millisecond, Jitter: 1}

func TestRetriedTaskRedials(t *testing.T) {
	var dials atomic.Int32
	h := NewHost("h1", nil, func(context.Context) (connector.Connector, error) {
		if dials.Add(1) == 1 {
			return nil, errors.New("dial tcp 10.0.0.1:22: connect: no route to host") // not transient
		}
		return &fakeConn{}, nil
	})
	task := Task{Name: "facts", Hosts: AllHosts(), Retries: 1, Backoff: time.Millisecond,
		Run: func(context.Context, *Target) (bool, error) { return false, nil }}
	rep := mustRun(t, []Task{task}, []*Host{h}, Options{Redial: fastRedial})
	if r := rep.Results[0]; r.Status != StatusOK || r.Attempts != 2 || dials.Load() != 2 {
		t.Errorf("got %s after %d attempts and %d dials, want ok after a second dial", r.Status, r.Attempts, dials.Load())
	}
}

func TestTransientDialErrorsCostARedialNotTheHost(t *testing.T) {
	var dials atomic.Int32
	h := NewHost("h1", nil, func(context.Context) (connector.Connector, error) {
		if dials.Add(1) <= 3 {
			return nil, &connector.TransientError{Err: errors.New("ssh: handshake failed: EOF")}
		}
		return &fakeConn{}, nil
	})
	var logs []string
	obs := ObserverFunc(func(e Event) {
		if e.Kind == EventLog {
			logs = append(logs, e.Message)
		}
	})
	task := Task{Name: "a", Hosts: AllHosts(), Run: func(context.Context, *Target) (bool, error) { return true, nil }}
	rep := mustRun(t, []Task{task}, []*Host{h}, Options{Redial: fastRedial, Observer: obs})
	if r := rep.Results[0]; r.Status != StatusChanged || r.Attempts != 1 || rep.Redials != 3 {
		t.Errorf("got %s, %d attempts, %d redials; want changed in 1 attempt after 3 redials", r.Status, r.Attempts, rep.Redials)
	}
	if len(logs) != 3 || !strings.Contains(logs[0], "redialing in") || !strings.Contains(logs[0], "handshake failed: EOF") {
		t.Errorf("logs: %q", logs)
	}

	// the redial budget is bounded: a host that keeps dropping fails, named, after it
	dials.Store(-100)
	h = NewHost("h1", nil, h.dial)
	g, _ := NewGraph([]Task{task}, []*Host{h})
	rep, err := Run(context.Background(), g, Options{Redial: retry.Policy{Attempts: 3, Initial: time.Millisecond}})
	if err == nil || !strings.Contains(err.Error(), "host h1, task a: ssh: handshake failed: EOF") || rep.Redials != 2 {
		t.Errorf("err = %v, redials = %d", err, rep.Redials)
	}
}

// brokenConn fails its first command as a connection that broke before the command started.
type brokenConn struct {
	fakeConn
	failed, closed atomic.Bool
}

func (b *brokenConn) Exec(ctx context.Context, cmd string, o connector.ExecOptions) (connector.Result, error) {
	if b.failed.CompareAndSwap(false, true) {
		return connector.Result{}, &connector.TransientError{Err: errors.New("host h1: open session: EOF")}
	}
	return b.fakeConn.Exec(ctx, cmd, o)
}
func (b *brokenConn) Close() error { b.closed.Store(true); return nil }

func TestTransientSessionErrorDropsTheConnection(t *testing.T) {
	var conns []*brokenConn
	h := NewHost("h1", nil, func(context.Context) (connector.Connector, error) {
		c := &brokenConn{}
		if len(conns) > 0 {
			c.failed.Store(true) // the new connection works
		}
		conns = append(conns, c)
		return c, nil
	})
	task := Task{Name: "a", Hosts: AllHosts(), Run: func(ctx context.Context, t *Target) (bool, error) {
		_, err := t.Run(ctx, "true")
		return true, err
	}}
	rep := mustRun(t, []Task{task}, []*Host{h}, Options{Redial: fastRedial})
	if len(conns) != 2 || !conns[0].closed.Load() || rep.Results[0].Status != StatusChanged {
		t.Errorf("%d connections (first closed: %v), status %s; want the broken one closed and a second one used",
			len(conns), len(conns) > 0 && conns[0].closed.Load(), rep.Results[0].Status)
	}
}

func TestHandshakesBoundedApartFromConcurrency(t *testing.T) {
	var cur, peak atomic.Int32
	var hs []*Host
	for i := range 24 {
		hs = append(hs, NewHost(fmt.Sprintf("h%d", i), nil, func(context.Context) (connector.Connector, error) {
			n := cur.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(10 * time.Millisecond)
			cur.Add(-1)
			return &fakeConn{}, nil
		}))
	}
	var running, runPeak atomic.Int32
	task := Task{Name: "a", Hosts: AllHosts(), Run: func(context.Context, *Target) (bool, error) {
		n := running.Add(1)
		for p := runPeak.Load(); n > p && !runPeak.CompareAndSwap(p, n); p = runPeak.Load() {
		}
		time.Sleep(30 * time.Millisecond)
		running.Add(-1)
		return true, nil
	}}
	rep := mustRun(t, []Task{task}, hs, Options{Concurrency: 24, Handshakes: 3})
	if peak.Load() != 3 || rep.PeakHandshakes != 3 {
		t.Errorf("peak dials = %d (report %d), want 3", peak.Load(), rep.PeakHandshakes)
	}
	if runPeak.Load() <= 3 {
		t.Errorf("task concurrency peaked at %d: the dial bound must not bound tasks", runPeak.Load())
	}
}

func TestDropFailedHostsIsTheDefault(t *testing.T) {
	r := &recorder{}
	hs := hosts(4)
	failOn := func(name string, bad ...string) Task {
		return Task{Name: name, Hosts: AllHosts(), Run: func(ctx context.Context, t *Target) (bool, error) {
			r.add(name + "@" + t.Name)
			if slices.Contains(bad, t.Name) {
				return false, errors.New("boom")
			}
			return true, nil
		}}
	}
	tasks := []Task{
		failOn("step1", "h2"),
		recTask(r, "step2", AllHosts(), "step1"),
		recTask(r, "other", AllHosts()), // independent of step1: still not run on the dropped h2
		{Name: "sync", Hosts: AllHosts(), After: []string{"step2"}, Barrier: true, Run: func(ctx context.Context, tg *Target) (bool, error) {
			r.add("sync@" + tg.Name)
			return true, nil
		}},
	}
	g, _ := NewGraph(tasks, hs)
	rep, err := Run(context.Background(), g, Options{Concurrency: 1})
	if err == nil || !strings.Contains(err.Error(), "1 of 4 hosts failed: h2") || !strings.Contains(err.Error(), "host h2, task step1: boom") {
		t.Fatalf("err = %v", err)
	}
	for _, h := range []string{"h1", "h3", "h4"} {
		for _, task := range []string{"step2", "other", "sync"} {
			if r.index(task+"@"+h) < 0 {
				t.Errorf("%s did not run on %s: %v", task, h, r.seq)
			}
		}
	}
	for _, task := range []string{"step2", "other", "sync"} {
		if r.index(task+"@h2") >= 0 {
			t.Errorf("%s ran on the failed host h2", task)
		}
	}
	if rep.Count(StatusSkipped) != 3 || rep.Stopped != "" {
		t.Errorf("got %s, stopped %q; want h2's 3 other tasks skipped", rep.Totals(), rep.Stopped)
	}
	var out strings.Builder
	rep.WriteTable(&out)
	if !strings.Contains(out.String(), "1 of 4 hosts failed: h2") {
		t.Errorf("summary lacks the failed hosts:\n%s", out.String())
	}

	// more than MaxFailPercent of the hosts failed: the barrier stops the run
	r.seq = nil
	tasks[0] = failOn("step1", "h2", "h4")
	g, _ = NewGraph(tasks, hosts(4))
	rep, err = Run(context.Background(), g, Options{Concurrency: 1, MaxFailPercent: 25})
	if err == nil || !strings.Contains(err.Error(), "run stopped at sync: 2 of 4 hosts failed, more than the 25% allowed") {
		t.Errorf("err = %v", err)
	}
	if r.index("sync@h1") >= 0 || r.index("sync@h3") >= 0 || rep.Count(StatusSkipped) < 4+2 || rep.Stopped == "" {
		t.Errorf("sync ran or wrong skips: %s, %v", rep.Totals(), r.seq)
	}
	// at 50% allowed, it goes on
	r.seq = nil
	g, _ = NewGraph(tasks, hosts(4))
	_, _ = Run(context.Background(), g, Options{Concurrency: 1, MaxFailPercent: 50})
	if r.index("sync@h1") < 0 || r.index("sync@h3") < 0 {
		t.Errorf("sync did not run within the allowed failures: %v", r.seq)
	}
}

func TestDropFailedHostsSkipsWhatNeedsTheFailedHost(t *testing.T) {
	r := &recorder{}
	hs := hosts(3)
	hs[0].Roles = []string{"cp"}
	tasks := []Task{
		{Name: "init", Hosts: FirstOf("cp"), Run: func(context.Context, *Target) (bool, error) { return false, errors.New("kubeadm init failed") }},
		recTask(r, "join", Named("h2", "h3"), "init"),
		recTask(r, "packages", AllHosts()),
	}
	g, _ := NewGraph(tasks, hs)
	rep, err := Run(context.Background(), g, Options{Concurrency: 1})
	if err == nil || rep.Count(StatusSkipped) != 3 {
		t.Fatalf("err = %v, %s; want join skipped on h2, h3 and packages on h1", err, rep.Totals())
	}
	if r.index("join@h2") >= 0 || r.index("packages@h2") < 0 || r.index("packages@h3") < 0 {
		t.Errorf("ran %v", r.seq)
	}
}

// A gate (create cluster's precheck) that fails on one host stops what follows on every host,
// under each failure policy, while every host's own gate instance still runs and reports.
func TestGateFailureStopsWhatFollowsEverywhere(t *testing.T) {
	for _, policy := range []FailurePolicy{DropFailedHosts, ContinueOnFailure, StopOnFailure} {
		r := &recorder{}
		tasks := []Task{
			{Name: "precheck", Hosts: AllHosts(), Barrier: true, Gate: true, Run: func(ctx context.Context, tg *Target) (bool, error) {
				r.add("precheck@" + tg.Name)
				if tg.Name == "h1" {
					return false, errors.New("2 CPUs needed")
				}
				return false, nil
			}},
			recTask(r, "os", AllHosts(), "precheck"),
			recTask(r, "after-os", AllHosts(), "os"),
		}
		g, _ := NewGraph(tasks, hosts(3))
		rep, err := Run(context.Background(), g, Options{Concurrency: 4, Failure: policy})
		if err == nil {
			t.Errorf("policy %v: no error", policy)
		}
		for _, h := range []string{"h1", "h2", "h3"} {
			if r.index("os@"+h) >= 0 || r.index("after-os@"+h) >= 0 {
				t.Errorf("policy %v: a task after the failed gate ran on %s: %v", policy, h, r.seq)
			}
			if policy != StopOnFailure && r.index("precheck@"+h) < 0 {
				t.Errorf("policy %v: the gate did not run on %s", policy, h)
			}
		}
		if rep.Count(StatusSkipped) != 6 {
			t.Errorf("policy %v: %s, want the 6 later units skipped", policy, rep.Totals())
		}
	}
}

// TestDryRunPlansWhatIsNotMadeYet: in a dry run a check that fails on what an earlier task
// makes (pipeline.NotYet) plans its task; in a run the same check fails it.
func TestDryRunPlansWhatIsNotMadeYet(t *testing.T) {
	missing := NotYet(fmt.Errorf("admin kubeconfig /w/config: %w", fs.ErrNotExist))
	if missing.Error() != "admin kubeconfig /w/config: file does not exist" || !errors.Is(missing, fs.ErrNotExist) || !errors.Is(missing, ErrNotYet) {
		t.Fatalf("NotYet: %q", missing)
	}
	tasks := []Task{{Name: "apply", Hosts: AllHosts(),
		Check: func(context.Context, *Target) (bool, error) { return false, fmt.Errorf("check: %w", missing) },
		Run:   func(context.Context, *Target) (bool, error) { return true, nil }}}
	for _, dry := range []bool{true, false} {
		h := NewHost("h1", nil, func(context.Context) (connector.Connector, error) { return &fakeConn{}, nil })
		g, err := NewGraph(tasks, []*Host{h})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := Run(context.Background(), g, Options{DryRun: dry})
		if dry && (err != nil || rep.Count(StatusPlanned) != 1) {
			t.Errorf("dry run: %v, %s", err, rep.Totals())
		}
		if !dry && (err == nil || !strings.Contains(err.Error(), "admin kubeconfig /w/config") || rep.Count(StatusFailed) != 1) {
			t.Errorf("run: %v, %s", err, rep.Totals())
		}
	}
}
