package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kk-project/kk/pipeline/connector"
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
	obs := ObserverFunc(func(e Event) { mu.Lock(); kinds[e.Kind]++; mu.Unlock() })
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
	if kinds[EventRunStart] != 1 || kinds[EventRunEnd] != 1 || kinds[EventTaskStart] != 1 || kinds[EventTaskEnd] != 1 || kinds[EventCommand] != 2 || kinds[EventLog] != 1 {
		t.Errorf("events: %v", kinds)
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
