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
	if err := s.validate(); err == nil {
		t.Errorf("validate accepted csi-resizer v2")
	}
}

// The CSI sidecars are one job, one go build of the three modules' four programs, whose
// binaries and checksums Artifacts lists; each program gets its own release in main.version,
// and the k8s.io libraries the sidecars pin are replaced by one release.
func TestCSISidecarsJob(t *testing.T) {
	s := DefaultSpec()
	b := &builder{dir: t.TempDir(), spec: s, log: io.Discard, out: io.Discard}
	if !slices.Contains(Components, "csi-sidecars") {
		t.Errorf("Components has no csi-sidecars")
	}
	var only []job
	for _, j := range b.jobs() {
		if j.component == "csi-sidecars" {
			only = append(only, j)
		}
	}
	if len(only) != 1 {
		t.Fatalf("%d csi-sidecars jobs, want 1", len(only))
	}
	paths := []string{"/bin/csi-provisioner/v6.4.0/linux/amd64/csi-provisioner", "/bin/external-snapshotter/v8.7.0/linux/amd64/csi-snapshotter",
		"/bin/external-snapshotter/v8.7.0/linux/amd64/snapshot-controller", "/bin/csi-resizer/v2.3.0/linux/amd64/csi-resizer"}
	var want []string
	for _, p := range paths {
		want = append(want, p[1:], p[1:]+".sha256")
	}
	j := only[0]
	if !slices.Equal(j.outputs, want) || !strings.Contains(j.recipe, "k8s.io "+s.CSIKubeLibs) ||
		!strings.Contains(j.version, s.CSIProvisioner) || !strings.Contains(j.version, s.CSISnapshotter) || !strings.Contains(j.version, s.CSIResizer) {
		t.Errorf("job %s %s (recipe %q) outputs %q, want %q", j.name, j.version, j.recipe, j.outputs, want)
	}
	var got []string
	for _, a := range s.Artifacts() {
		if a.Component == "csi-sidecars" {
			got = append(got, a.Path)
			if a.Checksum != a.Path+".sha256" || a.ChecksumFormat != HexOnly || !strings.Contains(a.Path, "/"+a.Version+"/") {
				t.Errorf("artifact %+v", a)
			}
		}
	}
	if !slices.Equal(got, paths) {
		t.Errorf("Artifacts of csi-sidecars: %q, want %q", got, paths)
	}
	if got := csiVersion("v6.4.0"); got != "-X main.version=v6.4.0" {
		t.Errorf("csiVersion = %q", got)
	}
	for d, want := range map[string]string{"k8s.io/api => k8s.io/api v0.36.1": "k8s.io/api", "k8s.io/kubelet v0.0.0 => k8s.io/kubelet v0.37.0": "k8s.io/kubelet",
		"k8s.io/kubernetes => k8s.io/kubernetes v1.36.3": "", "github.com/x/y => github.com/x/y v1.0.0": ""} {
		if lib, ok := kubeLib(d); lib != want || ok != (want != "") {
			t.Errorf("kubeLib(%q) = %q, %v; want %q", d, lib, ok, want)
		}
	}
	for _, bad := range []func(*Spec){func(s *Spec) { s.CSIResizer = "" }, func(s *Spec) { s.CSIKubeLibs = "v1.37.1" }, func(s *Spec) { s.CSIKubeLibs = "" }} {
		s := DefaultSpec()
		bad(&s)
		if err := s.validate(); err == nil {
			t.Errorf("validate accepted %+v", s)
		}
	}
}
