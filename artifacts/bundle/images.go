package bundle

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/artifacts/download"
)

// pulledImage is one image pulled for one arch into the blob cache.
type pulledImage struct {
	entry      ImageEntry
	mediaType  string
	manifest   int64     // size of the manifest blob
	blobs      []v1.Hash // manifest, config, layers
	downloaded int64
	reused     int64
	metadata   int64 // manifest bytes fetched to resolve the reference
}

// puller pulls images into a content-addressed blob cache (an OCI layout's blobs/ tree).
type puller struct {
	cache   string // <workdir>/cache/images
	mirrors map[string]string
	auths   map[string]v1alpha2.ManifestRegistryAuth
	base    http.RoundTripper
}

// source returns where ref is pulled from: its registry, or the mirror configured for it.
func (p *puller) source(ref string) (name.Reference, string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, "", fmt.Errorf("image %s: %w", ref, err)
	}
	full := displayRef(r)
	reg := r.Context().RegistryStr()
	m, ok := p.mirrors[reg]
	if !ok {
		return r, full, nil
	}
	host, prefix, insecure, err := parseMirror(m)
	if err != nil {
		return nil, "", fmt.Errorf("image %s: registry mirror for %s: %w", ref, reg, err)
	}
	repo := r.Context().RepositoryStr()
	if prefix != "" {
		repo = prefix + "/" + repo
	}
	s := host + "/" + repo + separator(r) + r.Identifier()
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	mr, err := name.ParseReference(s, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("image %s: mirror reference %s: %w", ref, s, err)
	}
	return mr, full, nil
}

func separator(r name.Reference) string {
	if _, ok := r.(name.Digest); ok {
		return "@"
	}
	return ":"
}

// displayRef is the full upstream reference, with docker.io (not index.docker.io).
func displayRef(r name.Reference) string {
	reg := r.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + r.Context().RepositoryStr() + separator(r) + r.Identifier()
}

// parseMirror reads a registry mirror: http://host[:port][/prefix], https://..., or host[:port].
func parseMirror(s string) (host, prefix string, insecure bool, err error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", "", false, fmt.Errorf("%q: want http://host[:port][/prefix] or https://...", s)
	}
	return u.Host, strings.Trim(u.Path, "/"), u.Scheme == "http", nil
}

// normalizeMirrors keys mirrors by registry as go-containerregistry names it
// (docker.io → index.docker.io).
func normalizeMirrors(in map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range in {
		reg, err := name.NewRegistry(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("registry mirror %q: %w", k, err)
		}
		if _, _, _, err := parseMirror(v); err != nil {
			return nil, fmt.Errorf("registry mirror for %s: %w", k, err)
		}
		out[reg.RegistryStr()] = v
	}
	return out, nil
}

func (p *puller) options(ctx context.Context, r name.Reference, arch string) []remote.Option {
	tr := p.base
	reg := r.Context().RegistryStr()
	a, ok := p.auths[reg]
	if !ok && reg == name.DefaultRegistry {
		a, ok = p.auths["docker.io"]
	}
	if ok && a.SkipTLSVerify {
		if t, isT := tr.(*http.Transport); isT {
			t = t.Clone()
			t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for in the manifest
			tr = t
		}
	}
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithTransport(tr),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: arch}),
	}
	if ok && a.Username != "" {
		opts = append(opts, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: a.Password})))
	} else {
		opts = append(opts, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	}
	return opts
}

