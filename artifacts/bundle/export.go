package bundle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/artifacts/catalog"
	"github.com/kk-project/kk/artifacts/charts"
	"github.com/kk-project/kk/artifacts/download"
	"github.com/kk-project/kk/pipeline/progress"
)

// Options configure Export.
type Options struct {
	// Manifest says what goes into the bundle (required).
	Manifest *v1alpha2.Manifest
	// Output is the bundle file to write (required); it is replaced only once the bundle is
	// complete.
	Output string
	// Workdir holds the download cache: <Workdir>/cache (required).
	Workdir string
	// Resolver says where components are downloaded from (mirror, bases, zone).
	Resolver catalog.Resolver
	// RegistryMirrors maps an image registry (registry.k8s.io, docker.io, ...) to the base URL
	// images are pulled from instead: http://127.0.0.1:5055, https://mirror.local/prefix.
	// An http:// mirror is used over plain HTTP.
	RegistryMirrors map[string]string
	// KKVersion is written into the index.
	KKVersion string
	// Client downloads components; Transport pulls images. nil: Go's defaults.
	Client    *http.Client
	Transport http.RoundTripper
	// Concurrency is the number of images pulled at once; <= 0 means 4.
	Concurrency int
	// Log gets one line per component and image; nil discards them.
	Log io.Writer
	// Now stamps the index; nil means time.Now.
	Now func() time.Time
}

// Report says what Export did.
type Report struct {
	Path   string // the bundle written
	SHA256 string // of the bundle file
	Size   int64  // of the bundle file
	Index  *Index
	// Downloaded is the bytes fetched over the network (component files and image blobs);
	// Reused the bytes taken from the cache instead. ImageMetadata is the image manifests
	// fetched to resolve tags (always fetched: tags move), not counted in Downloaded.
	Downloaded    int64
	Reused        int64
	ImageMetadata int64
	Components    []ComponentResult
	Images        []ImageResult
	// Charts are the app store's charts packed (directories packaged into the cache).
	Charts []charts.Archive
}

// ComponentResult is one component of an export.
type ComponentResult struct {
	Component  catalog.Component
	Size       int64
	Downloaded int64
	Reused     bool
}

// ImageResult is one image (one arch) of an export.
type ImageResult struct {
	Ref        string
	Arch       string
	Digest     string
	Size       int64
	Downloaded int64
	Reused     int64
}

// Export downloads what o.Manifest lists (through the cache), pulls its images and writes
// the bundle to o.Output. On any failure no bundle is left at o.Output (nor a partial file
// beside it); an existing file there is replaced only by a complete bundle.
func Export(ctx context.Context, o Options) (*Report, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	m := o.Manifest
	cache := filepath.Join(o.Workdir, "cache")
	rep := &Report{}

	arts, err := o.resolve()
	if err != nil {
		return nil, err
	}
	files, err := o.fetch(ctx, cache, arts, rep)
	if err != nil {
		return nil, err
	}
	if rep.Charts, err = o.packCharts(filepath.Join(cache, ChartsDir)); err != nil {
		return nil, err
	}
	imgs, err := o.pullAll(ctx, filepath.Join(cache, "images"), rep)
	if err != nil {
		return nil, err
	}
	manifest, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	members, ix, err := o.plan(manifest, files, rep.Charts, imgs, filepath.Join(cache, "images"))
	if err != nil {
		return nil, err
	}
	rep.Index = ix
	sum, size, err := writeBundle(ctx, o.Output, members, ix.Created)
	if err != nil {
		return nil, err
	}
	rep.Path, rep.SHA256, rep.Size = o.Output, sum, size
	return rep, nil
}

func (o *Options) check() error {
	switch {
	case o.Manifest == nil:
		return errors.New("bundle export: no manifest")
	case o.Output == "":
		return errors.New("bundle export: no output file")
	case o.Workdir == "":
		return errors.New("bundle export: no workdir")
	case len(o.Manifest.Spec.Arches) == 0:
		return fmt.Errorf("bundle export: manifest %s lists no arch", o.Manifest.Source)
	}
	if err := o.Resolver.Validate(); err != nil {
		return fmt.Errorf("bundle export: %w", err)
	}
	return nil
}

func (o *Options) logf(format string, args ...any) {
	if o.Log != nil {
		fmt.Fprintf(o.Log, format+"\n", args...)
	}
}

