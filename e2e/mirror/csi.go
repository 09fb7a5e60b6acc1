package mirror

// The platform's CSI storage: the Kubernetes CSI sidecars kk's local storage runs beside its
// driver (external-provisioner, external-snapshotter's csi-snapshotter, external-resizer),
// the snapshot-controller, and the snapshot CRDs.
//
// Upstream ships these programs only in images (registry.k8s.io/sig-storage/...), so the
// mirror builds each from its Go module at the pinned release, static (CGO_ENABLED=0), as
// upstream's release-tools/build.make does, with its release in main.version, and puts it
// under BinPath for e2e/images.
//
// The four programs are one go build of the three modules (one job, component csi-sidecars):
// most of their compile time is the same Kubernetes client libraries, which one build compiles
// once. Measured cold on this 2-core machine (a fresh build cache): 788 CPU-seconds for the
// one build, against 722 (external-provisioner), 541 (external-snapshotter, after the
// provisioner's cache) and 763 (external-resizer alone) built apart. So the k8s.io libraries
// are one release for the three, Spec.CSIKubeLibs (the newest any of them requires), where
// upstream pins each sidecar's own (external-provisioner v6.4.0 pins v0.36.1,
// external-snapshotter v8.7.0 v0.37.0): a patch or minor apart, within what client-go keeps
// compatible.
//
// The driver under them is kk's own (cmd/kk-local-csi), which registers itself with the
// kubelet: no node-driver-registrar or livenessprobe runs (neither is served by the module
// proxy here, nor is any local-volume CSI driver). The snapshot
// CRDs kk ships come from external-snapshotter's client module too, through go generate
// ./templates (templates/gen/snapcrds).

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
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

// csiSidecars are the programs of the CSI sidecars' build: module base, folder under cmd/,
// the Spec's release of it and where the program is put.
func (s Spec) csiSidecars() []struct{ base, cmd, version, path string } {
	return []struct{ base, cmd, version, path string }{
		{CSIProvisionerBase, "csi-provisioner", s.CSIProvisioner, CSIProvisionerPath(s.CSIProvisioner)},
		{CSISnapshotterBase, "csi-snapshotter", s.CSISnapshotter, CSISnapshotterPath(s.CSISnapshotter)},
		{CSISnapshotterBase, "snapshot-controller", s.CSISnapshotter, SnapshotControllerPath(s.CSISnapshotter)},
		{CSIResizerBase, "csi-resizer", s.CSIResizer, CSIResizerPath(s.CSIResizer)},
	}
}

// csiSidecarsVersion names the build's releases together (its stamp's version).
func (s Spec) csiSidecarsVersion() string {
	return "provisioner-" + s.CSIProvisioner + "-snapshotter-" + s.CSISnapshotter + "-resizer-" + s.CSIResizer
}

// kubeLib reports whether a replace directive's module is one of the Kubernetes staging
// libraries (k8s.io/api, k8s.io/client-go, ...), which the sidecars' go.mod files pin.
func kubeLib(directive string) (string, bool) {
	old, _, _ := strings.Cut(directive, " => ")
	mod := strings.Fields(old)
	if len(mod) == 0 || !strings.HasPrefix(mod[0], "k8s.io/") || mod[0] == "k8s.io/kubernetes" {
		return "", false
	}
	return mod[0], true
}

// csiSidecarsJob builds the four programs in one go build: each module at its release, each
// program with its own release in main.version (go build's per-package -ldflags), and every
// k8s.io library that a sidecar's go.mod replaces (upstream pins them) at Spec.CSIKubeLibs.
func (b *builder) csiSidecarsJob() job {
	s := b.spec
	var outs, pkgs, reqs []string
	perPkg := map[string][]string{}
	var errs []error
	for _, p := range s.csiSidecars() {
		mod, err := CSIModule(p.base, p.version) // validate reports it before any job is built
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pkg := mod + "/cmd/" + p.cmd
		pkgs = append(pkgs, pkg)
		perPkg[pkg] = []string{csiVersion(p.version)}
		if r := mod + " " + p.version; !slices.Contains(reqs, r) {
			reqs = append(reqs, r)
		}
		outs = append(outs, withChecksum(p.path, p.path+".sha256")...)
	}
	libs := s.CSIKubeLibs
	return job{component: "csi-sidecars", name: "csi-sidecars", version: s.csiSidecarsVersion(), recipe: recipeRev + " k8s.io " + libs, outputs: outs,
		build: func(ctx context.Context, stage string) error {
			if len(errs) > 0 {
				return errors.Join(errs...)
			}
			// the k8s.io libraries the sidecars pin, all at one release
			var pins []string
			for _, r := range reqs {
				mod, ver, _ := strings.Cut(r, " ")
				b.step("go mod download %s@%s", mod, ver)
				reps, err := b.replaces(ctx, mod, ver)
				if err != nil {
					return err
				}
				for _, d := range reps {
					if lib, ok := kubeLib(d); ok && !slices.Contains(pins, lib+" => "+lib+" "+libs) {
						pins = append(pins, lib+" => "+lib+" "+libs)
					}
				}
			}
			slices.Sort(pins)
			dir := filepath.Join(stage, "gobin")
			if err := b.goBuild(ctx, goBuild{key: "csi-sidecars", require: reqs, replace: pins, pkgs: pkgs, pkgLdflags: perPkg, out: dir}); err != nil {
				return err
			}
			for _, p := range s.csiSidecars() {
				if err := placeBinary(filepath.Join(dir, p.cmd), stage, p.path); err != nil {
					return err
				}
				if err := writeHexSum(stage, p.path, p.path+".sha256"); err != nil {
					return err
				}
			}
			return nil
		}}
}
