//go:build !unix

package mirror

import (
	"context"
	"io"
)

// Lock is a no-op where flock is unavailable.
func Lock(context.Context, string, string, io.Writer) (func(), error) { return func() {}, nil }
