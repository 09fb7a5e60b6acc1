// Package download fetches catalogue artifacts into a local cache: bounded concurrency,
// reuse of verified files without any network, resume of partial files with HTTP Range,
// retries with backoff, SHA-256 verification against the published (or pinned) checksum and
// an atomic rename into place. Progress goes to a callback; drawing it is the caller's job.
package download

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/kk-project/kk/artifacts/catalog"
)

const userAgent = "kk"

// Downloader fetches artifacts into Cache. The zero value of every field but Cache is usable.
type Downloader struct {
	Cache       string       // cache directory; Artifact.File paths are relative to it
	Client      *http.Client // nil: a plain client (no overall timeout; cancel the context)
	Concurrency int          // files downloaded at once; <= 0 means 4
	Retries     int          // further attempts after a retryable failure; 0 means 3, < 0 none
	// Backoff is the wait before the first retry, doubled for each further one up to 30s;
	// 0 means 1s.
	Backoff  time.Duration
	Progress func(ev Progress) // optional
}

// Result reports one artifact.
type Result struct {
	Artifact catalog.Artifact
	Path     string // the verified file in the cache (set on success)
	SHA256   string // its hex SHA-256
	Bytes    int64  // bytes received over the network for the file itself (0 when Reused)
	Reused   bool   // already in the cache and verified: not downloaded
	Resumed  bool   // a partial file was continued with a Range request
	Attempts int    // download attempts made (0 when Reused)
	Err      error
}

// Fetch downloads the artifacts, at most Concurrency at once, and returns one Result per
// artifact in the same order. Artifacts naming the same cache File are fetched once. The
// error joins every artifact's failure (each names its component, file and URL); the others
// are still fetched, unless ctx ends.
func (d *Downloader) Fetch(ctx context.Context, arts []catalog.Artifact) ([]Result, error) {
	if d.Cache == "" {
		return nil, errors.New("download: no cache directory set")
	}
	r := &run{d: d}
	results := make([]Result, len(arts))
	first := map[string]int{}
	sem := make(chan struct{}, d.concurrency())
	var wg sync.WaitGroup
	for i, a := range arts {
		if _, dup := first[a.File]; dup {
			continue
		}
		first[a.File] = i
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
				results[i] = r.fetchOne(ctx, a)
			case <-ctx.Done():
				results[i] = Result{Artifact: a, Err: fmt.Errorf("%s: %w", a.Component, ctx.Err())}
			}
		}()
	}
	wg.Wait()
	var errs []error
	for i, a := range arts {
		if j := first[a.File]; j != i {
			results[i] = results[j]
			results[i].Artifact = a
			continue
		}
		if results[i].Err != nil {
			errs = append(errs, results[i].Err)
		}
	}
	return results, errors.Join(errs...)
}

func (d *Downloader) concurrency() int {
	if d.Concurrency <= 0 {
		return 4
	}
	return d.Concurrency
}

func (d *Downloader) retries() int {
	switch {
	case d.Retries < 0:
		return 0
	case d.Retries == 0:
		return 3
	}
	return d.Retries
}

func (d *Downloader) backoff(retry int) time.Duration {
	b := d.Backoff
	if b <= 0 {
		b = time.Second
	}
	for i := 1; i < retry && b < 30*time.Second; i++ {
		b *= 2
	}
	return min(b, 30*time.Second)
}

func (d *Downloader) client() *http.Client {
	if d.Client != nil {
		return d.Client
	}
	return &http.Client{}
}

// run is the state of one Fetch call shared by its goroutines.
type run struct {
	d  *Downloader
	mu sync.Mutex // serialises Progress callbacks
}

func (r *run) emit(ev Progress) {
	if r.d.Progress == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.d.Progress(ev)
}

// retry calls fn until it succeeds, fails for good, or the retries are spent.
func (r *run) retry(ctx context.Context, a catalog.Artifact, fn func(attempt int) error) error {
	for attempt := 1; ; attempt++ {
		err := fn(attempt)
		if err == nil || !isRetryable(err) || attempt > r.d.retries() {
			return err
		}
		r.emit(Progress{Kind: Retrying, Component: a.Component, File: a.File, Attempt: attempt, Total: -1, Err: err})
		t := time.NewTimer(r.d.backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// netError marks a transport error retryable unless the context ended.
func netError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &retryable{err}
}

// statusErr classifies an unexpected HTTP status.
func statusErr(code int, url string) error {
	e := &statusError{code: code, url: url}
	switch {
	case code == http.StatusNotFound:
		return &kindError{kind: ErrNotFound, msg: e.Error()}
	case code >= 500, code == http.StatusTooManyRequests, code == http.StatusRequestTimeout:
		return &retryable{e}
	}
	return e
}
