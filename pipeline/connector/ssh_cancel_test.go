package connector

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestPgidWriter(t *testing.T) {
	cases := []struct {
		writes []string
		pgid   int
		rest   string
	}{
		{[]string{"kk-pgid:42\nerr\n"}, 42, "err\n"},
		{[]string{"kk-", "pgid:4", "2\n", "e", "rr"}, 42, "err"},
		{[]string{"sudo: oops\n", "kk-pgid:7\n"}, 0, "sudo: oops\nkk-pgid:7\n"},
		{[]string{"k", "x"}, 0, "kx"},
		{[]string{"kk-pgid:"}, 0, "kk-pgid:"},
		{nil, 0, ""},
	}
	for _, c := range cases {
		w := &pgidWriter{}
		for _, s := range c.writes {
			w.Write([]byte(s))
		}
		if w.PGID() != c.pgid || w.String() != c.rest {
			t.Errorf("%q: pgid %d rest %q, want %d %q", c.writes, w.PGID(), w.String(), c.pgid, c.rest)
		}
	}
}

// Cancelling kills the whole remote command tree even when the server ignores
// the signal request (as sshd does for sudo-run commands).
func TestExecCancelKillsRemoteGroup(t *testing.T) {
	for _, sudo := range []bool{false, true} {
		t.Run(fmt.Sprint("sudo=", sudo), func(t *testing.T) {
			srv := newTestServer(t, func(s *testServer) {
				s.Password, s.IgnoreSignals = "pw", true
				if sudo {
					fakeSudo(t, s, "pw", false)
				}
			})
			c := configFor(t, srv, "n1")
			if sudo {
				c.User = "kube"
			}
			s := dial(t, c)
			marker := fmt.Sprintf("%d.%d", time.Now().UnixNano()%1000+100, time.Now().Nanosecond()%1000)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			_, err := s.Exec(ctx, "sleep "+marker+" & sleep "+marker+"; wait", ExecOptions{Sudo: sudo})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %v", err)
			}
			deadline := time.Now().Add(3 * time.Second)
			for {
				out, _ := exec.Command("pgrep", "-f", "sleep "+marker).Output()
				if strings.TrimSpace(string(out)) == "" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("remote processes survived: %s", out)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

func TestExecStderrHasNoPgidLine(t *testing.T) {
	srv := newTestServer(t, func(s *testServer) { s.Password = "pw" })
	s := dial(t, configFor(t, srv, "n1"))
	r := mustExec(t, s, "echo e >&2", ExecOptions{})
	if r.Stderr != "e\n" {
		t.Fatalf("stderr %q", r.Stderr)
	}
}
