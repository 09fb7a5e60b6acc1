//go:build !unix

package mirror

import (
	"context"
	"io"
)

// lockDir is a no-op where flock is unavailable.
func lockDir(context.Context, string, io.Writer) (func(), error) { return func() {}, nil }
