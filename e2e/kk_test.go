//go:build integration || e2e

// Package e2e drives the kk binary against real test machines (e2e/testbed).
package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/e2e/testbed"
	"github.com/kk-project/kk/pipeline/connector"
)

// kkBinary returns the kk binary under test: $KK_BIN (make integration builds it) or a fresh build.
func kkBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("KK_BIN"); b != "" {
		return b
	}
	out := filepath.Join(t.TempDir(), "kk")
	cmd := exec.Command("go", "build", "-o", out, "../cmd/kk")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build kk: %v\n%s", err, b)
	}
	return out
}

type run struct {
	out  string
	code int
}

func kk(t *testing.T, bin string, args ...string) run {
	t.Helper()
	return kkTimeout(t, 10*time.Minute, bin, args...)
}

// kkTimeout runs kk with a time limit; the output goes to the test log.
func kkTimeout(t *testing.T, limit time.Duration, bin string, args ...string) run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	cmd.Dir = t.TempDir()
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kk %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("$ kk %s  (exit %d)\n%s", strings.Join(args, " "), code, b.String())
	return run{b.String(), code}
}

var totals = regexp.MustCompile(`(\d+) ok, (\d+) changed, (\d+) skipped, (\d+) failed`)

// changed returns the "N changed" count of a run's summary line.
func changed(t *testing.T, out string) string {
	t.Helper()
	m := totals.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary line in output")
	}
	if m[4] != "0" {
		t.Fatalf("%s tasks failed", m[4])
	}
	return m[2]
}

// rootSSH runs cmd as root on machine m through kk's own SSH connector and returns stdout.
func rootSSH(t *testing.T, bed *testbed.Bed, m testbed.Machine, cmd string) string {
	t.Helper()
	// a minute to connect; the command may wait longer (kubectl wait --timeout=300s)
	dial, cancelDial := context.WithTimeout(context.Background(), time.Minute)
	defer cancelDial()
	c, err := connector.DialSSH(dial, connector.SSHConfig{Host: m.Name, Address: m.Address, Port: 22, User: "root",
		PrivateKeyPath: bed.KeyPath, KnownHostsPath: bed.KnownHosts})
	if err != nil {
		t.Fatalf("ssh %s: %v", m.Name, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	res, err := c.Exec(ctx, cmd, connector.ExecOptions{})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
	return res.Stdout
}
