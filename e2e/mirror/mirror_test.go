package mirror

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestArtifactPaths(t *testing.T) {
	s := DefaultSpec()
	s.Kubernetes = []string{"v1.34.4"}
	s.Etcd, s.Crictl, s.CNIPlugins, s.Containerd, s.Runc = "v3.6.5", "v1.34.0", "v1.9.1", "v2.2.9", "v1.1.5"
	want := map[string]string{
		"/release/v1.34.4/bin/linux/amd64/kubeadm":                                                 "/release/v1.34.4/bin/linux/amd64/kubeadm.sha256",
		"/etcd-io/etcd/releases/download/v3.6.5/etcd-v3.6.5-linux-amd64.tar.gz":                    "/etcd-io/etcd/releases/download/v3.6.5/SHA256SUMS",
		"/kubernetes-sigs/cri-tools/releases/download/v1.34.0/crictl-v1.34.0-linux-amd64.tar.gz":   "/kubernetes-sigs/cri-tools/releases/download/v1.34.0/crictl-v1.34.0-linux-amd64.tar.gz.sha256",
		"/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-linux-amd64-v1.9.1.tgz": "/containernetworking/plugins/releases/download/v1.9.1/cni-plugins-linux-amd64-v1.9.1.tgz.sha256",
		"/containerd/containerd/releases/download/v2.2.9/containerd-2.2.9-linux-amd64.tar.gz":      "/containerd/containerd/releases/download/v2.2.9/containerd-2.2.9-linux-amd64.tar.gz.sha256sum",
		"/opencontainers/runc/releases/download/v1.1.5/runc.amd64":                                 "/opencontainers/runc/releases/download/v1.1.5/runc.sha256sum",
	}
	got := map[string]string{}
	for _, a := range s.Artifacts() {
		got[a.Path] = a.Checksum
	}
	for p, sum := range want {
		if got[p] != sum {
			t.Errorf("artifact %s: checksum %q, want %q", p, got[p], sum)
		}
	}
	if err := s.validate(); err != nil {
		t.Fatal(err)
	}
	s.Kubernetes = []string{"1.34"}
	if err := s.validate(); err == nil {
		t.Error("validate accepted kubernetes version 1.34")
	}
}

func TestServe(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "release", "v1", "f")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p, []byte("0123456789"), 0o644)
	os.MkdirAll(filepath.Join(dir, ".stamps"), 0o755)
	os.WriteFile(filepath.Join(dir, ".stamps", "x.json"), []byte("{}"), 0o644)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, base, err := Serve(ctx, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("base %q", base)
	}
	do := func(method, path, rng string) (int, string) {
		req, _ := http.NewRequest(method, base+path, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do("GET", "/release/v1/f", ""); code != 200 || body != "0123456789" {
		t.Errorf("GET: %d %q", code, body)
	}
	if code, body := do("GET", "/release/v1/f", "bytes=4-"); code != 206 || body != "456789" {
		t.Errorf("GET Range: %d %q", code, body)
	}
	for _, path := range []string{"/.stamps/x.json", "/release/", "/release/v1", "/missing", "/release/../release/v1/f"} {
		if code, _ := do("GET", path, ""); code != 404 {
			t.Errorf("GET %s: %d, want 404", path, code)
		}
	}
	if code, _ := do("POST", "/release/v1/f", ""); code != 405 {
		t.Errorf("POST: %d, want 405", code)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := http.Get(base + "/release/v1/f"); err != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Error("server still answers after ctx was cancelled")
}

func TestBuildRejectsUnknownComponent(t *testing.T) {
	err := BuildWith(context.Background(), t.TempDir(), DefaultSpec(), BuildOptions{Only: []string{"nginx"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "nginx") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunCachesByStamp(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{".stamps", ".tmp"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	var log strings.Builder
	b := &builder{dir: dir, log: &log}
	builds := 0
	mk := func(version string) job {
		return job{component: "k8s", name: "fake", version: version, recipe: "r",
			outputs: []string{"a/" + version + "/x", "a/" + version + "/x.sha256"},
			build: func(ctx context.Context, stage string) error {
				builds++
				p := filepath.Join(stage, "a", version, "x")
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, []byte("bin"), 0o755)
				return writeHexSum(stage, "/a/"+version+"/x", "/a/"+version+"/x.sha256")
			}}
	}
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := b.run(ctx, mk("v1")); err != nil {
			t.Fatal(err)
		}
	}
	if builds != 1 {
		t.Fatalf("built %d times, want 1 (log: %s)", builds, log.String())
	}
	// A changed file size or another version triggers a rebuild.
	os.WriteFile(filepath.Join(dir, "a", "v1", "x"), []byte("changed"), 0o755)
	b.run(ctx, mk("v1"))
	b.run(ctx, mk("v2"))
	if builds != 3 {
		t.Fatalf("built %d times, want 3", builds)
	}
	if sum, _ := os.ReadFile(filepath.Join(dir, "a", "v1", "x.sha256")); len(sum) != 64 {
		t.Errorf("x.sha256 = %q, want a bare hex sha256", sum)
	}
	if data, err := os.ReadFile(filepath.Join(dir, ".stamps", "fake-v2.json")); err != nil || !strings.Contains(string(data), `"version": "v2"`) {
		t.Errorf("stamp for fake v2: %s %v", data, err)
	}
}
