package connector

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func dial(t *testing.T, c SSHConfig) *SSH {
	t.Helper()
	s, err := DialSSH(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustExec(t *testing.T, c Connector, cmd string, opts ExecOptions) Result {
	t.Helper()
	r, err := c.Exec(context.Background(), cmd, opts)
	if err != nil {
		t.Fatalf("exec %q: %v", cmd, err)
	}
	return r
}

func TestHostKeyUnknownRefused(t *testing.T) {
	srv := newTestServer(t, func(s *testServer) { s.Password = "pw" })
	c := configFor(t, srv, "n1")
	c.KnownHostsPath = filepath.Join(t.TempDir(), "missing", "known_hosts")
	_, err := DialSSH(context.Background(), c)
	want := fmt.Sprintf("host n1 (%s): host key not in known_hosts %s (add it, or use --trust-on-first-use)", srv.Addr, c.KnownHostsPath)
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	// An existing file without the host: same refusal.
	other := newTestServer(t, nil)
	c.KnownHostsPath = knownHostsFor(t, other)
	if _, err := DialSSH(context.Background(), c); err == nil || !strings.Contains(err.Error(), "host key not in known_hosts") {
		t.Fatalf("got %v", err)
	}
}

func TestHostKeyTrustOnFirstUse(t *testing.T) {
	srv := newTestServer(t, func(s *testServer) { s.Password = "pw" })
	c := configFor(t, srv, "n1")
	c.KnownHostsPath = filepath.Join(t.TempDir(), "ssh", "known_hosts")
	c.TrustOnFirstUse = true
	// Parallel first dials record the key exactly once.
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			s, err := DialSSH(context.Background(), c)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(c.KnownHostsPath)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), srv.KnownHostsLine()+"\n"; got != want {
		t.Fatalf("known_hosts:\n%q\nwant\n%q", got, want)
	}
	// Next dial verifies against the recorded key, without TOFU.
	c.TrustOnFirstUse = false
	s := dial(t, c)
	if r := mustExec(t, s, "echo ok", ExecOptions{}); r.Stdout != "ok\n" {
		t.Fatalf("stdout %q", r.Stdout)
	}
	// A file without a trailing newline still gets a well-formed new line.
	other := newTestServer(t, func(s *testServer) { s.Password = "pw" })
	os.WriteFile(c.KnownHostsPath, []byte(strings.TrimSuffix(string(b), "\n")), 0o600)
	c2 := configFor(t, other, "n2")
	c2.KnownHostsPath, c2.TrustOnFirstUse = c.KnownHostsPath, true
	dial(t, c2)
	b, _ = os.ReadFile(c.KnownHostsPath)
	if got, want := string(b), srv.KnownHostsLine()+"\n"+other.KnownHostsLine()+"\n"; got != want {
		t.Fatalf("known_hosts:\n%q\nwant\n%q", got, want)
	}
	dial(t, c) // both still verify
}

func TestHostKeyMismatchRefused(t *testing.T) {
	srv := newTestServer(t, func(s *testServer) { s.Password = "pw" })
	impostor, _ := testKey(t, "")
	c := configFor(t, srv, "n1")
	line := strings.Fields(srv.KnownHostsLine())[0] + " " + string(ssh.MarshalAuthorizedKey(impostor.PublicKey()))
	os.WriteFile(c.KnownHostsPath, []byte("# comment\n"+line), 0o600)
	for _, tofu := range []bool{false, true} {
		c.TrustOnFirstUse = tofu
		_, err := DialSSH(context.Background(), c)
		want := fmt.Sprintf("host key mismatch for n1 (%s): known_hosts %s:2 has a different key — possible man-in-the-middle; remove the stale line if the host was reinstalled", srv.Addr, c.KnownHostsPath)
		if err == nil || err.Error() != want {
			t.Fatalf("tofu=%v: got %v\nwant %s", tofu, err, want)
		}
	}
	b, _ := os.ReadFile(c.KnownHostsPath)
	if string(b) != "# comment\n"+line {
		t.Fatalf("known_hosts changed: %q", b)
	}
}

func TestAuth(t *testing.T) {
	key, keyPEM := testKey(t, "")
	encKey, encPEM := testKey(t, "s3cret-phrase")
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "id_ed25519")
	os.WriteFile(keyPath, keyPEM, 0o600)
	encPath := filepath.Join(dir, "id_enc")
	os.WriteFile(encPath, encPEM, 0o600)

	pwSrv := newTestServer(t, func(s *testServer) { s.Password = "hunter2" })
	kbSrv := newTestServer(t, func(s *testServer) { s.Password = "hunter2"; s.KeyboardOnly = true })
	keySrv := newTestServer(t, func(s *testServer) { s.AuthorizedKey = key.PublicKey() })
	encSrv := newTestServer(t, func(s *testServer) { s.AuthorizedKey = encKey.PublicKey() })

	ok := []struct {
		name string
		srv  *testServer
		edit func(*SSHConfig)
	}{
		{"password", pwSrv, nil},
		{"keyboard-interactive", kbSrv, nil},
		{"key bytes", keySrv, func(c *SSHConfig) { c.PrivateKey = keyPEM }},
		{"key file", keySrv, func(c *SSHConfig) { c.PrivateKeyPath = keyPath }},
		{"key and password", keySrv, func(c *SSHConfig) { c.PrivateKeyPath = keyPath; c.Password = "x" }},
		{"encrypted key", encSrv, func(c *SSHConfig) { c.PrivateKeyPath = encPath; c.Passphrase = "s3cret-phrase" }},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			c := configFor(t, tc.srv, "n1")
			if tc.edit != nil {
				tc.edit(&c)
			}
			s := dial(t, c)
			if r := mustExec(t, s, "echo hi", ExecOptions{}); r.Stdout != "hi\n" {
				t.Fatalf("stdout %q", r.Stdout)
			}
		})
	}

	bad := []struct {
		name   string
		srv    *testServer
		edit   func(*SSHConfig)
		want   string
		secret string
	}{
		{"wrong password", pwSrv, func(c *SSHConfig) { c.Password = "wrong-pw" }, "host n1 (" + pwSrv.Addr + "): authentication failed for user root", "wrong-pw"},
		{"wrong key", keySrv, func(c *SSHConfig) { c.PrivateKey = encPEM; c.Passphrase = "s3cret-phrase" }, "authentication failed", "s3cret-phrase"},
		{"missing key file", keySrv, func(c *SSHConfig) { c.PrivateKeyPath = filepath.Join(dir, "nope") }, "host n1: private key file " + filepath.Join(dir, "nope") + " does not exist", ""},
		{"no passphrase", encSrv, func(c *SSHConfig) { c.PrivateKeyPath = encPath }, "host n1: private key " + encPath + " is encrypted: a passphrase is needed", ""},
		{"wrong passphrase", encSrv, func(c *SSHConfig) { c.PrivateKeyPath = encPath; c.Passphrase = "nope-phrase" }, "host n1: private key " + encPath + ": wrong passphrase", "nope-phrase"},
		{"no credentials", pwSrv, func(c *SSHConfig) { c.Password = "" }, "host n1: no SSH credentials", ""},
		{"agent without socket", pwSrv, func(c *SSHConfig) { c.Agent = true; t.Setenv("SSH_AUTH_SOCK", "") }, "SSH_AUTH_SOCK is not set", ""},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			c := configFor(t, tc.srv, "n1")
			tc.edit(&c)
			_, err := DialSSH(context.Background(), c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if tc.secret != "" && strings.Contains(err.Error(), tc.secret) {
				t.Fatalf("error leaks a secret: %v", err)
			}
		})
	}
}

