package download

import (
	"errors"
	"fmt"
	"net/http"
	"syscall"
)

// Error kinds, for errors.Is. The messages themselves name the component, file and URL.
var (
	// ErrNotFound: the server answered 404 for an artifact or its checksum file.
	ErrNotFound = errors.New("not found")
	// ErrChecksumMismatch: the downloaded file's SHA-256 is not the published (or pinned) one.
	ErrChecksumMismatch = errors.New("checksum mismatch")
	// ErrNoChecksum: no checksum could be had (none published, none pinned, no entry for
	// the file in the checksum file, or a checksum file that cannot be read).
	ErrNoChecksum = errors.New("no checksum")
	// ErrDiskFull: the cache's file system is full.
	ErrDiskFull = errors.New("no space left in cache")
)

// kindError is an error with a full message of its own and a kind for errors.Is.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// statusError is an HTTP status other than the expected ones.
type statusError struct {
	code int
	url  string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("GET %s: %d %s", e.url, e.code, http.StatusText(e.code))
}

// retryable says whether another attempt may succeed: network errors, short bodies, 5xx,
// 408 and 429. Context ends, 4xx and local write errors are final.
type retryable struct{ err error }

func (e *retryable) Error() string { return e.err.Error() }
func (e *retryable) Unwrap() error { return e.err }

func isRetryable(err error) bool {
	var r *retryable
	return errors.As(err, &r)
}

// localError wraps a failure to write into the cache. A full disk gets a message that names
// the cache directory.
func localError(cache, file string, err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return &kindError{kind: ErrDiskFull, msg: fmt.Sprintf(
			"cache dir %s is full (no space left on device) while writing %s: free some space or use another cache dir", cache, file)}
	}
	return fmt.Errorf("cache %s: writing %s: %w", cache, file, err)
}