// resolve turns the manifest's components into artifacts, with the manifest's pinned checksums.
func (o *Options) resolve() ([]catalog.Artifact, error) {
	arts, err := o.Resolver.ResolveAll(o.Manifest.Components())
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", o.Manifest.Source, err)
	}
	for i := range arts {
		if sum := o.Manifest.Checksum(arts[i].Component); sum != "" {
			arts[i].Checksum.Pinned = sum
		}
	}
	return arts, nil
}

// cachedFile is a component file in the cache, bound for the bundle.
type cachedFile struct {
	src   string
	entry ComponentEntry
	mode  int64
}

func (o *Options) fetch(ctx context.Context, cache string, arts []catalog.Artifact, rep *Report) ([]cachedFile, error) {
	d := &download.Downloader{Cache: cache, Client: o.Client}
	results, err := d.Fetch(ctx, arts)
	if err != nil {
		return nil, fmt.Errorf("bundle export: downloading components: %w", err)
	}
	var out []cachedFile
	for _, r := range results {
		st, err := os.Stat(r.Path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.Artifact.Component, err)
		}
		cr := ComponentResult{Component: r.Artifact.Component, Size: st.Size(), Downloaded: r.Bytes, Reused: r.Reused}
		rep.Components = append(rep.Components, cr)
		rep.Downloaded += r.Bytes
		how := fmt.Sprintf("downloaded %s", progress.HumanBytes(r.Bytes))
		if r.Reused {
			rep.Reused += st.Size()
			how = "reused from the cache"
		}
		o.logf("component %s: %s (%s)", r.Artifact.Component, how, progress.HumanBytes(st.Size()))
		out = append(out, cachedFile{
			src:  r.Path,
			mode: int64(st.Mode().Perm()),
			entry: ComponentEntry{
				Name: r.Artifact.Component.Name, Version: r.Artifact.Component.Version, Arch: r.Artifact.Component.Arch,
				Path: path.Join(FilesDir, r.Artifact.File), URL: r.Artifact.URL, SHA256: r.SHA256, Size: st.Size(),
			},
		})
	}
	return out, nil
}

// pullAll pulls every image for every arch, o.Concurrency at once, in manifest order.
func (o *Options) pullAll(ctx context.Context, cache string, rep *Report) ([]*pulledImage, error) {
	mirrors, err := normalizeMirrors(o.RegistryMirrors)
	if err != nil {
		return nil, err
	}
	tr := o.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	p := &puller{cache: cache, mirrors: mirrors, auths: o.Manifest.Spec.Registry.Auths, base: tr}
	type job struct{ ref, arch string }
	var jobs []job
	for _, ref := range o.Manifest.Images() {
		for _, arch := range o.Manifest.Spec.Arches {
			jobs = append(jobs, job{ref, arch})
		}
	}
	out := make([]*pulledImage, len(jobs))
	errs := make([]error, len(jobs))
	n := o.Concurrency
	if n <= 0 {
		n = 4
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
				out[i], errs[i] = p.pull(ctx, j.ref, j.arch)
			case <-ctx.Done():
				errs[i] = fmt.Errorf("image %s (linux/%s): %w", j.ref, j.arch, ctx.Err())
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("bundle export: pulling images: %w", err)
	}
	for _, img := range out {
		rep.Images = append(rep.Images, ImageResult{Ref: img.entry.Ref, Arch: img.entry.Arch, Digest: img.entry.Digest,
			Size: img.entry.Size, Downloaded: img.downloaded, Reused: img.reused})
		rep.Downloaded += img.downloaded
		rep.Reused += img.reused
		rep.ImageMetadata += img.metadata
		o.logf("image %s (linux/%s): %s downloaded, %s reused from the cache", img.entry.Ref, img.entry.Arch, progress.HumanBytes(img.downloaded), progress.HumanBytes(img.reused))
	}
	return out, nil
}

// packCharts checks that each chart of the manifest's spec.charts is still the chart listed and
// returns its archive: the chart's own, or a directory packaged into dir (as helm package
// does). A problem names the manifest entry's FILE:LINE.
func (o *Options) packCharts(dir string) ([]charts.Archive, error) {
	var out []charts.Archive
	var errs []error
	for i, mc := range o.Manifest.Spec.Charts {
		at := fmt.Sprintf("%s: spec.charts[%d]", mc.Source, i)
		file := mc.File
		if file == "" {
			file = mc.Path
		}
		a, err := charts.Package(file, dir)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", at, err))
			continue
		case a.Name != mc.Name || a.Version != mc.Version:
			errs = append(errs, fmt.Errorf("%s: %s is chart %s, the manifest lists %s %s: write the manifest again (kk create manifest)",
				at, file, a.Chart, mc.Name, mc.Version))
			continue
		}
		o.logf("chart %s: %s (%s)", a.Chart, a.Path, progress.HumanBytes(a.Size))
		out = append(out, a)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("bundle export: charts: %w", err)
	}
	return out, nil
}

