package pipeline

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kk-project/kk/pipeline/connector"
)

// bootIDCmd prints the kernel's ID of this boot, new at every boot.
const bootIDCmd = "cat /proc/sys/kernel/random/boot_id"

// rebootPoll is how often Reboot asks whether the host is back.
var rebootPoll = 5 * time.Second

// Reboot restarts the host and waits, up to within, until it answers again from a new boot
// (its boot ID changed); t's connection is then the new one. A task reboots only where the
// run allows it (kk's --allow-reboot): the host's other tasks lose their connection meanwhile,
// and their retries dial it again.
func (t *Target) Reboot(ctx context.Context, within time.Duration) error {
	before, err := t.Sudo(ctx, bootIDCmd)
	if err != nil {
		return fmt.Errorf("before the reboot: %w", err)
	}
	before = strings.TrimSpace(before)
	t.Log.Warn("rebooting the host", "within", within)
	// in the background, a moment later: the command returns before the connection drops
	if _, err := t.Sudo(ctx, "nohup sh -c 'sleep 2; systemctl reboot' >/dev/null 2>&1 &"); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	t.Host.forget(t.Conn)
	wctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	last := "it has not answered yet"
	for {
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("the host is not back %s after its reboot: %s", within, last)
		case <-time.After(rebootPoll):
		}
		conn, err := t.Host.connect(wctx, nil)
		if err != nil {
			last = err.Error()
			continue
		}
		res, err := conn.Exec(wctx, bootIDCmd, connector.ExecOptions{Sudo: true})
		switch now := strings.TrimSpace(res.Stdout); {
		case err != nil || res.ExitCode != 0:
			last = fmt.Sprintf("%s: exit %d, %v", bootIDCmd, res.ExitCode, err)
		case now == before:
			last = "it still runs the boot before"
		default:
			t.Conn = conn
			t.Log.Info("the host is back from its reboot")
			return nil
		}
		t.Host.forget(conn) // the old boot's connection, or a broken one
	}
}
