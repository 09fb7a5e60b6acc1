package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/kk-project/kk/pipeline/connector"
)

// probe measures what one remote command costs on the hosts, apart from either tool: every
// exec session makes sshd start the login shell, and whatever that shell reads at startup
// is paid on each command, by kk and ansible alike.
type probe struct {
	execRTT   time.Duration // median round trip of `true` on an open SSH connection
	shell     string        // root's login shell
	shellSSH  time.Duration // median local start of the login shell as sshd runs it (rc files read)
	shellBare time.Duration // the same shell without rc files
	err       error
}

func probeHosts(ctx context.Context, h benchHost, keyPath, knownHosts string) (p probe) {
	const rounds = 10
	p.shell = loginShell("root")
	conn, err := connector.DialSSH(ctx, connector.SSHConfig{Host: h.Name, Address: h.Address, Port: h.Port,
		PrivateKeyPath: keyPath, KnownHostsPath: knownHosts})
	if err != nil {
		p.err = err
		return p
	}
	defer conn.Close()
	var rtts []time.Duration
	for range rounds {
		start := time.Now()
		r, err := conn.Exec(ctx, "true", connector.ExecOptions{})
		if err == nil {
			err = r.Err()
		}
		if err != nil {
			p.err = fmt.Errorf("host %s: probe: %w", h.Name, err)
			return p
		}
		rtts = append(rtts, time.Since(start))
	}
	p.execRTT = median(rtts)

	// sshd runs `<shell> -c <command>` with SSH_CLIENT set: bash then reads ~/.bashrc.
	timeShell := func(env []string, args ...string) time.Duration {
		var ds []time.Duration
		for range rounds {
			cmd := exec.CommandContext(ctx, p.shell, args...)
			cmd.Env = append(os.Environ(), env...)
			start := time.Now()
			if err := cmd.Run(); err != nil {
				return 0
			}
			ds = append(ds, time.Since(start))
		}
		return median(ds)
	}
	p.shellSSH = timeShell([]string{"SSH_CLIENT=10.0.0.1 50000 22", "SHLVL=0"}, "-c", "true")
	p.shellBare = timeShell([]string{"SHLVL=0"}, "--norc", "--noprofile", "-c", "true")
	return p
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// loginShell returns user's shell from /etc/passwd (light hosts share this machine's).
func loginShell(user string) string {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return "/bin/sh"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), ":")
		if len(fs) == 7 && fs[0] == user && fs[6] != "" {
			return fs[6]
		}
	}
	return "/bin/sh"
}
