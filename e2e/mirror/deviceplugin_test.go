package mirror

import (
	"io"
	"slices"
	"testing"

	"github.com/kk-project/kk/artifacts/versions"
)

// TestNvidiaDevicePluginIsKKs: the mirror builds the device plugin release kk deploys (its
// version table), whose tag the image carries.
func TestNvidiaDevicePluginIsKKs(t *testing.T) {
	if got, want := DefaultSpec().NvidiaDevicePlugin, versions.DefaultAddons().NvidiaDevicePlugin; got != want {
		t.Errorf("the mirror builds NVIDIA's device plugin %s, kk deploys %s (artifacts/versions)", got, want)
	}
}

// The component builds one job, the binary and its checksum, which Artifacts lists.
func TestNvidiaDevicePluginJob(t *testing.T) {
	s := DefaultSpec()
	const p = "/bin/nvidia-device-plugin/v0.17.4/linux/amd64/nvidia-device-plugin"
	if got := NvidiaDevicePluginPath("v0.17.4"); got != p {
		t.Errorf("NvidiaDevicePluginPath(v0.17.4) = %s, want %s", got, p)
	}
	if !slices.Contains(Components, "nvidia-device-plugin") {
		t.Error("Components has no nvidia-device-plugin")
	}
	b := &builder{dir: t.TempDir(), spec: s, log: io.Discard, out: io.Discard}
	var only []job
	for _, j := range b.jobs() {
		if j.component == "nvidia-device-plugin" {
			only = append(only, j)
		}
	}
	if len(only) != 1 {
		t.Fatalf("%d nvidia-device-plugin jobs, want 1", len(only))
	}
	want := []string{p[1:], p[1:] + ".sha256"}
	if j := only[0]; j.version != s.NvidiaDevicePlugin || !slices.Equal(j.outputs, want) {
		t.Errorf("job %s %s outputs %q, want %q", j.name, j.version, j.outputs, want)
	}
	var found bool
	for _, a := range s.Artifacts() {
		if a.Component == "nvidia-device-plugin" {
			found = true
			if a.Path != p || a.Checksum != p+".sha256" || a.ChecksumFormat != HexOnly || a.Version != s.NvidiaDevicePlugin {
				t.Errorf("artifact %+v", a)
			}
		}
	}
	if !found {
		t.Error("Artifacts lists no nvidia-device-plugin")
	}
	s.NvidiaDevicePlugin = "0.17.4"
	if err := s.validate(); err == nil {
		t.Error("validate accepted nvidia-device-plugin version 0.17.4")
	}
}
