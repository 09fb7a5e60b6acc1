//go:build integration

package images

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestBuildServeRun builds (or reuses) every image from the mirror
// (KK_MIRROR_DIR, default /var/tmp/kk-mirror) into KK_IMAGES_DIR (default
// /var/tmp/kk-images), serves them on loopback, pulls them back through
// the registry API and runs their programs: kube-apiserver from its own
// layer, the userland tools of kube-proxy, flannel and haproxy in a
// chroot of the flattened image. KK_IMAGES_ONLY (comma-separated) limits
// the images, e.g. while the mirror is incomplete.
func TestBuildServeRun(t *testing.T) {
	mirrorDir := envOr("KK_MIRROR_DIR", DefaultMirrorDir)
	if _, err := os.Stat(filepath.Join(mirrorDir, "release")); err != nil {
		t.Fatalf("mirror %s is not built (make mirror): %v", mirrorDir, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	opts := Options{MirrorDir: mirrorDir, OutDir: envOr("KK_IMAGES_DIR", DefaultOutDir), Log: testLog{t}}
	if o := os.Getenv("KK_IMAGES_ONLY"); o != "" {
		opts.Only = strings.Split(o, ",")
	}
	start := time.Now()
	res, err := Build(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("build: %d images, %d layers built, %.1fs", len(res.Images), res.LayersBuilt, time.Since(start).Seconds())

	// A second build changes nothing.
	res2, err := Build(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res2.LayersBuilt != 0 {
		t.Errorf("second build rebuilt %d layers", res2.LayersBuilt)
	}
	for i := range res.Images {
		if res.Images[i].Digest != res2.Images[i].Digest {
			t.Errorf("%s: digest changed between builds", res.Images[i].Ref())
		}
	}

	base, stop, err := Serve(ctx, res.LayoutDir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	t.Logf("registry at %s", base)

	pulled := map[string]v1.Image{}
	for _, im := range res.Images {
		mref, err := MirrorRef(im.Ref(), base)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(mref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		tags, err := remote.List(ref.Context(), remote.WithContext(ctx))
		if err != nil {
			t.Fatalf("%s: list tags: %v", im.Ref(), err)
		}
		for _, want := range im.Tags {
			if !slices.Contains(tags, want) {
				t.Errorf("%s: tag %s not listed (have %v)", im.Repository, want, tags)
			}
		}
		for _, tagged := range im.Refs() {
			mr, _ := MirrorRef(tagged, base)
			r, _ := name.ParseReference(mr, name.Insecure)
			img, err := remote.Image(r, remote.WithContext(ctx))
			if err != nil {
				t.Fatalf("%s: pull %s: %v", tagged, mr, err)
			}
			d, _ := img.Digest()
			if d.String() != im.Digest {
				t.Errorf("%s: served digest %s, built %s", tagged, d, im.Digest)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatalf("%s: config: %v", tagged, err)
			}
			if cf.OS != "linux" || cf.Architecture != "amd64" {
				t.Errorf("%s: platform %s/%s", tagged, cf.OS, cf.Architecture)
			}
			c := im.config
			if !reflect.DeepEqual(cf.Config.Entrypoint, c.Entrypoint) || !reflect.DeepEqual(cf.Config.Cmd, c.Cmd) || cf.Config.User != c.User {
				t.Errorf("%s: entrypoint %q cmd %q user %q; want %q %q %q", tagged, cf.Config.Entrypoint, cf.Config.Cmd, cf.Config.User, c.Entrypoint, c.Cmd, c.User)
			}
			if cf.Config.Labels["org.opencontainers.image.version"] != im.Version {
				t.Errorf("%s: version label %q", tagged, cf.Config.Labels["org.opencontainers.image.version"])
			}
			pulled[tagged] = img
		}
	}

	for _, im := range res.Images {
		img := pulled[im.Ref()]
		switch im.Repository {
		case "registry.k8s.io/kube-apiserver":
			// The binary's own layer alone is a working rootfs: it is static.
			ls, _ := img.Layers()
			dir := t.TempDir()
			extractLayer(t, ls[len(ls)-1], dir)
			out := runOut(t, ctx, filepath.Join(dir, "usr/local/bin/kube-apiserver"), "--version")
			if !strings.Contains(out, "Kubernetes "+im.Version) {
				t.Errorf("%s: --version printed %q", im.Ref(), out)
			}
		case "registry.k8s.io/kube-proxy":
			root := flatten(t, img)
			chrootWant(t, ctx, root, "iptables v1.8.9 (nf_tables)", "/usr/sbin/iptables", "--version")
			chrootWant(t, ctx, root, "ip6tables v1.8.9", "/usr/sbin/ip6tables", "--version")
			chrootWant(t, ctx, root, "iptables-save v1.8.9", "/usr/sbin/iptables-save", "--version")
			chrootWant(t, ctx, root, "conntrack v1.4", "/usr/sbin/conntrack", "--version")
			chrootWant(t, ctx, root, "ipset v7", "/usr/sbin/ipset", "--version")
			chrootWant(t, ctx, root, "nftables v1", "/usr/sbin/nft", "--version")
			chrootWant(t, ctx, root, "Kubernetes "+im.Version, "/usr/local/bin/kube-proxy", "--version")
			chrootWant(t, ctx, root, "ok", "/bin/sh", "-c", "echo ok")
		case "docker.io/library/haproxy":
			root := flatten(t, img)
			chrootWant(t, ctx, root, "HAProxy version "+im.Version, "/usr/local/sbin/haproxy", "-v")
			// Options alone go to haproxy through the entrypoint, as upstream.
			chrootWant(t, ctx, root, "HAProxy version "+im.Version, "/usr/local/bin/docker-entrypoint.sh", "-v")
			cfg := "global\n  maxconn 100\ndefaults\n  mode tcp\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n" +
				"frontend kube\n  bind 127.0.0.1:16443\n  default_backend apis\nbackend apis\n  server a 127.0.0.1:6443 check\n"
			os.WriteFile(filepath.Join(root, "usr/local/etc/haproxy/haproxy.cfg"), []byte(cfg), 0o644)
			chrootWant(t, ctx, root, "Configuration file is valid", "/usr/local/sbin/haproxy", "-c", "-f", "/usr/local/etc/haproxy/haproxy.cfg")
		case "ghcr.io/flannel-io/flannel":
			root := flatten(t, img)
			chrootWant(t, ctx, root, im.Version, "/opt/bin/flanneld", "--version")
			chrootWant(t, ctx, root, "iptables v1.8.9", "/usr/sbin/iptables", "--version")
			os.WriteFile(filepath.Join(root, "tmp/conf.json"), []byte("{}"), 0o644)
			os.MkdirAll(filepath.Join(root, "tmp/out"), 0o755)
			chrootWant(t, ctx, root, "", "/opt/bin/install-conf", "/tmp/conf.json", "/tmp/out/10-flannel.conflist")
			if _, err := os.Stat(filepath.Join(root, "tmp/out/10-flannel.conflist")); err != nil {
				t.Errorf("flannel install-conf: %v", err)
			}
		case "ghcr.io/flannel-io/flannel-cni-plugin":
			root := flatten(t, img)
			os.MkdirAll(filepath.Join(root, "opt/cni/bin"), 0o755)
			chrootWant(t, ctx, root, "", "cp", "-f", "/flannel", "/opt/cni/bin/flannel")
			if fi, err := os.Stat(filepath.Join(root, "opt/cni/bin/flannel")); err != nil || fi.Size() == 0 {
				t.Errorf("flannel-cni-plugin: cp of /flannel: %v", err)
			}
		case "registry.k8s.io/etcd":
			root := flatten(t, img)
			chrootWant(t, ctx, root, "etcd Version: "+strings.TrimPrefix(im.Version, "v"), "/usr/local/bin/etcd", "--version")
			chrootWant(t, ctx, root, "etcdctl version: "+strings.TrimPrefix(im.Version, "v"), "/usr/local/bin/etcdctl", "version")
		case "registry.k8s.io/coredns/coredns":
			root := flatten(t, img)
			chrootWant(t, ctx, root, "CoreDNS-"+strings.TrimPrefix(im.Version, "v"), "/coredns", "-version")
			if !layerHasXattr(t, img, "coredns", "security.capability") {
				t.Error("coredns: /coredns lacks its cap_net_bind_service file capability")
			}
		case ProbeRepository:
			root := flatten(t, img)
			chrootWant(t, ctx, root, "kk-probe", "/probe", "-v")
		case "registry.k8s.io/pause":
			root := flatten(t, img)
			chrootWant(t, ctx, root, "kk-pause", "/pause", "-v")
		}
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func runOut(t *testing.T, ctx context.Context, prog string, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(ctx, prog, args...).CombinedOutput()
	if err != nil {
		t.Errorf("%s %s: %v: %s", prog, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// chrootWant runs a program inside root and wants want in its output.
func chrootWant(t *testing.T, ctx context.Context, root, want string, args ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("chroot needs root: run the integration tests as root")
	}
	cmd := exec.CommandContext(ctx, "chroot", append([]string{root}, args...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("chroot %s: %v: %s", strings.Join(args, " "), err, out)
		return
	}
	if !strings.Contains(string(out), want) {
		t.Errorf("chroot %s: output %q lacks %q", strings.Join(args, " "), out, want)
	}
}

// flatten unpacks the image's flattened file system into a temp dir.
func flatten(t *testing.T, img v1.Image) string {
	t.Helper()
	dir := t.TempDir()
	rc := mutate.Extract(img)
	defer rc.Close()
	untar(t, rc, dir)
	return dir
}

func extractLayer(t *testing.T, l v1.Layer, dir string) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	untar(t, rc, dir)
}

func untar(t *testing.T, r io.Reader, dir string) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p, ok := cleanPath(h.Name)
		if !ok {
			continue
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(dst), 0o755)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, os.FileMode(h.Mode&0o777))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		case tar.TypeSymlink:
			os.Remove(dst)
			if err := os.Symlink(h.Linkname, dst); err != nil {
				t.Fatal(err)
			}
		case tar.TypeLink:
			lp, _ := cleanPath(h.Linkname)
			os.Remove(dst)
			if err := os.Link(filepath.Join(dir, filepath.FromSlash(lp)), dst); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("%s: unexpected type %c", h.Name, h.Typeflag)
		}
		if os.Geteuid() == 0 {
			os.Lchown(dst, h.Uid, h.Gid)
		}
		// After chown, which clears setuid/setgid.
		if h.Typeflag == tar.TypeDir || h.Typeflag == tar.TypeReg {
			os.Chmod(dst, os.FileMode(h.Mode&0o777)|modeBits(h.Mode))
		}
	}
}

func modeBits(m int64) os.FileMode {
	var fm os.FileMode
	if m&0o4000 != 0 {
		fm |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= os.ModeSticky
	}
	return fm
}

func layerHasXattr(t *testing.T, img v1.Image, path, attr string) bool {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if strings.TrimPrefix(h.Name, "./") == path {
				if _, ok := h.PAXRecords["SCHILY.xattr."+attr]; ok {
					rc.Close()
					return true
				}
			}
		}
		rc.Close()
	}
	return false
}
