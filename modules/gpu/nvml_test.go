//go:build cgo

package gpu

import (
	"errors"
	"maps"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// A DGX A100 (go-nvml's own mock): eight A100s, driver 550.54.15, CUDA 12.4.
func TestFromNVMLDGXA100(t *testing.T) {
	inv, err := FromNVML(dgxa100.New())
	if err != nil {
		t.Fatal(err)
	}
	if inv.Driver != "550.54.15" || inv.CUDA != "12.4" || len(inv.GPUs) != 8 {
		t.Fatalf("inventory %+v", inv)
	}
	uuids := map[string]bool{}
	for i, g := range inv.GPUs {
		uuids[g.UUID] = true
		if g.Index != i || g.Name != "Mock NVIDIA A100-SXM4-40GB" || g.MemoryMiB != 40960 || g.ComputeCapability != "8.0" ||
			g.MIG != "disabled" || g.PCIDeviceID != "0x20B010DE" {
			t.Errorf("GPU %d: %+v", i, g)
		}
	}
	if len(uuids) != 8 {
		t.Errorf("UUIDs not unique: %v", uuids)
	}
	want := map[string]string{
		LabelPresent: "true", LabelCount: "8", LabelProduct: "Mock-NVIDIA-A100-SXM4-40GB", LabelMemory: "40960",
		LabelComputeMajor: "8", LabelComputeMinor: "0", LabelDriverMajor: "550", LabelDriverMinor: "54", LabelDriverRev: "15",
		LabelCUDAMajor: "12", LabelCUDAMinor: "4", LabelMIGCapable: "true",
	}
	if got := Labels(inv); !maps.Equal(got, want) {
		t.Errorf("labels\n%v\nwant\n%v", got, want)
	}
}

// A DGX H100 with MIG on its first GPU; a device without MIG support says so.
func TestFromNVMLMIG(t *testing.T) {
	s := dgxh100.New()
	d, _ := s.DeviceGetHandleByIndex(0)
	if ret, _ := d.SetMigMode(nvml.DEVICE_MIG_ENABLE); ret != nvml.SUCCESS {
		t.Fatalf("set MIG mode: %v", ret)
	}
	d1, _ := s.DeviceGetHandleByIndex(1)
	d1.(*server.Device).GetMigModeFunc = func() (int, int, nvml.Return) { return 0, 0, nvml.ERROR_NOT_SUPPORTED }
	inv, err := FromNVML(s)
	if err != nil {
		t.Fatal(err)
	}
	if inv.GPUs[0].MIG != "enabled" || inv.GPUs[1].MIG != "" || inv.GPUs[2].MIG != "disabled" || inv.GPUs[0].ComputeCapability != "9.0" {
		t.Errorf("GPUs %+v", inv.GPUs[:3])
	}
}

// No driver: NVML's library is missing, which is ErrNoDriver; another failure names the step.
func TestFromNVMLErrors(t *testing.T) {
	s := dgxa100.New()
	s.InitFunc = func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
	if _, err := FromNVML(s); !errors.Is(err, ErrNoDriver) {
		t.Errorf("no library: %v", err)
	}
	s = dgxa100.New()
	s.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_GPU_IS_LOST }
	if _, err := FromNVML(s); err == nil || err.Error() != "NVML device count: ERROR_GPU_IS_LOST" {
		t.Errorf("lost GPU: %v", err)
	}
	if l := Labels(Inventory{Driver: "550.54.15"}); l != nil {
		t.Errorf("labels without a GPU: %v", l)
	}
}