func TestConfigStringHidesSecrets(t *testing.T) {
	c := SSHConfig{Host: "n1", Address: "10.0.0.1", User: "kube", Password: "pw-secret", Passphrase: "pp-secret", PrivateKey: []byte("KEY-secret"),
		Jump: &SSHConfig{Host: "bastion", Address: "10.0.0.9", Password: "jump-secret"}}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), fmt.Sprintf("%+v", &c)} {
		if strings.Contains(s, "secret") {
			t.Fatalf("leak: %s", s)
		}
	}
	if got := c.String(); got != "kube@10.0.0.1:22 (n1) via root@10.0.0.9:22 (bastion)" {
		t.Fatal(got)
	}
}

func TestExec(t *testing.T) {
	srv := newTestServer(t, func(s *testServer) { s.Password = "pw" })
	s := dial(t, configFor(t, srv, "n1"))
	r := mustExec(t, s, `echo out; echo err >&2; exit 3`, ExecOptions{})
	if r.Stdout != "out\n" || r.Stderr != "err\n" || r.ExitCode != 3 || r.Cmd != `echo out; echo err >&2; exit 3` {
		t.Fatalf("%+v", r)
	}
	var ce *CommandError
	if err := r.Err(); !errors.As(err, &ce) || ce.ExitCode != 3 || !strings.Contains(err.Error(), "err") {
		t.Fatalf("Err() = %v", err)
	}
	r = mustExec(t, s, "tr a-z A-Z", ExecOptions{Stdin: []byte("hello")})
	if r.Stdout != "HELLO" || r.ExitCode != 0 {
		t.Fatalf("%+v", r)
	}
	// Sudo as root is a plain command.
	r = mustExec(t, s, "id -u", ExecOptions{Sudo: true})
	if r.Stdout != fmt.Sprintf("%d\n", os.Geteuid()) {
		t.Fatalf("%+v", r)
	}
	// Quoting survives the trip through the remote shell.
	for _, arg := range quoteCases {
		r := mustExec(t, s, Cmd("printf", "%s", arg), ExecOptions{})
		if r.Stdout != arg {
			t.Errorf("printf %q: got %q", arg, r.Stdout)
		}
	}
	// Killed by a signal: 128+9.
	if r := mustExec(t, s, "kill -9 $$", ExecOptions{}); r.ExitCode != 137 {
		t.Fatalf("%+v", r)
	}
}

