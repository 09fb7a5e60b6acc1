package mirror

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kk-project/kk/modules/binaries"
)

// ExtractFiles copies the regular files of the release archive tgz (a .tar.gz) into dir and
// records each in files (arch amd64) under name(base name); files for which name returns ""
// are skipped. Tests use it to hand the mirror's programs to kk's modules.
func ExtractFiles(tgz, dir string, files *binaries.Files, name func(base string) string) error {
	fh, err := os.Open(tgz)
	if err != nil {
		return fmt.Errorf("from the local mirror: %w (build it first: make mirror)", err)
	}
	defer fh.Close()
	gz, err := gzip.NewReader(fh)
	if err != nil {
		return fmt.Errorf("%s: %w", tgz, err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", tgz, err)
		}
		n := name(path.Base(h.Name))
		if h.Typeflag != tar.TypeReg || n == "" {
			continue
		}
		p := filepath.Join(dir, strings.ReplaceAll(n, "/", "_"))
		out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %s: %w", tgz, h.Name, err)
		}
		files.Add("amd64", n, p)
	}
}

// RuntimeFiles adds spec's container runtime from the mirror in mirrorDir to files:
// containerd (with its shim and ctr), crictl, the CNI plugins as "cni/<plugin>" (archives
// extracted into dir) and runc.
func RuntimeFiles(mirrorDir string, spec Spec, dir string, files *binaries.Files) error {
	same := func(b string) string { return b }
	for _, a := range []struct {
		rel  string
		name func(string) string
	}{
		{ContainerdPath(spec.Containerd), same},
		{CrictlPath(spec.Crictl), same},
		{CNIPluginsPath(spec.CNIPlugins), func(b string) string {
			if b == "LICENSE" || b == "README.md" {
				return ""
			}
			return "cni/" + b
		}},
	} {
		if err := ExtractFiles(filepath.Join(mirrorDir, a.rel), dir, files, a.name); err != nil {
			return err
		}
	}
	runc := filepath.Join(mirrorDir, RuncPath(spec.Runc))
	if _, err := os.Stat(runc); err != nil {
		return fmt.Errorf("runc from the local mirror: %w", err)
	}
	files.Add("amd64", "runc", runc)
	return nil
}
