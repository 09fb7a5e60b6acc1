package images

import (
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/artifacts/versions"
	"github.com/kk-project/kk/e2e/mirror"
)

// TestCSIImages: the local storage's images are kk's version table's references; the sidecars
// and the snapshot-controller hold the mirror's binaries at their root, run as entrypoints as
// upstream's Dockerfiles do; the driver is kk's own, built by this package with the tag as its
// version, and says so.
func TestCSIImages(t *testing.T) {
	spec := mirror.DefaultSpec()
	imgs, err := Images(spec, "/m", "/b", DebVersions{})
	if err != nil {
		t.Fatal(err)
	}
	set := versions.Latest()
	a := set.Addons
	for _, c := range []struct {
		ref, bin, src, builtBy string
	}{
		{set.LocalCSIImage(), "kk-local-csi", "/b/kk-local-csi-" + a.LocalCSI, builtByLocalCSI},
		{set.CSIProvisionerImage(), "csi-provisioner", "/m" + mirror.CSIProvisionerPath(spec.CSIProvisioner), ""},
		{set.CSISnapshotterImage(), "csi-snapshotter", "/m" + mirror.CSISnapshotterPath(spec.CSISnapshotter), ""},
		{set.CSIResizerImage(), "csi-resizer", "/m" + mirror.CSIResizerPath(spec.CSIResizer), ""},
		{set.SnapshotControllerImage(), "snapshot-controller", "/m" + mirror.SnapshotControllerPath(spec.CSISnapshotter), ""},
	} {
		i := slices.IndexFunc(imgs, func(im Image) bool { return im.Ref() == c.ref })
		if i < 0 {
			t.Errorf("no image %s", c.ref)
			continue
		}
		im := imgs[i]
		files := im.layers[len(im.layers)-1].files
		if len(files) != 1 || files[0].dst != c.bin || files[0].src != c.src || files[0].builtBy != c.builtBy || files[0].mode != 0o755 {
			t.Errorf("%s: binary layer %+v", c.ref, files)
		}
		if !slices.Equal(im.config.Entrypoint, []string{"/" + c.bin}) || im.config.User != "" {
			t.Errorf("%s: config %+v", c.ref, im.config)
		}
		if (c.builtBy != "") != strings.Contains(im.Note, "kk's own") {
			t.Errorf("%s: note %q", c.ref, im.Note)
		}
		if c.builtBy != "" && ownBinaryTag(c.builtBy, c.src) != im.Tags[0] {
			t.Errorf("%s: kk's driver's version %q is not its tag", c.ref, ownBinaryTag(c.builtBy, c.src))
		}
	}
	for _, want := range set.LocalStorageImages() {
		if !slices.ContainsFunc(imgs, func(im Image) bool { return im.Ref() == want }) {
			t.Errorf("LocalStorageImages names %s, which the test images lack", want)
		}
	}
	// --components csi-sidecars keeps the five images, another component none of them
	got, err := ofComponents(imgs, spec, "/m", []string{"csi-sidecars"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range set.LocalStorageImages() {
		if !slices.ContainsFunc(got, func(im Image) bool { return im.Ref() == want }) {
			t.Errorf("--components csi-sidecars lacks %s", want)
		}
	}
	other, err := ofComponents(imgs, spec, "/m", []string{"coredns"})
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(other, func(im Image) bool { return strings.Contains(im.Repository, "/sig-storage/") }) {
		t.Errorf("--components coredns builds a local storage image")
	}
	for _, bad := range []func(*mirror.Spec){
		func(s *mirror.Spec) { s.CSIProvisioner = "v6.3.0" },
		func(s *mirror.Spec) { s.CSISnapshotter = "v8.6.0" },
		func(s *mirror.Spec) { s.CSIResizer = "" },
	} {
		s := mirror.DefaultSpec()
		bad(&s)
		if _, err := Images(s, "/m", "/b", DebVersions{}); err == nil {
			t.Errorf("a spec whose CSI releases are not kk's: no error")
		}
	}
}

// TestBusyboxImage: the tests' busybox is built from Debian's busybox-static when its version is
// given, tagged BusyboxTag, and refused when the package is another release than the tag says.
func TestBusyboxImage(t *testing.T) {
	imgs, err := Images(mirror.DefaultSpec(), "/m", "/b", DebVersions{Busybox: "1:1.35.0-4+b3"})
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(imgs, func(im Image) bool { return im.Repository == BusyboxRepository })
	if i < 0 || imgs[i].Tags[0] != BusyboxTag || !strings.Contains(imgs[i].Note, "1:1.35.0-4+b3") {
		t.Fatalf("busybox image: %+v", imgs)
	}
	if _, err := Images(mirror.DefaultSpec(), "/m", "/b", DebVersions{Busybox: "1:1.36.1-9"}); err == nil {
		t.Error("busybox 1.36.1 tagged 1.35.0: no error")
	}
	none, err := Images(mirror.DefaultSpec(), "/m", "/b", DebVersions{})
	if err != nil || slices.ContainsFunc(none, func(im Image) bool { return im.Repository == BusyboxRepository }) {
		t.Errorf("no busybox package version, yet a busybox image (%v)", err)
	}
}
