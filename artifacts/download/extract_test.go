package download

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/artifacts/catalog"
)

type tarEntry struct {
	name string
	mode int64
	body string
	dir  bool
}

func tgz(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestFetchAndExtractEtcd(t *testing.T) {
	u := newUpstream(t)
	a := u.artifact(catalog.Component{Name: "etcd", Version: "v3.5.21", Arch: "amd64"})
	dir := "etcd-v3.5.21-linux-amd64/"
	u.publish(a, tgz(t, []tarEntry{
		{name: dir, dir: true},
		{name: dir + "README.md", mode: 0o644, body: "readme"},
		{name: dir + "etcd", mode: 0o755, body: "etcd-binary"},
		{name: dir + "etcdctl", mode: 0o755, body: "etcdctl-binary"},
		{name: dir + "Documentation/x.md", mode: 0o644, body: "doc"},
	}))
	d := newDownloader(t, nil)
	fetchOK(t, d, a)
	got, err := Extract(context.Background(), d.Cache, a)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"etcd/v3.5.21/amd64/etcd", "etcd/v3.5.21/amd64/etcdctl"} // etcdutl is optional
	if !slices.Equal(got, want) {
		t.Errorf("extracted %v, want %v", got, want)
	}
	for _, f := range want {
		fi, err := os.Stat(filepath.Join(d.Cache, f))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v", f, fi, err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(d.Cache, "etcd/v3.5.21/amd64/etcdctl"))
	if string(b) != "etcdctl-binary" {
		t.Errorf("etcdctl = %q", b)
	}
}

func TestExtractPatternsAndDotSlash(t *testing.T) {
	cache := t.TempDir()
	a, _ := catalog.Resolver{}.Resolve(catalog.Component{Name: "cni-plugins", Version: "v1.7.1", Arch: "arm64"})
	writeCache(t, cache, a.File, tgz(t, []tarEntry{
		{name: "./", dir: true},
		{name: "./bridge", mode: 0o755, body: "b"},
		{name: "./host-local", mode: 0o755, body: "h"},
		{name: "./sub/nested", mode: 0o755, body: "n"},
	}))
	got, err := Extract(context.Background(), cache, a)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"cni-plugins/v1.7.1/arm64/bridge", "cni-plugins/v1.7.1/arm64/host-local"}; !slices.Equal(got, want) {
		t.Errorf("extracted %v, want %v", got, want)
	}
}

func TestExtractMissingMember(t *testing.T) {
	cache := t.TempDir()
	a, _ := catalog.Resolver{}.Resolve(catalog.Component{Name: "etcd", Version: "v3.5.21", Arch: "amd64"})
	writeCache(t, cache, a.File, tgz(t, []tarEntry{{name: "etcd-v3.5.21-linux-amd64/etcd", mode: 0o755, body: "e"}}))
	_, err := Extract(context.Background(), cache, a)
	if err == nil || !strings.Contains(err.Error(), "no member matching etcd-v3.5.21-linux-amd64/etcdctl") || !strings.Contains(err.Error(), "etcd v3.5.21 linux/amd64") {
		t.Fatalf("err = %v", err)
	}
}

func TestExtractRawAndBadArchive(t *testing.T) {
	cache := t.TempDir()
	k, _ := catalog.Resolver{}.Resolve(catalog.Component{Name: "kubeadm", Version: "v1.34.1", Arch: "amd64"})
	if got, err := Extract(context.Background(), cache, k); err != nil || !slices.Equal(got, []string{k.File}) {
		t.Errorf("raw: %v %v", got, err)
	}
	a, _ := catalog.Resolver{}.Resolve(catalog.Component{Name: "crictl", Version: "v1.34.0", Arch: "amd64"})
	writeCache(t, cache, a.File, []byte("not gzip"))
	if _, err := Extract(context.Background(), cache, a); err == nil || !strings.Contains(err.Error(), "not a gzip archive") {
		t.Errorf("bad archive: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	writeCache(t, cache, a.File, tgz(t, []tarEntry{{name: "crictl", mode: 0o755, body: "c"}}))
	if _, err := Extract(ctx, cache, a); err == nil {
		t.Error("cancelled extract succeeded")
	}
}

func writeCache(t *testing.T, cache, file string, data []byte) {
	t.Helper()
	p := filepath.Join(cache, filepath.FromSlash(file))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
