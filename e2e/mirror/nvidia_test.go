package mirror

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/artifacts/versions"
)

func TestNvidiaContainerToolkitPath(t *testing.T) {
	for _, c := range []struct{ arch, path, deb string }{
		{"amd64", "/NVIDIA/nvidia-container-toolkit/releases/download/v1.20.2/nvidia-container-toolkit_1.20.2_deb_amd64.tar.gz",
			"release-v1.20.2-stable/packages/ubuntu18.04/amd64/nvidia-container-toolkit-base_1.20.2-1_amd64.deb"},
		{"arm64", "/NVIDIA/nvidia-container-toolkit/releases/download/v1.20.2/nvidia-container-toolkit_1.20.2_deb_arm64.tar.gz",
			"release-v1.20.2-stable/packages/ubuntu18.04/arm64/nvidia-container-toolkit-base_1.20.2-1_arm64.deb"},
	} {
		if got := NvidiaContainerToolkitPath("v1.20.2", c.arch); got != c.path {
			t.Errorf("NvidiaContainerToolkitPath(v1.20.2, %s) = %s, want %s", c.arch, got, c.path)
		}
		if got := NvidiaContainerToolkitBaseDeb("v1.20.2", c.arch); got != c.deb {
			t.Errorf("NvidiaContainerToolkitBaseDeb(v1.20.2, %s) = %s, want %s", c.arch, got, c.deb)
		}
	}
	want := []string{"/usr/bin/nvidia-container-runtime", "/usr/bin/nvidia-ctk", "/usr/bin/nvidia-cdi-hook",
		"/lib/systemd/system/nvidia-cdi-refresh.service", "/lib/systemd/system/nvidia-cdi-refresh.path",
		"/etc/nvidia-container-toolkit/nvidia-cdi-refresh.env", "/lib/udev/rules.d/99-nvidia-cdi-refresh.rules",
		"/lib/systemd/system/nvidia-cdi-refresh.service.d/10-container-engines.conf"}
	if got := NvidiaContainerToolkitBaseFiles(); !slices.Equal(got, want) {
		t.Errorf("NvidiaContainerToolkitBaseFiles() = %q, want %q", got, want)
	}
}

// The component builds one job whose only output is the release archive: upstream publishes
// no checksum file, so there is no Artifact (with a checksum URL) for it either.
func TestNvidiaContainerToolkitJob(t *testing.T) {
	s := DefaultSpec()
	if s.NvidiaContainerToolkit != "v1.20.2" {
		t.Errorf("DefaultSpec().NvidiaContainerToolkit = %q", s.NvidiaContainerToolkit)
	}
	if !slices.Contains(Components, "nvidia-container-toolkit") {
		t.Error("Components has no nvidia-container-toolkit")
	}
	b := &builder{dir: t.TempDir(), spec: s, log: io.Discard, out: io.Discard}
	var only []job
	for _, j := range b.jobs() {
		if j.component == "nvidia-container-toolkit" {
			only = append(only, j)
		}
	}
	if len(only) != 1 {
		t.Fatalf("%d nvidia-container-toolkit jobs, want 1", len(only))
	}
	want := []string{"NVIDIA/nvidia-container-toolkit/releases/download/v1.20.2/nvidia-container-toolkit_1.20.2_deb_amd64.tar.gz"}
	if j := only[0]; j.version != "v1.20.2" || !slices.Equal(j.outputs, want) {
		t.Errorf("job %s %s outputs %q, want %q", j.name, j.version, j.outputs, want)
	}
	for _, a := range s.Artifacts() {
		if a.Component == "nvidia-container-toolkit" {
			t.Errorf("Artifacts lists %s (upstream has no checksum file for it)", a.Path)
		}
	}
	s.NvidiaContainerToolkit = "1.20.2"
	if err := s.validate(); err == nil {
		t.Error("validate accepted nvidia-container-toolkit version 1.20.2")
	}
}

