//go:build cgo

package gpu

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// Local reads the inventory of the host kk runs on through its NVML library.
func Local() (Inventory, error) {
	return FromNVML(nvml.New())
}

// FromNVML reads the inventory through lib: initialised here and shut down before returning.
func FromNVML(lib nvml.Interface) (Inventory, error) {
	var inv Inventory
	switch ret := lib.Init(); ret {
	case nvml.SUCCESS:
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return inv, ErrNoDriver
	default:
		return inv, fmt.Errorf("NVML init: %w", ret)
	}
	defer lib.Shutdown()
	fail := func(what string, ret nvml.Return) error { return fmt.Errorf("NVML %s: %w", what, ret) }
	var ret nvml.Return
	if inv.Driver, ret = lib.SystemGetDriverVersion(); ret != nvml.SUCCESS {
		return inv, fail("driver version", ret)
	}
	cuda, ret := lib.SystemGetCudaDriverVersion()
	if ret != nvml.SUCCESS {
		return inv, fail("CUDA driver version", ret)
	}
	inv.CUDA = CUDAVersion(cuda)
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return inv, fail("device count", ret)
	}
	for i := range n {
		d, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return inv, fail(fmt.Sprintf("device %d", i), ret)
		}
		g, err := device(d, i)
		if err != nil {
			return inv, err
		}
		inv.GPUs = append(inv.GPUs, g)
	}
	return inv, nil
}

func device(d nvml.Device, i int) (GPU, error) {
	g := GPU{Index: i}
	fail := func(what string, ret nvml.Return) error { return fmt.Errorf("NVML device %d %s: %w", i, what, ret) }
	var ret nvml.Return
	if g.UUID, ret = d.GetUUID(); ret != nvml.SUCCESS {
		return g, fail("UUID", ret)
	}
	if g.Name, ret = d.GetName(); ret != nvml.SUCCESS {
		return g, fail("name", ret)
	}
	mem, ret := d.GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return g, fail("memory", ret)
	}
	g.MemoryMiB = mem.Total / (1 << 20)
	major, minor, ret := d.GetCudaComputeCapability()
	if ret != nvml.SUCCESS {
		return g, fail("compute capability", ret)
	}
	g.ComputeCapability = fmt.Sprintf("%d.%d", major, minor)
	// a device without MIG answers NOT_SUPPORTED
	switch current, _, ret := d.GetMigMode(); {
	case ret == nvml.ERROR_NOT_SUPPORTED:
	case ret != nvml.SUCCESS:
		return g, fail("MIG mode", ret)
	case current == nvml.DEVICE_MIG_ENABLE:
		g.MIG = "enabled"
	default:
		g.MIG = "disabled"
	}
	if pci, ret := d.GetPciInfo(); ret == nvml.SUCCESS {
		g.PCIDeviceID = fmt.Sprintf("0x%08X", pci.PciDeviceId)
	}
	return g, nil
}
