package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/api/v1alpha2"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kk-project/kk/e2e/mirror"
)

func sampleEntries(t *testing.T) []Entry {
	t.Helper()
	src := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho hi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []Entry{
		File("usr/local/bin/inline", 0o755, []byte("inline content")),
		{Path: "/opt/bin/fromdisk", Type: tar.TypeReg, Mode: 0o755, Src: src},
		Symlink("bin/sh", "busybox"),
		File("bin/busybox", 0o755, []byte("busybox")),
		{Path: "home/nonroot", Type: tar.TypeDir, Mode: 0o700, UID: 65532, GID: 65532},
		{Path: "./usr/bin/hard", Type: tar.TypeLink, Linkname: "/usr/local/bin/inline"},
		{Path: "coredns", Type: tar.TypeReg, Mode: 0o755, Data: []byte("x"), Xattrs: map[string]string{"security.capability": capNetBindService}},
		Dir("tmp", 0o1777),
	}
}

func tarBytes(t *testing.T, es []Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteTar(&buf, es); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestWriteTarDeterministic(t *testing.T) {
	es := sampleEntries(t)
	want := tarBytes(t, es)
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 5; i++ {
		shuffled := append([]Entry(nil), es...)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		if got := tarBytes(t, shuffled); !bytes.Equal(got, want) {
			t.Fatalf("tar differs after shuffling entries (round %d)", i)
		}
	}
}

func TestWriteTarHeaders(t *testing.T) {
	tr := tar.NewReader(bytes.NewReader(tarBytes(t, sampleEntries(t))))
	var names []string
	hdrs := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		hdrs[h.Name] = h
		if !h.ModTime.Equal(Epoch()) {
			t.Errorf("%s: mtime %v, want %v", h.Name, h.ModTime, Epoch())
		}
		if h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner names %q/%q, want numeric only", h.Name, h.Uname, h.Gname)
		}
		if h.Typeflag == tar.TypeLink {
			t.Errorf("%s: hard link written, want a copy", h.Name)
		}
	}
	wantNames := []string{"bin/", "bin/busybox", "bin/sh", "coredns", "home/", "home/nonroot/", "opt/", "opt/bin/", "opt/bin/fromdisk",
		"tmp/", "usr/", "usr/bin/", "usr/bin/hard", "usr/local/", "usr/local/bin/", "usr/local/bin/inline"}
	if !reflect.DeepEqual(names, wantNames) {
		t.Fatalf("names:\n got %q\nwant %q", names, wantNames)
	}
	if h := hdrs["home/nonroot/"]; h.Uid != 65532 || h.Gid != 65532 || h.Mode != 0o700 {
		t.Errorf("home/nonroot: %d:%d %o", h.Uid, h.Gid, h.Mode)
	}
	if h := hdrs["usr/"]; h.Mode != 0o755 || h.Uid != 0 {
		t.Errorf("implied parent usr/: mode %o uid %d", h.Mode, h.Uid)
	}
	if h := hdrs["tmp/"]; h.Mode != 0o1777 {
		t.Errorf("tmp/: mode %o, want sticky 1777", h.Mode)
	}
	if h := hdrs["coredns"]; h.PAXRecords["SCHILY.xattr.security.capability"] != capNetBindService {
		t.Errorf("coredns: capability xattr not written: %q", h.PAXRecords)
	}
	if h := hdrs["usr/bin/hard"]; h.Size != int64(len("inline content")) {
		t.Errorf("hard link copy has size %d", h.Size)
	}
	if h := hdrs["bin/sh"]; h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
		t.Errorf("bin/sh: %c -> %q", h.Typeflag, h.Linkname)
	}
}