// upstream's packaging/debian files at v1.20.2.
const (
	nvidiaInstall = `nvidia-container-runtime /usr/bin
nvidia-ctk /usr/bin
nvidia-cdi-hook /usr/bin
nvidia-cdi-refresh.service /lib/systemd/system/
nvidia-cdi-refresh.path /lib/systemd/system/
nvidia-cdi-refresh.env /etc/nvidia-container-toolkit/
99-nvidia-cdi-refresh.rules /lib/udev/rules.d/
10-container-engines.conf /lib/systemd/system/nvidia-cdi-refresh.service.d/
`
	nvidiaControl = `Source: nvidia-container-toolkit
Section: @SECTION@utils
Priority: optional
Maintainer: NVIDIA CORPORATION <cudatools@nvidia.com>
Standards-Version: 3.9.8
Homepage: https://github.com/NVIDIA/nvidia-container-toolkit
Build-Depends: debhelper (>= 9.20160709)

Package: nvidia-container-toolkit
Architecture: any
Depends: ${misc:Depends}, nvidia-container-toolkit-base (= @VERSION@), libnvidia-container-tools (= @VERSION@)
Description: NVIDIA Container toolkit
 Provides tools and utilities to enable GPU support in containers.

Package: nvidia-container-toolkit-base
Architecture: any
Pre-Depends: ${misc:Pre-Depends}
Depends: ${misc:Depends}
Breaks: nvidia-container-runtime (<= 3.5.0-1), nvidia-container-runtime-hook, nvidia-container-toolkit (<= 1.10.0-1)
Replaces: nvidia-container-runtime (<= 3.5.0-1), nvidia-container-runtime-hook
Description: NVIDIA Container Toolkit Base
 Provides tools such as the NVIDIA Container Runtime and NVIDIA Container Toolkit CLI to enable GPU support in containers.
`
)

func TestCheckNvidiaInstall(t *testing.T) {
	if err := checkNvidiaInstall(nvidiaInstall); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		nvidiaInstall + "nvidia-container-runtime.cdi /usr/bin\n",
		strings.Replace(nvidiaInstall, "/lib/udev/rules.d/", "/usr/lib/udev/rules.d/", 1),
		strings.Replace(nvidiaInstall, "nvidia-ctk /usr/bin\n", "", 1),
	} {
		if err := checkNvidiaInstall(bad); err == nil {
			t.Errorf("checkNvidiaInstall accepted\n%s", bad)
		}
	}
}

