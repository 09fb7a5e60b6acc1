//go:build integration || e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kk-project/kk/e2e/images"
	"github.com/kk-project/kk/e2e/mirror"
)

// e2eDir keeps what the end-to-end tests reuse between runs: the download cache of kk
// artifact export and the bundles.
func e2eDir(t *testing.T) string {
	d := os.Getenv("KK_E2E_DIR")
	if d == "" {
		d = "/var/tmp/kk-e2e"
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// upstream serves the local mirror (release binaries) and the test images (an OCI registry)
// on loopback for the duration of the test binary: kk's download code reaches them through
// --mirror and --registry-mirror, exactly as a user's own mirror.
type upstream struct {
	Mirror   string // http://127.0.0.1:PORT
	Registry string // 127.0.0.1:PORT
}

var (
	upOnce sync.Once
	up     upstream
	upErr  error
)

func serveUpstream(t *testing.T) upstream {
	t.Helper()
	upOnce.Do(func() {
		mdir := envOr("KK_MIRROR_DIR", images.DefaultMirrorDir)
		idir := envOr("KK_IMAGES_DIR", images.DefaultOutDir)
		if _, err := os.Stat(filepath.Join(mdir, "release")); err != nil {
			upErr = fmt.Errorf("the local mirror %s is not built (make mirror): %w", mdir, err)
			return
		}
		ctx := context.Background() // lives as long as the test binary
		_, base, err := mirror.Serve(ctx, mdir, "127.0.0.1:0")
		if err != nil {
			upErr = err
			return
		}
		reg, _, err := images.Serve(ctx, images.LayoutDir(idir), "127.0.0.1:0")
		if err != nil {
			upErr = err
			return
		}
		up = upstream{Mirror: base, Registry: reg}
	})
	if upErr != nil {
		t.Fatal(upErr)
	}
	return up
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// e2eManifest is the kind: Manifest of a cluster of Kubernetes version k8s, pinned to what
// the local mirror builds (a user pins versions the same way) and listing every test image
// of that version.
func e2eManifest(t *testing.T, k8s string) string {
	t.Helper()
	spec := mirror.DefaultSpec()
	data, err := os.ReadFile(filepath.Join(envOr("KK_IMAGES_DIR", images.DefaultOutDir), "images.json"))
	if err != nil {
		t.Fatalf("test images are not built (make mirror): %v", err)
	}
	var sum images.Summary
	if err := json.Unmarshal(data, &sum); err != nil {
		t.Fatal(err)
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
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: kubekey.kubesphere.io/v1alpha2
kind: Manifest
metadata:
  name: e2e-%s
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
	return b.String()
}

// exportBundle runs kk artifact export for Kubernetes version k8s from the local upstream
// and returns the bundle (kept under e2eDir; the cache makes a second export cheap).
func exportBundle(t *testing.T, bin, k8s string) string {
	p, _ := exportBundleOut(t, bin, k8s)
	return p
}

// exportBundleOut is exportBundle that also returns kk's output.
func exportBundleOut(t *testing.T, bin, k8s string) (string, string) {
	t.Helper()
	u := serveUpstream(t)
	dir := e2eDir(t)
	man := filepath.Join(dir, "manifest-"+k8s+".yaml")
	if err := os.WriteFile(man, []byte(e2eManifest(t, k8s)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "bundle-"+k8s+".tar.gz")
	reg := "http://" + u.Registry
	r := kk(t, bin, "artifact", "export", "-m", man, "-o", out, "--workdir", filepath.Join(dir, "work"),
		"--mirror", u.Mirror, "--registry-mirror", "registry.k8s.io="+reg+",ghcr.io="+reg+",docker.io="+reg)
	if r.code != 0 {
		t.Fatalf("kk artifact export failed (exit %d)", r.code)
	}
	return out, r.out
}
