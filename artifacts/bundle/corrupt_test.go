package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kk-project/kk/api/v1alpha2"
)

func TestVerifyFlippedByte(t *testing.T) {
	f := newFixture(t)
	out := filepath.Join(t.TempDir(), "bundle.tar.gz")
	f.export(t, out)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range []int{len(data) / 3, len(data) / 2, len(data) * 2 / 3} {
		bad := bytes.Clone(data)
		bad[at] ^= 0x20
		p := filepath.Join(t.TempDir(), "flipped.tar.gz")
		os.WriteFile(p, bad, 0o644)
		_, err := Verify(context.Background(), p, VerifyOptions{})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "member ") {
			t.Errorf("byte %d flipped: %v", at, err)
		}
		if _, err := Import(context.Background(), p, ImportOptions{Workdir: f.workdir}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("import of a corrupt bundle: %v", err)
		}
	}
	// The gzip trailer (CRC-32, then size) is checked too.
	for _, at := range []int{len(data) - 6, len(data) - 2} {
		bad := bytes.Clone(data)
		bad[at] ^= 0x20
		p := filepath.Join(t.TempDir(), "trailer.tar.gz")
		os.WriteFile(p, bad, 0o644)
		if _, err := Verify(context.Background(), p, VerifyOptions{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "after the last member") {
			t.Errorf("trailer byte %d flipped: %v", at, err)
		}
	}
	if dirs, _ := os.ReadDir(filepath.Join(f.workdir, "artifact")); len(dirs) != 0 {
		t.Errorf("corrupt imports left %v", dirs)
	}
}

// A member whose content changed (in a well-formed tar.gz) is named exactly.
func TestVerifyChangedMemberNamed(t *testing.T) {
	f := newFixture(t)
	out := filepath.Join(t.TempDir(), "bundle.tar.gz")
	f.export(t, out)
	const victim = "files/kubelet/v1.34.1/amd64/kubelet"
	p := rewrite(t, out, func(h *tar.Header, data []byte) []byte {
		if h.Name == victim {
			data[len(data)/2] ^= 1
		}
		return data
	})
	_, err := Verify(context.Background(), p, VerifyOptions{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "member "+victim+" does not match the index") {
		t.Errorf("%v", err)
	}
}

func TestVerifyTruncated(t *testing.T) {
	f := newFixture(t)
	out := filepath.Join(t.TempDir(), "bundle.tar.gz")
	f.export(t, out)
	data, _ := os.ReadFile(out)
	for _, n := range []int{len(data) / 2, len(data) - 10} {
		p := filepath.Join(t.TempDir(), "short.tar.gz")
		os.WriteFile(p, data[:n], 0o644)
		_, err := Verify(context.Background(), p, VerifyOptions{})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("cut at %d: %v", n, err)
		}
	}
	// A bundle missing its last members (a well-formed tar.gz cut at a member boundary).
	p := rewrite(t, out, func(h *tar.Header, data []byte) []byte {
		if strings.HasPrefix(h.Name, "images/blobs/") {
			return nil
		}
		return data
	})
	if _, err := Verify(context.Background(), p, VerifyOptions{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "missing, first images/blobs/") {
		t.Errorf("members dropped: %v", err)
	}
}

func TestOpenNotABundle(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.tar.gz")
	os.WriteFile(p, []byte("hello"), 0o644)
	if _, err := Open(p); err == nil || !strings.Contains(err.Error(), "not a gzip file") {
		t.Errorf("%v", err)
	}
	if _, err := Verify(context.Background(), filepath.Join(t.TempDir(), "absent.tar.gz"), VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "absent.tar.gz") {
		t.Errorf("%v", err)
	}
}

// rewrite copies a bundle member by member through fn (nil drops the member).
func rewrite(t *testing.T, src string, fn func(*tar.Header, []byte) []byte) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		if data = fn(h, data); data == nil {
			continue
		}
		tw.WriteHeader(h)
		tw.Write(data)
	}
	tw.Close()
	zw.Close()
	p := filepath.Join(t.TempDir(), "rewritten.tar.gz")
	os.WriteFile(p, buf.Bytes(), 0o644)
	return p
}

func setArch(t *testing.T, ref, arch string) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = arch, "linux"
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	push(t, ref, img)
}

func v1alpha2PinnedChecksum(component, version, arch, sum string) v1alpha2.PinnedChecksum {
	return v1alpha2.PinnedChecksum{Component: component, Version: version, Arch: arch, SHA256: sum}
}

func enospc() error { return syscall.ENOSPC }
