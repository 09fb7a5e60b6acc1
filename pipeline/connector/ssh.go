package connector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// SSHConfig says how to reach one host. Secrets (Password, PrivateKey, Passphrase)
// never appear in commands, errors or String().
type SSHConfig struct {
	Host           string // kk host name, used in every error
	Address        string // IP or DNS name; Host when empty
	Port           int    // 22 when zero
	User           string // root when empty
	Password       string // login password; also the sudo password for non-root users
	PrivateKey     []byte // PEM private key (takes precedence over PrivateKeyPath)
	PrivateKeyPath string
	Passphrase     string // for an encrypted private key
	Agent          bool   // also offer the keys of the ssh-agent at $SSH_AUTH_SOCK
	KnownHostsPath string // ~/.ssh/known_hosts when empty
	// TrustOnFirstUse records the key of a host that is not in known_hosts yet.
	// A host whose key differs from the recorded one is refused regardless.
	TrustOnFirstUse bool
	Jump            *SSHConfig    // reach this host through another one
	DialTimeout     time.Duration // TCP connect + SSH handshake; 10s when zero
}

// String describes the config without its secrets.
func (c SSHConfig) String() string {
	s := fmt.Sprintf("%s@%s (%s)", c.user(), c.addr(), c.Host)
	if c.Jump != nil {
		s += " via " + c.Jump.String()
	}
	return s
}

// GoString keeps %#v from printing secrets.
func (c SSHConfig) GoString() string { return "connector.SSHConfig{" + c.String() + "}" }

func (c SSHConfig) addr() string {
	a := c.Address
	if a == "" {
		a = c.Host
	}
	p := c.Port
	if p == 0 {
		p = 22
	}
	return net.JoinHostPort(a, strconv.Itoa(p))
}

func (c SSHConfig) user() string {
	if c.User == "" {
		return "root"
	}
	return c.User
}

func (c SSHConfig) timeout() time.Duration {
	if c.DialTimeout <= 0 {
		return 10 * time.Second
	}
	return c.DialTimeout
}

// maxSessions bounds concurrent sessions on one connection, below sshd's default
// MaxSessions (10) with room for the sftp subsystem.
const maxSessions = 8

// SSH is a Connector over one SSH connection, shared by all tasks on the host.
// Every Exec opens its own session; at most maxSessions run at once.
type SSH struct {
	cfg     SSHConfig
	addr    string
	client  *ssh.Client
	jump    *SSH   // closed with this connection
	release func() // ssh-agent socket
	sem     chan struct{}

	sudoMu   sync.Mutex
	sudo     sudoMode // how to become root; probed once
	sudoErr  error    // cached refusal (e.g. wrong password): retrying could lock the account
	sftpMu   sync.Mutex
	sftpConn *sftp.Client

	closeOnce sync.Once
	closeErr  error
}

var _ Connector = (*SSH)(nil)

// DialSSH connects and authenticates to c (through c.Jump when set), verifying the
// host key against known_hosts.
func DialSSH(ctx context.Context, c SSHConfig) (*SSH, error) {
	addr := c.addr()
	fail := func(format string, a ...any) error {
		return fmt.Errorf("host %s (%s): "+format, append([]any{c.Host, addr}, a...)...)
	}
	khFile, err := defaultKnownHosts(c.KnownHostsPath)
	if err != nil {
		return nil, fail("%w", err)
	}
	hk := &hostKeys{host: c.Host, addr: addr, file: khFile, tofu: c.TrustOnFirstUse}
	methods, release, err := c.authMethods()
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ClientConfig{
		User:              c.user(),
		Auth:              methods,
		HostKeyCallback:   hk.callback,
		HostKeyAlgorithms: hk.algorithms(addr),
		Timeout:           c.timeout(),
	}

	var jump *SSH
	var conn net.Conn
	if c.Jump != nil {
		jump, err = DialSSH(ctx, *c.Jump)
		if err != nil {
			release()
			return nil, fail("via jump host: %w", err)
		}
		dctx, cancel := context.WithTimeout(ctx, c.timeout())
		conn, err = jump.client.DialContext(dctx, "tcp", addr)
		cancel()
		if err != nil {
			jump.Close()
			release()
			return nil, markTransient(ctx, fail("dial through jump host %s: %w", c.Jump.Host, err))
		}
	} else {
		d := net.Dialer{Timeout: c.timeout()}
		conn, err = d.DialContext(ctx, "tcp", addr)
		if err != nil {
			release()
			if ctx.Err() != nil {
				return nil, fail("dial: %w", ctx.Err())
			}
			return nil, markTransient(ctx, fail("dial: %w", err))
		}
	}

	client, err := handshake(ctx, conn, addr, cfg, c.timeout())
	if err != nil {
		if jump != nil {
			jump.Close()
		}
		release()
		var hke *hostKeyError
		switch {
		case errors.As(err, &hke):
			return nil, hke
		case ctx.Err() != nil:
			return nil, fail("ssh handshake: %w", ctx.Err())
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fail("authentication failed for user %s: %w", c.user(), err)
		}
		return nil, markTransient(ctx, fail("%w", err))
	}
	return &SSH{
		cfg:     c,
		addr:    addr,
		client:  client,
		jump:    jump,
		release: release,
		sem:     make(chan struct{}, maxSessions),
	}, nil
}

