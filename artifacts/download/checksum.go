package download

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kk-project/kk/artifacts/catalog"
)

// maxChecksumFile bounds what is read of a checksum file (SHA256SUMS of a big release is a
// few KiB).
const maxChecksumFile = 1 << 20

// ParseChecksum finds the SHA-256 for entry in a checksum file. It reads a file holding one
// bare hash ("HASH"), sha256sum output ("HASH  NAME" or "HASH *NAME", one or many lines, as
// in SHA256SUMS) and BSD style ("SHA256 (NAME) = HASH"). A NAME matches entry when equal to
// it or when its last path element is. With an empty entry, the file must hold one hash.
func ParseChecksum(data []byte, entry string) (string, error) {
	var found []string
	var bare []string
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		hash, name, ok := parseLine(line)
		if !ok {
			continue
		}
		switch {
		case name == "":
			bare = append(bare, hash)
		case entry == "" || name == entry || path.Base(name) == entry:
			found = append(found, hash)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1 && entry != "":
		for _, h := range found[1:] {
			if h != found[0] {
				return "", fmt.Errorf("%d different hashes for %s", len(found), entry)
			}
		}
		return found[0], nil
	case len(found) == 0 && len(bare) == 1:
		return bare[0], nil
	case entry == "":
		return "", fmt.Errorf("want a single hash, found %d", len(found)+len(bare))
	}
	return "", fmt.Errorf("no SHA-256 for %s in it", entry)
}

// parseLine reads one checksum line; name is "" for a bare hash.
func parseLine(line string) (hash, name string, ok bool) {
	if rest, found := strings.CutPrefix(line, "SHA256 ("); found {
		i := strings.LastIndex(rest, ") = ")
		if i < 0 {
			return "", "", false
		}
		hash, name = rest[i+4:], rest[:i]
	} else {
		f := strings.Fields(line)
		hash = f[0]
		if len(f) > 1 {
			name = strings.TrimPrefix(strings.Join(f[1:], " "), "*")
		}
	}
	hash = strings.ToLower(hash)
	return hash, name, isSHA256(hash)
}

func isSHA256(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// wantSum returns the artifact's expected SHA-256 and where it came from: the pin, or the
// published checksum file (fetched with retries).
func (r *run) wantSum(ctx context.Context, a catalog.Artifact) (sum, from string, err error) {
	if p := strings.ToLower(strings.TrimSpace(a.Checksum.Pinned)); p != "" {
		if !isSHA256(p) {
			return "", "", errorf(ErrNoChecksum, "%s: pinned checksum %q is not a hex SHA-256", a.Component, a.Checksum.Pinned)
		}
		return p, "pinned", nil
	}
	if a.Checksum.URL == "" {
		return "", "", errorf(ErrNoChecksum,
			"%s: upstream publishes no checksum for %s: pin its sha256 in the Manifest", a.Component, path.Base(a.File))
	}
	var data []byte
	err = r.retry(ctx, a, func(int) error {
		var err error
		data, err = r.get(ctx, a.Checksum.URL)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			// Most often the version is wrong: then say so, not that a checksum is missing.
			if r.missing(ctx, a.URL) {
				return "", "", notFound(a)
			}
			return "", "", errorf(ErrNoChecksum,
				"checksum file for %s not found at %s (404): the mirror may lack it; pin the sha256 in the Manifest", a.Component, a.Checksum.URL)
		}
		return "", "", fmt.Errorf("checksum file for %s: %w", a.Component, err)
	}
	entry := a.Checksum.Entry
	if entry == "" {
		entry = path.Base(a.File)
	}
	sum, err = ParseChecksum(data, entry)
	if err != nil {
		return "", "", errorf(ErrNoChecksum, "checksum file %s for %s: %v", a.Checksum.URL, a.Component, err)
	}
	return sum, a.Checksum.URL, nil
}

// get reads a small file: 404 is ErrNotFound, 5xx and network errors are retryable.
func (r *run) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := r.d.client().Do(req)
	if err != nil {
		return nil, netError(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusErr(resp.StatusCode, url)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxChecksumFile))
	if err != nil {
		return nil, netError(ctx, err)
	}
	return data, nil
}

// missing says whether the server answers 404 to a HEAD of url.
func (r *run) missing(ctx context.Context, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := r.d.client().Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusNotFound
}

func notFound(a catalog.Artifact) error {
	return errorf(ErrNotFound, "%s not found at %s (404): is the version right?", a.Component, a.URL)
}

// sidecar is where kk records a verified file's SHA-256 (sha256sum format), so that a later
// run reuses the file without any network.
func sidecar(final string) string { return final + ".sha256" }

func readSidecar(final string) string {
	data, err := os.ReadFile(sidecar(final))
	if err != nil {
		return ""
	}
	sum, err := ParseChecksum(data, filepath.Base(final))
	if err != nil {
		return ""
	}
	return sum
}

func writeSidecar(final, sum string) error {
	tmp := sidecar(final) + ".part"
	if err := os.WriteFile(tmp, []byte(sum+"  "+filepath.Base(final)+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, sidecar(final))
}

// FileSHA256 is the hex SHA-256 of the local file name, and its size; ctx ends long hashes.
func FileSHA256(ctx context.Context, name string) (sum string, size int64, err error) {
	f, err := os.Open(name)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx, f})
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ContextReader reads r until ctx ends: a long copy stops with ctx's error.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