// pull resolves ref for arch and brings its blobs into the cache.
func (p *puller) pull(ctx context.Context, ref, arch string) (*pulledImage, error) {
	src, full, err := p.source(ref)
	if err != nil {
		return nil, err
	}
	fail := func(err error) error {
		if src.Name() != ref && displayRef(src) != full {
			return fmt.Errorf("image %s (linux/%s, from %s): %w", full, arch, src.Name(), err)
		}
		return fmt.Errorf("image %s (linux/%s): %w", full, arch, err)
	}
	if a, ok := p.auths[src.Context().RegistryStr()]; ok && a.PlainHTTP {
		if src, err = name.ParseReference(src.Name(), name.Insecure); err != nil {
			return nil, fail(err)
		}
	}
	desc, err := remote.Get(src, p.options(ctx, src, arch)...)
	if err != nil {
		return nil, fail(err)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fail(err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return nil, fail(err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fail(err)
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, fail(err)
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, fail(err)
	}
	out := &pulledImage{
		entry:     ImageEntry{Ref: full, Arch: arch, Digest: digest.String(), Size: int64(len(raw))},
		mediaType: string(mt),
		manifest:  int64(len(raw)),
		metadata:  int64(len(desc.Manifest)),
	}
	if desc.Digest != digest {
		out.metadata += int64(len(raw)) // an index was resolved to this image
	}
	put := func(h v1.Hash, size int64, open func() (io.ReadCloser, error)) error {
		reused, n, err := p.put(ctx, h, size, open)
		if err != nil {
			return fail(err)
		}
		out.blobs = append(out.blobs, h)
		out.entry.Size += size
		if reused {
			out.reused += size
		} else {
			out.downloaded += n
		}
		return nil
	}
	if _, _, err := p.put(ctx, digest, int64(len(raw)), func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(raw))), nil }); err != nil {
		return nil, fail(err)
	}
	out.blobs = append(out.blobs, digest)
	if err := put(m.Config.Digest, m.Config.Size, func() (io.ReadCloser, error) {
		b, err := img.RawConfigFile()
		return io.NopCloser(strings.NewReader(string(b))), err
	}); err != nil {
		return nil, err
	}
	if err := p.checkArch(m.Config.Digest, arch); err != nil {
		return nil, fail(err)
	}
	for _, l := range m.Layers {
		if err := put(l.Digest, l.Size, func() (io.ReadCloser, error) {
			layer, err := img.LayerByDigest(l.Digest)
			if err != nil {
				return nil, err
			}
			return layer.Compressed()
		}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkArch refuses an image built for another arch (a single-arch image has no platform
// choice; its config says what it is).
func (p *puller) checkArch(config v1.Hash, arch string) error {
	f, err := os.Open(p.blobPath(config))
	if err != nil {
		return err
	}
	defer f.Close()
	cfg, err := v1.ParseConfigFile(f)
	if err != nil {
		return fmt.Errorf("config %s: %w", config, err)
	}
	if cfg.Architecture != "" && cfg.Architecture != arch {
		return fmt.Errorf("the image is for linux/%s only, not linux/%s", cfg.Architecture, arch)
	}
	return nil
}

func (p *puller) blobPath(h v1.Hash) string {
	return filepath.Join(p.cache, "blobs", h.Algorithm, h.Hex)
}

// put stores blob h in the cache unless it is there with the right size. It returns whether
// the cached blob was reused and the bytes read from open. A blob is written to a temporary
// file, checked against its digest and size, then renamed into place.
func (p *puller) put(ctx context.Context, h v1.Hash, size int64, open func() (io.ReadCloser, error)) (bool, int64, error) {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 {
		return false, 0, fmt.Errorf("blob %s: only sha256 digests are supported", h)
	}
	final := p.blobPath(h)
	if st, err := os.Stat(final); err == nil && st.Mode().IsRegular() && st.Size() == size {
		return true, 0, nil
	}
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, 0, writeErr(dir, err)
	}
	rc, err := open()
	if err != nil {
		return false, 0, fmt.Errorf("blob %s: %w", h, err)
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(dir, h.Hex+".part-*")
	if err != nil {
		return false, 0, writeErr(dir, err)
	}
	defer os.Remove(tmp.Name())
	hash := sha256.New()
	n, err := io.Copy(io.MultiWriter(markWriter{tmp}, hash), download.ContextReader(ctx, rc))
	if err != nil {
		tmp.Close()
		if isWriteError(err) {
			return false, n, writeErr(final, err)
		}
		return false, n, fmt.Errorf("blob %s: %w", h, err)
	}
	if err := tmp.Close(); err != nil {
		return false, n, writeErr(final, err)
	}
	if got := hex.EncodeToString(hash.Sum(nil)); got != h.Hex || n != size {
		return false, n, fmt.Errorf("blob %s: got sha256:%s, %d bytes; want %d bytes", h, got, n, size)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return false, n, writeErr(final, err)
	}
	return false, n, nil
}
