package bundle

import (
	"archive/tar"
	"compress/flate"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/kk-project/kk/artifacts/download"
)

// maxIndexSize bounds the index read into memory.
const maxIndexSize = 64 << 20

// VerifyOptions tune Verify and Import.
type VerifyOptions struct {
	// Arch, when set, must be one of the bundle's arches.
	Arch string
}

// Bundle is an opened bundle: its path and index.
type Bundle struct {
	Path  string
	Index *Index
}

// Open reads a bundle's index (its first member) without reading the rest.
func Open(path string) (*Bundle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: not a gzip file: %w", path, err)
	}
	defer zr.Close()
	ix, _, err := readIndex(path, tar.NewReader(zr))
	if err != nil {
		return nil, err
	}
	return &Bundle{Path: path, Index: ix}, nil
}

// Verify checks every member of the bundle at path against its index in one streaming
// pass: content, size, nothing missing, nothing extra. A mismatch, a truncated or corrupt
// file is an ErrCorrupt naming the bundle and the member. With o.Arch set, a bundle for
// other arches is refused before anything else is read.
func Verify(ctx context.Context, path string, o VerifyOptions) (*Index, error) {
	return walk(ctx, path, o, nil)
}

// sink receives a copy of each member as it is read; a member that then fails its check
// fails the whole walk.
type sink interface {
	index(data []byte) error
	create(f FileEntry, mode int64) (io.WriteCloser, error)
}

// walk streams the bundle, checking every member; sink (optional) gets a copy of each.
func walk(ctx context.Context, path string, o VerifyOptions, s sink) (*Index, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", path, err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, corruptf("%s: not a gzip file (%v)", path, err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	ix, raw, err := readIndex(path, tr)
	if err != nil {
		return nil, err
	}
	if s != nil {
		if err := s.index(raw); err != nil {
			return nil, err
		}
	}
	if o.Arch != "" && !ix.HasArch(o.Arch) {
		return nil, fmt.Errorf("bundle %s is for linux/%s, not linux/%s", path, strings.Join(ix.Arches, ", linux/"), o.Arch)
	}
	want := map[string]FileEntry{}
	for _, fe := range ix.Files {
		want[fe.Path] = fe
	}
	seen := map[string]bool{}
	last := IndexName
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, readFailure(path, "after member "+last, err)
		}
		fe, ok := want[hdr.Name]
		switch {
		case !ok:
			return nil, corruptf("%s: member %s is not in the index", path, hdr.Name)
		case seen[hdr.Name]:
			return nil, corruptf("%s: member %s appears twice", path, hdr.Name)
		case hdr.Typeflag != tar.TypeReg:
			return nil, corruptf("%s: member %s is not a regular file", path, hdr.Name)
		case hdr.Size != fe.Size:
			return nil, corruptf("%s: member %s is %d bytes, the index says %d", path, hdr.Name, hdr.Size, fe.Size)
		}
		seen[hdr.Name] = true
		last = hdr.Name
		if err := copyMember(ctx, path, tr, hdr, fe, s); err != nil {
			return nil, err
		}
	}
	// Read the gzip stream to its end: its CRC is checked there, after the tar trailer.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return nil, readFailure(path, "after the last member", err)
	}
	var missing []string
	for p := range want {
		if !seen[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, corruptf("%s: truncated or incomplete: %d member(s) missing, first %s", path, len(missing), missing[0])
	}
	return ix, nil
}

// copyMember hashes one member (into s when set) and checks it against the index.
func copyMember(ctx context.Context, path string, tr *tar.Reader, hdr *tar.Header, fe FileEntry, s sink) error {
	h := sha256.New()
	var w io.Writer = h
	var out io.WriteCloser
	if s != nil {
		var err error
		if out, err = s.create(fe, hdr.Mode); err != nil {
			return err
		}
		defer out.Close()
		w = io.MultiWriter(h, markWriter{out})
	}
	n, err := io.Copy(w, download.ContextReader(ctx, tr))
	if err != nil {
		if isWriteError(err) {
			return err
		}
		return readFailure(path, "in member "+hdr.Name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != fe.Size || got != fe.SHA256 {
		return corruptf("%s: member %s does not match the index (sha256 %s, want %s)", path, hdr.Name, got, fe.SHA256)
	}
	if out != nil {
		if err := out.Close(); err != nil {
			return err
		}
	}
	return nil
}

// readIndex reads the first member, which must be the index.
func readIndex(path string, tr *tar.Reader) (*Index, []byte, error) {
	hdr, err := tr.Next()
	if err != nil {
		return nil, nil, readFailure(path, "reading the index", err)
	}
	if hdr.Name != IndexName {
		return nil, nil, fmt.Errorf("bundle %s: not a kk bundle: first member is %s, not %s", path, hdr.Name, IndexName)
	}
	if hdr.Size > maxIndexSize {
		return nil, nil, corruptf("%s: %s is %d bytes: too large", path, IndexName, hdr.Size)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		return nil, nil, readFailure(path, "in member "+IndexName, err)
	}
	ix, err := parseIndex("bundle "+path, data)
	if err != nil {
		return nil, nil, corruptf("%v", err)
	}
	return ix, data, nil
}

// readFailure explains an error reading the bundle.
func readFailure(path, where string, err error) error {
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return corruptf("%s is truncated (%s)", path, where)
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader), errors.Is(err, tar.ErrHeader):
		return corruptf("%s: %v (%s)", path, err, where)
	}
	var ce flate.CorruptInputError
	if errors.As(err, &ce) {
		return corruptf("%s: %v (%s)", path, err, where)
	}
	return fmt.Errorf("bundle %s: %s: %w", path, where, err)
}
