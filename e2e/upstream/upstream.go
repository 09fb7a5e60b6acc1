// Package upstream stands in for the internet in kk's end-to-end runs: it serves the local
// mirror (release binaries at the upstream URL paths) and the test images (an OCI registry)
// on loopback, writes the kind: Manifest of a test cluster pinned to what the mirror builds,
// and exports its bundle with kk itself (kk artifact export --mirror --registry-mirror), the
// same code path a user with their own mirror takes.
package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/artifacts/catalog"
	"github.com/kk-project/kk/artifacts/download"
	"github.com/kk-project/kk/e2e/images"
	"github.com/kk-project/kk/e2e/mirror"
)

// Dirs says where the mirror and images were built (make mirror).
type Dirs struct {
	Mirror string // default /var/tmp/kk-mirror ($KK_MIRROR_DIR)
	Images string // default /var/tmp/kk-images ($KK_IMAGES_DIR)
}

// DefaultDirs reads $KK_MIRROR_DIR and $KK_IMAGES_DIR.
func DefaultDirs() Dirs {
	return Dirs{Mirror: envOr("KK_MIRROR_DIR", images.DefaultMirrorDir), Images: envOr("KK_IMAGES_DIR", images.DefaultOutDir)}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Served is a running upstream.
type Served struct {
	Mirror   string // http://127.0.0.1:PORT
	Registry string // 127.0.0.1:PORT
	Dirs     Dirs   // what it serves
}

// Serve serves the mirror and the images on loopback until ctx ends.
func Serve(ctx context.Context, d Dirs) (Served, error) {
	if _, err := os.Stat(filepath.Join(d.Mirror, "release")); err != nil {
		return Served{}, fmt.Errorf("the local mirror %s is not built (make mirror): %w", d.Mirror, err)
	}
	_, base, err := mirror.Serve(ctx, d.Mirror, "127.0.0.1:0")
	if err != nil {
		return Served{}, err
	}
	reg, _, err := images.Serve(ctx, images.LayoutDir(d.Images), "127.0.0.1:0")
	if err != nil {
		return Served{}, err
	}
	return Served{Mirror: base, Registry: reg, Dirs: d}, nil
}

// Manifest is the kind: Manifest of a cluster of Kubernetes version k8s, pinned to what the
// local mirror builds (a user pins versions the same way) and listing every test image of
// that version.
func Manifest(d Dirs, k8s string) (string, error) {
	spec := mirror.DefaultSpec()
	data, err := os.ReadFile(filepath.Join(d.Images, "images.json"))
	if err != nil {
		return "", fmt.Errorf("test images are not built (make mirror): %w", err)
	}
	var sum images.Summary
	if err := json.Unmarshal(data, &sum); err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Join(d.Images, "images.json"), err)
	}
	var refs []string
	for _, im := range sum.Images {
		for _, r := range im.Refs {
			if strings.HasPrefix(r, "registry.k8s.io/kube-") && !strings.HasSuffix(r, ":"+k8s) {
				continue // another Kubernetes version
			}
			refs = append(refs, r)
		}
	}
	if len(refs) == 0 {
		return "", fmt.Errorf("%s lists no image for Kubernetes %s", filepath.Join(d.Images, "images.json"), k8s)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: kubekey.kubesphere.io/v1alpha2
kind: Manifest
metadata:
  name: e2e-%s
spec:
  arches: [amd64]
  kubernetesDistributions:
  - {type: kubernetes, version: %s}
  components:
    etcd: {version: %s}
    containerRuntimes:
    - {type: containerd, version: %s}
    crictl: {version: %s}
    cni: {version: %s}
    runc: {version: %s}
  images:
`, k8s, k8s, spec.Etcd, spec.Containerd, spec.Crictl, spec.CNIPlugins, spec.Runc)
	for _, r := range refs {
		fmt.Fprintf(&b, "  - %s\n", r)
	}
	return b.String(), nil
}

// MirrorReleases sets, in the Manifest man that kk create manifest wrote, docker's and
// cri-dockerd's releases to those the local mirror has, as a user whose site runs another
// release of them edits the Manifest's versions: the mirror assembles docker from Debian's
// packages (see e2e/mirror/docker.go), which are not kk's release. It returns the Manifest and
// what it changed.
func MirrorReleases(man string) (string, []string) {
	spec := mirror.DefaultSpec()
	var edits []string
	for _, r := range []struct {
		name string
		re   *regexp.Regexp
		want string
	}{
		{"docker", regexp.MustCompile(`(?m)^(\s+- type: docker\n\s+version: )(\S+)$`), spec.Docker},
		{"cri-dockerd", regexp.MustCompile(`(?m)^(\s+cri-dockerd:\n\s+version: )(\S+)$`), spec.CriDockerd},
	} {
		m := r.re.FindStringSubmatch(man)
		if m == nil || m[2] == r.want {
			continue
		}
		man = r.re.ReplaceAllString(man, "${1}"+r.want)
		edits = append(edits, fmt.Sprintf("%s %s -> %s, the release the local mirror has", r.name, m[2], r.want))
	}
	return man, edits
}

// PinUnpublished adds to the Manifest man (named name) the spec.checksums of its components
// whose upstream publishes no checksum (docker, cri-dockerd, NVIDIA's container toolkit), as
// its header asks a user to: here the SHA-256 of the local mirror's files, which stand in for
// the downloads a user verified. A Manifest without such components comes back as it is.
func PinUnpublished(d Dirs, name, man string) (string, error) {
	m, _, err := v1alpha2.ParseManifest(name, []byte(man))
	if err != nil {
		return "", err
	}
	comps := m.Spec.Components
	type pin struct{ name, version, path string }
	var pins []pin
	for _, rt := range comps.ContainerRuntimes {
		if rt.Type == v1alpha2.RuntimeDocker {
			pins = append(pins, pin{"docker", rt.Version, mirror.DockerPath(rt.Version)})
		}
	}
	if v := comps.CriDockerd.Version; v != "" {
		pins = append(pins, pin{"cri-dockerd", v, mirror.CriDockerdPath(v)})
	}
	if v := comps.NvidiaContainerToolkit.Version; v != "" {
		pins = append(pins, pin{catalog.NvidiaContainerToolkit, v, mirror.NvidiaContainerToolkitPath(v, mirror.Arch)})
	}
	if len(pins) == 0 {
		return man, nil
	}
	if strings.Contains(man, "\n  checksums:") || !strings.Contains(man, "\n  images:\n") {
		return "", fmt.Errorf("%s: pin checksums: the manifest has spec.checksums already, or no spec.images", name)
	}
	var b strings.Builder
	b.WriteString("  checksums:\n")
	for _, c := range pins {
		sum, _, err := download.FileSHA256(context.Background(), filepath.Join(d.Mirror, filepath.FromSlash(c.path)))
		if err != nil {
			return "", fmt.Errorf("%s: %s %s is not in the local mirror (make mirror): %w", name, c.name, c.version, err)
		}
		fmt.Fprintf(&b, "  - {component: %s, version: %s, arch: %s, sha256: %s}\n", c.name, c.version, mirror.Arch, sum)
	}
	return strings.Replace(man, "\n  images:\n", "\n"+b.String()+"  images:\n", 1), nil
}

// Export is the user's air-gapped flow against the served upstream: `kk create manifest ARGS
// -f dir/manifest-NAME.yaml` (ARGS say which cluster: "-c cluster.yaml", "--with-kubernetes
// v1.30.14"), then `kk artifact export` of that manifest. The bundle is dir/bundle-NAME.tar.gz
// and the download cache dir/work, so a second export downloads nothing. kk's output and the
// commands run go to out.
func Export(ctx context.Context, kk string, s Served, dir, name string, manifestArgs []string, out io.Writer) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	mp := filepath.Join(dir, "manifest-"+name+".yaml")
	args := append([]string{"create", "manifest"}, manifestArgs...)
	args = append(args, "-f", mp, "--yes")
	if err := runKK(ctx, kk, out, args...); err != nil {
		return "", err
	}
	// the components NVIDIA and Docker publish no checksum for: pinned, as the header asks
	man, err := os.ReadFile(mp)
	if err != nil {
		return "", err
	}
	held, edits := MirrorReleases(string(man))
	for _, e := range edits {
		fmt.Fprintf(out, "(edited in %s: %s)\n", mp, e)
	}
	pinned, err := PinUnpublished(s.Dirs, mp, held)
	if err != nil {
		return "", err
	}
	if pinned != string(man) {
		fmt.Fprintf(out, "(pinned in %s: the sha256 of the components upstream publishes no checksum for)\n", mp)
		if err := os.WriteFile(mp, []byte(pinned), 0o644); err != nil {
			return "", err
		}
	}
	return exportFile(ctx, kk, s, dir, name, mp, out)
}

