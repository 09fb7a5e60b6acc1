package mirror

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Docker's static release and cri-dockerd, for kk's containerManager: docker.
//
// Neither upstream publishes a checksum file (kk's Manifest must pin their SHA-256), so the
// mirror writes none either: a test computes the pin from the file the way a user does.
//
// cri-dockerd is built from its Go module at Spec.CriDockerd. Docker is not: moby does not
// build as a Go module (vendor.mod), so, as for runc, Debian's packages stand in for it:
// docker.io (docker, dockerd, docker-proxy), containerd (containerd, containerd-shim-runc-v2,
// ctr), runc and tini (tini-static as docker-init) are laid out as download.docker.com's
// docker-<version>.tgz with every program under docker/. Debian's dockerd is linked against
// libdevmapper, libsystemd and libc: the machines must have libdevmapper1.02.1.

// DockerPath is download.docker.com's path of the static docker release (the version has no
// leading "v"; x86_64 is amd64).
func DockerPath(version string) string {
	return fmt.Sprintf("/linux/static/stable/x86_64/docker-%s.tgz", strings.TrimPrefix(version, "v"))
}

// CriDockerdPath is the GitHub release path of the cri-dockerd archive.
func CriDockerdPath(version string) string {
	return fmt.Sprintf("/Mirantis/cri-dockerd/releases/download/%s/cri-dockerd-%s.%s.tgz", version, strings.TrimPrefix(version, "v"), Arch)
}

// DockerPrograms are the members docker/<program> of the static docker release.
var DockerPrograms = []string{"containerd", "containerd-shim-runc-v2", "ctr", "docker", "docker-init", "docker-proxy", "dockerd", "runc"}

// dockerDebs are the Debian packages the static docker release is assembled from, with the
// program each one supplies under its name in the release (path in the package).
func (s Spec) dockerDebs() []struct {
	pkg, version string
	programs     map[string]string
} {
	type deb = struct {
		pkg, version string
		programs     map[string]string
	}
	return []deb{
		{"docker.io", s.DockerDeb, map[string]string{"docker": "usr/bin/docker", "dockerd": "usr/sbin/dockerd", "docker-proxy": "usr/sbin/docker-proxy"}},
		{"containerd", s.DockerContainerdDeb, map[string]string{"containerd": "usr/bin/containerd", "containerd-shim-runc-v2": "usr/bin/containerd-shim-runc-v2", "ctr": "usr/bin/ctr"}},
		{"runc", s.RuncDeb, map[string]string{"runc": "usr/sbin/runc"}},
		{"tini", s.TiniDeb, map[string]string{"docker-init": "usr/bin/tini-static"}},
	}
}

func (b *builder) dockerJob() job {
	s := b.spec
	p := DockerPath(s.Docker)
	var pins []string
	for _, d := range s.dockerDebs() {
		pins = append(pins, d.pkg+"="+d.version)
	}
	return job{component: "docker", name: "docker", version: s.Docker, recipe: recipeRev + " debian " + strings.Join(pins, ","), outputs: []string{rel(p)},
		build: func(ctx context.Context, stage string) error {
			work := filepath.Join(stage, "deb")
			if err := os.MkdirAll(work, 0o755); err != nil {
				return err
			}
			_ = os.Chmod(work, 0o777) // apt-get download runs as _apt
			if err := b.cmd(ctx, work, nil, "apt-get", append([]string{"download"}, pins...)...); err != nil {
				return fmt.Errorf("apt-get download %s (is the apt index current? try apt-get update): %w", strings.Join(pins, " "), err)
			}
			src := map[string]string{}
			for _, d := range s.dockerDebs() {
				debs, _ := filepath.Glob(filepath.Join(work, d.pkg+"_*.deb"))
				if len(debs) != 1 {
					return fmt.Errorf("apt-get download %s=%s: want one .deb, found %d", d.pkg, d.version, len(debs))
				}
				x := filepath.Join(stage, "x-"+d.pkg)
				if err := b.cmd(ctx, stage, nil, "dpkg-deb", "-x", debs[0], x); err != nil {
					return err
				}
				for prog, rp := range d.programs {
					f := filepath.Join(x, filepath.FromSlash(rp))
					if st, err := os.Lstat(f); err != nil || !st.Mode().IsRegular() {
						return fmt.Errorf("%s: no regular file %s (%v)", filepath.Base(debs[0]), rp, err)
					}
					src[prog] = f
				}
			}
			entries := []tarEntry{{name: "docker/", dir: true}}
			for _, prog := range DockerPrograms {
				if src[prog] == "" {
					return fmt.Errorf("no package supplies docker/%s", prog)
				}
				entries = append(entries, tarEntry{name: "docker/" + prog, src: src[prog]})
			}
			// a fixed time: the archive (and so its pinned SHA-256) is the same on every build
			return writeTarGz(filepath.Join(stage, rel(p)), time.Unix(0, 0), entries)
		}}
}

func (b *builder) criDockerdJob() job {
	v := b.spec.CriDockerd
	p := CriDockerdPath(v)
	mod := "github.com/Mirantis/cri-dockerd"
	return job{component: "cri-dockerd", name: "cri-dockerd", version: v, recipe: recipeRev, outputs: []string{rel(p)},
		build: func(ctx context.Context, stage string) error {
			// The module's main package is its root and its go.mod carries replaces: it is
			// built in a writable copy of the module with its own go.mod (its module zip has
			// no vendor tree, only vendor/modules.txt, which -mod=mod ignores).
			dir, err := b.moduleDir(ctx, mod, v)
			if err != nil {
				return err
			}
			src := filepath.Join(b.dir, ".build", "cri-dockerd-"+v)
			if err := os.RemoveAll(src); err != nil {
				return err
			}
			if err := os.CopyFS(src, os.DirFS(dir)); err != nil {
				return fmt.Errorf("copy %s@%s: %w", mod, v, err)
			}
			if err := os.RemoveAll(filepath.Join(src, "vendor")); err != nil {
				return err
			}
			out := filepath.Join(stage, "gobin")
			env := append(b.goEnv(), "GOFLAGS=-buildvcs=false -mod=mod")
			ld := "-s -w -X " + mod + "/cmd/version.Version=" + strings.TrimPrefix(v, "v")
			if err := b.cmd(ctx, src, env, "go", "build", "-trimpath", "-o", filepath.Join(out, "cri-dockerd"), "-ldflags", ld, "."); err != nil {
				return fmt.Errorf("go build %s: %w", mod, err)
			}
			t, err := b.moduleTime(ctx, mod, v)
			if err != nil {
				return err
			}
			return writeTarGz(filepath.Join(stage, rel(p)), t, []tarEntry{
				{name: "cri-dockerd/", dir: true},
				{name: "cri-dockerd/cri-dockerd", src: filepath.Join(out, "cri-dockerd")},
			})
		}}
}