// plan lists the bundle's members, index first, and builds the index.
func (o *Options) plan(manifest []byte, files []cachedFile, archives []charts.Archive, imgs []*pulledImage, imageCache string) ([]member, *Index, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	ix := &Index{
		Format: FormatV1, KKVersion: o.KKVersion, Created: now().UTC().Truncate(time.Second),
		Name: o.Manifest.Metadata.Name, Arches: append([]string(nil), o.Manifest.Spec.Arches...),
		Components: []ComponentEntry{}, Images: []ImageEntry{},
	}
	var body []member
	body = append(body, memMember(ManifestName, manifest, 0o644))
	for _, f := range files {
		ix.Components = append(ix.Components, f.entry)
		body = append(body, member{path: f.entry.Path, src: f.src, sha256: f.entry.SHA256, size: f.entry.Size, mode: f.mode})
		rec := []byte(f.entry.SHA256 + "  " + path.Base(f.entry.Path) + "\n")
		body = append(body, memMember(f.entry.Path+".sha256", rec, 0o644))
	}
	for _, a := range archives {
		e := ChartEntry{Name: a.Name, Version: a.Version, Path: path.Join(ChartsDir, a.FileName()), SHA256: a.SHA256, Size: a.Size}
		ix.Charts = append(ix.Charts, e)
		body = append(body, member{path: e.Path, src: a.Path, sha256: e.SHA256, size: e.Size, mode: 0o644})
	}
	layoutMembers, err := imageMembers(imgs, imageCache)
	if err != nil {
		return nil, nil, err
	}
	body = append(body, layoutMembers...)
	for _, img := range imgs {
		ix.Images = append(ix.Images, img.entry)
	}
	for _, b := range body {
		ix.Files = append(ix.Files, FileEntry{Path: b.path, SHA256: b.sha256, Size: b.size})
	}
	sumsMember := memMember(SumsName, sums(ix.Files), 0o644)
	ix.Files = append([]FileEntry{{Path: SumsName, SHA256: sumsMember.sha256, Size: sumsMember.size}}, ix.Files...)
	data, err := json.MarshalIndent(ix, "", "  ")
	if err != nil {
		return nil, nil, err
	}
	members := append([]member{memMember(IndexName, append(data, '\n'), 0o644), sumsMember}, body...)
	return members, ix, nil
}

// imageMembers are the OCI layout: oci-layout, index.json and every blob once.
func imageMembers(imgs []*pulledImage, cache string) ([]member, error) {
	if len(imgs) == 0 {
		return nil, nil
	}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	seen := map[string]bool{}
	var blobs []member
	for _, img := range imgs {
		digest, err := v1.NewHash(img.entry.Digest)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", img.entry.Ref, err)
		}
		idx.Manifests = append(idx.Manifests, v1.Descriptor{
			MediaType: types.MediaType(img.mediaType), Digest: digest, Size: img.manifest,
			Platform: &v1.Platform{OS: "linux", Architecture: img.entry.Arch},
			Annotations: map[string]string{
				"org.opencontainers.image.ref.name": img.entry.Ref,
				"io.containerd.image.name":          img.entry.Ref,
			},
		})
		for _, h := range img.blobs {
			p := path.Join(ImagesDir, "blobs", h.Algorithm, h.Hex)
			if seen[p] {
				continue
			}
			seen[p] = true
			src := filepath.Join(cache, "blobs", h.Algorithm, h.Hex)
			st, err := os.Stat(src)
			if err != nil {
				return nil, fmt.Errorf("image cache: %w", err)
			}
			blobs = append(blobs, member{path: p, src: src, sha256: h.Hex, size: st.Size(), mode: 0o644})
		}
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].path < blobs[j].path })
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]member{
		memMember(path.Join(ImagesDir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`+"\n"), 0o644),
		memMember(path.Join(ImagesDir, "index.json"), append(data, '\n'), 0o644),
	}, blobs...), nil
}
