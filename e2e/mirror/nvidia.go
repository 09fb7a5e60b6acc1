package mirror

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The NVIDIA Container Toolkit, for kk's GPU support (CDI mode).
//
// Upstream's release asset nvidia-container-toolkit_<version>_deb_<arch>.tar.gz holds the
// toolkit's Debian packages under release-<tag>-stable/packages/ubuntu18.04/<arch>/. The
// mirror's asset holds only nvidia-container-toolkit-base (nvidia-ctk, nvidia-container-runtime,
// nvidia-cdi-hook and the nvidia-cdi-refresh units), which is all CDI mode needs: upstream's
// libnvidia-container packages (C) and nvidia-container-toolkit, which depends on them, are
// left out. The package is made with dpkg-deb from upstream's packaging/debian files in the
// module (control, nvidia-container-toolkit-base.install and .postinst) and the programs built
// from the module at Spec.NvidiaContainerToolkit.
//
// Upstream publishes no checksum file for the asset (kk's Manifest pins its SHA-256), so the
// mirror writes none either: as for docker, the stamp records it and a test computes the pin
// from the file. The asset is reproducible (fixed times, root owner, single-threaded xz), so a
// rebuild gives the same bytes on the same Go toolchain and Debian release.
//
// The programs need cgo, and are linked as upstream's Makefile links them: dynamically,
// against the build machine's glibc. go-nvml calls libnvidia-ml's functions through symbols
// it leaves undefined (-Wl,--unresolved-symbols=ignore-in-object-files) for the dynamic linker
// to bind lazily (-Wl,-z,lazy) once it has dlopen'ed the library RTLD_GLOBAL. A static program
// has no dynamic linker to do that: the static link succeeds (with glibc's warning about
// dlopen) but leaves those calls jumping to address 0, so nvidia-ctk would crash at the first
// NVML call (nvidia-ctk cdi generate on a GPU machine).

// NvidiaContainerToolkitModule is the Go module the toolkit's programs are built from.
const NvidiaContainerToolkitModule = "github.com/NVIDIA/nvidia-container-toolkit"

// NvidiaContainerToolkitBase is the Debian package of the mirror's toolkit asset.
const NvidiaContainerToolkitBase = "nvidia-container-toolkit-base"

// nvidiaPackageRevision is the Debian revision of upstream's packages (PACKAGE_REVISION in
// versions.mk).
const nvidiaPackageRevision = "1"

// nvidiaExtLDFlags are the external linker's flags of upstream's Makefile (EXTLDFLAGS).
const nvidiaExtLDFlags = "-Wl,--export-dynamic -Wl,--unresolved-symbols=ignore-in-object-files -Wl,-z,lazy"

// NvidiaContainerToolkitPrograms are the programs of nvidia-container-toolkit-base, each built
// from cmd/<program> of the module and installed in /usr/bin.
var NvidiaContainerToolkitPrograms = []string{"nvidia-container-runtime", "nvidia-ctk", "nvidia-cdi-hook"}

// nvidiaBaseFiles are the files of nvidia-container-toolkit-base, in the order of upstream's
// packaging/debian/nvidia-container-toolkit-base.install (which the build checks against):
// the source (a program of NvidiaContainerToolkitPrograms, or a file of the module) and its
// path in the package.
var nvidiaBaseFiles = []struct{ src, dst string }{
	{"nvidia-container-runtime", "usr/bin/nvidia-container-runtime"},
	{"nvidia-ctk", "usr/bin/nvidia-ctk"},
	{"nvidia-cdi-hook", "usr/bin/nvidia-cdi-hook"},
	{"deployments/systemd/nvidia-cdi-refresh.service", "lib/systemd/system/nvidia-cdi-refresh.service"},
	{"deployments/systemd/nvidia-cdi-refresh.path", "lib/systemd/system/nvidia-cdi-refresh.path"},
	{"deployments/systemd/nvidia-cdi-refresh.env", "etc/nvidia-container-toolkit/nvidia-cdi-refresh.env"},
	{"deployments/udev/99-nvidia-cdi-refresh.rules", "lib/udev/rules.d/99-nvidia-cdi-refresh.rules"},
	{"deployments/systemd/10-container-engines.conf", "lib/systemd/system/nvidia-cdi-refresh.service.d/10-container-engines.conf"},
}

// NvidiaContainerToolkitBaseFiles returns the absolute paths of the files
// nvidia-container-toolkit-base installs.
func NvidiaContainerToolkitBaseFiles() []string {
	var out []string
	for _, f := range nvidiaBaseFiles {
		out = append(out, "/"+f.dst)
	}
	return out
}

