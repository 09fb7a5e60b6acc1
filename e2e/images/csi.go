package images

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/kk-project/kk/e2e/mirror"
)

// kk's local volume driver (cmd/kk-local-csi in this module), and the builder that makes it
// (input.builtBy).
const (
	localCSIPkg     = "github.com/kk-project/kk/cmd/kk-local-csi"
	builtByLocalCSI = "kk-local-csi"
)

// ownBinary is where kk's build of its own program builtBy at tag goes under binDir: the tag
// is part of the name, as the program prints it (-version) and so keeps it.
func ownBinary(binDir, builtBy, tag string) string {
	return filepath.Join(binDir, builtBy+"-"+tag)
}

// ownBinaryTag reads the tag back from ownBinary's name.
func ownBinaryTag(builtBy, path string) string {
	return strings.TrimPrefix(filepath.Base(path), builtBy+"-")
}

// csiImages lists the images of the platform's local storage when the spec builds the CSI
// sidecars: csi-provisioner, csi-snapshotter, snapshot-controller and csi-resizer, each the
// mirror's static binary at the root of a distroless-like image with its entrypoint (upstream's
// Dockerfiles: FROM distroless/static, COPY the binary, ENTRYPOINT it), and kk's own driver,
// built from this module as kk's release would. The references are kk's version table's.
func csiImages(r *recipes, spec mirror.Spec) ([]Image, error) {
	if spec.CSIProvisioner == "" && spec.CSISnapshotter == "" && spec.CSIResizer == "" {
		return nil, nil
	}
	sets, err := tableSets(spec)
	if err != nil {
		return nil, err
	}
	set := sets[0]
	a := set.Addons
	for what, v := range map[string][2]string{"csi-provisioner": {spec.CSIProvisioner, a.CSIProvisioner},
		"csi-snapshotter": {spec.CSISnapshotter, a.CSISnapshotter}, "csi-resizer": {spec.CSIResizer, a.CSIResizer}} {
		if v[0] == "" {
			return nil, fmt.Errorf("e2e images: the mirror spec builds some CSI sidecars but not %s: kk's local storage needs all of them", what)
		}
		if err := sameAs(what, v[0], v[1]); err != nil {
			return nil, err
		}
	}
	// static is one program at the image's root, run as its entrypoint (as root, as
	// distroless/static's default user is).
	static := func(ref, version, bin, src, builtBy, note string) Image {
		repo, tags := tableRef(ref)
		return Image{Repository: repo, Tags: tags, Version: version, Note: note,
			layers:   []*layerSpec{r.base, {name: bin + "-" + version, files: []input{{dst: bin, mode: 0o755, src: src, builtBy: builtBy}}}},
			config:   imageConfig{Entrypoint: []string{"/" + bin}},
			requires: []string{bin},
		}
	}
	// kk's driver goes with the sidecars: --components csi-sidecars builds it too
	driver := static(set.LocalCSIImage(), a.LocalCSI, "kk-local-csi", ownBinary(r.binDir, builtByLocalCSI, a.LocalCSI), builtByLocalCSI,
		"kk's own CSI driver (cmd/kk-local-csi, static Go, built from this module)")
	driver.partOf = []string{"csi-sidecars"}
	return []Image{driver,
		static(set.CSIProvisionerImage(), spec.CSIProvisioner, "csi-provisioner", r.mirrorFile(mirror.CSIProvisionerPath(spec.CSIProvisioner)), "", ""),
		static(set.CSISnapshotterImage(), spec.CSISnapshotter, "csi-snapshotter", r.mirrorFile(mirror.CSISnapshotterPath(spec.CSISnapshotter)), "", ""),
		static(set.CSIResizerImage(), spec.CSIResizer, "csi-resizer", r.mirrorFile(mirror.CSIResizerPath(spec.CSIResizer)), "", ""),
		static(set.SnapshotControllerImage(), spec.CSISnapshotter, "snapshot-controller", r.mirrorFile(mirror.SnapshotControllerPath(spec.CSISnapshotter)), "", ""),
	}, nil
}
