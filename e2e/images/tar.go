package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// Epoch is the modification time of every file in every layer and the
// creation time of every image, so that the same inputs always give the
// same digests: 2000-01-01T00:00:00Z.
func Epoch() time.Time { return time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) }

// Entry is one file system object of a layer.
type Entry struct {
	// Path is slash-separated and relative to the image root, without a
	// leading slash or "./": "usr/local/bin/kube-apiserver".
	Path string
	// Type is tar.TypeReg, tar.TypeDir, tar.TypeSymlink or tar.TypeLink.
	Type byte
	// Mode holds the permission bits (including setuid/setgid/sticky).
	Mode     int64
	UID, GID int
	// Linkname is the target of a symlink or, for a hard link, the Path
	// of the entry it links to.
	Linkname string
	// A regular file's content comes from Data or, when Src is set, from
	// the file Src on this machine.
	Data []byte
	Src  string
	// Xattrs are extended attributes, e.g. "security.capability".
	Xattrs map[string]string
}

// File returns a regular file entry with inline content.
func File(p string, mode int64, data []byte) Entry {
	return Entry{Path: p, Type: tar.TypeReg, Mode: mode, Data: data}
}

// Dir returns a directory entry.
func Dir(p string, mode int64) Entry { return Entry{Path: p, Type: tar.TypeDir, Mode: mode} }

// Symlink returns a symbolic link entry at p pointing to target.
func Symlink(p, target string) Entry {
	return Entry{Path: p, Type: tar.TypeSymlink, Mode: 0o777, Linkname: target}
}

// cleanPath normalizes p to the form Entry.Path uses; ok is false for
// the root itself or a path escaping it.
func cleanPath(p string) (string, bool) {
	p = path.Clean("/" + strings.TrimPrefix(p, "./"))
	if p == "/" {
		return "", false
	}
	return p[1:], true
}

// normalize cleans and checks entries, adds missing parent directories
// (0755, root) and sorts the result by path. A path given twice is an
// error unless both are directories (the later one wins).
func normalize(entries []Entry) ([]Entry, error) {
	byPath := make(map[string]Entry, len(entries))
	for _, e := range entries {
		p, ok := cleanPath(e.Path)
		if !ok {
			continue // the root directory itself
		}
		e.Path = p
		switch e.Type {
		case tar.TypeReg, tar.TypeDir, tar.TypeSymlink:
		case tar.TypeLink:
			lp, ok := cleanPath(e.Linkname)
			if !ok {
				return nil, fmt.Errorf("hard link %s: bad target %q", p, e.Linkname)
			}
			e.Linkname = lp
		default:
			return nil, fmt.Errorf("%s: unsupported entry type %q", p, e.Type)
		}
		if old, dup := byPath[p]; dup && (old.Type != tar.TypeDir || e.Type != tar.TypeDir) {
			return nil, fmt.Errorf("%s: given twice", p)
		}
		byPath[p] = e
	}
	for p := range byPath {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if old, ok := byPath[d]; ok {
				if old.Type != tar.TypeDir {
					return nil, fmt.Errorf("%s: parent %s is not a directory", p, d)
				}
				continue
			}
			byPath[d] = Dir(d, 0o755)
		}
	}
	out := make([]Entry, 0, len(byPath))
	for _, e := range byPath {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	// Hard links are written as copies of their target: a link may sort
	// before its target, and nothing here depends on shared inodes.
	index := make(map[string]int, len(out))
	for i, e := range out {
		index[e.Path] = i
	}
	for i, e := range out {
		if e.Type != tar.TypeLink {
			continue
		}
		t, ok := index[e.Linkname]
		if !ok || out[t].Type != tar.TypeReg {
			return nil, fmt.Errorf("hard link %s: target %s is not a regular file in the layer", e.Path, e.Linkname)
		}
		c := out[t]
		c.Path = e.Path
		out[i] = c
	}
	return out, nil
}

// WriteTar writes entries as a deterministic tar stream: sorted by path,
// parent directories added, hard links written as copies, every time set to Epoch, numeric owners only
// (no user or group names), directories with a trailing slash.
func WriteTar(w io.Writer, entries []Entry) error {
	norm, err := normalize(entries)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, e := range norm {
		hdr := &tar.Header{
			Typeflag: e.Type,
			Name:     e.Path,
			Linkname: e.Linkname,
			Mode:     e.Mode & 0o7777,
			Uid:      e.UID,
			Gid:      e.GID,
			ModTime:  Epoch(),
			Format:   tar.FormatPAX,
		}
		if len(e.Xattrs) > 0 {
			hdr.PAXRecords = make(map[string]string, len(e.Xattrs))
			for k, v := range e.Xattrs {
				hdr.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if e.Type == tar.TypeDir {
			hdr.Name += "/"
		}
		if err := writeEntry(tw, hdr, e); err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
	}
	return tw.Close()
}

// writeEntry writes one header and, for a regular file, its content.
func writeEntry(tw *tar.Writer, hdr *tar.Header, e Entry) error {
	if e.Type != tar.TypeReg {
		return tw.WriteHeader(hdr)
	}
	var src io.Reader = bytes.NewReader(e.Data)
	hdr.Size = int64(len(e.Data))
	if e.Src != "" {
		f, err := os.Open(e.Src)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		hdr.Size = fi.Size()
		src = f
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, src)
	if err != nil {
		return err
	}
	if n != hdr.Size {
		return fmt.Errorf("size changed while reading (%d != %d)", n, hdr.Size)
	}
	return nil
}

// LayerInfo describes a gzip-compressed layer blob.
type LayerInfo struct {
	Digest string `json:"digest"` // sha256:… of the compressed blob
	DiffID string `json:"diffID"` // sha256:… of the uncompressed tar
	Size   int64  `json:"size"`   // compressed size
	// Uncompressed is the size of the tar stream.
	Uncompressed int64 `json:"uncompressed"`
}

type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// WriteLayer writes entries to w as a gzip-compressed deterministic tar
// (no gzip name or time) and returns its digests.
func WriteLayer(w io.Writer, entries []Entry) (LayerInfo, error) {
	comp := &countingHash{h: sha256.New()}
	zw, err := gzip.NewWriterLevel(io.MultiWriter(w, comp), gzip.DefaultCompression)
	if err != nil {
		return LayerInfo{}, err
	}
	diff := &countingHash{h: sha256.New()}
	if err := WriteTar(io.MultiWriter(zw, diff), entries); err != nil {
		return LayerInfo{}, err
	}
	if err := zw.Close(); err != nil {
		return LayerInfo{}, err
	}
	return LayerInfo{
		Digest:       "sha256:" + hex.EncodeToString(comp.h.Sum(nil)),
		DiffID:       "sha256:" + hex.EncodeToString(diff.h.Sum(nil)),
		Size:         comp.n,
		Uncompressed: diff.n,
	}, nil
}
