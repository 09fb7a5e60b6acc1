package images

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kk-project/kk/artifacts/download"
	"github.com/kk-project/kk/e2e/mirror"
	"github.com/kk-project/kk/pipeline/progress"
)

// Defaults for Options.
const (
	DefaultMirrorDir = "/var/tmp/kk-mirror"
	DefaultOutDir    = "/var/tmp/kk-images"
)

// Annotations put on every image descriptor of the layout's index.
const (
	AnnotationRefName       = "org.opencontainers.image.ref.name"
	AnnotationContainerdRef = "io.containerd.image.name"
)

// Options tunes Build. The zero value builds every image of
// mirror.DefaultSpec() from DefaultMirrorDir into DefaultOutDir.
type Options struct {
	MirrorDir string
	OutDir    string
	// Spec picks the versions; nil means mirror.DefaultSpec().
	Spec *mirror.Spec
	// DockerTars also writes one `docker save`-style tarball per image
	// (all its tags) under <OutDir>/tars.
	DockerTars bool
	// Only restricts the build to these images, named by repository
	// ("registry.k8s.io/kube-proxy") or its last element ("kube-proxy").
	// The layout then holds just those.
	Only []string
	// Components restricts the build to the images whose binaries come
	// from these components of the mirror (mirror.Components names, as in
	// mirror.BuildOptions.Only), so that a partly built mirror is enough.
	// Images made only of kk's own programs and Debian packages (pause,
	// the probe, haproxy) are always kept. The Kubernetes versions are
	// Spec's.
	Components []string
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Built is one image of a finished build.
type Built struct {
	Image
	Digest string      // manifest digest
	Size   int64       // manifest + config + compressed layers, in bytes
	Layers []LayerInfo // bottom first
}

// Result is what Build produced.
type Result struct {
	LayoutDir string // the OCI image layout holding every image
	Images    []Built
	// LayersBuilt counts layers built in this run (the rest came from
	// the cache).
	LayersBuilt int
	Seconds     float64
}

// LayoutDir is where Build puts the OCI image layout under outDir.
func LayoutDir(outDir string) string { return filepath.Join(outDir, "oci") }

// layerRecord is the cache record of one layer, <out>/layers/<name>.json.
type layerRecord struct {
	Name    string    `json:"name"`
	Key     string    `json:"key"`
	Layer   LayerInfo `json:"layer"`
	Seconds float64   `json:"seconds"`
	Built   time.Time `json:"built"`
}

type builder struct {
	opts      Options
	out       string
	blobs     string // <layout>/blobs/sha256
	log       io.Writer
	debCache  map[string]Deb        // package name -> candidate
	entries   map[string][]Entry    // layer name -> materialized entries
	layers    map[string]LayerInfo  // layer name -> built/cached layer
	keys      map[string]string     // layer name -> cache key
	fileHash  map[string]string     // path on this machine -> sha256
	specs     map[string]*layerSpec // layer name -> spec (to catch name clashes)
	built     int
	ownBinary map[string]bool // kk's own builds done in this run
	prefix    string          // "[3/9] registry.k8s.io/etcd:3.6.5-0": the image being built, for progress lines
}

// Build builds (or reuses from the cache) every image and writes them
// into one OCI image layout, LayoutDir(opts.OutDir). A layer is rebuilt
// only when its key changes: recipe version, destination paths and modes,
// the sha256 of every input binary, the exact Debian package versions.
func Build(ctx context.Context, opts Options) (*Result, error) {
	start := time.Now()
	if opts.MirrorDir == "" {
		opts.MirrorDir = DefaultMirrorDir
	}
	if opts.OutDir == "" {
		opts.OutDir = DefaultOutDir
	}
	spec := mirror.DefaultSpec()
	if opts.Spec != nil {
		spec = *opts.Spec
	}
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	out, err := filepath.Abs(opts.OutDir)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	mirrorDir, err := filepath.Abs(opts.MirrorDir)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	opts.MirrorDir = mirrorDir
	b := &builder{opts: opts, out: out, log: log, blobs: filepath.Join(LayoutDir(out), "blobs", "sha256"),
		debCache: map[string]Deb{}, entries: map[string][]Entry{}, layers: map[string]LayerInfo{},
		keys: map[string]string{}, fileHash: map[string]string{}, specs: map[string]*layerSpec{}, ownBinary: map[string]bool{}}
	for _, d := range []string{out, b.blobs, b.path("layers"), b.path("debs"), b.path("bin"), b.path("checked"), b.path("tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("images: %w", err)
		}
	}
	unlock, err := mirror.Lock(ctx, b.path(".lock"), "images", log)
	if err != nil {
		return nil, fmt.Errorf("images: lock %s: %w", out, err)
	}
	defer unlock()

	debs, err := aptShow(ctx, []string{"haproxy", "busybox-static"})
	if err != nil {
		return nil, fmt.Errorf("images: Debian package versions: %w", err)
	}
	imgs, err := Images(spec, mirrorDir, b.path("bin"), DebVersions{HAProxy: debs[0].Version, Busybox: debs[1].Version})
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	if len(opts.Components) > 0 {
		imgs, err = ofComponents(imgs, spec, mirrorDir, opts.Components)
		if err != nil {
			return nil, fmt.Errorf("images: %w", err)
		}
	}
	if len(opts.Only) > 0 {
		imgs, err = only(imgs, opts.Only)
		if err != nil {
			return nil, fmt.Errorf("images: %w", err)
		}
	}
	res := &Result{LayoutDir: LayoutDir(out)}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for i, im := range imgs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b.prefix = fmt.Sprintf("[%d/%d] %s", i+1, len(imgs), im.Ref())
		imStart, builtBefore := time.Now(), b.built
		bi, img, err := b.image(ctx, im)
		if err != nil {
			b.logf("%s: FAILED", b.prefix)
			return nil, fmt.Errorf("images: %s: %w", im.Ref(), err)
		}
		if n := b.built - builtBefore; n > 0 {
			b.logf("%s: built in %s (%d new layers, %s)", b.prefix, time.Since(imStart).Round(time.Second), n, progress.HumanBytes(bi.Size))
		} else {
			b.logf("%s: cached", b.prefix)
		}
		for _, ref := range im.Refs() {
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
				Annotations: map[string]string{AnnotationRefName: ref, AnnotationContainerdRef: ref},
				Platform:    &v1.Platform{OS: "linux", Architecture: mirror.Arch},
			}})
		}
		res.Images = append(res.Images, *bi)
		if opts.DockerTars {
			if err := b.dockerTar(im, bi.Digest, img); err != nil {
				return nil, fmt.Errorf("images: %s: docker tarball: %w", im.Ref(), err)
			}
		}
	}
	if _, err := layout.Write(LayoutDir(out), idx); err != nil {
		return nil, fmt.Errorf("images: write OCI layout %s: %w", LayoutDir(out), err)
	}
	if err := b.gc(idx); err != nil {
		return nil, fmt.Errorf("images: clean up the layout: %w", err)
	}
	res.LayersBuilt = b.built
	res.Seconds = time.Since(start).Seconds()
	if err := b.writeSummary(res); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	return res, nil
}

