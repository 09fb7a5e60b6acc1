package download

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/kk-project/kk/artifacts/catalog"
)

// upstream is a test mirror on 127.0.0.1 that lays files out at the upstream paths.
type upstream struct {
	t     *testing.T
	srv   *httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	hits  map[string]int      // requests per path (GET and HEAD)
	rng   map[string][]string // Range headers per path
	// hook may answer a request itself (return true); n is the request's number for its path.
	hook func(w http.ResponseWriter, r *http.Request, n int) bool

	inflight, maxInflight int
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{t: t, files: map[string][]byte{}, hits: map[string]int{}, rng: map[string][]string{}}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	p := r.URL.Path
	u.hits[p]++
	n := u.hits[p]
	if h := r.Header.Get("Range"); h != "" {
		u.rng[p] = append(u.rng[p], h)
	}
	data, ok := u.files[p]
	hook := u.hook
	u.inflight++
	u.maxInflight = max(u.maxInflight, u.inflight)
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		u.inflight--
		u.mu.Unlock()
	}()
	if hook != nil && hook(w, r, n) {
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

func (u *upstream) count(p string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[p]
}

func (u *upstream) total() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, v := range u.hits {
		n += v
	}
	return n
}

func (u *upstream) ranges(p string) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.rng[p]...)
}

func (u *upstream) put(p string, data []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.files[p] = data
}

// artifact resolves c against this mirror.
func (u *upstream) artifact(c catalog.Component) catalog.Artifact {
	u.t.Helper()
	a, err := catalog.Resolver{Mirror: u.srv.URL}.Resolve(c)
	if err != nil {
		u.t.Fatal(err)
	}
	return a
}

// publish serves a's content and its checksum in the format upstream uses.
func (u *upstream) publish(a catalog.Artifact, data []byte) {
	u.t.Helper()
	u.put(pathOf(u.t, a.URL), data)
	if a.Checksum.URL == "" {
		return
	}
	sum := sha(data)
	var file string
	switch {
	case a.Checksum.Entry == "": // dl.k8s.io: a bare hash
		file = sum
	default: // sha256sum format, among other files' lines
		file = fmt.Sprintf("%s  other-file.tar.gz\n%s  %s\n", sha([]byte("x")), sum, a.Checksum.Entry)
	}
	u.put(pathOf(u.t, a.Checksum.URL), []byte(file))
}

func pathOf(t *testing.T, rawURL string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req.URL.Path
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// payload is deterministic test content of n bytes.
func payload(seed string, n int) []byte {
	b := make([]byte, 0, n+32)
	for i := 0; len(b) < n; i++ {
		b = fmt.Appendf(b, "%s-%d;", seed, i)
	}
	return b[:n]
}

// events records Progress events.
type events struct {
	mu  sync.Mutex
	evs []Progress
}

func (e *events) add(ev Progress) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
}

func (e *events) kinds(file string) []EventKind {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []EventKind
	for _, ev := range e.evs {
		if ev.File == file && (len(out) == 0 || out[len(out)-1] != ev.Kind) {
			out = append(out, ev.Kind)
		}
	}
	return out
}

func newDownloader(t *testing.T, ev *events) *Downloader {
	d := &Downloader{Cache: t.TempDir(), Backoff: time.Millisecond, Concurrency: 4}
	if ev != nil {
		d.Progress = ev.add
	}
	return d
}

func fetchOK(t *testing.T, d *Downloader, arts ...catalog.Artifact) []Result {
	t.Helper()
	res, err := d.Fetch(context.Background(), arts)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return res
}
