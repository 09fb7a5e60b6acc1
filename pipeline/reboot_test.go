package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kk-project/kk/pipeline/connector"
)

// bootingHost is a host whose connections answer the boot ID of the boot they were dialed in;
// a reboot (asked on a connection) makes the next dials fail, then answer from a new boot.
type bootingHost struct {
	mu       sync.Mutex
	boot     int
	down     int // dials refused before the host is back
	rebooted bool
	dials    int
	cmds     []string
}

type bootConn struct {
	h    *bootingHost
	boot int
}

func (c *bootConn) Exec(_ context.Context, cmd string, _ connector.ExecOptions) (connector.Result, error) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	c.h.cmds = append(c.h.cmds, cmd)
	switch {
	case cmd == bootIDCmd:
		return connector.Result{Cmd: cmd, Stdout: "boot-" + string(rune('0'+c.boot)) + "\n"}, nil
	case strings.Contains(cmd, "systemctl reboot"):
		c.h.rebooted = true
	}
	return connector.Result{Cmd: cmd}, nil
}
func (c *bootConn) Upload(context.Context, connector.File) (bool, error) { return false, nil }
func (c *bootConn) Fetch(context.Context, string) ([]byte, error)        { return nil, nil }
func (c *bootConn) Close() error                                         { return nil }

func (h *bootingHost) dial(context.Context) (connector.Connector, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dials++
	if h.rebooted && h.down > 0 {
		h.down--
		return nil, errors.New("connection refused")
	}
	if h.rebooted {
		h.rebooted = false
		h.boot++
	}
	return &bootConn{h: h, boot: h.boot}, nil
}

// Reboot asks for the reboot, waits through refused dials for a connection from the new boot,
// and leaves the target on it; a host that never comes back fails naming why.
func TestReboot(t *testing.T) {
	saved := rebootPoll
	rebootPoll = time.Millisecond
	defer func() { rebootPoll = saved }()

	bh := &bootingHost{down: 3}
	h := NewHost("g1", nil, bh.dial)
	conn, err := h.Connector(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tg := &Target{Host: h, Conn: conn, Log: slog.New(slog.DiscardHandler), emit: func(Event) {}}
	if err := tg.Reboot(context.Background(), time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := tg.Conn.(*bootConn).boot; got != 1 || bh.dials != 5 {
		t.Errorf("after the reboot: connection of boot %d after %d dials, want boot 1 after 5 (1, 3 refused, the new one)", got, bh.dials)
	}
	if c, _ := h.Connector(context.Background()); c != tg.Conn {
		t.Error("the host's shared connection is not the new one")
	}

	// never back
	bh = &bootingHost{down: 1 << 30}
	h = NewHost("g2", nil, bh.dial)
	conn, _ = h.Connector(context.Background())
	tg = &Target{Host: h, Conn: conn, Log: slog.New(slog.DiscardHandler), emit: func(Event) {}}
	err = tg.Reboot(context.Background(), 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "is not back") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("a host that does not come back: %v", err)
	}
}
