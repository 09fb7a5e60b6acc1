package connector

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeys verifies a server's host key against one known_hosts file.
// Unknown hosts are refused unless tofu is set, in which case the key is appended
// (under an flock on the file, so parallel dials and parallel kk runs do not
// interleave lines). A key that differs from a recorded one is always refused.
type hostKeys struct {
	host string // kk host name, for messages
	addr string // host:port, for messages
	file string
	tofu bool
}

// hostKeyError is a refusal whose message already names the host; DialSSH returns
// it as is instead of burying it under "ssh: handshake failed".
type hostKeyError struct{ msg string }

func (e *hostKeyError) Error() string { return e.msg }

func defaultKnownHosts(p string) (string, error) {
	if p != "" {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find known_hosts: %w", err)
	}
	return filepath.Join(home, ".ssh", "known_hosts"), nil
}

// callback is an ssh.HostKeyCallback.
func (h *hostKeys) callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := h.check(hostname, remote, key)
	if err == nil {
		return nil
	}
	if e := h.explain(err); e != nil {
		return e
	}
	// Unknown host.
	if !h.tofu {
		return &hostKeyError{fmt.Sprintf("host %s (%s): host key not in known_hosts %s (add it, or use --trust-on-first-use)", h.host, h.addr, h.file)}
	}
	return h.trust(hostname, remote, key)
}

// explain turns a check error into the error to return, or nil for "unknown host".
func (h *hostKeys) explain(err error) error {
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &ke) && len(ke.Want) == 0:
		return nil
	case errors.As(err, &ke):
		w := ke.Want[0]
		return &hostKeyError{fmt.Sprintf("host key mismatch for %s (%s): known_hosts %s:%d has a different key — possible man-in-the-middle; remove the stale line if the host was reinstalled", h.host, h.addr, w.Filename, w.Line)}
	case errors.As(err, &re):
		return &hostKeyError{fmt.Sprintf("host %s (%s): host key is revoked in %s:%d", h.host, h.addr, re.Revoked.Filename, re.Revoked.Line)}
	default:
		return &hostKeyError{fmt.Sprintf("host %s (%s): read known_hosts: %v", h.host, h.addr, err)}
	}
}

// check verifies key against the file as it is now. A missing file means "unknown".
func (h *hostKeys) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	cb, err := knownhosts.New(h.file)
	if errors.Is(err, fs.ErrNotExist) {
		return &knownhosts.KeyError{}
	}
	if err != nil {
		return err
	}
	return cb(hostname, remote, key)
}

// trust appends key for hostname, unless another dial recorded it while we waited
// for the lock.
func (h *hostKeys) trust(hostname string, remote net.Addr, key ssh.PublicKey) error {
	fail := func(err error) error {
		return &hostKeyError{fmt.Sprintf("host %s (%s): record host key in %s: %v", h.host, h.addr, h.file, err)}
	}
	if err := os.MkdirAll(filepath.Dir(h.file), 0o700); err != nil {
		return fail(err)
	}
	f, err := os.OpenFile(h.file, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	unlock, err := lockFile(f)
	if err != nil {
		return fail(err)
	}
	defer unlock()

	if err := h.check(hostname, remote, key); err == nil {
		return nil
	} else if e := h.explain(err); e != nil {
		return e
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key) + "\n"
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			line = "\n" + line
		}
	}
	if _, err := io.WriteString(f, line); err != nil {
		return fail(err)
	}
	return nil
}

// algorithms lists the host key algorithms recorded for hostname, so the handshake
// negotiates a key type we can verify (otherwise a host known by its ed25519 key
// that offers RSA first would look like a mismatch). Nil means "no preference".
func (h *hostKeys) algorithms(hostname string) []string {
	_, probe, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil
	}
	signer, err := ssh.NewSignerFromKey(probe)
	if err != nil {
		return nil
	}
	host, port, _ := net.SplitHostPort(hostname)
	p, _ := strconv.Atoi(port)
	remote := &net.TCPAddr{IP: net.ParseIP(host), Port: p}
	var ke *knownhosts.KeyError
	if err := h.check(hostname, remote, signer.PublicKey()); !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, s := range a {
			if !seen[s] {
				seen[s] = true
				algos = append(algos, s)
			}
		}
	}
	for _, w := range ke.Want {
		if t := w.Key.Type(); t == ssh.KeyAlgoRSA {
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		} else {
			add(t)
		}
	}
	return algos
}
