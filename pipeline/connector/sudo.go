package connector

import (
	"context"
	"strings"
)

// sudoMode is how a non-root SSH user becomes root.
type sudoMode int

const (
	sudoNone     sudoMode = iota // not probed yet / not needed
	sudoNoPasswd                 // `sudo -n` works (NOPASSWD)
	sudoPassword                 // `sudo -S` with the login password on stdin
)

// sudoMode probes once per connection how to use sudo. A refusal (no password
// configured, wrong password, not a sudoer) is cached: retrying a wrong password on
// every task could lock the account (pam_faillock). Transport errors are not cached.
func (s *SSH) sudoMode(ctx context.Context) (sudoMode, error) {
	s.sudoMu.Lock()
	defer s.sudoMu.Unlock()
	if s.sudo != sudoNone || s.sudoErr != nil {
		return s.sudo, s.sudoErr
	}
	// -k ignores cached credentials, so this answers "is a password needed at all".
	_, errOut, code, _, err := s.run(ctx, "sudo -k -n true", nil)
	if err != nil {
		return sudoNone, err
	}
	if code == 0 {
		s.sudo = sudoNoPasswd
		return s.sudo, nil
	}
	if code == 127 || !strings.Contains(errOut, "password") {
		s.sudoErr = s.errorf("user %s cannot use sudo: %s", s.cfg.user(), firstLine(errOut))
		return sudoNone, s.sudoErr
	}
	if s.cfg.Password == "" {
		s.sudoErr = s.errorf("sudo needs a password: none configured for user %s", s.cfg.user())
		return sudoNone, s.sudoErr
	}
	// Check the password once with nothing else on stdin, so a wrong one cannot make
	// sudo read the command's own input as further password attempts.
	_, errOut, code, _, err = s.run(ctx, "sudo -k -S -p '' true", []byte(s.cfg.Password+"\n"))
	if err != nil {
		return sudoNone, err
	}
	switch {
	case code == 0:
		s.sudo = sudoPassword
		return s.sudo, nil
	case sudoRejected(errOut):
		s.sudoErr = s.errorf("sudo needs a password: wrong password for user %s", s.cfg.user())
	default:
		s.sudoErr = s.errorf("user %s cannot use sudo: %s", s.cfg.user(), firstLine(errOut))
	}
	return sudoNone, s.sudoErr
}

// sudoWrap turns a `/bin/sh -c ...` line into one run by root, and puts the
// password (if any) in front of stdin. -k makes sudo always read that password
// line, even when credentials are cached, so it never leaks into the command.
func (s *SSH) sudoWrap(mode sudoMode, line string, stdin []byte) (string, []byte) {
	if mode == sudoNoPasswd {
		return "sudo -n -- " + line, stdin
	}
	in := make([]byte, 0, len(s.cfg.Password)+1+len(stdin))
	in = append(append(append(in, s.cfg.Password...), '\n'), stdin...)
	return "sudo -k -S -p '' -- " + line, in
}

// sudoRejected recognises sudo's wrong-password messages.
func sudoRejected(stderr string) bool {
	return strings.Contains(stderr, "Sorry, try again") ||
		strings.Contains(stderr, "incorrect password") ||
		strings.Contains(stderr, "no password was provided")
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return "(no message)"
	}
	return s
}