// NvidiaContainerToolkitPath is the GitHub release path of the toolkit's Debian packages
// (arch is Debian's: amd64 or arm64; the file name has the version without its "v").
func NvidiaContainerToolkitPath(version, arch string) string {
	return fmt.Sprintf("/NVIDIA/nvidia-container-toolkit/releases/download/%s/nvidia-container-toolkit_%s_deb_%s.tar.gz",
		version, strings.TrimPrefix(version, "v"), arch)
}

// NvidiaContainerToolkitBaseDeb is the member of that archive that holds
// nvidia-container-toolkit-base, e.g.
// release-v1.20.2-stable/packages/ubuntu18.04/amd64/nvidia-container-toolkit-base_1.20.2-1_amd64.deb.
func NvidiaContainerToolkitBaseDeb(version, arch string) string {
	return nvidiaDebDir(version, arch) + fmt.Sprintf("%s_%s-%s_%s.deb", NvidiaContainerToolkitBase, strings.TrimPrefix(version, "v"), nvidiaPackageRevision, arch)
}

// nvidiaDebDir is the directory of the archive that holds the packages, with a trailing slash.
func nvidiaDebDir(version, arch string) string {
	return fmt.Sprintf("release-%s-stable/packages/ubuntu18.04/%s/", version, arch)
}

func (b *builder) nvidiaContainerToolkitJob(v string) job {
	p := NvidiaContainerToolkitPath(v, Arch)
	mod := NvidiaContainerToolkitModule
	return job{component: "nvidia-container-toolkit", name: "nvidia-container-toolkit", version: v,
		recipe: recipeRev + " " + NvidiaContainerToolkitBase + " cgo-dynamic", outputs: []string{rel(p)},
		build: func(ctx context.Context, stage string) error {
			dir, err := b.moduleDir(ctx, mod, v)
			if err != nil {
				return err
			}
			var pkgs []string
			for _, prog := range NvidiaContainerToolkitPrograms {
				pkgs = append(pkgs, mod+"/cmd/"+prog)
			}
			// As upstream's Makefile: CLI_VERSION (the version without its "v") in
			// CLI_VERSION_PACKAGE; its gitCommit stays empty (the module zip has no commit).
			bins := filepath.Join(stage, "gobin")
			if err := b.goBuild(ctx, goBuild{key: "nvidia-container-toolkit-" + v, require: []string{mod + " " + v}, replaceFrom: []string{mod + "@" + v},
				pkgs: pkgs, ldflags: []string{"-X " + mod + "/internal/info.version=" + strings.TrimPrefix(v, "v")},
				cgoDynamic: true, extldflags: nvidiaExtLDFlags, out: bins}); err != nil {
				return err
			}
			t, err := b.moduleTime(ctx, mod, v)
			if err != nil {
				return err
			}
			b.step("dpkg-deb --build %s", NvidiaContainerToolkitBase)
			deb, err := b.nvidiaBaseDeb(ctx, dir, bins, filepath.Join(stage, "deb"), v, Arch, t)
			if err != nil {
				return err
			}
			var entries []tarEntry
			d := nvidiaDebDir(v, Arch)
			for i := range d {
				if d[i] == '/' {
					entries = append(entries, tarEntry{name: d[:i+1], dir: true})
				}
			}
			entries = append(entries, tarEntry{name: NvidiaContainerToolkitBaseDeb(v, Arch), src: deb, mode: 0o644})
			return writeTarGz(filepath.Join(stage, rel(p)), t, entries)
		}}
}

// nvidiaBaseDeb makes nvidia-container-toolkit-base's .deb in work from the module's
// packaging files (moduleDir) and the programs in bins, and returns its path.
func (b *builder) nvidiaBaseDeb(ctx context.Context, moduleDir, bins, work, version, arch string, mtime time.Time) (string, error) {
	install, err := os.ReadFile(filepath.Join(moduleDir, "packaging", "debian", NvidiaContainerToolkitBase+".install"))
	if err != nil {
		return "", err
	}
	if err := checkNvidiaInstall(string(install)); err != nil {
		return "", err
	}
	control, err := os.ReadFile(filepath.Join(moduleDir, "packaging", "debian", "control"))
	if err != nil {
		return "", err
	}
	fields, err := nvidiaBaseControl(string(control), version, arch)
	if err != nil {
		return "", err
	}
	postinst, err := os.ReadFile(filepath.Join(moduleDir, "packaging", "debian", NvidiaContainerToolkitBase+".postinst"))
	if err != nil {
		return "", err
	}
	var files []debFile
	for _, f := range nvidiaBaseFiles {
		if slices.Contains(NvidiaContainerToolkitPrograms, f.src) {
			files = append(files, debFile{path: f.dst, src: filepath.Join(bins, f.src), mode: 0o755})
		} else {
			files = append(files, debFile{path: f.dst, src: filepath.Join(moduleDir, filepath.FromSlash(f.src)), mode: 0o644})
		}
	}
	deb := filepath.Join(work, path.Base(NvidiaContainerToolkitBaseDeb(version, arch)))
	return deb, b.buildDeb(ctx, filepath.Join(work, "root"), deb, debPackage{control: fields, files: files,
		postinst: withoutDebhelper(string(postinst)), mtime: mtime})
}

