package connector

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh/knownhosts"
)

// stormProxy stands in front of a test server like an sshd under a handshake storm: it
// mistreats the first connections (closes them at once, resets them, or never answers) and
// proxies the later ones to the server.
type stormProxy struct {
	ln       net.Listener
	accepted atomic.Int32
}

func newStormProxy(t *testing.T, target string, bad int, mistreat func(c *net.TCPConn)) *stormProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stormProxy{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if int(p.accepted.Add(1)) <= bad {
				mistreat(c.(*net.TCPConn))
				continue
			}
			wg.Go(func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { io.Copy(up, c); up.Close() }()
				io.Copy(c, up)
			})
		}
	}()
	return p
}

func (p *stormProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func TestHandshakeDropsAreTransient(t *testing.T) {
	srv := newTestServer(t, func(s *testServer) { s.Password = "pw" })
	var stalled []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range stalled {
			c.Close()
		}
	})
	cases := map[string]func(c *net.TCPConn){
		"closed":   func(c *net.TCPConn) { c.Close() },                                            // MaxStartups drop: EOF
		"reset":    func(c *net.TCPConn) { c.SetLinger(0); c.Close() },                            // connection reset by peer
		"no reply": func(c *net.TCPConn) { mu.Lock(); stalled = append(stalled, c); mu.Unlock() }, // i/o timeout
	}
	for name, mistreat := range cases {
		t.Run(name, func(t *testing.T) {
			p := newStormProxy(t, srv.Addr, 2, mistreat)
			cfg := configFor(t, srv, "n1")
			cfg.Port = p.port()
			// known_hosts names the server's address; the proxy listens on another port
			cfg.KnownHostsPath = knownHostsWithAddr(t, srv, net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port())))
			cfg.DialTimeout = 300 * time.Millisecond
			for i := 1; i <= 2; i++ {
				_, err := DialSSH(context.Background(), cfg)
				if err == nil || !IsTransient(err) {
					t.Fatalf("dial %d: err = %v, want a transient error", i, err)
				}
			}
			c, err := DialSSH(context.Background(), cfg)
			if err != nil {
				t.Fatalf("third dial: %v", err)
			}
			c.Close()
		})
	}
}

func TestRefusalsAreNotTransient(t *testing.T) {
	srv := newTestServer(t, func(s *testServer) { s.Password = "pw" })
	cfg := configFor(t, srv, "n1")
	cfg.Password = "wrong"
	if _, err := DialSSH(context.Background(), cfg); err == nil || IsTransient(err) {
		t.Errorf("wrong password: err = %v, want a permanent error", err)
	}
	other := newTestServer(t, func(s *testServer) { s.Password = "pw" })
	cfg = configFor(t, srv, "n1")
	cfg.KnownHostsPath = knownHostsWithAddr(t, other, srv.Addr) // another key for this address
	if _, err := DialSSH(context.Background(), cfg); err == nil || IsTransient(err) {
		t.Errorf("host key mismatch: err = %v, want a permanent error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := DialSSH(ctx, configFor(t, srv, "n1")); err == nil || IsTransient(err) {
		t.Errorf("cancelled: err = %v, want a permanent error", err)
	}
	if err := markTransient(context.Background(), errors.New("ssh: unable to authenticate")); IsTransient(err) {
		t.Errorf("%v marked transient", err)
	}
}

// knownHostsWithAddr writes a known_hosts file giving s's host key to addr.
func knownHostsWithAddr(t *testing.T, s *testServer, addr string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(knownhosts.Line([]string{addr}, s.HostKey.PublicKey())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
