package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Host mapping
//
// The mirror registry serves every upstream registry at once, on one
// host: a reference keeps its repository path and tag (or digest) and
// only its registry host is replaced by the mirror's base
// ("127.0.0.1:PORT"):
//
//	registry.k8s.io/kube-apiserver:v1.34.4      -> BASE/kube-apiserver:v1.34.4
//	registry.k8s.io/coredns/coredns:v1.12.1     -> BASE/coredns/coredns:v1.12.1
//	ghcr.io/flannel-io/flannel:v0.28.10         -> BASE/flannel-io/flannel:v0.28.10
//	docker.io/library/haproxy:2.6.12 (haproxy)  -> BASE/library/haproxy:2.6.12
//	quay.io/prometheus/prometheus:v3.16.0       -> BASE/prometheus/prometheus:v3.16.0
//
// This is what a registry host override per upstream registry gives (a
// containerd hosts.toml for registry.k8s.io, ghcr.io and docker.io all
// naming http://BASE, or kubeadm's imageRepository set to BASE): the path
// under /v2/ is the upstream repository path unchanged. Docker Hub
// official images keep their implicit "library/" namespace. The
// repositories of the upstream registries do not overlap, so one host is
// enough.

// UpstreamRegistries are the registry hosts the images come from.
func UpstreamRegistries() []string {
	return []string{"registry.k8s.io", "ghcr.io", "docker.io", "nvcr.io", "quay.io"}
}

// RegistryMirrorFlag is kk's --registry-mirror value sending every upstream registry to the
// mirror at url ("http://127.0.0.1:5055").
func RegistryMirrorFlag(url string) string {
	var parts []string
	for _, h := range UpstreamRegistries() {
		parts = append(parts, h+"="+url)
	}
	return strings.Join(parts, ",")
}

// Mirrors maps every upstream registry host to the mirror's base, for
// registry host overrides (containerd hosts.toml, kk's registry mirrors).
func Mirrors(base string) map[string]string {
	m := map[string]string{}
	for _, h := range UpstreamRegistries() {
		m[h] = base
	}
	return m
}

// SplitRef splits an image reference into its registry host and the rest
// (repository path plus ":tag" or "@digest"), normalizing Docker Hub
// references: "haproxy:2.6" -> "docker.io", "library/haproxy:2.6".
func SplitRef(ref string) (host, rest string, err error) {
	if ref == "" || strings.ContainsAny(ref, " \t\n") {
		return "", "", fmt.Errorf("image reference %q: invalid", ref)
	}
	host, rest, ok := strings.Cut(ref, "/")
	if !ok || !(strings.ContainsAny(host, ".:") || host == "localhost") {
		host, rest = "docker.io", ref
	}
	if host == "index.docker.io" || host == "registry-1.docker.io" {
		host = "docker.io"
	}
	if host == "docker.io" && !strings.Contains(repoPart(rest), "/") {
		rest = "library/" + rest
	}
	if repoPart(rest) == "" {
		return "", "", fmt.Errorf("image reference %q: no repository", ref)
	}
	return host, rest, nil
}

