package bundle

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kk-project/kk/artifacts/charts"
	"github.com/kk-project/kk/artifacts/download"
)

// stampName is the file Import writes last into an unpacked bundle: the bundle's SHA-256.
const stampName = ".kk-imported"

// ImportOptions configure Import.
type ImportOptions struct {
	// Workdir receives the bundle under <Workdir>/artifact/<sha256>/ (required).
	Workdir string
	// Arch, when set, must be one of the bundle's arches.
	Arch string
}

// Imported is an unpacked bundle.
type Imported struct {
	// Dir is <workdir>/artifact/<sha256 of the bundle>.
	Dir    string
	SHA256 string
	Index  *Index
	// Skipped is true when Dir already held this bundle, complete: nothing was unpacked.
	Skipped bool
}

// Files is the unpacked component tree: a download cache (download.Downloader{Cache:
// imp.Files()}) that reuses every file with no network.
func (imp *Imported) Files() string { return filepath.Join(imp.Dir, FilesDir) }

// Images is the unpacked OCI image layout.
func (imp *Imported) Images() string { return filepath.Join(imp.Dir, ImagesDir) }

// Charts are the unpacked chart archives, in the index's order.
func (imp *Imported) Charts() []charts.Archive {
	var out []charts.Archive
	for _, c := range imp.Index.Charts {
		out = append(out, charts.Archive{Chart: charts.Chart{Name: c.Name, Version: c.Version},
			Path: filepath.Join(imp.Dir, filepath.FromSlash(c.Path)), SHA256: c.SHA256, Size: c.Size})
	}
	return out
}

// Component returns the unpacked file of a component, by catalogue name, version and arch.
func (imp *Imported) Component(name, version, arch string) (string, bool) {
	for _, c := range imp.Index.Components {
		if c.Name == name && c.Version == version && c.Arch == arch {
			return filepath.Join(imp.Dir, filepath.FromSlash(c.Path)), true
		}
	}
	return "", false
}

// Import verifies the bundle at path and unpacks it into <workdir>/artifact/<sha256>/. It
// does nothing (Skipped) when that directory already holds the bundle: its stamp records the
// same SHA-256 and every member is there with its size. Otherwise it unpacks into a temporary
// directory, checking every member against the index, and renames it into place, so a
// failed import leaves nothing half-unpacked.
func Import(ctx context.Context, path string, o ImportOptions) (*Imported, error) {
	if o.Workdir == "" {
		return nil, fmt.Errorf("bundle import %s: no workdir", path)
	}
	sum, _, err := download.FileSHA256(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	root := filepath.Join(o.Workdir, "artifact")
	dir := filepath.Join(root, sum)
	if ix, ok := complete(dir, sum); ok {
		if o.Arch != "" && !ix.HasArch(o.Arch) {
			return nil, fmt.Errorf("bundle %s is for linux/%s, not linux/%s", path, strings.Join(ix.Arches, ", linux/"), o.Arch)
		}
		return &Imported{Dir: dir, SHA256: sum, Index: ix, Skipped: true}, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, writeErr(root, err)
	}
	tmp, err := os.MkdirTemp(root, ".import-"+sum[:12]+"-*")
	if err != nil {
		return nil, writeErr(root, err)
	}
	defer os.RemoveAll(tmp)
	ix, err := walk(ctx, path, VerifyOptions{Arch: o.Arch}, dirSink{tmp})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, stampName), []byte(sum+"\n"), 0o644); err != nil {
		return nil, writeErr(filepath.Join(tmp, stampName), err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("bundle import: removing the incomplete %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, writeErr(dir, err)
	}
	return &Imported{Dir: dir, SHA256: sum, Index: ix}, nil
}

// complete says whether dir holds the unpacked bundle sum: stamp, index and every member
// with its size.
func complete(dir, sum string) (*Index, bool) {
	stamp, err := os.ReadFile(filepath.Join(dir, stampName))
	if err != nil || strings.TrimSpace(string(stamp)) != sum {
		return nil, false
	}
	data, err := os.ReadFile(filepath.Join(dir, IndexName))
	if err != nil {
		return nil, false
	}
	ix, err := parseIndex(dir, data)
	if err != nil {
		return nil, false
	}
	for _, f := range ix.Files {
		st, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil || !st.Mode().IsRegular() || st.Size() != f.Size {
			return nil, false
		}
	}
	return ix, true
}

// dirSink writes members under a directory.
type dirSink struct{ dir string }

func (d dirSink) index(data []byte) error {
	p := filepath.Join(d.dir, IndexName)
	return writeErr(p, os.WriteFile(p, data, 0o644))
}

func (d dirSink) create(f FileEntry, mode int64) (io.WriteCloser, error) {
	if !validMember(f.Path) || !filepath.IsLocal(filepath.FromSlash(f.Path)) {
		return nil, corruptf("unsafe member path %q", f.Path)
	}
	p := filepath.Join(d.dir, filepath.FromSlash(f.Path))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, writeErr(filepath.Dir(p), err)
	}
	perm := os.FileMode(mode).Perm() &^ 0o022
	if perm == 0 {
		perm = 0o644
	}
	w, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
	if err != nil {
		return nil, writeErr(p, err)
	}
	return &closeOnce{f: w, path: p}, nil
}

// closeOnce is a file that may be closed twice (by the check and by a deferred close); write
// and close failures name the file.
type closeOnce struct {
	f      *os.File
	path   string
	closed bool
}

func (c *closeOnce) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	if err != nil {
		return n, writeErr(c.path, err)
	}
	return n, nil
}

func (c *closeOnce) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	return writeErr(c.path, c.f.Close())
}
