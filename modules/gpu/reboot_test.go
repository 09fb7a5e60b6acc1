package gpu

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

// rebootHost is a GPU host whose old NVIDIA driver is in use: the driver's script exits 3
// (only a reboot frees it) until the host has rebooted; then the script installs, and the
// driver loads.
type rebootHost struct {
	mu       sync.Mutex
	boot     int
	rebooted bool
	cmds     []string
}

type rebootConn struct {
	h    *rebootHost
	boot int
}

func (c *rebootConn) Exec(_ context.Context, cmd string, _ connector.ExecOptions) (connector.Result, error) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	c.h.cmds = append(c.h.cmds, fmt.Sprintf("boot %d: %s", c.boot, strings.SplitN(cmd, "\n", 3)[0]))
	r := connector.Result{Cmd: cmd}
	switch {
	case strings.Contains(cmd, "boot_id"):
		r.Stdout = fmt.Sprintf("boot-%d\n", c.boot)
	case strings.Contains(cmd, "systemctl reboot"):
		c.h.rebooted = true
	case strings.HasPrefix(cmd, DriverLoaded(testDriver)):
		r.ExitCode = 1 // the check: the version is not loaded (before and after a reboot)
	case strings.Contains(cmd, "--silent --dkms") && c.boot == 0:
		r.ExitCode, r.Stderr = needsReboot, "NVIDIA driver 550.1 is in use"
	}
	return r, nil
}
func (c *rebootConn) Upload(context.Context, connector.File) (bool, error) { return true, nil }
func (c *rebootConn) Fetch(context.Context, string) ([]byte, error)        { return nil, nil }
func (c *rebootConn) Close() error                                         { return nil }

func (h *rebootHost) dial(context.Context) (connector.Connector, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rebooted {
		h.rebooted = false
		h.boot++
	}
	return &rebootConn{h: h, boot: h.boot}, nil
}

// TestDriverReboot: a host whose old driver is in use fails asking for a reboot; with
// --allow-reboot (AllowReboot) kk reboots it, waits for the new boot and installs the driver
// there.
func TestDriverReboot(t *testing.T) {
	for _, allow := range []bool{false, true} {
		rh := &rebootHost{}
		h := pipeline.NewHost("g1", nil, rh.dial)
		h.SetFacts(&pipeline.Facts{Arch: "amd64", PackageManager: "apt-get", Init: "systemd", Privileged: true, NvidiaPCI: []string{"0000:17:00.0 0x2330"}})
		s := driverSpec(t)
		s.AllowReboot = allow
		tasks, err := DriverTasks(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		var driver []pipeline.Task
		for _, task := range tasks {
			if task.Name == TaskDriver {
				task.After = nil
				driver = append(driver, task)
			}
		}
		g, err := pipeline.NewGraph(driver, []*pipeline.Host{h})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := pipeline.Run(context.Background(), g, pipeline.Options{Name: "create cluster"})
		log := strings.Join(rh.cmds, "\n")
		if !allow {
			if err == nil || !strings.Contains(err.Error(), "is in use") || strings.Contains(log, "systemctl reboot") {
				t.Errorf("without --allow-reboot: %v\n%s", err, log)
			}
			continue
		}
		if err != nil || rep.Count(pipeline.StatusChanged) != 1 {
			t.Fatalf("with --allow-reboot: %v\n%s", err, log)
		}
		if !strings.Contains(log, "boot 0: nohup sh -c 'sleep 2; systemctl reboot'") || !strings.Contains(log, "boot 1: set -e") {
			t.Errorf("with --allow-reboot: want a reboot, then the driver's script on the new boot:\n%s", log)
		}
	}
}
