//go:build !cgo

package gpu

import "errors"

// Local fails: NVML is a C library that kk reaches through cgo, and this kk was built without.
func Local() (Inventory, error) {
	return Inventory{}, errors.New("this kk was built without cgo (CGO_ENABLED=0) and cannot read NVML")
}
