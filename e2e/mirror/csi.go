package mirror

// The platform's CSI storage: the Kubernetes CSI sidecars kk's local storage runs beside its
// driver (external-provisioner, external-snapshotter's csi-snapshotter, external-resizer),
// the snapshot-controller, and the snapshot CRDs.
//
// Upstream ships these programs only in images (registry.k8s.io/sig-storage/...), so the
// mirror builds each from its Go module at the pinned release, static (CGO_ENABLED=0), as
// upstream's release-tools/build.make does, with the release in main.version, and puts it
// under BinPath for e2e/images. csi-snapshotter and snapshot-controller are one module's
// programs: one go build makes both.
//
// The CSI hostpath driver (github.com/kubernetes-csi/csi-driver-host-path), the
// node-driver-registrar and the livenessprobe are not served by the module proxy here (every
// release tried answers "not available"): e2e/images stands in for the first two with kk's
// own programs (e2e/images/csihostpath), and kk's template runs no livenessprobe. The snapshot
// CRDs kk ships come from external-snapshotter's client module too, through go generate
// ./templates (templates/gen/snapcrds).

import (
	"context"
	"fmt"
)

// The Go modules of the CSI sidecars, without their major version suffix (CSIModule adds it).
const (
	CSIProvisionerBase = "github.com/kubernetes-csi/external-provisioner"
	CSISnapshotterBase = "github.com/kubernetes-csi/external-snapshotter"
	CSIResizerBase     = "github.com/kubernetes-csi/external-resizer"
)

// CSIModule is the module path of release v of base: from v2 on, Go's major version suffix
// (external-provisioner v6.4.0 is github.com/kubernetes-csi/external-provisioner/v6).
func CSIModule(base, v string) (string, error) {
	major, _, _, err := semverParts(v)
	if err != nil {
		return "", fmt.Errorf("mirror: %s release %q: %w", base, v, err)
	}
	if major < 2 {
		return base, nil
	}
	return fmt.Sprintf("%s/v%d", base, major), nil
}

// CSIProvisionerPath and the others below are where the CSI programs are put.
func CSIProvisionerPath(version string) string {
	return BinPath("csi-provisioner", version, "csi-provisioner")
}

// CSISnapshotterPath is where csi-snapshotter (the per-node sidecar) is put.
func CSISnapshotterPath(version string) string {
	return BinPath("external-snapshotter", version, "csi-snapshotter")
}

// SnapshotControllerPath is where the snapshot-controller is put.
func SnapshotControllerPath(version string) string {
	return BinPath("external-snapshotter", version, "snapshot-controller")
}

// CSIResizerPath is where csi-resizer is put.
func CSIResizerPath(version string) string {
	return BinPath("csi-resizer", version, "csi-resizer")
}

// csiVersion is release-tools' version flag: main.version, the tag with its "v".
func csiVersion(v string) string { return "-X main.version=" + v }

// csiJob builds the programs cmds (folders under cmd/) of the CSI module base at release v in
// one go build, each into the path paths gives it.
func (b *builder) csiJob(component, base, v string, bins map[string]string, cmds ...string) job {
	mod, err := CSIModule(base, v) // validate reports it before any job is built
	var ib []imageBinary
	for _, c := range cmds {
		ib = append(ib, imageBinary{mod + "/cmd/" + c, bins[c]})
	}
	j := b.imageBinariesJob(component, mod, v, recipeRev, goBuild{ldflags: []string{csiVersion(v)}}, ib...)
	if err != nil {
		j.build = func(context.Context, string) error { return err }
	}
	return j
}

func (b *builder) csiProvisionerJob(v string) job {
	return b.csiJob("csi-provisioner", CSIProvisionerBase, v, map[string]string{"csi-provisioner": CSIProvisionerPath(v)}, "csi-provisioner")
}

func (b *builder) csiSnapshotterJob(v string) job {
	return b.csiJob("csi-snapshotter", CSISnapshotterBase, v,
		map[string]string{"csi-snapshotter": CSISnapshotterPath(v), "snapshot-controller": SnapshotControllerPath(v)},
		"csi-snapshotter", "snapshot-controller")
}

func (b *builder) csiResizerJob(v string) job {
	return b.csiJob("csi-resizer", CSIResizerBase, v, map[string]string{"csi-resizer": CSIResizerPath(v)}, "csi-resizer")
}