// ofComponents keeps the images whose files from the mirror (mirrorDir) all belong to
// artifacts of the given mirror components (see Options.Components).
func ofComponents(imgs []Image, spec mirror.Spec, mirrorDir string, components []string) ([]Image, error) {
	for _, c := range components {
		if !slices.Contains(mirror.Components, c) {
			return nil, fmt.Errorf("unknown mirror component %q (want one of %s)", c, strings.Join(mirror.Components, ", "))
		}
	}
	of := map[string]string{} // file on this machine -> mirror component
	for _, a := range spec.Artifacts() {
		of[filepath.Join(mirrorDir, filepath.FromSlash(a.Path))] = a.Component
	}
	var out []Image
	for _, im := range imgs {
		keep := len(im.partOf) == 0 || slices.ContainsFunc(im.partOf, func(c string) bool { return slices.Contains(components, c) })
		for _, ls := range im.layers {
			srcs := slices.Clone(ls.tars)
			for _, f := range ls.files {
				srcs = append(srcs, f.src)
			}
			for _, src := range srcs {
				if !strings.HasPrefix(src, mirrorDir+string(filepath.Separator)) {
					continue
				}
				c, ok := of[filepath.Clean(src)]
				if !ok {
					return nil, fmt.Errorf("image %s: %s is no artifact of the mirror spec (mirror.Spec.Artifacts)", im.Ref(), src)
				}
				keep = keep && slices.Contains(components, c)
			}
		}
		if keep {
			out = append(out, im)
		}
	}
	return out, nil
}