// repoPart drops the tag or digest of "repo[:tag][@digest]".
func repoPart(rest string) string {
	if i := strings.Index(rest, "@"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.Contains(rest[i:], "/") {
		rest = rest[:i]
	}
	return rest
}

// MirrorRef maps an upstream reference to the mirror at base, keeping the
// repository path and tag: ("registry.k8s.io/pause:3.10.1",
// "127.0.0.1:5055") -> "127.0.0.1:5055/pause:3.10.1".
func MirrorRef(upstream, base string) (string, error) {
	host, rest, err := SplitRef(upstream)
	if err != nil {
		return "", err
	}
	known := false
	for _, h := range UpstreamRegistries() {
		known = known || h == host
	}
	if !known {
		return "", fmt.Errorf("image reference %q: registry %s is not mirrored (only %s)", upstream, host, strings.Join(UpstreamRegistries(), ", "))
	}
	return strings.TrimSuffix(base, "/") + "/" + rest, nil
}

// Serve starts an OCI registry on addr (loopback only; "" or port 0 picks
// a free port) holding every image of the OCI layout at layoutDir under
// its mirror reference (see MirrorRef), with every tag the layout's
// index names. Blobs are served from the layout itself; blobs pushed to
// the registry go to a temporary directory removed by stop. The registry
// runs until stop is called or ctx is done. base is "127.0.0.1:PORT".
func Serve(ctx context.Context, layoutDir, addr string) (base string, stop func(), err error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", nil, fmt.Errorf("images: serve: address %q: %w", addr, err)
	}
	if host == "localhost" || host == "" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return "", nil, fmt.Errorf("images: serve: address %q: only loopback addresses are allowed", addr)
	}
	idx, err := layout.ImageIndexFromPath(layoutDir)
	if err != nil {
		return "", nil, fmt.Errorf("images: serve: read OCI layout %s: %w", layoutDir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return "", nil, fmt.Errorf("images: serve: read OCI layout %s: %w", layoutDir, err)
	}
	uploads, err := os.MkdirTemp("", "kk-images-uploads-")
	if err != nil {
		return "", nil, fmt.Errorf("images: serve: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		os.RemoveAll(uploads)
		return "", nil, fmt.Errorf("images: serve: listen on %s: %w", addr, err)
	}
	handler := registry.New(
		registry.Logger(log.New(io.Discard, "", 0)),
		registry.WithBlobHandler(&blobStore{layout: filepath.Join(layoutDir, "blobs"), uploads: uploads}),
	)
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	done := make(chan struct{})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(done)
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			os.RemoveAll(uploads)
		})
	}
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		case <-done:
		}
	}()
	base = ln.Addr().String()

	for _, d := range im.Manifests {
		ref := d.Annotations[AnnotationRefName]
		if ref == "" {
			continue
		}
		mref, err := MirrorRef(ref, base)
		if err != nil {
			stop()
			return "", nil, fmt.Errorf("images: serve: %s: %w", ref, err)
		}
		tag, err := name.ParseReference(mref, name.Insecure)
		if err != nil {
			stop()
			return "", nil, fmt.Errorf("images: serve: %s: %w", ref, err)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			stop()
			return "", nil, fmt.Errorf("images: serve: %s: %w", ref, err)
		}
		if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
			stop()
			return "", nil, fmt.Errorf("images: serve: load %s as %s: %w", ref, mref, err)
		}
	}
	return base, stop, nil
}

// blobStore serves blobs from an OCI layout's blobs directory (read
// only) and keeps pushed blobs in a directory of its own.
type blobStore struct {
	layout  string // <layout>/blobs
	uploads string
}

func (s *blobStore) find(h v1.Hash) (string, int64, error) {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 {
		return "", 0, registry.ErrNotFound
	}
	for _, dir := range []string{s.layout, s.uploads} {
		p := filepath.Join(dir, h.Algorithm, h.Hex)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, fi.Size(), nil
		}
	}
	return "", 0, registry.ErrNotFound
}

func (s *blobStore) Stat(_ context.Context, _ string, h v1.Hash) (int64, error) {
	_, size, err := s.find(h)
	return size, err
}

func (s *blobStore) Get(_ context.Context, _ string, h v1.Hash) (io.ReadCloser, error) {
	p, _, err := s.find(h)
	if err != nil {
		return nil, err
	}
	return os.Open(p)
}

func (s *blobStore) Put(_ context.Context, _ string, h v1.Hash, rc io.ReadCloser) error {
	defer rc.Close()
	if h.Algorithm != "sha256" {
		return fmt.Errorf("unsupported digest algorithm %s", h.Algorithm)
	}
	dir := filepath.Join(s.uploads, h.Algorithm)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".upload-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	sum := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, sum), rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != h.Hex {
		return errors.New("blob content does not match digest " + h.String() + " (got sha256:" + got + ")")
	}
	return os.Rename(f.Name(), filepath.Join(dir, h.Hex))
}
