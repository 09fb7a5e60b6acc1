package bundle

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kk-project/kk/artifacts/catalog"
	"github.com/kk-project/kk/artifacts/download"
)

func TestExportVerifyOpenImport(t *testing.T) {
	f := newFixture(t)
	out := filepath.Join(t.TempDir(), "bundle.tar.gz")
	rep := f.export(t, out)
	if rep.Downloaded == 0 || rep.Reused != 0 || len(rep.Components) != 4 || len(rep.Images) != 2 {
		t.Fatalf("first export: downloaded %d, reused %d, %d components, %d images", rep.Downloaded, rep.Reused, len(rep.Components), len(rep.Images))
	}
	if st, err := os.Stat(out); err != nil || st.Size() != rep.Size || len(rep.SHA256) != 64 {
		t.Fatalf("bundle %v %+v", err, rep)
	}
	ctx := context.Background()
	ix, err := Verify(ctx, out, VerifyOptions{Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	if ix.KKVersion != "v0.0.0-test" || !slices.Equal(ix.Arches, []string{"amd64"}) || ix.Created.IsZero() {
		t.Errorf("index %+v", ix)
	}
	b, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Index.Components) != 4 || len(b.Index.Images) != 2 || b.Index.Images[0].Ref != "registry.k8s.io/kk/one:v1" {
		t.Errorf("open: %+v", b.Index)
	}
	for _, p := range []string{IndexName, SumsName, ManifestName, "files/kubeadm/v1.34.1/amd64/kubeadm", "files/runc/v1.3.0/amd64/runc.sha256", "images/index.json", "images/oci-layout"} {
		if _, ok := b.Index.file(p); !ok && p != IndexName {
			t.Errorf("index lacks %s", p)
		}
	}

	imp, err := Import(ctx, out, ImportOptions{Workdir: f.workdir, Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	if imp.Skipped || imp.Dir != filepath.Join(f.workdir, "artifact", rep.SHA256) {
		t.Errorf("import %+v", imp)
	}
	if p, ok := imp.Component("kubeadm", "v1.34.1", "amd64"); !ok || !isExecutable(t, p) {
		t.Errorf("kubeadm %s %v", p, ok)
	}
	checkLayout(t, imp, f)
	checkOfflineCache(t, imp)

	again, err := Import(ctx, out, ImportOptions{Workdir: f.workdir})
	if err != nil || !again.Skipped || again.Dir != imp.Dir {
		t.Fatalf("second import: %+v %v", again, err)
	}
	// A member removed from the unpacked tree: import unpacks again.
	os.Remove(filepath.Join(imp.Dir, "files/kubelet/v1.34.1/amd64/kubelet"))
	third, err := Import(ctx, out, ImportOptions{Workdir: f.workdir})
	if err != nil || third.Skipped {
		t.Fatalf("import after damage: %+v %v", third, err)
	}
	if _, err := os.Stat(filepath.Join(imp.Dir, "files/kubelet/v1.34.1/amd64/kubelet")); err != nil {
		t.Error(err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(f.workdir, "artifact", ".import-*")); len(leftovers) != 0 {
		t.Errorf("temporary dirs left: %v", leftovers)
	}
}

func isExecutable(t *testing.T, p string) bool {
	t.Helper()
	st, err := os.Stat(p)
	return err == nil && st.Mode().Perm()&0o100 != 0
}

// checkLayout reads the unpacked OCI layout with go-containerregistry: one entry per image,
// named by its upstream reference, with the registry's digest.
func checkLayout(t *testing.T, imp *Imported, f *fixture) {
	t.Helper()
	lp, err := layout.FromPath(imp.Images())
	if err != nil {
		t.Fatal(err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"registry.k8s.io/kk/one:v1": f.regHost + "/kk/one:v1", f.regHost + "/kk/two:v2": f.regHost + "/kk/two:v2"}
	if len(im.Manifests) != len(want) {
		t.Fatalf("%d manifests in the layout", len(im.Manifests))
	}
	for _, d := range im.Manifests {
		ref := d.Annotations["org.opencontainers.image.ref.name"]
		src, ok := want[ref]
		if !ok {
			t.Errorf("unexpected ref.name %q", ref)
			continue
		}
		r, _ := name.ParseReference(src)
		upstream, err := remote.Get(r)
		if err != nil {
			t.Fatal(err)
		}
		if upstream.Digest != d.Digest || d.Platform == nil || d.Platform.Architecture != "amd64" {
			t.Errorf("%s: digest %s, upstream %s, platform %+v", ref, d.Digest, upstream.Digest, d.Platform)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		layers, err := img.Layers()
		if err != nil || len(layers) != 2 {
			t.Fatalf("layers %v %v", layers, err)
		}
		if _, err := layers[1].Compressed(); err != nil {
			t.Errorf("layer blob: %v", err)
		}
	}
}

// checkOfflineCache uses the unpacked files/ as the downloader's cache with an unreachable
// upstream: every component is reused.
func checkOfflineCache(t *testing.T, imp *Imported) {
	t.Helper()
	comps := append(kube("v1.34.1"), catalog.Component{Name: "runc", Version: "v1.3.0", Arch: "amd64"})
	arts, err := catalog.Resolver{Mirror: "http://127.0.0.1:1"}.ResolveAll(comps)
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&download.Downloader{Cache: imp.Files(), Retries: -1}).Fetch(context.Background(), arts)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.Reused {
			t.Errorf("%s not reused", r.Artifact.Component)
		}
	}
}

func TestSecondExportReusesCache(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	first := f.export(t, filepath.Join(dir, "a.tar.gz"))
	hits := f.up.hits.Load()
	second := f.export(t, filepath.Join(dir, "b.tar.gz"))
	if second.Downloaded != 0 {
		t.Errorf("second export downloaded %d bytes", second.Downloaded)
	}
	if second.Reused != first.Downloaded {
		t.Errorf("reused %d, first downloaded %d", second.Reused, first.Downloaded)
	}
	if n := f.up.hits.Load() - hits; n != 0 {
		t.Errorf("%d requests to the component upstream on the second export", n)
	}
	for _, c := range second.Components {
		if !c.Reused {
			t.Errorf("%s not reused", c.Component)
		}
	}
	if first.SHA256 != second.SHA256 {
		t.Errorf("same manifest, same cache, same time: bundles differ (%s, %s)", first.SHA256, second.SHA256)
	}
}

func TestVerifyWrongArch(t *testing.T) {
	f := newFixture(t)
	out := filepath.Join(t.TempDir(), "bundle.tar.gz")
	f.export(t, out)
	_, err := Verify(context.Background(), out, VerifyOptions{Arch: "arm64"})
	if err == nil || !strings.Contains(err.Error(), "is for linux/amd64, not linux/arm64") || !strings.Contains(err.Error(), out) {
		t.Errorf("%v", err)
	}
	if _, err := Import(context.Background(), out, ImportOptions{Workdir: t.TempDir(), Arch: "arm64"}); err == nil {
		t.Error("import of another arch's bundle succeeded")
	}
}

func TestExportMissingComponentLeavesNoBundle(t *testing.T) {
	f := newFixture(t)
	f.manifest.Spec.KubernetesDistributions[0].Version = "v1.34.2" // not served
	dir := t.TempDir()
	out := filepath.Join(dir, "bundle.tar.gz")
	_, err := Export(context.Background(), f.options(out))
	if err == nil || !errors.Is(err, download.ErrNotFound) || !strings.Contains(err.Error(), "kubeadm v1.34.2") {
		t.Fatalf("%v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left in the output dir: %v", entries)
	}
}

func TestExportMissingImageLeavesNoBundle(t *testing.T) {
	f := newFixture(t)
	f.manifest.Spec.Images = append(f.manifest.Spec.Images, f.regHost+"/kk/absent:v9")
	dir := t.TempDir()
	out := filepath.Join(dir, "bundle.tar.gz")
	os.WriteFile(out, []byte("an older bundle"), 0o644)
	_, err := Export(context.Background(), f.options(out))
	if err == nil || !strings.Contains(err.Error(), "kk/absent:v9") {
		t.Fatalf("%v", err)
	}
	if data, _ := os.ReadFile(out); string(data) != "an older bundle" {
		t.Error("the existing file was replaced by a failed export")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left in the output dir: %v", entries)
	}
}

func TestExportPinnedChecksumMismatch(t *testing.T) {
	f := newFixture(t)
	f.manifest.Spec.Checksums = append(f.manifest.Spec.Checksums, v1alpha2PinnedChecksum("kubelet", "v1.34.1", "amd64", strings.Repeat("ab", 32)))
	_, err := Export(context.Background(), f.options(filepath.Join(t.TempDir(), "b.tar.gz")))
	if !errors.Is(err, download.ErrChecksumMismatch) || !strings.Contains(err.Error(), "kubelet") {
		t.Errorf("%v", err)
	}
}

func TestExportImageForAnotherArch(t *testing.T) {
	f := newFixture(t)
	f.manifest.Spec.Arches = []string{"amd64", "arm64"}
	f.manifest.Spec.KubernetesDistributions = nil
	f.manifest.Spec.Components.Runc.Version = ""
	setArch(t, f.regHost+"/kk/one:v1", "amd64")
	_, err := Export(context.Background(), f.options(filepath.Join(t.TempDir(), "b.tar.gz")))
	if err == nil || !strings.Contains(err.Error(), "registry.k8s.io/kk/one:v1 (linux/arm64") || !strings.Contains(err.Error(), "for linux/amd64 only") {
		t.Errorf("%v", err)
	}
}

func TestDiskFullErrorNamesPath(t *testing.T) {
	err := writeErr("/var/kk/bundle.tar.gz", &os.PathError{Op: "write", Path: "/var/kk/x", Err: enospc()})
	if !errors.Is(err, ErrDiskFull) || !errors.Is(err, enospc()) || !strings.Contains(err.Error(), "no space left on device writing /var/kk/bundle.tar.gz") {
		t.Errorf("%v", err)
	}
	if err := writeErr("/x", os.ErrPermission); errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), "/x") {
		t.Errorf("%v", err)
	}
}
