package download

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kk-project/kk/artifacts/catalog"
)

// fetchOne brings one artifact into the cache, verified.
func (r *run) fetchOne(ctx context.Context, a catalog.Artifact) (res Result) {
	res = Result{Artifact: a}
	defer func() {
		if res.Err != nil {
			r.emit(Progress{Kind: Failed, Component: a.Component, File: a.File, Total: -1, Attempt: res.Attempts, Err: res.Err})
		}
	}()
	if err := ctx.Err(); err != nil {
		res.Err = fmt.Errorf("%s: %w", a.Component, err)
		return res
	}
	final, err := r.d.path(a)
	if err != nil {
		res.Err = err
		return res
	}
	if sum, ok := r.reuse(ctx, a, final); ok {
		res.Path, res.SHA256, res.Reused = final, sum, true
		r.emit(Progress{Kind: Reused, Component: a.Component, File: a.File, Done: size(final), Total: size(final)})
		return res
	}
	want, from, err := r.wantSum(ctx, a)
	if err != nil {
		res.Err = err
		return res
	}
	// A file in the cache without kk's record (copied in by hand, or by an older kk) is
	// reused when it matches the published checksum.
	if got, _, err := FileSHA256(ctx, final); err == nil && got == want {
		if err := writeSidecar(final, want); err != nil {
			res.Err = localError(r.d.Cache, a.File, err)
			return res
		}
		if err := os.Chmod(final, fileMode(a)); err != nil {
			res.Err = localError(r.d.Cache, a.File, err)
			return res
		}
		res.Path, res.SHA256, res.Reused = final, want, true
		r.emit(Progress{Kind: Reused, Component: a.Component, File: a.File, Done: size(final), Total: size(final)})
		return res
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		res.Err = localError(r.d.Cache, a.File, err)
		return res
	}
	r.download(ctx, a, final, want, from, &res)
	return res
}

// reuse says whether the cache already holds the file with the checksum kk recorded when it
// verified it (or the pinned one): then no network is used at all.
func (r *run) reuse(ctx context.Context, a catalog.Artifact, final string) (string, bool) {
	want := readSidecar(final)
	if p := a.Checksum.Pinned; p != "" {
		want = normalizeSum(p)
	}
	if want == "" {
		return "", false
	}
	got, _, err := FileSHA256(ctx, final)
	if err != nil || got != want {
		return "", false
	}
	return want, true
}

// download transfers into final+".part" (resuming what is there), verifies it and renames
// it into place.
func (r *run) download(ctx context.Context, a catalog.Artifact, final, want, from string, res *Result) {
	part := final + ".part"
	freshTried := false
	for {
		err := r.retry(ctx, a, func(int) error {
			res.Attempts++
			return r.transfer(ctx, a, part, res)
		})
		if err != nil {
			res.Err = r.wrap(a, err)
			return
		}
		got, _, err := FileSHA256(ctx, part)
		if err != nil {
			res.Err = r.wrap(a, err)
			return
		}
		if got == want {
			res.SHA256 = got
			break
		}
		os.Remove(part)
		// A resumed file may have been spliced from two different uploads: try once whole.
		if res.Resumed && !freshTried {
			freshTried = true
			continue
		}
		res.Err = errorf(ErrChecksumMismatch, "checksum mismatch for %s: want %s (from %s), got %s", a.File, want, from, got)
		return
	}
	if err := os.Chmod(part, fileMode(a)); err != nil {
		res.Err = localError(r.d.Cache, a.File, err)
		return
	}
	if err := os.Rename(part, final); err != nil {
		res.Err = localError(r.d.Cache, a.File, err)
		return
	}
	if err := writeSidecar(final, want); err != nil {
		res.Err = localError(r.d.Cache, a.File, err)
		return
	}
	res.Path = final
	r.emit(Progress{Kind: Finished, Component: a.Component, File: a.File, Done: size(final), Total: size(final), Attempt: res.Attempts})
}

// wrap names the component and URL in a transfer error, and turns a 404 into the advice
// users need.
func (r *run) wrap(a catalog.Artifact, err error) error {
	var k *kindError
	switch {
	case errors.Is(err, ErrNotFound):
		return notFound(a)
	case errors.As(err, &k):
		return err // already a full message
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: download of %s stopped: %w", a.Component, a.URL, err)
	}
	return fmt.Errorf("%s: downloading %s: %w", a.Component, a.URL, err)
}

// path is the artifact's place in the cache; File must stay inside it.
func (d *Downloader) path(a catalog.Artifact) (string, error) {
	if a.File == "" || !filepath.IsLocal(filepath.FromSlash(a.File)) {
		return "", fmt.Errorf("%s: cache path %q is not a relative path inside the cache", a.Component, a.File)
	}
	return filepath.Join(d.Cache, filepath.FromSlash(a.File)), nil
}

// fileMode is 0755 for executables, else 0644.
func fileMode(a catalog.Artifact) os.FileMode {
	if a.Layout.Format == catalog.Raw && a.Layout.Executable {
		return 0o755
	}
	return 0o644
}

func size(name string) int64 {
	fi, err := os.Stat(name)
	if err != nil {
		return -1
	}
	return fi.Size()
}