// only keeps the images named in names.
func only(imgs []Image, names []string) ([]Image, error) {
	var out []Image
	for _, n := range names {
		found := false
		for _, im := range imgs {
			if im.Repository == n || path.Base(im.Repository) == n {
				out = append(out, im)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("no image named %q", n)
		}
	}
	return out, nil
}

func (b *builder) path(elem ...string) string {
	return filepath.Join(append([]string{b.out}, elem...)...)
}

// logf prints one progress line: "images: " and the message.
func (b *builder) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "images: "+format+"\n", args...)
}

// image builds the layers of im, assembles the image and checks it.
func (b *builder) image(ctx context.Context, im Image) (*Built, v1.Image, error) {
	var adds []mutate.Addendum
	bi := &Built{Image: im}
	for _, ls := range im.layers {
		if other, ok := b.specs[ls.name]; ok && other != ls {
			return nil, nil, fmt.Errorf("layer %s: two different layers with that name", ls.name)
		}
		b.specs[ls.name] = ls
		info, err := b.layer(ctx, ls)
		if err != nil {
			return nil, nil, fmt.Errorf("layer %s: %w", ls.name, err)
		}
		l, err := b.fileLayer(info)
		if err != nil {
			return nil, nil, fmt.Errorf("layer %s: %w", ls.name, err)
		}
		bi.Layers = append(bi.Layers, info)
		adds = append(adds, mutate.Addendum{Layer: l, MediaType: types.OCILayer, History: v1.History{
			Created:   v1.Time{Time: Epoch()},
			CreatedBy: "kk e2e/images: layer " + ls.name,
			Comment:   layerComment(ls),
		}})
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, nil, fmt.Errorf("assemble: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, nil, fmt.Errorf("assemble: %w", err)
	}
	cf = cf.DeepCopy()
	cf.Architecture = mirror.Arch
	cf.OS = "linux"
	cf.Created = v1.Time{Time: Epoch()}
	c := im.config
	cf.Config = v1.Config{Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, User: c.User, WorkingDir: c.WorkingDir, StopSignal: c.StopSignal,
		Labels: map[string]string{
			"org.opencontainers.image.version": im.Version,
			"org.opencontainers.image.title":   im.Repository,
			"io.kk.e2e.recipe":                 recipeRev,
		}}
	if im.Note != "" {
		cf.Config.Labels["org.opencontainers.image.description"] = im.Note
	}
	if len(c.Ports) > 0 {
		cf.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range c.Ports {
			cf.Config.ExposedPorts[p] = struct{}{}
		}
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, nil, fmt.Errorf("assemble: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, nil, fmt.Errorf("assemble: %w", err)
	}
	bi.Digest = d.String()
	m, err := img.RawManifest()
	if err != nil {
		return nil, nil, err
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return nil, nil, err
	}
	bi.Size = int64(len(m) + len(rawCfg))
	for _, l := range bi.Layers {
		bi.Size += l.Size
	}
	if err := b.check(ctx, im, bi.Digest); err != nil {
		return nil, nil, err
	}
	return bi, img, nil
}

func layerComment(ls *layerSpec) string {
	var parts []string
	if len(ls.debs) > 0 {
		parts = append(parts, "debian: "+strings.Join(ls.debs, " "))
	}
	for _, f := range ls.files {
		parts = append(parts, "/"+f.dst)
	}
	return strings.Join(parts, "; ")
}

// check verifies an image once per manifest digest: the paths its recipe
// requires resolve, and every ELF binary finds its loader and libraries.
func (b *builder) check(ctx context.Context, im Image, digest string) error {
	stamp := b.path("checked", strings.TrimPrefix(digest, "sha256:"))
	if _, err := os.Stat(stamp); err == nil {
		return nil
	}
	var layers [][]Entry
	for _, ls := range im.layers {
		es, err := b.layerEntries(ctx, ls)
		if err != nil {
			return fmt.Errorf("check: layer %s: %w", ls.name, err)
		}
		layers = append(layers, es)
	}
	tree, err := Flatten(layers...)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	var missing []string
	for _, p := range im.requires {
		if _, err := tree.Resolve(p); err != nil {
			missing = append(missing, err.Error())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("check: required paths missing: %s", strings.Join(missing, "; "))
	}
	if err := tree.CheckELF(); err != nil {
		return fmt.Errorf("check: incomplete userland: %w", err)
	}
	return os.WriteFile(stamp, []byte(im.Ref()+"\n"), 0o644)
}

// layer returns the cached layer for ls or builds it.
func (b *builder) layer(ctx context.Context, ls *layerSpec) (LayerInfo, error) {
	if info, ok := b.layers[ls.name]; ok {
		return info, nil
	}
	key, err := b.key(ctx, ls)
	if err != nil {
		return LayerInfo{}, fmt.Errorf("cache key: %w", err)
	}
	recPath := b.path("layers", ls.name+".json")
	if data, err := os.ReadFile(recPath); err == nil {
		var rec layerRecord
		if json.Unmarshal(data, &rec) == nil && rec.Key == key {
			if fi, err := os.Stat(filepath.Join(b.blobs, strings.TrimPrefix(rec.Layer.Digest, "sha256:"))); err == nil && fi.Size() == rec.Layer.Size {
				b.layers[ls.name] = rec.Layer
				return rec.Layer, nil
			}
		}
	}
	start := time.Now()
	b.logf("%s: building layer %s", b.prefix, ls.name)
	entries, err := b.layerEntries(ctx, ls)
	if err != nil {
		return LayerInfo{}, err
	}
	tmp, err := os.CreateTemp(b.blobs, ".layer-*")
	if err != nil {
		return LayerInfo{}, err
	}
	defer os.Remove(tmp.Name())
	info, err := WriteLayer(tmp, entries)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return LayerInfo{}, fmt.Errorf("write: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(b.blobs, strings.TrimPrefix(info.Digest, "sha256:"))); err != nil {
		return LayerInfo{}, err
	}
	rec := layerRecord{Name: ls.name, Key: key, Layer: info, Seconds: time.Since(start).Seconds(), Built: time.Now().UTC()}
	data, _ := json.MarshalIndent(rec, "", "  ")
	if err := os.WriteFile(recPath, append(data, '\n'), 0o644); err != nil {
		return LayerInfo{}, err
	}
	b.built++
	b.logf("%s: layer %s built in %.1fs: %s compressed, %s uncompressed", b.prefix, ls.name, rec.Seconds, progress.HumanBytes(info.Size), progress.HumanBytes(info.Uncompressed))
	b.layers[ls.name] = info
	return info, nil
}

// key is the cache key of a layer: a hash over everything it is made of.
func (b *builder) key(ctx context.Context, ls *layerSpec) (string, error) {
	if k, ok := b.keys[ls.name]; ok {
		return k, nil
	}
	h := sha256.New()
	fmt.Fprintf(h, "recipe %s\nlayer %s\n", recipeRev, ls.name)
	for _, f := range ls.files {
		if err := b.ensureOwnBinary(ctx, f); err != nil {
			return "", err
		}
		sum, err := b.sha256(f.src)
		if err != nil {
			return "", fmt.Errorf("input for /%s: %w", f.dst, err)
		}
		xs := make([]string, 0, len(f.xattrs))
		for k, v := range f.xattrs {
			xs = append(xs, k+"="+hex.EncodeToString([]byte(v)))
		}
		sort.Strings(xs)
		fmt.Fprintf(h, "file %s %o %d:%d %s member=%s sha256=%s\n", f.dst, f.mode, f.uid, f.gid, strings.Join(xs, ","), f.member, sum)
	}
	if len(ls.debs) > 0 {
		debs, err := b.resolveDebs(ctx, ls.debs)
		if err != nil {
			return "", err
		}
		for _, d := range debs {
			fmt.Fprintf(h, "deb %s %s %s %s\n", d.Package, d.Version, d.Arch, d.SHA256)
		}
		fmt.Fprintf(h, "prune %s\n", strings.Join(debPrune(), " "))
	}
	for _, t := range ls.tars {
		sum, err := b.sha256(t)
		if err != nil {
			return "", fmt.Errorf("archive for layer %s: %w", ls.name, err)
		}
		fmt.Fprintf(h, "tar %s sha256=%s\n", filepath.Base(t), sum)
	}
	for _, e := range ls.extra {
		fmt.Fprintf(h, "extra %s %c %o %d:%d %s %x\n", e.Path, e.Type, e.Mode, e.UID, e.GID, e.Linkname, sha256.Sum256(e.Data))
	}
	k := hex.EncodeToString(h.Sum(nil))
	b.keys[ls.name] = k
	return k, nil
}

func (b *builder) sha256(p string) (string, error) {
	if s, ok := b.fileHash[p]; ok {
		return s, nil
	}
	s, _, err := download.FileSHA256(context.Background(), p)
	if err != nil {
		return "", err
	}
	b.fileHash[p] = s
	return s, nil
}

func (b *builder) resolveDebs(ctx context.Context, pkgs []string) ([]Deb, error) {
	var need []string
	for _, p := range pkgs {
		if _, ok := b.debCache[p]; !ok {
			need = append(need, p)
		}
	}
	if len(need) > 0 {
		debs, err := aptShow(ctx, need)
		if err != nil {
			return nil, err
		}
		for _, d := range debs {
			b.debCache[d.Package] = d
		}
	}
	out := make([]Deb, len(pkgs))
	for i, p := range pkgs {
		out[i] = b.debCache[p]
	}
	return out, nil
}

// layerEntries materializes the content of a layer (memoized).
func (b *builder) layerEntries(ctx context.Context, ls *layerSpec) ([]Entry, error) {
	if es, ok := b.entries[ls.name]; ok {
		return es, nil
	}
	var es []Entry
	if len(ls.debs) > 0 {
		debs, err := b.resolveDebs(ctx, ls.debs)
		if err != nil {
			return nil, err
		}
		if err := fetchDebs(ctx, b.path("debs"), debs); err != nil {
			return nil, err
		}
		for _, d := range debs {
			de, err := debEntries(ctx, filepath.Join(b.path("debs"), d.FileName()))
			if err != nil {
				return nil, err
			}
			es = append(es, de...)
		}
		es = dedupeDirs(es)
	}
	for _, t := range ls.tars {
		te, err := tarGzEntries(t)
		if err != nil {
			return nil, err
		}
		es = dedupeDirs(append(es, te...))
	}
	for _, f := range ls.files {
		if err := b.ensureOwnBinary(ctx, f); err != nil {
			return nil, err
		}
		e := Entry{Path: f.dst, Type: tar.TypeReg, Mode: f.mode, UID: f.uid, GID: f.gid, Xattrs: f.xattrs}
		if f.member == "" {
			e.Src = f.src
		} else {
			data, err := archiveMember(f.src, f.member)
			if err != nil {
				return nil, fmt.Errorf("/%s: %w", f.dst, err)
			}
			e.Data = data
		}
		es = append(es, e)
	}
	es = append(es, ls.extra...)
	b.entries[ls.name] = es
	return es, nil
}

// dedupeDirs keeps the first of directory entries given more than once
// (packages share directories such as usr/lib/x86_64-linux-gnu).
func dedupeDirs(es []Entry) []Entry {
	seen := map[string]bool{}
	out := es[:0]
	for _, e := range es {
		if e.Type == tar.TypeDir {
			p, _ := cleanPath(e.Path)
			if seen[p] {
				continue
			}
			seen[p] = true
		}
		out = append(out, e)
	}
	return out
}

// tarGzEntries reads every entry of a .tar.gz (as readTarEntries does for a package).
func tarGzEntries(archive string) ([]Entry, error) {
	zr, err := gunzipFile(archive)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(archive), err)
	}
	defer zr.Close()
	es, err := readTarEntries(zr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(archive), err)
	}
	return es, nil
}

