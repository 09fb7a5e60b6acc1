package images

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/kk-project/kk/artifacts/download"
)

// Deb is one Debian package as apt knows it (the candidate version).
type Deb struct {
	Package string
	Version string
	Arch    string
	SHA256  string
}

// FileName is the name the package is cached under.
func (d Deb) FileName() string {
	return fmt.Sprintf("%s_%s_%s.deb", d.Package, strings.ReplaceAll(d.Version, ":", "%3a"), d.Arch)
}

// aptShow asks apt for the candidate version of each package.
func aptShow(ctx context.Context, pkgs []string) ([]Deb, error) {
	args := append([]string{"show", "--no-all-versions"}, pkgs...)
	out, err := exec.CommandContext(ctx, "apt-cache", args...).Output()
	if err != nil {
		return nil, fmt.Errorf("apt-cache show %s: %w%s", strings.Join(pkgs, " "), err, stderrOf(err))
	}
	var debs []Deb
	var cur Deb
	flush := func() {
		if cur.Package != "" {
			debs = append(debs, cur)
		}
		cur = Deb{}
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		switch k {
		case "Package":
			cur.Package = v
		case "Version":
			cur.Version = v
		case "Architecture":
			cur.Arch = v
		case "SHA256":
			cur.SHA256 = v
		}
	}
	flush()
	byName := map[string]Deb{}
	for _, d := range debs {
		byName[d.Package] = d
	}
	res := make([]Deb, 0, len(pkgs))
	for _, p := range pkgs {
		d, ok := byName[p]
		if !ok || d.Version == "" || d.SHA256 == "" {
			return nil, fmt.Errorf("apt-cache show %s: no candidate version with a SHA256", p)
		}
		res = append(res, d)
	}
	return res, nil
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return ": " + strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

// fetchDebs makes sure every deb is in cacheDir (downloading the missing
// ones with apt-get download) and that its sha256 is the one apt expects.
func fetchDebs(ctx context.Context, cacheDir string, debs []Deb) error {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return err
	}
	var missing []Deb
	for _, d := range debs {
		if ok, _ := fileSHA256Is(filepath.Join(cacheDir, d.FileName()), d.SHA256); !ok {
			missing = append(missing, d)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	tmp, err := os.MkdirTemp(cacheDir, ".download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// apt drops privileges to _apt for downloads; let it write here.
	_ = os.Chmod(tmp, 0o777)
	args := []string{"download"}
	for _, d := range missing {
		args = append(args, d.Package+"="+d.Version)
	}
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download: %w: %s", err, strings.TrimSpace(string(out)))
	}
	for _, d := range missing {
		src := filepath.Join(tmp, d.FileName())
		ok, err := fileSHA256Is(src, d.SHA256)
		if err != nil {
			return fmt.Errorf("apt-get download %s=%s: %w", d.Package, d.Version, err)
		}
		if !ok {
			return fmt.Errorf("apt-get download %s=%s: sha256 is not %s", d.Package, d.Version, d.SHA256)
		}
		if err := os.Rename(src, filepath.Join(cacheDir, d.FileName())); err != nil {
			return err
		}
	}
	return nil
}

func fileSHA256Is(p, want string) (bool, error) {
	got, _, err := download.FileSHA256(context.Background(), p)
	if err != nil {
		return false, err
	}
	return got == want, nil
}

// debPrune lists path prefixes dropped from packages: documentation,
// manuals, translations, bug-report hooks and glibc's iconv modules,
// none of which a container needs.
func debPrune() []string {
	return []string{
		"usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/lintian/",
		"usr/share/locale/", "usr/share/bug/", "usr/share/doc-base/",
		"usr/lib/x86_64-linux-gnu/gconv/",
	}
}

func pruned(p string) bool {
	for _, pre := range debPrune() {
		if strings.HasPrefix(p+"/", pre) {
			return true
		}
	}
	return false
}

// debEntries reads the files of a .deb (dpkg-deb --fsys-tarfile, the
// same data dpkg-deb -x unpacks) with their modes and numeric owners,
// leaving out pruned paths.
func debEntries(ctx context.Context, debFile string) ([]Entry, error) {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", debFile)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w", filepath.Base(debFile), err)
	}
	entries, rerr := readTarEntries(stdout)
	if rerr != nil {
		_, _ = io.Copy(io.Discard, stdout)
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w: %s", filepath.Base(debFile), err, strings.TrimSpace(stderr.String()))
	}
	if rerr != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(debFile), rerr)
	}
	return entries, nil
}

// readTarEntries turns a tar stream into entries (content in memory),
// dropping pruned paths and hard links to pruned files.
func readTarEntries(r io.Reader) ([]Entry, error) {
	tr := tar.NewReader(r)
	var out []Entry
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		p, ok := cleanPath(hdr.Name)
		if !ok || pruned(p) {
			continue
		}
		e := Entry{Path: p, Type: hdr.Typeflag, Mode: hdr.Mode & 0o7777, UID: hdr.Uid, GID: hdr.Gid, Linkname: hdr.Linkname}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			e.Type = tar.TypeReg
			if e.Data, err = io.ReadAll(tr); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
		case tar.TypeDir, tar.TypeSymlink:
		case tar.TypeLink:
			lp, ok := cleanPath(hdr.Linkname)
			if !ok {
				return nil, fmt.Errorf("%s: bad hard link target %q", p, hdr.Linkname)
			}
			if pruned(lp) {
				continue
			}
		default:
			return nil, fmt.Errorf("%s: unsupported tar entry type %q", p, hdr.Typeflag)
		}
		for k, v := range hdr.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if e.Xattrs == nil {
					e.Xattrs = map[string]string{}
				}
				e.Xattrs[name] = v
			}
		}
		out = append(out, e)
	}
}
