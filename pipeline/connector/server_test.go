package connector

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// testServer is an in-process SSH server for tests: it runs exec requests with
// /bin/sh -c (as the test process's user), serves sftp, and optionally forwards
// direct-tcpip channels (to act as a jump host).
type testServer struct {
	t       *testing.T
	Addr    string
	HostKey ssh.Signer
	Dir     string   // working directory of commands and sftp ("home")
	Env     []string // extra environment for commands
	Forward bool     // accept direct-tcpip
	// IgnoreSignals drops "signal" requests, like sshd for a command sudo runs as root.
	IgnoreSignals bool

	Password      string        // accepted password ("" = password auth off)
	KeyboardOnly  bool          // offer keyboard-interactive instead of password
	AuthorizedKey ssh.PublicKey // accepted public key

	mu          sync.Mutex
	procs       map[int]bool // running command process groups, killed on cleanup
	sessions    int32
	MaxSessions atomic.Int32 // highest number of commands running at once
	Forwards    atomic.Int32 // direct-tcpip channels served
}

func newTestServer(t *testing.T, setup func(*testServer)) *testServer {
	t.Helper()
	_, pk, _ := ed25519.GenerateKey(rand.Reader)
	hk, err := ssh.NewSignerFromKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, HostKey: hk, Dir: t.TempDir()}
	if setup != nil {
		setup(s)
	}
	cfg := &ssh.ServerConfig{}
	if s.Password != "" && !s.KeyboardOnly {
		cfg.PasswordCallback = func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if string(pw) == s.Password {
				return nil, nil
			}
			return nil, fmt.Errorf("bad password")
		}
	}
	if s.Password != "" && s.KeyboardOnly {
		cfg.KeyboardInteractiveCallback = func(_ ssh.ConnMetadata, ch ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			a, err := ch("", "", []string{"Password: "}, []bool{false})
			if err == nil && len(a) == 1 && a[0] == s.Password {
				return nil, nil
			}
			return nil, fmt.Errorf("bad password")
		}
	}
	if s.AuthorizedKey != nil {
		cfg.PublicKeyCallback = func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(k.Marshal(), s.AuthorizedKey.Marshal()) {
				return nil, nil
			}
			return nil, fmt.Errorf("unknown key")
		}
	}
	cfg.AddHostKey(hk)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = ln.Addr().String()
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for pg := range s.procs {
			syscall.Kill(-pg, syscall.SIGKILL)
		}
		s.mu.Unlock()
		wg.Wait()
	})
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { s.serveConn(nc, cfg) })
		}
	}()
	return s
}

// Port returns the listening port.
func (s *testServer) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(p)
	return n
}

// KnownHostsLine is the known_hosts line for this server.
func (s *testServer) KnownHostsLine() string {
	return knownhosts.Line([]string{s.Addr}, s.HostKey.PublicKey())
}

func (s *testServer) serveConn(nc net.Conn, cfg *ssh.ServerConfig) {
	defer nc.Close()
	sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for nch := range chans {
		switch nch.ChannelType() {
		case "session":
			ch, reqs, err := nch.Accept()
			if err != nil {
				continue
			}
			wg.Go(func() { s.serveSession(ch, reqs) })
		case "direct-tcpip":
			if !s.Forward {
				nch.Reject(ssh.Prohibited, "no forwarding")
				continue
			}
			var p struct {
				Host     string
				Port     uint32
				OrigHost string
				OrigPort uint32
			}
			if err := ssh.Unmarshal(nch.ExtraData(), &p); err != nil {
				nch.Reject(ssh.ConnectionFailed, err.Error())
				continue
			}
			dst, err := net.Dial("tcp", net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port))))
			if err != nil {
				nch.Reject(ssh.ConnectionFailed, err.Error())
				continue
			}
			ch, reqs, err := nch.Accept()
			if err != nil {
				dst.Close()
				continue
			}
			s.Forwards.Add(1)
			go ssh.DiscardRequests(reqs)
			wg.Go(func() {
				go func() { io.Copy(dst, ch); dst.(*net.TCPConn).CloseWrite() }()
				io.Copy(ch, dst)
				ch.Close()
				dst.Close()
			})
		default:
			nch.Reject(ssh.UnknownChannelType, "unsupported")
		}
	}
}

func (s *testServer) running(pid int, d int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.procs == nil {
		s.procs = map[int]bool{}
	}
	if d > 0 {
		s.procs[pid] = true
	} else {
		delete(s.procs, pid)
	}
	s.sessions += d
	if s.sessions > s.MaxSessions.Load() {
		s.MaxSessions.Store(s.sessions)
	}
}

func (s *testServer) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var cmd *exec.Cmd
	exited := make(chan struct{})
	for req := range reqs {
		switch req.Type {
		case "env":
			req.Reply(true, nil)
		case "exec":
			var p struct{ Command string }
			if cmd != nil || ssh.Unmarshal(req.Payload, &p) != nil {
				req.Reply(false, nil)
				continue
			}
			cmd = exec.Command("/bin/sh", "-c", p.Command)
			cmd.Dir = s.Dir
			cmd.Env = append(os.Environ(), s.Env...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.WaitDelay = time.Second
			if err := cmd.Start(); err != nil {
				req.Reply(false, nil)
				return
			}
			req.Reply(true, nil)
			s.running(cmd.Process.Pid, 1)
			go func() {
				defer close(exited)
				cmd.Wait()
				s.running(cmd.Process.Pid, -1)
				code := cmd.ProcessState.ExitCode()
				if code < 0 {
					code = 128 + int(cmd.ProcessState.Sys().(syscall.WaitStatus).Signal())
				}
				ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
				ch.Close()
			}()
		case "signal":
			if cmd != nil && cmd.Process != nil && !s.IgnoreSignals {
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
			if req.WantReply {
				req.Reply(true, nil)
			}
		case "subsystem":
			var p struct{ Name string }
			if ssh.Unmarshal(req.Payload, &p) != nil || p.Name != "sftp" {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			srv, err := sftp.NewServer(ch, sftp.WithServerWorkingDirectory(s.Dir))
			if err != nil {
				return
			}
			go func() { srv.Serve(); srv.Close() }()
		default:
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
	if cmd != nil {
		<-exited
	}
}

// testKey returns a new ed25519 key: the signer and its OpenSSH PEM encoding,
// encrypted with passphrase when one is given.
func testKey(t *testing.T, passphrase string) (ssh.Signer, []byte) {
	t.Helper()
	_, pk, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ssh.NewSignerFromKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	var b *pem.Block
	if passphrase == "" {
		b, err = ssh.MarshalPrivateKey(pk, "test")
	} else {
		b, err = ssh.MarshalPrivateKeyWithPassphrase(pk, "test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	return s, pem.EncodeToMemory(b)
}

// knownHostsFor writes a known_hosts file trusting the given servers.
func knownHostsFor(t *testing.T, servers ...*testServer) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	var b bytes.Buffer
	for _, s := range servers {
		b.WriteString(s.KnownHostsLine() + "\n")
	}
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// configFor is an SSHConfig for s with password auth and a trusting known_hosts.
func configFor(t *testing.T, s *testServer, name string) SSHConfig {
	return SSHConfig{
		Host:           name,
		Address:        "127.0.0.1",
		Port:           s.Port(),
		User:           "root",
		Password:       s.Password,
		KnownHostsPath: knownHostsFor(t, s),
		DialTimeout:    5 * time.Second,
	}
}