// archiveMember reads one regular file out of a .tar.gz.
func archiveMember(archive, member string) ([]byte, error) {
	zr, err := gunzipFile(archive)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(archive), err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	want, _ := cleanPath(member)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("%s: no member %s", filepath.Base(archive), member)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Base(archive), err)
		}
		if p, _ := cleanPath(hdr.Name); p == want && hdr.Typeflag == tar.TypeReg {
			return io.ReadAll(tr)
		}
	}
}

// ensureOwnBinary builds the files kk makes itself: the pause binary
// (from e2e/images/pause in this module), the probe, kk's CSI driver
// (cmd/kk-local-csi) and flannel's install-conf (from the flannel
// module, through the Go module proxy).
func (b *builder) ensureOwnBinary(ctx context.Context, f input) error {
	if f.builtBy == "" || b.ownBinary[f.src] {
		return nil
	}
	var err error
	switch f.builtBy {
	case "pause":
		b.logf("%s: go build pause", b.prefix)
		err = b.goBuild(ctx, "", "github.com/kk-project/kk/e2e/images/pause", f.src)
	case "probe":
		b.logf("%s: go build probe", b.prefix)
		err = b.goBuild(ctx, "", "github.com/kk-project/kk/e2e/images/probe", f.src)
	case builtByLocalCSI:
		b.logf("%s: go build %s", b.prefix, f.builtBy)
		err = b.goBuild(ctx, "", localCSIPkg, f.src, "-X main.version="+ownBinaryTag(f.builtBy, f.src))
	case "install-conf":
		if _, serr := os.Stat(f.src); serr == nil {
			break
		}
		b.logf("%s: go get and go build flannel's install-conf", b.prefix)
		version := strings.TrimPrefix(filepath.Base(f.src), "install-conf-")
		err = b.buildInstallConf(ctx, version, f.src)
	default:
		err = fmt.Errorf("unknown builder %q", f.builtBy)
	}
	if err != nil {
		return fmt.Errorf("build %s: %w", f.builtBy, err)
	}
	b.ownBinary[f.src] = true
	return nil
}

