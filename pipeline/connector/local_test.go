package connector

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestLocalExec(t *testing.T) {
	l := NewLocal()
	r := mustExec(t, l, `echo out; echo err >&2; exit 5`, ExecOptions{})
	if r.Stdout != "out\n" || r.Stderr != "err\n" || r.ExitCode != 5 {
		t.Fatalf("%+v", r)
	}
	if r := mustExec(t, l, "cat", ExecOptions{Stdin: []byte("in")}); r.Stdout != "in" {
		t.Fatalf("%+v", r)
	}
	if r := mustExec(t, l, "kill -9 $$", ExecOptions{}); r.ExitCode != 137 {
		t.Fatalf("%+v", r)
	}
	for _, arg := range quoteCases {
		if r := mustExec(t, l, Cmd("printf", "%s", arg), ExecOptions{}); r.Stdout != arg {
			t.Errorf("printf %q: got %q", arg, r.Stdout)
		}
	}
}

func TestLocalExecCancelKillsGroup(t *testing.T) {
	l := NewLocal()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	// A background child holding stdout open would block Wait without the group kill.
	_, err := l.Exec(ctx, "sleep 30 & sleep 30; wait", ExecOptions{})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "host localhost") {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
}