func TestNvidiaBaseControl(t *testing.T) {
	got, err := nvidiaBaseControl(nvidiaControl, "v1.20.2", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{
		{"Package", "nvidia-container-toolkit-base"},
		{"Version", "1.20.2-1"},
		{"Architecture", "amd64"},
		{"Maintainer", "NVIDIA CORPORATION <cudatools@nvidia.com>"},
		{"Breaks", "nvidia-container-runtime (<= 3.5.0-1), nvidia-container-runtime-hook, nvidia-container-toolkit (<= 1.10.0-1)"},
		{"Replaces", "nvidia-container-runtime (<= 3.5.0-1), nvidia-container-runtime-hook"},
		{"Section", "utils"},
		{"Priority", "optional"},
		{"Homepage", "https://github.com/NVIDIA/nvidia-container-toolkit"},
		{"Description", "NVIDIA Container Toolkit Base\n Provides tools such as the NVIDIA Container Runtime and NVIDIA Container Toolkit CLI to enable GPU support in containers."},
	}
	if !slices.Equal(got, want) {
		t.Errorf("nvidiaBaseControl:\n%q\nwant\n%q", got, want)
	}
	if _, err := nvidiaBaseControl(strings.Replace(nvidiaControl, "Replaces: nvidia-container-runtime", "Replaces: @OLD@, nvidia-container-runtime", 1), "v1.20.2", "amd64"); err == nil {
		t.Error("nvidiaBaseControl kept a @placeholder@")
	}
	if _, err := nvidiaBaseControl(strings.Replace(nvidiaControl, "Package: nvidia-container-toolkit-base", "Package: other", 1), "v1.20.2", "amd64"); err == nil {
		t.Error("nvidiaBaseControl found a package that is not there")
	}
	script := "#!/bin/sh\nset -e\n#DEBHELPER#\nexit 0\n"
	if got := withoutDebhelper(script); got != "#!/bin/sh\nset -e\nexit 0\n" {
		t.Errorf("withoutDebhelper = %q", got)
	}
}

// buildDeb makes a package dpkg-deb reads back as laid out, and the same bytes twice.
func TestBuildDeb(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("no dpkg-deb")
	}
	dir := t.TempDir()
	prog, conf := filepath.Join(dir, "prog"), filepath.Join(dir, "conf")
	os.WriteFile(prog, []byte("#!/bin/sh\necho hi\n"), 0o600)
	os.WriteFile(conf, []byte("A=1\n"), 0o600)
	fields, err := nvidiaBaseControl(nvidiaControl, "v1.20.2", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	pkg := debPackage{control: fields, postinst: withoutDebhelper("#!/bin/sh\n#DEBHELPER#\nexit 0\n"), mtime: time.Unix(1700000000, 0),
		files: []debFile{{path: "usr/bin/prog", src: prog, mode: 0o755}, {path: "etc/x/conf", src: conf, mode: 0o644}}}
	b := &builder{log: io.Discard, out: io.Discard}
	var debs [][]byte
	for _, n := range []string{"a", "b"} {
		deb := filepath.Join(dir, n, "p.deb")
		if err := b.buildDeb(context.Background(), filepath.Join(dir, n, "root"), deb, pkg); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(deb)
		if err != nil {
			t.Fatal(err)
		}
		debs = append(debs, data)
	}
	if !bytes.Equal(debs[0], debs[1]) {
		t.Error("two builds of the same package differ")
	}
	deb := filepath.Join(dir, "a", "p.deb")
	out := func(args ...string) string {
		cmd := exec.Command("dpkg-deb", append(args, deb)...)
		cmd.Env = append(os.Environ(), "TZ=UTC")
		o, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg-deb %s: %v\n%s", strings.Join(args, " "), err, o)
		}
		return string(o)
	}
	if got := out("-f"); !strings.Contains(got, "Package: nvidia-container-toolkit-base\nVersion: 1.20.2-1\nArchitecture: amd64\nMaintainer: NVIDIA CORPORATION <cudatools@nvidia.com>\nInstalled-Size: 6\n") {
		t.Errorf("control:\n%s", got)
	}
	list := out("-c")
	for _, l := range []string{"-rwxr-xr-x root/root 18 2023-11-14 22:13 ./usr/bin/prog", "-rw-r--r-- root/root 4 2023-11-14 22:13 ./etc/x/conf"} {
		if !strings.Contains(strings.Join(strings.Fields(list), " "), l) {
			t.Errorf("no %q in\n%s", l, list)
		}
	}
	x := filepath.Join(dir, "x")
	if o, err := exec.Command("dpkg-deb", "-e", deb, x).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -e: %v\n%s", err, o)
	}
	if got, _ := os.ReadFile(filepath.Join(x, "conffiles")); string(got) != "/etc/x/conf\n" {
		t.Errorf("conffiles = %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(x, "md5sums")); !strings.HasSuffix(string(got), "  usr/bin/prog\n") || strings.Count(string(got), "\n") != 1 {
		t.Errorf("md5sums = %q", got)
	}
	if fi, err := os.Stat(filepath.Join(x, "postinst")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("postinst: %v %v", fi, err)
	}
}

// TestNvidiaToolkitIsKKs: the mirror builds the toolkit release kk installs by default (its
// version table), so the e2e's GPU host gets what a user's would.
func TestNvidiaToolkitIsKKs(t *testing.T) {
	if got, want := DefaultSpec().NvidiaContainerToolkit, versions.Latest().NvidiaContainerToolkit; got != want {
		t.Errorf("the mirror builds NVIDIA's container toolkit %s, kk installs %s (artifacts/versions)", got, want)
	}
}
