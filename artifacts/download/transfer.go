package download

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/kk-project/kk/artifacts/catalog"
)

// advanceEvery is how many bytes pass between Advanced events of one file.
const advanceEvery = 256 << 10

// transfer makes one attempt to complete part: it asks for the bytes after those already
// there (Range), and starts over when the server sends the whole file instead.
func (r *run) transfer(ctx context.Context, a catalog.Artifact, part string, res *Result) error {
	f, err := os.OpenFile(part, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return localError(r.d.Cache, a.File+".part", err)
	}
	defer f.Close()
	off, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return localError(r.d.Cache, a.File+".part", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL, nil)
	if err != nil {
		return fmt.Errorf("%s: bad URL %q: %w", a.Component, a.URL, err)
	}
	req.Header.Set("User-Agent", userAgent)
	// Byte offsets must be those of the file itself, never of a compressed transfer.
	req.Header.Set("Accept-Encoding", "identity")
	if off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	}
	resp, err := r.d.client().Do(req)
	if err != nil {
		return netError(ctx, err)
	}
	defer resp.Body.Close()

	restart := func() error {
		off = 0
		if err := f.Truncate(0); err != nil {
			return localError(r.d.Cache, a.File+".part", err)
		}
		_, err := f.Seek(0, io.SeekStart)
		return err
	}
	total := int64(-1)
	switch resp.StatusCode {
	case http.StatusOK: // whole file: the server ignored Range, or none was sent
		if err := restart(); err != nil {
			return err
		}
		total = resp.ContentLength
	case http.StatusPartialContent:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != off {
			if err := restart(); err != nil {
				return err
			}
			return &retryable{fmt.Errorf("GET %s: asked for bytes from %d, got Content-Range %q",
				a.URL, off, resp.Header.Get("Content-Range"))}
		}
		res.Resumed = true
		total = size
	case http.StatusRequestedRangeNotSatisfiable: // the partial file is not a prefix of this one
		if err := restart(); err != nil {
			return err
		}
		return &retryable{fmt.Errorf("GET %s: range from %d not satisfiable; starting over", a.URL, off)}
	default:
		return statusErr(resp.StatusCode, a.URL)
	}

	r.emit(Progress{Kind: Started, Component: a.Component, File: a.File, Done: off, Total: total, Attempt: res.Attempts})
	w := &counter{f: f, done: off, emit: func(done int64) {
		r.emit(Progress{Kind: Advanced, Component: a.Component, File: a.File, Done: done, Total: total, Attempt: res.Attempts})
	}}
	n, err := io.Copy(w, resp.Body)
	res.Bytes += n
	w.flush()
	if w.err != nil {
		return localError(r.d.Cache, a.File+".part", w.err)
	}
	if err != nil {
		return netError(ctx, fmt.Errorf("GET %s: after %d bytes: %w", a.URL, off+n, err))
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return &retryable{fmt.Errorf("GET %s: got %d of %d bytes: %w", a.URL, n, resp.ContentLength, io.ErrUnexpectedEOF)}
	}
	if err := f.Sync(); err != nil {
		return localError(r.d.Cache, a.File+".part", err)
	}
	return nil
}

// counter writes to the part file and reports progress.
type counter struct {
	f       *os.File
	done    int64
	pending int64
	emit    func(done int64)
	err     error // a write error, as opposed to a read error from the network
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	c.done += int64(n)
	c.pending += int64(n)
	if err != nil {
		c.err = err
		return n, err
	}
	if c.pending >= advanceEvery {
		c.flush()
	}
	return n, nil
}

func (c *counter) flush() {
	if c.pending > 0 {
		c.pending = 0
		c.emit(c.done)
	}
}

// parseContentRange reads "bytes START-END/SIZE" (SIZE may be "*": -1).
func parseContentRange(s string) (start, size int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	first, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	size = -1
	if sz != "*" {
		if size, err = strconv.ParseInt(sz, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, size, true
}

// normalizeSum lower-cases and trims a pinned checksum.
func normalizeSum(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
