package mirror

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Calico's programs: upstream ships them only in its images (docker.io/calico/node, cni,
// kube-controllers, typha), so they live under BinPath("calico", release, name).
// calico-ipam is the calico binary under another name (it looks at argv[0]), as upstream's
// cni image installs it.
var CalicoBinaries = map[string]string{
	"calico-node":      "node/cmd/calico-node",
	"calico":           "cni-plugin/cmd/calico",
	"install":          "cni-plugin/cmd/install",
	"kube-controllers": "kube-controllers/cmd/kube-controllers",
	"check-status":     "kube-controllers/cmd/check-status",
	"wrapper":          "kube-controllers/cmd/wrapper",
	"calico-typha":     "typha/cmd/calico-typha",
}

// CalicoNodeFiles is the archive of calico/node's own files as upstream's image lays them out:
// node/filesystem's etc (the runit services, rc.local) at /etc and its sbin (start_runit) at
// /usr/sbin, and confd's templates at /etc/calico/confd.
const CalicoNodeFiles = "node-filesystem.tar.gz"

// CalicoPath is where the mirror puts one of Calico's programs or CalicoNodeFiles.
func CalicoPath(release, name string) string { return BinPath("calico", release, name) }

const calicoModule = "github.com/projectcalico/calico"

// calicoJob builds Calico's programs from the github.com/projectcalico/calico module at
// s.CalicoModule (the pseudo-version of release s.Calico's commit: the calico repository
// tags releases v3.x, which the v0 module cannot take) with github.com/projectcalico/api at
// s.CalicoAPIModule, the api repository's commit of the same release. (The calico
// repository's go.mod replaces the api and lib modules with its own directories, which a
// module zip leaves out.) CGO is off, as for every other program here: felix's eBPF
// dataplane (libbpf, cgo) is left out; the iptables and nftables dataplanes are in.
func (b *builder) calicoJob() job {
	s := b.spec
	v := s.Calico
	var outs []string
	names := slices.Sorted(maps.Keys(CalicoBinaries))
	for _, n := range names {
		p := CalicoPath(v, n)
		outs = append(outs, withChecksum(p, p+".sha256")...)
	}
	files := CalicoPath(v, CalicoNodeFiles)
	outs = append(outs, withChecksum(files, files+".sha256")...)
	return job{component: "calico", name: "calico", version: v, outputs: outs,
		recipe: recipeRev + " module " + s.CalicoModule + " api " + s.CalicoAPIModule + " " + strings.Join(names, ","),
		build: func(ctx context.Context, stage string) error {
			var pkgs []string
			for _, n := range names {
				pkgs = append(pkgs, calicoModule+"/"+CalicoBinaries[n])
			}
			bins := filepath.Join(stage, "gobin")
			if err := b.goBuild(ctx, goBuild{key: "calico-" + v,
				require:     []string{calicoModule + " " + s.CalicoModule, "github.com/projectcalico/api " + s.CalicoAPIModule},
				replaceFrom: []string{calicoModule + "@" + s.CalicoModule},
				replace: []string{
					calicoModule + "/lib/httpmachinery => " + calicoModule + "/lib/httpmachinery " + s.CalicoModule,
					calicoModule + "/lib/std => " + calicoModule + "/lib/std " + s.CalicoModule,
				},
				pkgs:    pkgs,
				ldflags: []string{"-X " + calicoModule + "/pkg/buildinfo.Version=" + v, "-X " + calicoModule + "/pkg/buildinfo.GitRevision=" + s.CalicoModule},
				out:     bins}); err != nil {
				return err
			}
			for _, n := range names {
				p := CalicoPath(v, n)
				if err := placeBinary(filepath.Join(bins, path.Base(CalicoBinaries[n])), stage, p); err != nil {
					return err
				}
				if err := writeHexSum(stage, p, p+".sha256"); err != nil {
					return err
				}
			}
			dir, err := b.moduleDir(ctx, calicoModule, s.CalicoModule)
			if err != nil {
				return err
			}
			b.step("pack calico/node's files")
			if err := packCalicoNodeFiles(dir, filepath.Join(stage, rel(files))); err != nil {
				return err
			}
			return writeHexSum(stage, files, files+".sha256")
		}}
}

// packCalicoNodeFiles writes node/filesystem and confd/etc/calico/confd of the calico module
// in dir as a .tar.gz laid out as calico/node's root. The module zip keeps no file modes:
// scripts (sbin/*, etc/rc.local, the services' run files) get 0755.
func packCalicoNodeFiles(dir, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for _, tree := range []struct{ src, dst string }{
		{"node/filesystem/etc", "etc"},
		{"node/filesystem/sbin", "usr/sbin"},
		{"confd/etc/calico/confd", "etc/calico/confd"},
	} {
		root := filepath.Join(dir, filepath.FromSlash(tree.src))
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			r, err := filepath.Rel(root, p)
			if err != nil || r == "." {
				return err
			}
			name := path.Join(tree.dst, filepath.ToSlash(r))
			if d.IsDir() {
				return tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755})
			}
			if !d.Type().IsRegular() || path.Base(name) == ".gitkeep" {
				return nil
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			mode := int64(0o644)
			if strings.HasPrefix(name, "usr/sbin/") || name == "etc/rc.local" || path.Base(name) == "run" {
				mode = 0o755
			}
			if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(data))}); err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		})
		if err != nil {
			return fmt.Errorf("calico/node files from %s: %w", tree.src, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}