// handshake runs the SSH handshake on conn, bounded by timeout and ctx.
func handshake(ctx context.Context, conn net.Conn, addr string, cfg *ssh.ClientConfig, timeout time.Duration) (*ssh.Client, error) {
	_ = conn.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if !stop() || err != nil {
		if err == nil {
			c.Close()
			err = ctx.Err()
		}
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// Host is the kk host name of the connection.
func (s *SSH) Host() string { return s.cfg.Host }

// errorf prefixes an error with the host name.
func (s *SSH) errorf(format string, a ...any) error {
	return fmt.Errorf("host %s: "+format, append([]any{s.cfg.Host}, a...)...)
}

func (s *SSH) isRoot() bool { return s.cfg.user() == "root" }

// Exec runs cmd with /bin/sh -c (through sudo when opts.Sudo and not root).
// The command line is sent explicitly as `/bin/sh -c '<cmd>'` so the user's login
// shell does not change its meaning.
func (s *SSH) Exec(ctx context.Context, cmd string, opts ExecOptions) (Result, error) {
	res := Result{Cmd: cmd}
	line := Cmd("/bin/sh", "-c", withPgid(cmd))
	stdin := opts.Stdin
	mode := sudoNone
	if opts.Sudo && !s.isRoot() {
		var err error
		if mode, err = s.sudoMode(ctx); err != nil {
			return res, err
		}
		line, stdin = s.sudoWrap(mode, line, stdin)
	}
	out, errOut, code, pgid, err := s.run(ctx, line, stdin)
	if err != nil {
		if ctx.Err() != nil {
			s.killRemote(ctx, pgid, mode)
		}
		return res, err
	}
	res.Stdout, res.Stderr, res.ExitCode = out, errOut, code
	if mode == sudoPassword && code == 1 && sudoRejected(errOut) {
		return res, s.errorf("sudo needs a password: wrong password for user %s", s.cfg.user())
	}
	return res, nil
}

// run executes line in a new session and waits, honouring ctx. pgid is the
// process group the command reported (see withPgid), for killing it on cancel.
func (s *SSH) run(ctx context.Context, line string, stdin []byte) (stdout, stderr string, code, pgid int, err error) {
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		return "", "", -1, 0, s.errorf("%w", ctx.Err())
	}
	sess, err := s.client.NewSession()
	if err != nil {
		// the command has not started: a connection that broke is worth a redial
		return "", "", -1, 0, markTransient(ctx, s.errorf("open session: %w", err))
	}
	defer sess.Close()
	var o bytes.Buffer
	e := &pgidWriter{}
	sess.Stdout, sess.Stderr = &o, e
	if stdin != nil {
		sess.Stdin = bytes.NewReader(stdin)
	}
	if err := sess.Start(line); err != nil {
		return "", "", -1, 0, s.errorf("start command: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGKILL)
		sess.Close()
		// The output buffers may still be written to: don't read them.
		return "", "", -1, e.PGID(), s.errorf("%w", ctx.Err())
	}
	var exit *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return o.String(), e.String(), 0, 0, nil
	case errors.As(err, &exit):
		return o.String(), e.String(), exit.ExitStatus(), 0, nil
	case errors.As(err, &missing):
		return o.String(), e.String(), -1, 0, s.errorf("command ended without an exit status (connection lost?)")
	default:
		return o.String(), e.String(), -1, 0, s.errorf("command: %w", err)
	}
}

// Close closes the sftp client, the connection, and the jump host's connection.
func (s *SSH) Close() error {
	s.closeOnce.Do(func() {
		s.sftpMu.Lock()
		if s.sftpConn != nil {
			s.sftpConn.Close()
		}
		s.sftpMu.Unlock()
		s.closeErr = s.client.Close()
		if s.jump != nil {
			s.jump.Close()
		}
		s.release()
		if errors.Is(s.closeErr, net.ErrClosed) {
			s.closeErr = nil
		}
		if s.closeErr != nil {
			s.closeErr = s.errorf("close: %w", s.closeErr)
		}
	})
	return s.closeErr
}
