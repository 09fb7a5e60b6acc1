package connector

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
)

// TransientError is a failure of the connection itself before any command started: the TCP
// connect or the SSH handshake refused, reset, cut short or timed out (sshd's MaxStartups drops
// connections during a handshake storm; a saturated machine answers late), or a session that
// could not be opened on a connection that broke. Dialing again later is the cure; nothing on
// the host was touched. Authentication failures and host-key mismatches are never transient.
type TransientError struct{ Err error }

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// IsTransient reports whether err (or an error it wraps) is a *TransientError.
func IsTransient(err error) bool {
	var t *TransientError
	return errors.As(err, &t)
}

// markTransient wraps err in a *TransientError when its cause is one a redial can cure. ctx is
// the caller's: an error caused by its cancellation or deadline is returned as it is.
func markTransient(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil || !transientCause(err) {
		return err
	}
	return &TransientError{Err: err}
}

// transientCause is the one list of causes worth a redial.
func transientCause(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	for _, e := range []error{io.EOF, io.ErrUnexpectedEOF, syscall.ECONNRESET, syscall.ECONNREFUSED,
		syscall.ECONNABORTED, syscall.EPIPE, net.ErrClosed} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
