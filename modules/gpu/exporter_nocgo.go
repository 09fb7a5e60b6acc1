//go:build !cgo

package gpu

import (
	"context"
	"errors"
)

// RunExporter fails: NVML is a C library that kk reaches through cgo, and this kk was built
// without.
func RunExporter(context.Context, ExporterOptions) error {
	return errors.New("this kk was built without cgo (CGO_ENABLED=0) and cannot read NVML for the GPU exporter")
}