// goBuild builds a static, stripped, reproducible binary of pkg into out, with more linker
// flags when given (kk's driver's version).
func (b *builder) goBuild(ctx context.Context, dir, pkg, out string, ldflags ...string) error {
	tmp := out + ".tmp"
	ld := strings.Join(append([]string{"-s", "-w", "-buildid="}, ldflags...), " ")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags="+ld, "-o", tmp, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+mirror.Arch)
	if o, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("go build %s: %w: %s", pkg, err, strings.TrimSpace(string(o)))
	}
	return os.Rename(tmp, out)
}

func (b *builder) buildInstallConf(ctx context.Context, version, out string) error {
	dir, err := os.MkdirTemp(b.path("tmp"), "install-conf-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	gomod := "module kk.local/installconf\n\ngo 1.24\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		return err
	}
	get := exec.CommandContext(ctx, "go", "get", "github.com/flannel-io/flannel/cmd/install_conf@"+version)
	get.Dir = dir
	get.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if o, err := get.CombinedOutput(); err != nil {
		return fmt.Errorf("go get flannel %s: %w: %s", version, err, strings.TrimSpace(string(o)))
	}
	return b.goBuild(ctx, dir, "github.com/flannel-io/flannel/cmd/install_conf", out)
}

// fileLayer is a v1.Layer backed by a blob already in the layout.
type fileLayer struct {
	path   string
	info   LayerInfo
	digest v1.Hash
	diffID v1.Hash
}

