package download

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kk-project/kk/artifacts/catalog"
)

// Extract unpacks a downloaded TarGz artifact's Layout.Members into the archive's cache
// directory, each under its base name (bin/ctr → <dir>/ctr), written whole and renamed into
// place. It returns the extracted files, cache-relative and slash-separated, in archive order.
// A Raw artifact has nothing to extract: its own File is returned. Only regular files are
// extracted; a required member that matches nothing is an error naming the archive.
func Extract(ctx context.Context, cache string, a catalog.Artifact) ([]string, error) {
	if a.Layout.Format != catalog.TarGz {
		return []string{a.File}, nil
	}
	archive, err := (&Downloader{Cache: cache}).path(a)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(archive)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.Component, err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %s is not a gzip archive: %w", a.Component, archive, err)
	}
	defer zr.Close()

	dir := path.Dir(a.File)
	matched := make([]int, len(a.Layout.Members))
	var out []string
	tr := tar.NewReader(zr)
	for {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("%s: reading %s: %w", a.Component, archive, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		name := strings.TrimPrefix(path.Clean(hdr.Name), "./")
		if !wanted(a.Layout.Members, name, matched) {
			continue
		}
		base := path.Base(name)
		if base == "." || base == ".." || base == "/" {
			continue
		}
		rel := path.Join(dir, base)
		if rel == a.File || rel == a.File+".sha256" {
			return out, fmt.Errorf("%s: member %s of %s would overwrite the archive", a.Component, name, archive)
		}
		mode := os.FileMode(0o644)
		if hdr.FileInfo().Mode()&0o111 != 0 {
			mode = 0o755
		}
		if err := writeMember(filepath.Join(cache, filepath.FromSlash(rel)), ctxReader{ctx, tr}, mode); err != nil {
			return out, localError(cache, rel, err)
		}
		out = append(out, rel)
	}
	var missing []string
	for i, m := range a.Layout.Members {
		if matched[i] == 0 && !m.Optional {
			missing = append(missing, m.Path)
		}
	}
	if len(missing) > 0 {
		return out, fmt.Errorf("%s: %s has no member matching %s", a.Component, archive, strings.Join(missing, ", "))
	}
	return out, nil
}

// wanted says whether an archive name matches a member pattern, counting matches.
func wanted(members []catalog.Member, name string, matched []int) bool {
	hit := false
	for i, m := range members {
		if ok, _ := path.Match(strings.TrimPrefix(m.Path, "./"), name); ok {
			matched[i]++
			hit = true
		}
	}
	return hit
}

func writeMember(dest string, r io.Reader, mode os.FileMode) error {
	tmp := dest + ".part"
	w, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		os.Remove(tmp)
		return err
	}
	if err := w.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, dest)
}
