package connector

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSudo installs a `sudo` stand-in on the test server's PATH. It wants
// password on stdin for -S (unless nopasswd), refuses -n without nopasswd, logs
// every password attempt to the returned file, then runs the command.
func fakeSudo(t *testing.T, s *testServer, password string, nopasswd bool) (attempts string) {
	bin := t.TempDir()
	attempts = filepath.Join(bin, "attempts")
	script := `#!/bin/sh
nopw=
while [ $# -gt 0 ]; do
  case "$1" in
    -n) nopw=1 ;;
    -p) shift ;;
    --) shift; break ;;
    -*) ;;
    *) break ;;
  esac
  shift
done
[ -n "$FAKE_SUDO_NOPASSWD" ] && exec "$@"
if [ -n "$nopw" ]; then echo "sudo: a password is required" >&2; exit 1; fi
IFS= read -r pw || true
echo attempt >> "$FAKE_SUDO_ATTEMPTS"
if [ "$pw" != "$FAKE_SUDO_PASSWORD" ]; then
  echo "Sorry, try again." >&2; echo "sudo: 1 incorrect password attempt" >&2; exit 1
fi
exec "$@"
`
	if err := os.WriteFile(filepath.Join(bin, "sudo"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	s.Env = append(s.Env, "PATH="+bin+":"+os.Getenv("PATH"), "FAKE_SUDO_PASSWORD="+password, "FAKE_SUDO_ATTEMPTS="+attempts)
	if nopasswd {
		s.Env = append(s.Env, "FAKE_SUDO_NOPASSWD=1")
	}
	return attempts
}

func countLines(p string) int {
	b, _ := os.ReadFile(p)
	return strings.Count(string(b), "\n")
}

func TestSudoWithPassword(t *testing.T) {
	var attempts string
	srv := newTestServer(t, func(s *testServer) { s.Password = "kube-pw"; attempts = fakeSudo(t, s, "kube-pw", false) })
	c := configFor(t, srv, "n1")
	c.User = "kube"
	s := dial(t, c)
	// The password line is consumed by sudo; the command sees only its own stdin.
	r := mustExec(t, s, "cat; echo; echo done", ExecOptions{Sudo: true, Stdin: []byte("payload")})
	if r.Stdout != "payload\ndone\n" || r.ExitCode != 0 {
		t.Fatalf("%+v", r)
	}
	if strings.Contains(r.Cmd, "kube-pw") || r.Cmd != "cat; echo; echo done" {
		t.Fatalf("Cmd %q", r.Cmd)
	}
	// Exit codes pass through sudo.
	if r := mustExec(t, s, "exit 4", ExecOptions{Sudo: true}); r.ExitCode != 4 {
		t.Fatalf("%+v", r)
	}
	// Without Sudo, no sudo is involved.
	before := countLines(attempts)
	mustExec(t, s, "true", ExecOptions{})
	if countLines(attempts) != before {
		t.Fatal("sudo used without opts.Sudo")
	}
	// Fetch goes through sudo cat.
	p := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(p, []byte("bytes\x00\xff"), 0o600)
	b, err := s.Fetch(context.Background(), p)
	if err != nil || string(b) != "bytes\x00\xff" {
		t.Fatalf("fetch %q %v", b, err)
	}
	if _, err := s.Fetch(context.Background(), p+".missing"); err == nil || !strings.Contains(err.Error(), "host n1: fetch") {
		t.Fatalf("fetch missing: %v", err)
	}
}

func TestSudoWrongPassword(t *testing.T) {
	var attempts string
	srv := newTestServer(t, func(s *testServer) { s.Password = "login-pw"; attempts = fakeSudo(t, s, "real-sudo-pw", false) })
	c := configFor(t, srv, "n1")
	c.User = "kube"
	s := dial(t, c)
	for range 3 {
		_, err := s.Exec(context.Background(), "id -u", ExecOptions{Sudo: true, Stdin: []byte("real-sudo-pw\n")})
		if err == nil || err.Error() != "host n1: sudo needs a password: wrong password for user kube" {
			t.Fatalf("got %v", err)
		}
	}
	// One attempt only: the refusal is cached, and the command's stdin is never
	// offered to sudo as another password.
	if n := countLines(attempts); n != 1 {
		t.Fatalf("%d password attempts", n)
	}
	if _, err := s.Upload(context.Background(), File{Path: "/tmp/x", Data: []byte("x")}); err == nil || strings.Contains(err.Error(), "login-pw") {
		t.Fatalf("upload: %v", err)
	}
}

func TestSudoNoPasswordConfigured(t *testing.T) {
	key, pem := testKey(t, "")
	srv := newTestServer(t, func(s *testServer) { s.AuthorizedKey = key.PublicKey(); fakeSudo(t, s, "pw", false) })
	c := configFor(t, srv, "n1")
	c.User, c.PrivateKey = "kube", pem
	s := dial(t, c)
	_, err := s.Exec(context.Background(), "true", ExecOptions{Sudo: true})
	if err == nil || err.Error() != "host n1: sudo needs a password: none configured for user kube" {
		t.Fatalf("got %v", err)
	}
}

func TestSudoNoPasswd(t *testing.T) {
	var attempts string
	key, pem := testKey(t, "")
	srv := newTestServer(t, func(s *testServer) { s.AuthorizedKey = key.PublicKey(); attempts = fakeSudo(t, s, "", true) })
	c := configFor(t, srv, "n1")
	c.User, c.PrivateKey = "kube", pem
	s := dial(t, c)
	r := mustExec(t, s, "cat", ExecOptions{Sudo: true, Stdin: []byte("in")})
	if r.Stdout != "in" {
		t.Fatalf("%+v", r)
	}
	if s.sudo != sudoNoPasswd || countLines(attempts) != 0 {
		t.Fatalf("mode %v attempts %d", s.sudo, countLines(attempts))
	}
}