// checkNvidiaInstall fails unless a .install file places exactly nvidiaBaseFiles.
func checkNvidiaInstall(install string) error {
	var got, want []string
	for _, l := range strings.Split(install, "\n") {
		if f := strings.Fields(l); len(f) == 2 && !strings.HasPrefix(f[0], "#") {
			got = append(got, f[0]+" "+strings.Trim(f[1], "/"))
		} else if len(f) != 0 {
			return fmt.Errorf("%s.install: unexpected line %q", NvidiaContainerToolkitBase, l)
		}
	}
	for _, f := range nvidiaBaseFiles {
		want = append(want, path.Base(f.src)+" "+path.Dir(f.dst))
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("%s.install places %q; the mirror knows %q", NvidiaContainerToolkitBase, got, want)
	}
	return nil
}

// nvidiaBaseControl returns the binary control fields of nvidia-container-toolkit-base from
// upstream's packaging/debian/control, as dpkg-gencontrol makes them: the source stanza's
// Maintainer, Section, Priority and Homepage, the package's Breaks, Replaces and Description;
// its ${misc:*} substitution variables (debhelper's, empty here) are dropped.
func nvidiaBaseControl(control, version, arch string) ([][2]string, error) {
	stanzas := parseDebControl(control)
	if len(stanzas) == 0 {
		return nil, fmt.Errorf("debian/control: no source stanza")
	}
	src := stanzas[0]
	var pkg map[string]string
	for _, s := range stanzas[1:] {
		if s["Package"] == NvidiaContainerToolkitBase {
			pkg = s
		}
	}
	if pkg == nil {
		return nil, fmt.Errorf("debian/control: no package %s", NvidiaContainerToolkitBase)
	}
	out := [][2]string{
		{"Package", NvidiaContainerToolkitBase},
		{"Version", strings.TrimPrefix(version, "v") + "-" + nvidiaPackageRevision},
		{"Architecture", arch},
		{"Maintainer", src["Maintainer"]},
	}
	for _, k := range []string{"Pre-Depends", "Depends", "Breaks", "Replaces"} {
		if v := dropSubstvars(pkg[k]); v != "" {
			out = append(out, [2]string{k, v})
		}
	}
	out = append(out,
		[2]string{"Section", strings.ReplaceAll(src["Section"], "@SECTION@", "")},
		[2]string{"Priority", src["Priority"]},
		[2]string{"Homepage", src["Homepage"]},
		[2]string{"Description", pkg["Description"]})
	for _, f := range out {
		if f[1] == "" || strings.Contains(f[1], "${") || placeholder.MatchString(f[1]) {
			return nil, fmt.Errorf("debian/control: %s of %s: %q", f[0], NvidiaContainerToolkitBase, f[1])
		}
	}
	return out, nil
}

// placeholder matches the @NAME@ placeholders of upstream's packaging/debian files, which its
// debian/prepare fills in.
var placeholder = regexp.MustCompile(`@[A-Z_]+@`)

// dropSubstvars removes the ${...} entries of a comma-separated relation field.
func dropSubstvars(v string) string {
	var keep []string
	for _, r := range strings.Split(v, ",") {
		if r = strings.TrimSpace(r); r != "" && !strings.HasPrefix(r, "${") {
			keep = append(keep, r)
		}
	}
	return strings.Join(keep, ", ")
}

// parseDebControl splits a deb822 file into its stanzas; a field's continuation lines are
// kept, joined by "\n" with their leading space.
func parseDebControl(s string) []map[string]string {
	var out []map[string]string
	var cur map[string]string
	last := ""
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimRight(l, " \t\r")
		switch {
		case l == "":
			cur, last = nil, ""
		case strings.HasPrefix(l, "#"):
		case l[0] == ' ' || l[0] == '\t':
			if cur != nil && last != "" {
				cur[last] += "\n" + l
			}
		default:
			k, v, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			if cur == nil {
				cur = map[string]string{}
				out = append(out, cur)
			}
			last = strings.TrimSpace(k)
			cur[last] = strings.TrimSpace(v)
		}
	}
	return out
}

