//go:build integration

package connector

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kk-project/kk/e2e/testbed"
)

// Integration tests on real machines (systemd-nspawn, OpenSSH, real sudo). The user
// "kube" needs its password for sudo.

func bedConfig(b *testbed.Bed, m testbed.Machine, user string) SSHConfig {
	c := SSHConfig{
		Host:           m.Name,
		Address:        m.Address,
		User:           user,
		PrivateKeyPath: b.KeyPath,
		KnownHostsPath: b.KnownHosts,
		DialTimeout:    10 * time.Second,
	}
	if user != "root" {
		c.Password = b.Password
	}
	return c
}

func TestIntegrationMachines(t *testing.T) {
	b := testbed.Require(t, testbed.Options{Name: "conn"}, 2)
	ctx := context.Background()
	m1, m2 := b.Machines[0], b.Machines[1]
	kube := dial(t, bedConfig(b, m1, b.User))
	root := dial(t, bedConfig(b, m1, "root"))

	t.Run("sudo with password", func(t *testing.T) {
		r := mustExec(t, kube, "id -u; cat", ExecOptions{Sudo: true, Stdin: []byte("in")})
		if r.Stdout != "0\nin" || r.ExitCode != 0 {
			t.Fatalf("%+v", r)
		}
		if r := mustExec(t, kube, "id -un", ExecOptions{}); r.Stdout != b.User+"\n" {
			t.Fatalf("%+v", r)
		}
		if r := mustExec(t, kube, "exit 7", ExecOptions{Sudo: true}); r.ExitCode != 7 {
			t.Fatalf("%+v", r)
		}
		shadow, err := kube.Fetch(ctx, "/etc/shadow")
		if err != nil || !strings.HasPrefix(string(shadow), "root:") {
			t.Fatalf("fetch /etc/shadow: %v", err)
		}
	})

	t.Run("sudo wrong password", func(t *testing.T) {
		c := bedConfig(b, m1, b.User)
		c.Password = "not-the-" + b.Password
		s := dial(t, c) // key login still works
		for range 2 {
			_, err := s.Exec(ctx, "id -u", ExecOptions{Sudo: true})
			want := fmt.Sprintf("host %s: sudo needs a password: wrong password for user %s", m1.Name, b.User)
			if err == nil || err.Error() != want {
				t.Fatalf("got %v, want %s", err, want)
			}
			if strings.Contains(err.Error(), c.Password) || strings.Contains(err.Error(), b.Password) {
				t.Fatalf("password leaked: %v", err)
			}
		}
		// The account is not locked by our attempts.
		mustExec(t, kube, "true", ExecOptions{Sudo: true})
	})

	t.Run("upload as non-root", func(t *testing.T) {
		mustExec(t, root, "rm -rf /etc/kk-test", ExecOptions{})
		f := File{Path: "/etc/kk-test/sub/app.conf", Data: []byte("secret=1\n"), Mode: 0o640, Owner: "root:root"}
		for i, want := range []bool{true, false} {
			changed, err := kube.Upload(ctx, f)
			if err != nil || changed != want {
				t.Fatalf("upload %d: changed=%v err=%v", i, changed, err)
			}
		}
		r := mustExec(t, root, "stat -c '%a %U:%G' /etc/kk-test/sub/app.conf; cat /etc/kk-test/sub/app.conf; ls -A /etc/kk-test/sub ~kube", ExecOptions{})
		if want := "640 root:root\nsecret=1\n"; !strings.HasPrefix(r.Stdout, want) || strings.Contains(r.Stdout, ".kk-tmp-") || strings.Contains(r.Stdout, ".kk-upload-") {
			t.Fatalf("on host:\n%s", r.Stdout)
		}
		f.Owner, f.Data = "", []byte("secret=2\n") // "" is root:root too
		if changed, err := kube.Upload(ctx, f); err != nil || !changed {
			t.Fatalf("changed=%v err=%v", changed, err)
		}
		if got, err := kube.Fetch(ctx, f.Path); err != nil || string(got) != "secret=2\n" {
			t.Fatalf("fetch %q %v", got, err)
		}
	})

	t.Run("upload as root", func(t *testing.T) {
		f := File{Path: "/etc/kk-test/root/app.conf", Data: []byte("x\n"), Mode: 0o600, Owner: b.User + ":" + b.User}
		for i, want := range []bool{true, false} {
			if changed, err := root.Upload(ctx, f); err != nil || changed != want {
				t.Fatalf("upload %d: changed=%v err=%v", i, changed, err)
			}
		}
		r := mustExec(t, root, "stat -c '%a %U:%G' /etc/kk-test/root/app.conf; ls -A /etc/kk-test/root", ExecOptions{})
		if r.Stdout != fmt.Sprintf("600 %s:%s\napp.conf\n", b.User, b.User) {
			t.Fatalf("on host:\n%s", r.Stdout)
		}
		// root's own files get owner and mode through sftp: setuid kept, 0 is 0644
		for _, g := range []File{
			{Path: "/etc/kk-test/root/tool", Data: []byte("#!/bin/sh\n"), Mode: 0o755 | fs.ModeSetuid},
			{Path: "/etc/kk-test/root/plain", Data: []byte("p\n")},
		} {
			for i, want := range []bool{true, false} {
				if changed, err := root.Upload(ctx, g); err != nil || changed != want {
					t.Fatalf("upload %s %d: changed=%v err=%v", g.Path, i, changed, err)
				}
			}
		}
		r = mustExec(t, root, "stat -c '%a %U:%G' /etc/kk-test/root/tool /etc/kk-test/root/plain", ExecOptions{})
		if r.Stdout != "4755 root:root\n644 root:root\n" {
			t.Fatalf("on host:\n%s", r.Stdout)
		}
	})

	t.Run("host key mismatch", func(t *testing.T) {
		wrong, _ := testKey(t, "")
		kh := filepath.Join(t.TempDir(), "known_hosts")
		os.WriteFile(kh, []byte(m1.Address+" "+string(ssh.MarshalAuthorizedKey(wrong.PublicKey()))), 0o600)
		c := bedConfig(b, m1, "root")
		c.KnownHostsPath, c.TrustOnFirstUse = kh, true
		_, err := DialSSH(ctx, c)
		want := fmt.Sprintf("host key mismatch for %s (%s:22): known_hosts %s:1 has a different key", m1.Name, m1.Address, kh)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("got %v\nwant %s…", err, want)
		}
	})

	t.Run("unknown host then trust on first use", func(t *testing.T) {
		c := bedConfig(b, m2, "root")
		c.KnownHostsPath = filepath.Join(t.TempDir(), "known_hosts")
		if _, err := DialSSH(ctx, c); err == nil || !strings.Contains(err.Error(), "host key not in known_hosts") {
			t.Fatalf("got %v", err)
		}
		c.TrustOnFirstUse = true
		dial(t, c).Close()
		got, _ := os.ReadFile(c.KnownHostsPath)
		if !strings.HasPrefix(string(got), m2.Address+" ") {
			t.Fatalf("known_hosts: %q", got)
		}
		c.TrustOnFirstUse = false
		dial(t, c).Close()
	})

	t.Run("unreachable", func(t *testing.T) {
		ip := net.ParseIP(m1.Address).To4()
		ip[3] = 249 // in the bed subnet, nothing there
		c := SSHConfig{Host: "ghost", Address: ip.String(), PrivateKeyPath: b.KeyPath, KnownHostsPath: b.KnownHosts, DialTimeout: 2 * time.Second}
		start := time.Now()
		_, err := DialSSH(ctx, c)
		if err == nil || !strings.HasPrefix(err.Error(), "host ghost ("+ip.String()+":22): dial") {
			t.Fatalf("got %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("took %v", d)
		}
	})

	t.Run("jump host", func(t *testing.T) {
		jump := bedConfig(b, m1, "root")
		c := bedConfig(b, m2, b.User)
		c.Jump = &jump
		s := dial(t, c)
		if r := mustExec(t, s, `echo "$SSH_CLIENT"`, ExecOptions{}); !strings.HasPrefix(r.Stdout, m1.Address+" ") {
			t.Fatalf("not through %s: SSH_CLIENT=%q", m1.Name, r.Stdout)
		}
		if r := mustExec(t, s, "id -u", ExecOptions{Sudo: true}); r.Stdout != "0\n" {
			t.Fatalf("%+v", r)
		}
	})

	t.Run("cancel kills the remote command", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := kube.Exec(cctx, "sleep 301 & sleep 301; wait", ExecOptions{Sudo: true})
		if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "host "+m1.Name+": ") {
			t.Fatalf("got %v", err)
		}
		r := mustExec(t, root, "sleep 0.5; pgrep -af '[s]leep 301' || true", ExecOptions{})
		if strings.TrimSpace(r.Stdout) != "" {
			t.Fatalf("still running: %q", r.Stdout)
		}
	})

	t.Run("concurrent sessions", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make([]error, 40)
		for i := range errs {
			wg.Go(func() {
				r, err := kube.Exec(ctx, fmt.Sprintf("sleep 0.2; echo %d", i), ExecOptions{Sudo: i%2 == 0})
				if err == nil && r.Stdout != fmt.Sprintf("%d\n", i) {
					err = fmt.Errorf("%d: %+v", i, r)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	})
}

// TestIntegrationPoolLight dials many light hosts at once through a Pool.
func TestIntegrationPoolLight(t *testing.T) {
	b := testbed.RequireLight(t, testbed.Options{Name: "connl"}, 12)
	byName := map[string]testbed.Machine{}
	names := make([]string, len(b.Machines))
	for i, m := range b.Machines {
		byName[m.Name], names[i] = m, m.Name
	}
	p := NewPool(func(ctx context.Context, name string) (Connector, error) {
		return DialSSH(ctx, bedConfig(b, byName[name], "root"))
	})
	defer p.Close()
	ctx := context.Background()
	if err := p.DialAll(ctx, names); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		c, err := p.Get(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		r := mustExec(t, c, "ip -4 -o addr show", ExecOptions{})
		if !strings.Contains(r.Stdout, " "+byName[n].Address+"/") {
			t.Fatalf("%s: %s", n, r.Stdout)
		}
	}
}