func TestExecConcurrentSessionsBounded(t *testing.T) {
	srv := newTestServer(t, func(s *testServer) { s.Password = "pw" })
	s := dial(t, configFor(t, srv, "n1"))
	var wg sync.WaitGroup
	errs := make([]error, 30)
	for i := range errs {
		wg.Go(func() {
			r, err := s.Exec(context.Background(), fmt.Sprintf("sleep 0.1; echo %d", i), ExecOptions{})
			if err == nil && r.Stdout != fmt.Sprintf("%d\n", i) {
				err = fmt.Errorf("exec %d: stdout %q", i, r.Stdout)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if m := srv.MaxSessions.Load(); m > maxSessions || m < 2 {
		t.Fatalf("max concurrent sessions %d, want 2..%d", m, maxSessions)
	}
}

func TestExecCancel(t *testing.T) {
	srv := newTestServer(t, func(s *testServer) { s.Password = "pw" })
	s := dial(t, configFor(t, srv, "n1"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Exec(ctx, "sleep 30", ExecOptions{})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "host n1") {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("cancel took %v", d)
	}
	// The connection is still usable.
	if r := mustExec(t, s, "echo ok", ExecOptions{}); r.Stdout != "ok\n" {
		t.Fatal(r)
	}
}

func TestDialUnreachable(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().(*net.TCPAddr)
	ln.Close()
	c := SSHConfig{Host: "gone", Address: "127.0.0.1", Port: addr.Port, Password: "x", KnownHostsPath: filepath.Join(t.TempDir(), "kh"), DialTimeout: time.Second}
	_, err := DialSSH(context.Background(), c)
	if err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("host gone (127.0.0.1:%d): dial:", addr.Port)) {
		t.Fatalf("got %v", err)
	}
	// A server that accepts TCP but never speaks SSH: bounded by DialTimeout.
	silent, _ := net.Listen("tcp", "127.0.0.1:0")
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	c.Port = silent.Addr().(*net.TCPAddr).Port
	c.DialTimeout = 300 * time.Millisecond
	start := time.Now()
	if _, err := DialSSH(context.Background(), c); err == nil || !strings.Contains(err.Error(), "host gone") {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestJumpHost(t *testing.T) {
	bastion := newTestServer(t, func(s *testServer) { s.Password = "jump-pw"; s.Forward = true })
	target := newTestServer(t, func(s *testServer) { s.Password = "target-pw" })
	jc := configFor(t, bastion, "bastion")
	c := configFor(t, target, "n2")
	c.Jump = &jc
	s := dial(t, c)
	if r := mustExec(t, s, "echo via", ExecOptions{}); r.Stdout != "via\n" {
		t.Fatal(r)
	}
	if bastion.Forwards.Load() != 1 {
		t.Fatalf("forwards: %d", bastion.Forwards.Load())
	}
	// The jump host's key is verified too.
	bad := jc
	bad.KnownHostsPath = knownHostsFor(t, target)
	c.Jump = &bad
	_, err := DialSSH(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "host n2") || !strings.Contains(err.Error(), "host bastion") || !strings.Contains(err.Error(), "not in known_hosts") {
		t.Fatalf("got %v", err)
	}
	// Closing the target closes the jump connection.
	c.Jump = &jc
	s2, err := DialSSH(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if _, err := s2.jump.client.NewSession(); err == nil {
		t.Fatal("jump connection still open after Close")
	}
}