// withoutDebhelper drops the #DEBHELPER# line of a maintainer script (debhelper's snippets,
// which dpkg-deb does not add).
func withoutDebhelper(script string) string {
	var keep []string
	for _, l := range strings.SplitAfter(script, "\n") {
		if strings.TrimSpace(l) != "#DEBHELPER#" {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "")
}

// debPackage is what buildDeb packs.
type debPackage struct {
	control  [][2]string // binary control fields in order, without Installed-Size
	files    []debFile
	postinst string // empty: none
	mtime    time.Time
}

// debFile is a regular file of a package: its path in the package (no leading slash), where
// its content is and its mode. Files under etc/ are conffiles.
type debFile struct {
	path, src string
	mode      os.FileMode
}

// buildDeb lays pkg out in root (which must not exist) and builds deb from it with dpkg-deb,
// reproducibly: every time is pkg.mtime (SOURCE_DATE_EPOCH for the ar members), root owns
// every file, xz runs on one thread. Like debhelper, it writes DEBIAN/md5sums (of the files
// that are not conffiles) and DEBIAN/conffiles, and adds Installed-Size to the control fields.
func (b *builder) buildDeb(ctx context.Context, root, deb string, pkg debPackage) error {
	if _, err := os.Lstat(root); err == nil {
		return fmt.Errorf("buildDeb: %s exists", root)
	}
	var md5sums []string
	var conffiles strings.Builder
	var size int64 // Installed-Size in KiB, as dpkg-gencontrol counts it: files rounded up, 1 per directory
	dirs := map[string]bool{}
	for _, f := range pkg.files {
		dst := filepath.Join(root, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		for d := path.Dir(f.path); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
		sum, n, err := copyFile(f.src, dst, f.mode)
		if err != nil {
			return err
		}
		size += (n + 1023) / 1024
		if strings.HasPrefix(f.path, "etc/") {
			fmt.Fprintf(&conffiles, "/%s\n", f.path)
		} else {
			md5sums = append(md5sums, f.path+"\x00"+sum)
		}
	}
	size += int64(len(dirs))
	slices.Sort(md5sums) // by path, as dh_md5sums
	var md5lines strings.Builder
	for _, l := range md5sums {
		p, sum, _ := strings.Cut(l, "\x00")
		fmt.Fprintf(&md5lines, "%s  %s\n", sum, p)
	}
	var control strings.Builder
	for _, f := range pkg.control {
		fmt.Fprintf(&control, "%s: %s\n", f[0], f[1])
		if f[0] == "Maintainer" {
			fmt.Fprintf(&control, "Installed-Size: %d\n", size)
		}
	}
	type metaFile struct {
		name, content string
		mode          os.FileMode
	}
	meta := []metaFile{{"control", control.String(), 0o644}, {"md5sums", md5lines.String(), 0o644}}
	if conffiles.Len() > 0 {
		meta = append(meta, metaFile{"conffiles", conffiles.String(), 0o644})
	}
	if pkg.postinst != "" {
		meta = append(meta, metaFile{"postinst", pkg.postinst, 0o755})
	}
	if err := os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755); err != nil {
		return err
	}
	for _, m := range meta {
		p := filepath.Join(root, "DEBIAN", m.name)
		if err := os.WriteFile(p, []byte(m.content), m.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, m.mode); err != nil { // whatever the umask
			return err
		}
	}
	// Directories 0755 whatever the umask; every time pkg.mtime (directories last, after
	// their files were written).
	var all []string
	if err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if err := os.Chmod(p, 0o755); err != nil {
				return err
			}
		}
		all = append(all, p)
		return nil
	}); err != nil {
		return err
	}
	slices.Reverse(all)
	for _, p := range all {
		if err := os.Chtimes(p, pkg.mtime, pkg.mtime); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(deb), 0o755); err != nil {
		return err
	}
	env := append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(pkg.mtime.Unix(), 10))
	return b.cmd(ctx, filepath.Dir(root), env, "dpkg-deb", "--root-owner-group", "-Zxz", "--threads-max=1", "--build", root, deb)
}

// copyFile copies src to dst with mode and returns the MD5 (hex) and size of its content.
func copyFile(src, dst string, mode os.FileMode) (string, int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return "", 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return "", 0, err
	}
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(dst, mode)
	}
	return hex.EncodeToString(h.Sum(nil)), n, err
}
