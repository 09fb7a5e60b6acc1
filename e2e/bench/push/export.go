package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/kk-project/kk/e2e/images"
	"github.com/kk-project/kk/e2e/mirror"
)

// upstream is the local stand-in for the download sites: the mirror (release binaries)
// over HTTP and the test images as an OCI registry, both on loopback, as in the e2e tests.
type upstream struct {
	Mirror   string // http://127.0.0.1:PORT
	Registry string // 127.0.0.1:PORT
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// serveUpstream serves the mirror and the images until ctx ends.
func serveUpstream(ctx context.Context) (upstream, error) {
	mdir := envOr("KK_MIRROR_DIR", images.DefaultMirrorDir)
	idir := envOr("KK_IMAGES_DIR", images.DefaultOutDir)
	if _, err := os.Stat(filepath.Join(mdir, "release")); err != nil {
		return upstream{}, fmt.Errorf("the local mirror %s is not built (make mirror): %w", mdir, err)
	}
	_, base, err := mirror.Serve(ctx, mdir, "127.0.0.1:0")
	if err != nil {
		return upstream{}, fmt.Errorf("serve the mirror: %w", err)
	}
	reg, _, err := images.Serve(ctx, images.LayoutDir(idir), "127.0.0.1:0")
	if err != nil {
		return upstream{}, fmt.Errorf("serve the test images: %w", err)
	}
	return upstream{Mirror: base, Registry: reg}, nil
}

// manifest is the kind: Manifest of a cluster of Kubernetes version k8s, pinned to what the
// local mirror builds and listing every test image of that version (the same manifest as
// the e2e tests' bundle, e2e/bundle_test.go).
func manifest(k8s string) (string, error) {
	spec := mirror.DefaultSpec()
	data, err := os.ReadFile(filepath.Join(envOr("KK_IMAGES_DIR", images.DefaultOutDir), "images.json"))
	if err != nil {
		return "", fmt.Errorf("test images are not built (make mirror): %w", err)
	}
	var sum images.Summary
	if err := json.Unmarshal(data, &sum); err != nil {
		return "", fmt.Errorf("images.json: %w", err)
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
		return "", fmt.Errorf("images.json lists no image for Kubernetes %s", k8s)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: kubekey.kubesphere.io/v1alpha2
kind: Manifest
metadata:
  name: bench-%s
spec:
  arches: [amd64]
  operatingSystems:
  - {arch: amd64, type: linux, id: debian, version: "12"}
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

// exportSample is one `kk artifact export`.
type exportSample struct {
	wall       time.Duration
	downloaded string // as kk reports it, e.g. "512.3 MiB"
	reused     string
	size       int64  // bytes of the bundle
	sha256     string // of the bundle
	err        error
}

// exportResults are all export runs.
type exportResults struct {
	cold, warm []exportSample
}

var downloadedRe = regexp.MustCompile(`downloaded ([0-9.]+ [KMGT]?i?B), reused ([0-9.]+ [KMGT]?i?B)`)

// runExport runs kk artifact export once and verifies it.
func runExport(ctx context.Context, c config, kk, man string, up upstream, workdir, out string) (s exportSample) {
	reg := "http://" + up.Registry
	args := []string{"artifact", "export", "-m", man, "-o", out, "--workdir", workdir,
		"--mirror", up.Mirror, "--registry-mirror", "registry.k8s.io=" + reg + ",ghcr.io=" + reg + ",docker.io=" + reg}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kk, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.Dir = filepath.Dir(out)
	start := time.Now()
	err := cmd.Run()
	s.wall = time.Since(start)
	if err != nil {
		s.err = fmt.Errorf("kk %s: %w\n%s", strings.Join(args, " "), err, tail(buf.String(), 2000))
		return s
	}
	m := downloadedRe.FindStringSubmatch(buf.String())
	if m == nil {
		s.err = fmt.Errorf("kk artifact export: no \"downloaded X, reused Y\" line in its output:\n%s", tail(buf.String(), 2000))
		return s
	}
	s.downloaded, s.reused = m[1], m[2]
	st, err := os.Stat(out)
	if err != nil {
		s.err = fmt.Errorf("kk artifact export exited 0 but wrote no bundle: %w", err)
		return s
	}
	s.size = st.Size()
	if s.sha256, err = fileSHA256(out); err != nil {
		s.err = err
	}
	return s
}

// measureExport exports the bundle c.runs times with an empty workdir (cold) and c.runs
// times with a workdir that already holds everything (warm). It returns the bundle of the
// last warm export, the one that is pushed.
func measureExport(ctx context.Context, c config, kk, man string, up upstream, work string, r *exportResults, log io.Writer) (string, error) {
	wd := filepath.Join(work, "workdir")
	for i := range c.runs {
		if err := os.RemoveAll(wd); err != nil {
			return "", err
		}
		if err := os.MkdirAll(wd, 0o755); err != nil {
			return "", err
		}
		out := filepath.Join(work, "bundle-cold.tar.gz")
		os.Remove(out)
		logf(log, "export %d/%d, cold (empty workdir)", i+1, c.runs)
		s := runExport(ctx, c, kk, man, up, wd, out)
		if s.err == nil && s.downloaded == "0 B" {
			s.err = fmt.Errorf("cold export: downloaded 0 B from an empty workdir")
		}
		logf(log, "  %s, downloaded %s, bundle %d B, err %v", secs(s.wall), s.downloaded, s.size, s.err)
		r.cold = append(r.cold, s)
	}
	bundle := filepath.Join(work, "bundle.tar.gz")
	for i := range c.runs {
		os.Remove(bundle)
		logf(log, "export %d/%d, warm (same workdir)", i+1, c.runs)
		s := runExport(ctx, c, kk, man, up, wd, bundle)
		if s.err == nil && s.downloaded != "0 B" {
			s.err = fmt.Errorf("warm export: want \"downloaded 0 B\", kk reported downloaded %s", s.downloaded)
		}
		logf(log, "  %s, downloaded %s, bundle %d B, err %v", secs(s.wall), s.downloaded, s.size, s.err)
		r.warm = append(r.warm, s)
	}
	if last := r.warm[len(r.warm)-1]; last.err != nil {
		return "", fmt.Errorf("no bundle to push: %w", last.err)
	}
	// The caches are not needed any more; the pushes should not compete with them for disk.
	_ = os.RemoveAll(wd)
	_ = os.Remove(filepath.Join(work, "bundle-cold.tar.gz"))
	return bundle, nil
}

func fileSHA256(p string) (string, error) {
	fh, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", fmt.Errorf("sha256 of %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