// runKK runs kk with args, its output and the command line to out.
func runKK(ctx context.Context, kk string, out io.Writer, args ...string) error {
	fmt.Fprintf(out, "$ kk %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, kk, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kk %s: %w", args[0]+" "+args[1], err)
	}
	return nil
}

// ExportManifest writes man as dir/manifest-<name>.yaml and exports its bundle
// dir/bundle-<name>.tar.gz from the served upstream (the download cache is dir/work).
func ExportManifest(ctx context.Context, kk string, s Served, dir, name, man string, out io.Writer) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	mp := filepath.Join(dir, "manifest-"+name+".yaml")
	if err := os.WriteFile(mp, []byte(man), 0o644); err != nil {
		return "", err
	}
	return exportFile(ctx, kk, s, dir, name, mp, out)
}

// exportFile runs kk artifact export of the manifest file mp against the served upstream, as
// a user with mirrors of their own does (--mirror for release files, --registry-mirror for
// images): the bundle is dir/bundle-<name>.tar.gz.
func exportFile(ctx context.Context, kk string, s Served, dir, name, mp string, out io.Writer) (string, error) {
	bundle := filepath.Join(dir, "bundle-"+name+".tar.gz")
	reg := "http://" + s.Registry
	if err := runKK(ctx, kk, out, "artifact", "export", "-m", mp, "-o", bundle, "--workdir", filepath.Join(dir, "work"),
		"--mirror", s.Mirror, "--registry-mirror", images.RegistryMirrorFlag(reg)); err != nil {
		return "", err
	}
	return bundle, nil
}

// ImageArchive writes the built test image ref (the e2e probe) as a docker-archive tarball at
// out. Tests load it onto their nodes beside the bundle: it is the test's own workload, not
// part of any cluster kk installs, so no bundle lists it.
func ImageArchive(d Dirs, ref, out string) error {
	idx, err := layout.ImageIndexFromPath(images.LayoutDir(d.Images))
	if err != nil {
		return fmt.Errorf("test images are not built (make mirror): %w", err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, desc := range m.Manifests {
		if desc.Annotations[images.AnnotationRefName] != ref {
			continue
		}
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return err
		}
		tag, err := name.NewTag(ref)
		if err != nil {
			return err
		}
		return tarball.WriteToFile(out, tag, img)
	}
	return fmt.Errorf("%s: no image %s", images.LayoutDir(d.Images), ref)
}
