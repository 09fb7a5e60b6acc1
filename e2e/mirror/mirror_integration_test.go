//go:build integration

package mirror_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/e2e/mirror"
)

// TestMirrorIntegration builds (or reuses) the mirror in $KK_MIRROR_DIR
// (default /var/tmp/kk-mirror), serves it on loopback and checks every
// artifact through HTTP. A cold build takes about half an hour:
//
//	go test -tags integration -timeout 90m ./e2e/mirror
func TestMirrorIntegration(t *testing.T) {
	dir := os.Getenv("KK_MIRROR_DIR")
	if dir == "" {
		dir = "/var/tmp/kk-mirror"
	}
	ctx := context.Background()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-30*time.Second))
		defer cancel()
	}
	spec := mirror.DefaultSpec()
	start := time.Now()
	if err := mirror.Build(ctx, dir, spec, testWriter{t}); err != nil {
		t.Fatal(err)
	}
	t.Logf("mirror ready in %s", time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv, base, err := mirror.Serve(ctx, dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("base URL %q is not on loopback", base)
	}

	for _, a := range spec.Artifacts() {
		t.Run(a.Component+"/"+a.Name+"@"+a.Version, func(t *testing.T) {
			body := get(t, base+a.Path)
			sum := sha256.Sum256(body)
			got := hex.EncodeToString(sum[:])
			want, err := parseChecksum(string(get(t, base+a.Checksum)), a.ChecksumFormat, path.Base(a.Path))
			if err != nil {
				t.Fatalf("%s: %v", a.Checksum, err)
			}
			if got != want {
				t.Fatalf("sha256 of %s = %s, %s says %s", a.Path, got, a.Checksum, want)
			}
			if a.Members != nil {
				members, err := tarMembers(body)
				if err != nil {
					t.Fatalf("%s: %v", a.Path, err)
				}
				for _, m := range a.Members {
					if members[m] == 0 {
						t.Errorf("%s: no regular file %q in archive (has %v)", a.Path, m, members)
					}
				}
			} else if len(body) < 4 || string(body[:4]) != "\x7fELF" {
				t.Errorf("%s is not an ELF binary", a.Path)
			}
		})
	}

	t.Run("kubeadm version", func(t *testing.T) {
		for _, v := range spec.Kubernetes {
			bin := filepath.Join(t.TempDir(), "kubeadm")
			if err := os.WriteFile(bin, get(t, base+mirror.KubernetesPath(v, "kubeadm")), 0o755); err != nil {
				t.Fatal(err)
			}
			out, err := exec.CommandContext(ctx, bin, "version", "-o", "short").CombinedOutput()
			if err != nil {
				t.Fatalf("kubeadm %s version: %v\n%s", v, err, out)
			}
			if got := strings.TrimSpace(string(out)); got != v {
				t.Errorf("kubeadm version -o short = %q, want %q", got, v)
			}
		}
	})

	t.Run("range request", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+mirror.KubernetesPath(spec.Kubernetes[0], "kubectl"), nil)
		req.Header.Set("Range", "bytes=1-3")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusPartialContent || string(b) != "ELF" {
			t.Fatalf("Range bytes=1-3: %s %q", resp.Status, b)
		}
	})

	t.Run("not served", func(t *testing.T) {
		for _, p := range []string{"/.stamps/", "/.lock", "/release/", "/release/v0.0.0/bin/linux/amd64/kubeadm", "/../etc/passwd"} {
			resp, err := http.Get(base + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s: %s, want 404", p, resp.Status)
			}
		}
	})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if !strings.HasPrefix(l, "go: downloading") {
			w.t.Log(l)
		}
	}
	return len(p), nil
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return b
}

// parseChecksum reads a hex-only or sha256sum-style checksum file.
func parseChecksum(s, format, name string) (string, error) {
	switch format {
	case mirror.HexOnly:
		f := strings.TrimSpace(s)
		if len(f) != 64 || strings.ContainsAny(f, " \n") {
			return "", fmt.Errorf("want only a hex sha256, got %q", s)
		}
		return f, nil
	case mirror.SumLines:
		for _, l := range strings.Split(s, "\n") {
			f := strings.Fields(l)
			if len(f) == 2 && strings.TrimPrefix(f[1], "*") == name && len(f[0]) == 64 {
				return f[0], nil
			}
		}
		return "", fmt.Errorf("no line for %s in %q", name, s)
	}
	return "", fmt.Errorf("unknown checksum format %q", format)
}

// tarMembers returns the regular files of a tar.gz and their sizes.
func tarMembers(b []byte) (map[string]int64, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	out := map[string]int64{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			out[h.Name] = h.Size
		}
	}
}
