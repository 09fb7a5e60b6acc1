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
// own programs (e2e/images/csihostpath), and kk's template runs no livenessprobe.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// CSISnapshotCRDModule is the module that carries the snapshot CRDs of external-snapshotter
// release v: its client module (client/vN), whose config/crd holds them.
func CSISnapshotCRDModule(v string) (string, error) {
	major, _, _, err := semverParts(v)
	if err != nil || major < 2 {
		return "", fmt.Errorf("mirror: external-snapshotter release %q: want v2 or later", v)
	}
	return fmt.Sprintf("%s/client/v%d", CSISnapshotterBase, major), nil
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

// SnapshotCRDFiles are the CRDs of external-snapshotter's client module (config/crd), in the
// order they are applied: the v1 snapshot kinds, then the group snapshot kinds, which the
// snapshot-controller of v8.x requires too (its CSIVolumeGroupSnapshot gate is GA, on by
// default, and it refuses to start without them).
var SnapshotCRDFiles = []string{
	"snapshot.storage.k8s.io_volumesnapshotclasses.yaml",
	"snapshot.storage.k8s.io_volumesnapshotcontents.yaml",
	"snapshot.storage.k8s.io_volumesnapshots.yaml",
	"groupsnapshot.storage.k8s.io_volumegroupsnapshotclasses.yaml",
	"groupsnapshot.storage.k8s.io_volumegroupsnapshotcontents.yaml",
	"groupsnapshot.storage.k8s.io_volumegroupsnapshots.yaml",
}

// SnapshotCRDs reads the snapshot CRDs of external-snapshotter release v from its client
// module's zip (through the Go module proxy, into the module cache), in SnapshotCRDFiles'
// order, each file as upstream wrote it. kk's platform template is generated from them
// (cmd/gen-snapshot-crds), and e2e/images checks the one against the other.
func SnapshotCRDs(ctx context.Context, v string) (map[string][]byte, error) {
	mod, err := CSISnapshotCRDModule(v)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "kk-crds-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	b := &builder{dir: tmp}
	if err := os.MkdirAll(filepath.Join(tmp, ".tmp"), 0o755); err != nil {
		return nil, err
	}
	dir, err := b.moduleDir(ctx, mod, v)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, f := range SnapshotCRDFiles {
		data, err := os.ReadFile(filepath.Join(dir, "config", "crd", f))
		if err != nil {
			return nil, fmt.Errorf("mirror: %s@%s: %w", mod, v, err)
		}
		if !strings.Contains(string(data), "kind: CustomResourceDefinition") {
			return nil, fmt.Errorf("mirror: %s@%s: config/crd/%s is no CustomResourceDefinition", mod, v, f)
		}
		out[f] = data
	}
	return out, nil
}

// SnapshotCRDsTemplate is the file kk's platform applies the snapshot CRDs from
// (templates/files/platform/snapshot-crds.yaml): a header naming the module and release, then
// the CRDs of SnapshotCRDs in SnapshotCRDFiles' order, each verbatim. The platform renders its
// files as templates: a CRD holding "{{" is refused, as it would not survive that.
func SnapshotCRDsTemplate(ctx context.Context, v string) ([]byte, error) {
	crds, err := SnapshotCRDs(ctx, v)
	if err != nil {
		return nil, err
	}
	mod, _ := CSISnapshotCRDModule(v)
	var b strings.Builder
	fmt.Fprintf(&b, "# The volume snapshot CRDs of external-snapshotter %s, verbatim from config/crd of the\n", v)
	fmt.Fprintf(&b, "# Go module %s@%s:\n", mod, v)
	b.WriteString("# the v1 snapshot kinds, then the group snapshot kinds (the snapshot-controller requires both).\n")
	b.WriteString("# Generated by `go run ./e2e/cmd/mirror snapshot-crds`: do not edit.\n")
	for _, f := range SnapshotCRDFiles {
		data := string(crds[f])
		if strings.Contains(data, "{{") {
			return nil, fmt.Errorf("mirror: %s@%s: config/crd/%s holds \"{{\", which kk's template rendering would read", mod, v, f)
		}
		fmt.Fprintf(&b, "---\n# Source: config/crd/%s\n", f)
		data = strings.TrimPrefix(data, "---\n")
		b.WriteString(strings.TrimRight(data, "\n") + "\n")
	}
	return []byte(b.String()), nil
}