func TestWriteTarErrors(t *testing.T) {
	for name, es := range map[string][]Entry{
		"duplicate file":         {File("a", 0o644, nil), File("/a", 0o644, []byte("x"))},
		"file under a file":      {File("a", 0o644, nil), File("a/b", 0o644, nil)},
		"dangling hard link":     {{Path: "b", Type: tar.TypeLink, Linkname: "a"}},
		"unsupported type":       {{Path: "dev/null", Type: tar.TypeChar}},
		"missing source":         {{Path: "x", Type: tar.TypeReg, Src: "/nonexistent/kk-images-test"}},
		"hard link to symlink":   {Symlink("a", "b"), {Path: "c", Type: tar.TypeLink, Linkname: "a"}},
		"hard link outside root": {{Path: "c", Type: tar.TypeLink, Linkname: "/"}},
	} {
		if err := WriteTar(io.Discard, es); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// A directory given twice is fine; the later one wins.
	if err := WriteTar(io.Discard, []Entry{Dir("d", 0o755), Dir("d/", 0o700)}); err != nil {
		t.Errorf("directory twice: %v", err)
	}
}

func TestWriteLayerDigests(t *testing.T) {
	es := sampleEntries(t)
	var a, b bytes.Buffer
	ia, err := WriteLayer(&a, es)
	if err != nil {
		t.Fatal(err)
	}
	ib, err := WriteLayer(&b, es)
	if err != nil {
		t.Fatal(err)
	}
	if ia != ib || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("two writes differ: %+v vs %+v", ia, ib)
	}
	sum := sha256.Sum256(a.Bytes())
	if ia.Digest != "sha256:"+hex.EncodeToString(sum[:]) || ia.Size != int64(a.Len()) {
		t.Errorf("digest/size %s/%d do not match the blob", ia.Digest, ia.Size)
	}
	zr, err := gzip.NewReader(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("gzip header carries name %q / time %v", zr.Name, zr.ModTime)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	dsum := sha256.Sum256(raw)
	if ia.DiffID != "sha256:"+hex.EncodeToString(dsum[:]) || ia.Uncompressed != int64(len(raw)) {
		t.Errorf("diffID/uncompressed %s/%d do not match the tar", ia.DiffID, ia.Uncompressed)
	}
	if !bytes.Equal(raw, tarBytes(t, es)) {
		t.Error("layer content is not WriteTar's output")
	}
}

func TestTreeResolve(t *testing.T) {
	tree, err := Flatten(
		[]Entry{File("lib/x86_64-linux-gnu/libc.so.6", 0o755, []byte("libc")), Symlink("lib64/ld.so", "/lib/x86_64-linux-gnu/libc.so.6"),
			Symlink("usr/sbin/iptables", "iptables-nft"), File("usr/sbin/iptables-nft", 0o755, []byte("v1"))},
		[]Entry{File("usr/sbin/iptables-nft", 0o755, []byte("v2")), Symlink("usrlib", "usr/sbin"), Symlink("loop", "loop")},
	)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"/usr/sbin/iptables":    "v2",
		"lib64/ld.so":           "libc",
		"/usrlib/iptables":      "v2",
		"usrlib/../lib64/ld.so": "libc",
	} {
		e, err := tree.Resolve(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if string(e.Data) != want {
			t.Errorf("%s: got %q, want %q", p, e.Data, want)
		}
	}
	if _, err := tree.Resolve("nope"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("nope: %v", err)
	}
	if _, err := tree.Resolve("loop"); err == nil {
		t.Error("symlink loop resolved")
	}
	if _, err := tree.Resolve("lib/x86_64-linux-gnu/libc.so.6/x"); err == nil {
		t.Error("path through a file resolved")
	}
}

// TestCheckELF uses this machine's /usr/bin/true (dynamically linked
// against glibc) to see that missing libraries are reported.
func TestCheckELF(t *testing.T) {
	if _, err := os.Stat("/usr/bin/true"); err != nil {
		t.Skip("no /usr/bin/true")
	}
	tree, err := Flatten([]Entry{{Path: "usr/bin/true", Type: tar.TypeReg, Mode: 0o755, Src: "/usr/bin/true"}})
	if err != nil {
		t.Fatal(err)
	}
	err = tree.CheckELF()
	if err == nil || !strings.Contains(err.Error(), "libc.so.6") || !strings.Contains(err.Error(), "interpreter") {
		t.Fatalf("want missing libc and interpreter, got %v", err)
	}
	libc, err1 := filepath.EvalSymlinks("/lib/x86_64-linux-gnu/libc.so.6")
	ld, err2 := filepath.EvalSymlinks("/lib64/ld-linux-x86-64.so.2")
	if err1 != nil || err2 != nil {
		t.Skip("no amd64 glibc here")
	}
	tree, err = Flatten([]Entry{
		{Path: "usr/bin/true", Type: tar.TypeReg, Mode: 0o755, Src: "/usr/bin/true"},
		{Path: "usr/lib/x86_64-linux-gnu/libc.so.6", Type: tar.TypeReg, Mode: 0o755, Src: libc},
		{Path: "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", Type: tar.TypeReg, Mode: 0o755, Src: ld},
		Symlink("lib64/ld-linux-x86-64.so.2", "../usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
		File("etc/not-elf", 0o644, []byte("hello")),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.CheckELF(); err != nil {
		t.Fatalf("complete tree: %v", err)
	}
}

func TestReadTarEntriesPrunes(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, body)
	}
	add(&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "./usr/sbin/x", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 0, Gid: 0}, "bin")
	add(&tar.Header{Name: "./usr/share/doc/x/copyright", Typeflag: tar.TypeReg, Mode: 0o644}, "doc")
	add(&tar.Header{Name: "./usr/share/man/man8/x.8.gz", Typeflag: tar.TypeReg, Mode: 0o644}, "man")
	add(&tar.Header{Name: "./usr/share/doc/y", Typeflag: tar.TypeLink, Linkname: "./usr/sbin/x"}, "")
	add(&tar.Header{Name: "./usr/sbin/y", Typeflag: tar.TypeLink, Linkname: "./usr/share/doc/x/copyright"}, "")
	add(&tar.Header{Name: "./usr/lib/x86_64-linux-gnu/gconv/UTF-16.so", Typeflag: tar.TypeReg, Mode: 0o644}, "so")
	tw.Close()
	es, err := readTarEntries(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Path != "usr/sbin/x" || es[0].Mode != 0o4755 || string(es[0].Data) != "bin" {
		t.Fatalf("got %+v", es)
	}
}

func TestSplitAndMirrorRef(t *testing.T) {
	base := "127.0.0.1:5055"
	for in, want := range map[string]string{
		"registry.k8s.io/kube-apiserver:v1.34.4":                  base + "/kube-apiserver:v1.34.4",
		"registry.k8s.io/coredns/coredns:v1.12.1":                 base + "/coredns/coredns:v1.12.1",
		"ghcr.io/flannel-io/flannel:v0.28.10":                     base + "/flannel-io/flannel:v0.28.10",
		"docker.io/library/haproxy:2.6.12":                        base + "/library/haproxy:2.6.12",
		"haproxy:2.6":                                             base + "/library/haproxy:2.6",
		"index.docker.io/library/haproxy":                         base + "/library/haproxy",
		"registry.k8s.io/pause@sha256:" + strings.Repeat("a", 64): base + "/pause@sha256:" + strings.Repeat("a", 64),
		"nvcr.io/nvidia/k8s-device-plugin:v0.17.4":                base + "/nvidia/k8s-device-plugin:v0.17.4",
		"quay.io/prometheus/prometheus:v3.16.0":                   base + "/prometheus/prometheus:v3.16.0",
	} {
		got, err := MirrorRef(in, base)
		if err != nil || got != want {
			t.Errorf("MirrorRef(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"gcr.io/x/y:1", "", "a b"} {
		if _, err := MirrorRef(bad, base); err == nil {
			t.Errorf("MirrorRef(%q): no error", bad)
		}
	}
	m := Mirrors(base)
	if len(m) != 5 || m["registry.k8s.io"] != base || m["docker.io"] != base || m["ghcr.io"] != base || m["nvcr.io"] != base || m["quay.io"] != base {
		t.Errorf("Mirrors: %v", m)
	}
}

func TestImagesDefaultSpec(t *testing.T) {
	imgs, err := Images(mirror.DefaultSpec(), "/m", "/b", DebVersions{HAProxy: "2.6.12-1+deb12u4", Busybox: "1:1.35.0-4+b3"})
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	seen := map[string]bool{}
	for _, im := range imgs {
		for _, r := range im.Refs() {
			if seen[r] {
				t.Errorf("%s given twice", r)
			}
			seen[r] = true
			refs = append(refs, r)
		}
		names := map[string]*layerSpec{}
		for _, l := range im.layers {
			if o, ok := names[l.name]; ok && o != l {
				t.Errorf("%s: two layers named %s", im.Ref(), l.name)
			}
			names[l.name] = l
		}
	}
	// Every image kk deploys for a cluster of each Kubernetes version the mirror builds, as
	// `kk create manifest` lists it, is built: one source (kk's version table) for both.
	spec := mirror.DefaultSpec()
	for _, k8s := range spec.Kubernetes {
		for _, cl := range manifestClusters(spec, k8s) {
			m, err := v1alpha2.NewManifest(cl)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range m.Spec.Images {
				if !seen[want] {
					t.Errorf("%s (%s, %s, etcd %s, %s): kk create manifest lists %s, the test images lack it (have %q)", k8s,
						cl.Network.Plugin, cl.ControlPlaneEndpoint.InternalLoadbalancer, cl.Etcd.Type, cl.Kubernetes.ContainerManager, want, refs)
				}
			}
		}
	}
	for _, im := range imgs {
		if im.Repository == "registry.k8s.io/kube-apiserver" && im.layers[len(im.layers)-1].files[0].src != "/m/release/"+im.Tags[0]+"/bin/linux/amd64/kube-apiserver" {
			t.Errorf("kube-apiserver source: %+v", im.layers[len(im.layers)-1].files)
		}
	}
	spec.Kubernetes = []string{"v1.20.0"}
	if _, err := Images(spec, "/m", "/b", DebVersions{}); err == nil || !strings.Contains(err.Error(), "v1.20") {
		t.Errorf("unknown kubeadm version: %v", err)
	}
}

// TestServeSmallLayout serves a one-image layout and pulls it back.
func TestServeSmallLayout(t *testing.T) {
	dir := t.TempDir()
	var blob bytes.Buffer
	info, err := WriteLayer(&blob, []Entry{File("hello", 0o644, []byte("world"))})
	if err != nil {
		t.Fatal(err)
	}
	blobs := filepath.Join(dir, "blobs", "sha256")
	os.MkdirAll(blobs, 0o755)
	if err := os.WriteFile(filepath.Join(blobs, strings.TrimPrefix(info.Digest, "sha256:")), blob.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &builder{blobs: blobs}
	l, err := b.fileLayer(info)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{Layer: l, MediaType: types.OCILayer})
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Entrypoint: []string{"/hello"}})
	if err != nil {
		t.Fatal(err)
	}
	ref := "docker.io/library/hello:1"
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Annotations: map[string]string{AnnotationRefName: ref}}})
	if _, err := layout.Write(dir, idx); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, _, err := Serve(ctx, dir, "10.1.2.3:0"); err == nil {
		t.Fatal("non-loopback address accepted")
	}
	base, stop, err := Serve(ctx, dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	tag, _ := name.NewTag(base+"/library/hello:1", name.Insecure)
	got, err := remote.Image(tag, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	gd, _ := got.Digest()
	wd, _ := img.Digest()
	if gd != wd {
		t.Fatalf("digest %s, want %s", gd, wd)
	}
	ls, _ := got.Layers()
	rc, err := ls[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(data, blob.Bytes()) {
		t.Fatal("layer blob differs")
	}
	// Pushing a new image works and lands in the upload area.
	other, _ := name.NewTag(base+"/library/other:2", name.Insecure)
	img2, _ := mutate.Config(img, v1.Config{Entrypoint: []string{"/other"}})
	if err := remote.Write(other, img2, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push: %v", err)
	}
	stop()
	stop() // idempotent
}

// manifestClusters are the clusters kk's tests build from the images: each network plugin the
// mirror builds, each internal load balancer, binary and stacked etcd, nodelocaldns on when the
// mirror builds its image.
func manifestClusters(spec mirror.Spec, k8s string) []*config.Cluster {
	plugins := []string{"flannel"}
	if spec.Calico != "" {
		plugins = append(plugins, "calico")
	}
	var out []*config.Cluster
	for _, plugin := range plugins {
		for _, lb := range []string{config.LoadBalancerHAProxy, config.LoadBalancerKubeVIP} {
			for _, etcd := range []string{config.EtcdKubeKey, config.EtcdKubeadm} {
				c := &config.Cluster{Name: "e2e", Hosts: []*config.Host{{Name: "n1", Arch: "amd64"}}}
				c.Kubernetes.Version = k8s
				c.Kubernetes.ContainerManager = "containerd"
				c.Kubernetes.NodeLocalDNS = spec.NodeCache != ""
				c.Network.Plugin = plugin
				c.ControlPlaneEndpoint.InternalLoadbalancer = lb
				c.Etcd.Type = etcd
				// the platform components the mirror builds
				c.Platform.MetricsServer = spec.MetricsServer != ""
				c.Platform.LocalStorage = spec.CSIProvisioner != ""
				c.Platform.Gateway = spec.Traefik != ""
				c.Platform.AppStore = spec.ChartMuseum != ""
				out = append(out, c)
			}
		}
	}
	return out
}
