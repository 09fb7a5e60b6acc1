//go:build integration

package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kk-project/kk/artifacts/versions"
	"github.com/kk-project/kk/e2e/mirror"
)

// TestArtifactExportVerifyImport exports a bundle for one Kubernetes version from the local
// upstream (mirror + registry on loopback), verifies and imports it, and exports again: the
// second export takes everything from the cache.
func TestArtifactExportVerifyImport(t *testing.T) {
	bin := kkBinary(t)
	k8s := mirror.DefaultSpec().Kubernetes[0]
	bundle := exportBundle(t, bin, "aio-"+k8s, "--with-kubernetes", k8s)

	set, err := versions.For(k8s)
	if err != nil {
		t.Fatal(err)
	}
	r := kk(t, bin, "artifact", "verify", bundle)
	if r.code != 0 {
		t.Fatalf("verify failed")
	}
	r = kk(t, bin, "artifact", "inspect", bundle)
	for _, want := range []string{"kubeadm", "kubelet", "containerd", "runc", "etcd", "crictl", "cni-plugins",
		"registry.k8s.io/kube-apiserver:" + k8s, "registry.k8s.io/pause:" + set.Pause} {
		if !strings.Contains(r.out, want) {
			t.Errorf("inspect does not list %s", want)
		}
	}

	// A second export downloads nothing.
	_, out := exportBundleOut(t, bin, "aio-"+k8s, "--with-kubernetes", k8s)
	m := downloadedRe.FindStringSubmatch(out)
	if m == nil || m[1] != "0 B" {
		t.Errorf("second export: want \"downloaded 0 B\" (all from the cache), got %q", m)
	}
	work := t.TempDir()
	r = kk(t, bin, "artifact", "import", bundle, "--workdir", work)
	if r.code != 0 {
		t.Fatalf("import failed")
	}
	r2 := kk(t, bin, "artifact", "import", bundle, "--workdir", work)
	if r2.code != 0 || !strings.Contains(strings.ToLower(r2.out), "already") {
		t.Errorf("second import should be skipped (output above)")
	}
	matches, _ := filepath.Glob(filepath.Join(work, "artifact", "*", "files", "kubeadm", k8s, "amd64", "kubeadm"))
	if len(matches) != 1 {
		t.Errorf("imported bundle has no kubeadm: %v", matches)
	} else if st, err := os.Stat(matches[0]); err != nil || st.Size() < 1<<20 {
		t.Errorf("kubeadm in the bundle: %v %v", st, err)
	}
}

var downloadedRe = regexp.MustCompile(`downloaded ([0-9.]+ [KMG]?i?B)`)
