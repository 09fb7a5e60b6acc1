package connector

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Cancelling an SSH command: a signal request or closing the session does not
// reliably stop it (OpenSSH cannot signal a process that sudo runs as root, and
// children of the shell never see the signal). So every command first reports its
// process group on stderr — sshd starts each session's command in a new session
// (setsid), so that group holds the whole command tree — and on cancellation a
// second, short command kills the group.

// pgidPrefix prints "kk-pgid:<pgid>" as the command's first stderr line (reading
// /proc, no extra process). On hosts without /proc it prints kk-pgid:0.
const pgidPrefix = `read -r _ _ _ _ kk_pg _ 2>/dev/null </proc/$$/stat; echo "kk-pgid:${kk_pg:-0}" >&2` + "\n"

const pgidMark = "kk-pgid:"

// withPgid prepends pgidPrefix to a shell script.
func withPgid(script string) string { return pgidPrefix + script }

// killGroupCmd kills process group pg, unless its leader is sshd itself (a server
// that did not start the command in its own session).
func killGroupCmd(pg int) string {
	p := strconv.Itoa(pg)
	return `[ "$(cat /proc/` + p + `/comm 2>/dev/null)" != sshd ] && kill -s KILL -- -` + p + ` 2>/dev/null; true`
}

// pgidWriter is the stderr of a command run with withPgid: it removes the
// kk-pgid line (expected first) and keeps the number. Safe for concurrent use.
type pgidWriter struct {
	mu   sync.Mutex
	head []byte // bytes before the first newline, while undecided
	done bool
	pgid int
	buf  bytes.Buffer
}

func (w *pgidWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return w.buf.Write(p)
	}
	w.head = append(w.head, p...)
	i := bytes.IndexByte(w.head, '\n')
	if i < 0 {
		if len(w.head) > 64 || !bytes.HasPrefix([]byte(pgidMark), w.head[:min(len(w.head), len(pgidMark))]) {
			w.flush(w.head)
		}
		return len(p), nil
	}
	if v, ok := strings.CutPrefix(string(w.head[:i]), pgidMark); ok {
		w.pgid, _ = strconv.Atoi(v)
		w.flush(w.head[i+1:])
	} else {
		w.flush(w.head)
	}
	return len(p), nil
}

func (w *pgidWriter) flush(b []byte) {
	w.buf.Write(b)
	w.head, w.done = nil, true
}

// String returns stderr without the kk-pgid line.
func (w *pgidWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String() + string(w.head)
}

// PGID returns the reported process group, or 0.
func (w *pgidWriter) PGID() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pgid
}

// killRemote kills process group pg on the host, best effort, within a few
// seconds, even though ctx is already cancelled.
func (s *SSH) killRemote(ctx context.Context, pg int, mode sudoMode) {
	if pg <= 1 {
		return
	}
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	line, stdin := Cmd("/bin/sh", "-c", killGroupCmd(pg)), []byte(nil)
	if mode != sudoNone {
		line, stdin = s.sudoWrap(mode, line, nil)
	}
	_, _, _, _, _ = s.run(kctx, line, stdin)
}
