package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kk-project/kk/artifacts/download"
)

// member is one file of a bundle: from disk (src) or memory (data).
type member struct {
	path   string
	src    string
	data   []byte
	sha256 string
	size   int64
	mode   int64
}

func memMember(p string, data []byte, mode int64) member {
	return member{path: p, data: data, sha256: hashBytes(data), size: int64(len(data)), mode: mode}
}

// writeBundle streams members into a tar.gz at out, through a temporary file beside it that
// is renamed into place only when complete. Every member read from disk is hashed on the way
// and must match its planned checksum (a cache file changed since it was verified is an
// error). It returns the bundle's SHA-256 and size.
func writeBundle(ctx context.Context, out string, members []member, mtime time.Time) (string, int64, error) {
	dir := filepath.Dir(out)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(out)+".part-*")
	if err != nil {
		return "", 0, writeErr(out, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	sum := sha256.New()
	counter := &countWriter{}
	fileSide := io.MultiWriter(markWriter{tmp}, sum, counter)
	zw, err := gzip.NewWriterLevel(fileSide, gzip.BestSpeed)
	if err != nil {
		return "", 0, err
	}
	tw := tar.NewWriter(zw)
	for _, m := range members {
		if err := ctx.Err(); err != nil {
			return "", 0, err
		}
		if err := writeMember(ctx, tw, m, mtime); err != nil {
			if isWriteError(err) {
				return "", 0, writeErr(out, err)
			}
			return "", 0, err
		}
	}
	if err := tw.Close(); err != nil {
		return "", 0, writeErr(out, err)
	}
	if err := zw.Close(); err != nil {
		return "", 0, writeErr(out, err)
	}
	if err := tmp.Sync(); err != nil {
		return "", 0, writeErr(out, err)
	}
	if err := tmp.Close(); err != nil {
		return "", 0, writeErr(out, err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", 0, writeErr(out, err)
	}
	done = true
	return hex.EncodeToString(sum.Sum(nil)), counter.n, nil
}

func writeMember(ctx context.Context, tw *tar.Writer, m member, mtime time.Time) error {
	hdr := &tar.Header{Name: m.path, Size: m.size, Mode: m.mode, ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	var r io.Reader = bytes.NewReader(m.data)
	if m.src != "" {
		f, err := os.Open(m.src)
		if err != nil {
			return fmt.Errorf("%s: %w", m.path, err)
		}
		defer f.Close()
		r = f
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tw, h), download.ContextReader(ctx, io.LimitReader(r, m.size)))
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != m.size || got != m.sha256 {
		return fmt.Errorf("%s: %s changed since it was verified (sha256 %s, %d bytes; want %s, %d bytes): remove it from the cache and export again",
			m.path, m.src, got, n, m.sha256, m.size)
	}
	return nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
