package bundle

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrDiskFull is wrapped by errors due to a full file system (with syscall.ENOSPC).
var ErrDiskFull = errors.New("disk full")

// ErrCorrupt is wrapped by errors Verify and Import return for a bundle that does not match
// its index (a changed, truncated, missing or extra member).
var ErrCorrupt = errors.New("bundle corrupt")

type diskFullError struct {
	path string
	err  error
}

func (e *diskFullError) Error() string {
	return fmt.Sprintf("no space left on device writing %s: free some space or choose another directory (%v)", e.path, e.err)
}

func (e *diskFullError) Unwrap() []error { return []error{ErrDiskFull, e.err} }

// writeErr wraps a failure writing path; a full disk gets a message naming it.
func writeErr(path string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.ENOSPC) {
		return &diskFullError{path: path, err: err}
	}
	return fmt.Errorf("writing %s: %w", path, err)
}

// corruptf is an ErrCorrupt with a message naming the bundle and member.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}
