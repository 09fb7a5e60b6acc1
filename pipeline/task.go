package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kk-project/kk/pipeline/connector"
)

// Task is one step of a pipeline, run on every host its selector picks.
//
// Idempotency lives in Check: when it reports the host is already in the desired state, Run is
// not called and the result is "ok". In dry-run only Check is called, so a plan says precisely
// which hosts would change. Run reports whether it changed the host.
type Task struct {
	Name string
	// Desc says in a few words what the task does (shown in plans).
	Desc  string
	Hosts Selector
	// After names tasks that must finish first. For a host that a dependency also runs on, only
	// that host's instance is awaited (hosts pipeline independently); otherwise every instance.
	After []string
	// Barrier makes the task wait until each dependency has finished on every one of its hosts.
	Barrier bool
	// Gate makes the task a checkpoint of the whole run (create cluster's precheck): the tasks
	// after it wait for it on every host, and when it fails on any host they run on none,
	// whatever the failure policy, so that nothing is changed on a cluster found unfit. The
	// gate's own instances all run (every host's problems are reported).
	Gate bool

	// ReadOnly marks a task that only inspects hosts (gathering facts): it runs in dry-run too.
	ReadOnly bool

	// Skip, when not empty, leaves the task out by configuration: it runs on no host, each of
	// its results is skipped with this reason (so plans say why), and the tasks after it run as
	// if it had finished.
	Skip string

	Check func(ctx context.Context, t *Target) (done bool, err error)
	Run   func(ctx context.Context, t *Target) (changed bool, err error)

	Retries int           // extra attempts after a failure
	Backoff time.Duration // wait before the first retry, doubled each time (default 1s)
	Timeout time.Duration // per attempt; 0 = the engine's default
}

// Target is one task running on one host: what Check and Run receive.
type Target struct {
	*Host
	Task   string
	Conn   connector.Connector
	Log    *slog.Logger
	DryRun bool
	emit   func(Event)
}

// Exec runs a command on the host (as the login user) and records it in the host's log.
// A non-zero exit is not an error here: look at the result.
func (t *Target) Exec(ctx context.Context, cmd string, opts connector.ExecOptions) (connector.Result, error) {
	start := time.Now()
	res, err := t.Conn.Exec(ctx, cmd, opts)
	t.emit(Event{Kind: EventCommand, Task: t.Task, Host: t.Name, Cmd: cmd, Sudo: opts.Sudo,
		ExitCode: res.ExitCode, Stdout: res.Stdout, Stderr: res.Stderr, Err: err, Duration: time.Since(start)})
	return res, err
}

// Run runs a command as the login user and returns its stdout; a non-zero exit is an error.
func (t *Target) Run(ctx context.Context, cmd string) (string, error) {
	return t.run(ctx, cmd, connector.ExecOptions{})
}

// Sudo runs a command as root and returns its stdout; a non-zero exit is an error.
func (t *Target) Sudo(ctx context.Context, cmd string) (string, error) {
	return t.run(ctx, cmd, connector.ExecOptions{Sudo: true})
}

// Test runs a command as root and reports whether it exited 0 (a check, not an action).
func (t *Target) Test(ctx context.Context, cmd string) (bool, error) {
	res, err := t.Exec(ctx, cmd, connector.ExecOptions{Sudo: true})
	if err != nil {
		return false, err
	}
	return res.ExitCode == 0, nil
}

func (t *Target) run(ctx context.Context, cmd string, opts connector.ExecOptions) (string, error) {
	res, err := t.Exec(ctx, cmd, opts)
	if err != nil {
		return "", err
	}
	return res.Stdout, res.Err()
}

// Upload writes a file on the host (skipped when identical) and records it in the host's log.
func (t *Target) Upload(ctx context.Context, f connector.File) (bool, error) {
	start := time.Now()
	changed, err := t.Conn.Upload(ctx, f)
	t.emit(Event{Kind: EventUpload, Task: t.Task, Host: t.Name, Path: f.Path, Changed: changed, Err: err, Duration: time.Since(start)})
	return changed, err
}

// ErrNotYet marks a check's error on what an earlier task makes (a cluster's admin
// kubeconfig before kubeadm init): in a dry run, where that task is only planned, the check's
// task is planned too rather than failed. In a run it is an error like any other.
var ErrNotYet = errors.New("not made yet")

// NotYet marks err as ErrNotYet, its message unchanged.
func NotYet(err error) error { return notYet{err} }

type notYet struct{ error }

func (e notYet) Unwrap() []error { return []error{e.error, ErrNotYet} }

// UploadAll uploads files (each skipped when identical) as connector.UploadAll does, and
// reports whether any was written.
func (t *Target) UploadAll(ctx context.Context, files []connector.File) (bool, error) {
	start := time.Now()
	changed, err := connector.UploadAll(ctx, t.Conn, files)
	d := time.Since(start)
	any := false
	for i, f := range files {
		any = any || changed[i]
		if changed[i] || err == nil {
			t.emit(Event{Kind: EventUpload, Task: t.Task, Host: t.Name, Path: f.Path, Changed: changed[i], Duration: d})
		}
	}
	if err != nil {
		t.emit(Event{Kind: EventUpload, Task: t.Task, Host: t.Name, Path: fmt.Sprintf("(%d files)", len(files)), Err: err, Duration: d})
	}
	return any, err
}

// Fetch reads a file from the host.
func (t *Target) Fetch(ctx context.Context, path string) ([]byte, error) {
	return t.Conn.Fetch(ctx, path)
}

// Status is the outcome of one task on one host.
type Status int

const (
	StatusOK      Status = iota // already in the desired state, nothing changed
	StatusChanged               // the task changed the host
	StatusSkipped               // not run: a dependency failed or the run stopped
	StatusFailed                // the task failed
	StatusPlanned               // dry-run: would change (or would run, when the task cannot tell)
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusChanged:
		return "changed"
	case StatusSkipped:
		return "skipped"
	case StatusFailed:
		return "failed"
	case StatusPlanned:
		return "would change"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// Result of one task on one host.
type Result struct {
	Task     string
	Host     string
	Status   Status
	Start    time.Time // zero for a task skipped without running
	Duration time.Duration
	Attempts int
	Message  string // why it was skipped, or what a dry-run would do
	Err      error  // a *TaskError when Status is StatusFailed
}

// TaskError says which host and which task failed, and why (often a *connector.CommandError
// carrying the command, exit code and stderr).
type TaskError struct {
	Host string
	Task string
	Err  error
}

func (e *TaskError) Error() string { return fmt.Sprintf("host %s, task %s: %v", e.Host, e.Task, e.Err) }
func (e *TaskError) Unwrap() error { return e.Err }

// CommandError returns the failed command behind err, if any.
func CommandError(err error) (*connector.CommandError, bool) {
	var ce *connector.CommandError
	ok := errors.As(err, &ce)
	return ce, ok
}
