package mirror

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/artifacts/versions"
)

// TestCSIIsKKs: the mirror builds the CSI sidecars' releases kk deploys (its version table),
// whose tags the images carry.
func TestCSIIsKKs(t *testing.T) {
	s, a := DefaultSpec(), versions.DefaultAddons()
	for name, v := range map[string][2]string{"csi-provisioner": {s.CSIProvisioner, a.CSIProvisioner},
		"csi-snapshotter": {s.CSISnapshotter, a.CSISnapshotter}, "csi-resizer": {s.CSIResizer, a.CSIResizer}} {
		if v[0] == "" || v[0] != v[1] {
			t.Errorf("the mirror builds %s %q, kk deploys %s (artifacts/versions)", name, v[0], v[1])
		}
	}
}

func TestCSIModule(t *testing.T) {
	for _, c := range []struct{ base, v, want string }{
		{CSIProvisionerBase, "v6.4.0", CSIProvisionerBase + "/v6"},
		{CSIResizerBase, "v1.14.0", CSIResizerBase},
		{CSISnapshotterBase, "v8.7.0", CSISnapshotterBase + "/v8"},
	} {
		if got, err := CSIModule(c.base, c.v); err != nil || got != c.want {
			t.Errorf("CSIModule(%s, %s) = %s, %v; want %s", c.base, c.v, got, err, c.want)
		}
	}
	s := DefaultSpec()
	s.CSIResizer = "v2"
	if err := s.validate(); err == nil || !strings.Contains(err.Error(), "external-resizer") {
		t.Errorf("validate accepted csi-resizer v2: %v", err)
	}
}

// Each CSI module is one job, one go build of its programs (csi-snapshotter and the
// snapshot-controller together), whose binaries and checksums Artifacts lists; the builds
// set upstream's main.version to the release.
func TestCSIJobs(t *testing.T) {
	s := DefaultSpec()
	b := &builder{dir: t.TempDir(), spec: s, log: io.Discard, out: io.Discard}
	for _, c := range []struct {
		component, version string
		paths              []string
	}{
		{"csi-provisioner", s.CSIProvisioner, []string{"/bin/csi-provisioner/v6.4.0/linux/amd64/csi-provisioner"}},
		{"csi-snapshotter", s.CSISnapshotter, []string{"/bin/external-snapshotter/v8.7.0/linux/amd64/csi-snapshotter",
			"/bin/external-snapshotter/v8.7.0/linux/amd64/snapshot-controller"}},
		{"csi-resizer", s.CSIResizer, []string{"/bin/csi-resizer/v2.3.0/linux/amd64/csi-resizer"}},
	} {
		if !slices.Contains(Components, c.component) {
			t.Errorf("Components has no %s", c.component)
		}
		var only []job
		for _, j := range b.jobs() {
			if j.component == c.component {
				only = append(only, j)
			}
		}
		if len(only) != 1 {
			t.Errorf("%d %s jobs, want 1", len(only), c.component)
			continue
		}
		var want []string
		for _, p := range c.paths {
			want = append(want, p[1:], p[1:]+".sha256")
		}
		if j := only[0]; j.version != c.version || !slices.Equal(j.outputs, want) {
			t.Errorf("job %s %s outputs %q, want %q", j.name, j.version, j.outputs, want)
		}
		var got []string
		for _, a := range s.Artifacts() {
			if a.Component == c.component {
				got = append(got, a.Path)
				if a.Checksum != a.Path+".sha256" || a.ChecksumFormat != HexOnly || a.Version != c.version {
					t.Errorf("artifact %+v", a)
				}
			}
		}
		if !slices.Equal(got, c.paths) {
			t.Errorf("Artifacts of %s: %q, want %q", c.component, got, c.paths)
		}
	}
	if got := csiVersion("v6.4.0"); got != "-X main.version=v6.4.0" {
		t.Errorf("csiVersion = %q", got)
	}
}