func (b *builder) fileLayer(info LayerInfo) (*fileLayer, error) {
	d, err := v1.NewHash(info.Digest)
	if err != nil {
		return nil, err
	}
	di, err := v1.NewHash(info.DiffID)
	if err != nil {
		return nil, err
	}
	return &fileLayer{path: filepath.Join(b.blobs, d.Hex), info: info, digest: d, diffID: di}, nil
}

func (l *fileLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)             { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                 { return l.info.Size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return types.OCILayer, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return gunzipFile(l.path) }
func (l *fileLayer) String() string                       { return l.info.Digest }

type gzipFile struct {
	*gzip.Reader
	f *os.File
}

func (g gzipFile) Close() error { g.Reader.Close(); return g.f.Close() }

func gunzipFile(p string) (io.ReadCloser, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return gzipFile{Reader: zr, f: f}, nil
}

// gc removes blobs that neither the index nor a layer cache record
// refers to (a record is replaced when its layer is rebuilt).
func (b *builder) gc(idx v1.ImageIndex) error {
	keep := map[string]bool{}
	recs, err := filepath.Glob(b.path("layers", "*.json"))
	if err != nil {
		return err
	}
	for _, r := range recs {
		var rec layerRecord
		if data, err := os.ReadFile(r); err == nil && json.Unmarshal(data, &rec) == nil {
			keep[strings.TrimPrefix(rec.Layer.Digest, "sha256:")] = true
		}
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range m.Manifests {
		keep[d.Digest.Hex] = true
		img, err := idx.Image(d.Digest)
		if err != nil {
			return err
		}
		cfg, err := img.ConfigName()
		if err != nil {
			return err
		}
		keep[cfg.Hex] = true
		ls, err := img.Layers()
		if err != nil {
			return err
		}
		for _, l := range ls {
			h, err := l.Digest()
			if err != nil {
				return err
			}
			keep[h.Hex] = true
		}
	}
	des, err := os.ReadDir(b.blobs)
	if err != nil {
		return err
	}
	for _, de := range des {
		if !keep[de.Name()] {
			if err := os.Remove(filepath.Join(b.blobs, de.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// dockerTar writes <out>/tars/<name>.tar (`docker load` format, every tag
// of the image) unless the one there already holds this digest.
func (b *builder) dockerTar(im Image, digest string, img v1.Image) error {
	dir := b.path("tars")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	base := strings.NewReplacer("/", "_", ":", "_").Replace(im.Ref())
	file := filepath.Join(dir, base+".tar")
	stamp := file + ".digest"
	if old, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(old)) == digest {
		if _, err := os.Stat(file); err == nil {
			return nil
		}
	}
	refs := map[name.Reference]v1.Image{}
	for _, r := range im.Refs() {
		t, err := name.NewTag(r)
		if err != nil {
			return err
		}
		refs[t] = img
	}
	if err := tarball.MultiRefWriteToFile(file+".tmp", refs); err != nil {
		os.Remove(file + ".tmp")
		return err
	}
	if err := os.Rename(file+".tmp", file); err != nil {
		return err
	}
	return os.WriteFile(stamp, []byte(digest+"\n"), 0o644)
}

// Summary is <out>/images.json: what the last build produced.
type Summary struct {
	Layout  string         `json:"layout"`
	Seconds float64        `json:"seconds"`
	Images  []SummaryImage `json:"images"`
}

// SummaryImage is one image in Summary.
type SummaryImage struct {
	Refs    []string `json:"refs"`
	Version string   `json:"version"`
	Digest  string   `json:"digest"`
	Size    int64    `json:"size"`
	Note    string   `json:"note,omitempty"`
}

func (b *builder) writeSummary(res *Result) error {
	s := Summary{Layout: res.LayoutDir, Seconds: res.Seconds}
	for _, im := range res.Images {
		s.Images = append(s.Images, SummaryImage{Refs: im.Refs(), Version: im.Version, Digest: im.Digest, Size: im.Size, Note: im.Note})
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(b.path("images.json"), append(data, '\n'), 0o644)
}
