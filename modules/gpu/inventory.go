// Package gpu is what kk knows of a host's NVIDIA GPUs: the inventory NVML gives once a driver
// is loaded (model, memory, UUID, driver and CUDA versions, MIG mode, compute capability),
// read on the host itself by `kk node facts`, and the node labels kk derives from it under the
// nvidia.com/ keys that NVIDIA's gpu-feature-discovery uses.
package gpu

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ErrNoDriver is Local's error on a host without an NVIDIA driver (no libnvidia-ml.so.1).
var ErrNoDriver = errors.New("no NVIDIA driver: libnvidia-ml.so.1 is not there")

// Inventory is a host's GPUs as NVML reports them.
type Inventory struct {
	// Driver is the kernel driver's version ("550.54.15"), CUDA the highest CUDA version it
	// supports ("12.4").
	Driver string `json:"driver"`
	CUDA   string `json:"cuda"`
	GPUs   []GPU  `json:"gpus"`
}

// GPU is one device.
type GPU struct {
	Index     int    `json:"index"`
	UUID      string `json:"uuid"`
	Name      string `json:"name"`      // "NVIDIA A100-SXM4-40GB"
	MemoryMiB uint64 `json:"memoryMiB"` // total framebuffer memory
	// ComputeCapability is CUDA's "MAJOR.MINOR" (8.0 for an A100).
	ComputeCapability string `json:"computeCapability"`
	// MIG is "enabled", "disabled", or "" where the device has no MIG mode.
	MIG string `json:"mig,omitempty"`
	// PCIDeviceID is the PCI device and vendor ID as NVML gives it (0x20B010DE).
	PCIDeviceID string `json:"pciDeviceID,omitempty"`
}

// NodeFacts is what `kk node facts` prints: the inventory, or NoDriver on a host without an
// NVIDIA driver.
type NodeFacts struct {
	Inventory
	NoDriver bool `json:"noDriver,omitempty"`
}

// CUDAVersion turns NVML's CUDA driver version (12040) into "12.4".
func CUDAVersion(v int) string {
	if v <= 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}

// Label keys kk sets on a GPU node: gpu-feature-discovery's, so that what selects on them
// (NVIDIA's own charts, users' node selectors) works without it.
const (
	LabelPresent       = "nvidia.com/gpu.present"
	LabelCount         = "nvidia.com/gpu.count"
	LabelProduct       = "nvidia.com/gpu.product"
	LabelMemory        = "nvidia.com/gpu.memory"
	LabelComputeMajor  = "nvidia.com/gpu.compute.major"
	LabelComputeMinor  = "nvidia.com/gpu.compute.minor"
	LabelDriverMajor   = "nvidia.com/cuda.driver.major"
	LabelDriverMinor   = "nvidia.com/cuda.driver.minor"
	LabelDriverRev     = "nvidia.com/cuda.driver.rev"
	LabelCUDAMajor     = "nvidia.com/cuda.runtime.major"
	LabelCUDAMinor     = "nvidia.com/cuda.runtime.minor"
	LabelMIGCapable    = "nvidia.com/mig.capable"
	labelValueMaxBytes = 63
)

// Labels are the node labels of inv (none without a GPU). Product, memory and compute
// capability are the first GPU's, as gpu-feature-discovery labels a node of mixed GPUs.
func Labels(inv Inventory) map[string]string {
	if len(inv.GPUs) == 0 {
		return nil
	}
	g := inv.GPUs[0]
	l := map[string]string{
		LabelPresent: "true",
		LabelCount:   strconv.Itoa(len(inv.GPUs)),
		LabelProduct: labelValue(strings.TrimSpace(g.Name)),
		LabelMemory:  strconv.FormatUint(g.MemoryMiB, 10),
	}
	if major, minor, ok := strings.Cut(g.ComputeCapability, "."); ok {
		l[LabelComputeMajor], l[LabelComputeMinor] = major, minor
	}
	if parts := strings.Split(inv.Driver, "."); len(parts) == 3 {
		l[LabelDriverMajor], l[LabelDriverMinor], l[LabelDriverRev] = parts[0], parts[1], parts[2]
	}
	if major, minor, ok := strings.Cut(inv.CUDA, "."); ok {
		l[LabelCUDAMajor], l[LabelCUDAMinor] = major, minor
	}
	l[LabelMIGCapable] = strconv.FormatBool(g.MIG != "")
	return l
}

var labelUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// labelValue makes s a label value: spaces and other characters a value may not hold become
// "-", at most 63 characters, starting and ending with a letter or digit.
func labelValue(s string) string {
	s = labelUnsafe.ReplaceAllString(s, "-")
	if len(s) > labelValueMaxBytes {
		s = s[:labelValueMaxBytes]
	}
	return strings.Trim(s, "-._")
}
