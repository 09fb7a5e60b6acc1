package download

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/artifacts/catalog"
)

var kubeadm = catalog.Component{Name: "kubeadm", Version: "v1.34.9", Arch: "amd64"}

func TestFetchVerifiesAndReuses(t *testing.T) {
	u := newUpstream(t)
	ka := u.artifact(kubeadm)
	et := u.artifact(catalog.Component{Name: "etcd", Version: "v3.5.21", Arch: "arm64"})
	ct := u.artifact(catalog.Component{Name: "containerd", Version: "2.1.4", Arch: "amd64"})
	data := map[string][]byte{ka.File: payload("kubeadm", 700_000), et.File: payload("etcd", 1000), ct.File: payload("ctd", 3000)}
	for _, a := range []catalog.Artifact{ka, et, ct} {
		u.publish(a, data[a.File])
	}
	ev := &events{}
	d := newDownloader(t, ev)
	res := fetchOK(t, d, ka, et, ct)
	for i, a := range []catalog.Artifact{ka, et, ct} {
		r := res[i]
		if r.Artifact.File != a.File || r.Reused || r.Bytes != int64(len(data[a.File])) || r.SHA256 != sha(data[a.File]) || r.Attempts != 1 {
			t.Errorf("%s: %+v", a.File, r)
		}
		got, err := os.ReadFile(filepath.Join(d.Cache, a.File))
		if err != nil || string(got) != string(data[a.File]) {
			t.Errorf("%s: cached content differs (%v)", a.File, err)
		}
		if _, err := os.Stat(r.Path + ".part"); !os.IsNotExist(err) {
			t.Errorf("%s: .part left behind", a.File)
		}
	}
	if fi, _ := os.Stat(res[0].Path); fi.Mode().Perm() != 0o755 {
		t.Errorf("kubeadm mode %v, want 0755", fi.Mode())
	}
	if fi, _ := os.Stat(res[1].Path); fi.Mode().Perm() != 0o644 {
		t.Errorf("etcd archive mode %v, want 0644", fi.Mode())
	}
	if k := ev.kinds(ka.File); !slices.Equal(k, []EventKind{Started, Advanced, Finished}) {
		t.Errorf("kubeadm events %v", k)
	}

	// Second run: everything from the cache, no request at all.
	before := u.total()
	ev2 := &events{}
	d.Progress = ev2.add
	res = fetchOK(t, d, ka, et, ct)
	for _, r := range res {
		if !r.Reused || r.Bytes != 0 || r.Attempts != 0 || r.SHA256 == "" {
			t.Errorf("second fetch %s: %+v", r.Artifact.File, r)
		}
	}
	if n := u.total() - before; n != 0 {
		t.Errorf("second fetch made %d requests, want 0", n)
	}
	if k := ev2.kinds(ka.File); !slices.Equal(k, []EventKind{Reused}) {
		t.Errorf("reuse events %v", k)
	}
}

func TestCachedFileChangedIsDownloadedAgain(t *testing.T) {
	u := newUpstream(t)
	a := u.artifact(kubeadm)
	u.publish(a, payload("k", 5000))
	d := newDownloader(t, nil)
	res := fetchOK(t, d, a)
	if err := os.WriteFile(res[0].Path, []byte("tampered"), 0o755); err != nil {
		t.Fatal(err)
	}
	res = fetchOK(t, d, a)
	if res[0].Reused || res[0].Bytes != 5000 {
		t.Errorf("tampered cache file reused: %+v", res[0])
	}
}

func TestFileCopiedIntoCacheIsReused(t *testing.T) {
	u := newUpstream(t)
	a := u.artifact(kubeadm)
	data := payload("k", 5000)
	u.publish(a, data)
	d := newDownloader(t, nil)
	p := filepath.Join(d.Cache, a.File)
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, data, 0o755)
	res := fetchOK(t, d, a)
	if !res[0].Reused || res[0].Bytes != 0 || u.count(pathOf(t, a.URL)) != 0 {
		t.Errorf("hand-copied file not reused: %+v", res[0])
	}
	if readSidecar(p) != sha(data) {
		t.Error("no sidecar written")
	}
}

func TestChecksumMismatch(t *testing.T) {
	u := newUpstream(t)
	a := u.artifact(kubeadm)
	data := payload("k", 4096)
	u.publish(a, data)
	flipped := slices.Clone(data)
	flipped[100] ^= 1
	u.put(pathOf(t, a.URL), flipped)

	d := newDownloader(t, nil)
	_, err := d.Fetch(context.Background(), []catalog.Artifact{a})
	want := fmt.Sprintf("checksum mismatch for %s: want %s (from %s), got %s", a.File, sha(data), a.Checksum.URL, sha(flipped))
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if !errors.Is(err, ErrChecksumMismatch) {
		t.Error("not ErrChecksumMismatch")
	}
	p := filepath.Join(d.Cache, a.File)
	for _, f := range []string{p, p + ".part", p + ".sha256"} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left behind", f)
		}
	}
}

// truncate answers with the full Content-Length but sends only the first half, then closes.
func truncate(t *testing.T, w http.ResponseWriter, data []byte) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Error(err)
		return
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n\r\n", len(data))
	buf.Write(data[:len(data)/2])
	buf.Flush()
}

func TestTruncatedDownloadResumesWithRange(t *testing.T) {
	u := newUpstream(t)
	a := u.artifact(catalog.Component{Name: "runc", Version: "v1.3.0", Arch: "arm64"})
	data := payload("runc", 100_000)
	u.publish(a, data)
	p := pathOf(t, a.URL)
	u.hook = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if r.URL.Path == p && n == 1 {
			truncate(t, w, data)
			return true
		}
		return false
	}
	ev := &events{}
	d := newDownloader(t, ev)
	res := fetchOK(t, d, a)
	r := res[0]
	if !r.Resumed || r.Attempts != 2 || r.Bytes != int64(len(data)) {
		t.Errorf("result %+v", r)
	}
	if got := u.ranges(p); !slices.Equal(got, []string{fmt.Sprintf("bytes=%d-", len(data)/2)}) {
		t.Errorf("Range headers %q", got)
	}
	if got, _ := os.ReadFile(r.Path); string(got) != string(data) {
		t.Error("resumed file differs")
	}
	if k := ev.kinds(a.File); !slices.Contains(k, Retrying) {
		t.Errorf("no Retrying event: %v", k)
	}
}

func TestServerIgnoringRangeRestarts(t *testing.T) {
	u := newUpstream(t)
	a := u.artifact(kubeadm)
	data := payload("k", 50_000)
	u.publish(a, data)
	p := pathOf(t, a.URL)
	u.hook = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if r.URL.Path != p || r.Method != http.MethodGet {
			return false
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Write(data) // 200 whatever the Range
		return true
	}
	d := newDownloader(t, nil)
	part := filepath.Join(d.Cache, a.File) + ".part"
	os.MkdirAll(filepath.Dir(part), 0o755)
	os.WriteFile(part, []byte("stale partial bytes from an earlier run"), 0o644)

	res := fetchOK(t, d, a)
	if res[0].Resumed || res[0].Bytes != int64(len(data)) {
		t.Errorf("result %+v", res[0])
	}
	if got := u.ranges(p); len(got) != 1 || !strings.HasPrefix(got[0], "bytes=") {
		t.Errorf("Range headers %q, want one", got)
	}
	if got, _ := os.ReadFile(res[0].Path); string(got) != string(data) {
		t.Error("file differs: partial bytes kept though the server sent the whole file")
	}
}

func TestResumeOfStalePartThatDiffersStartsOverOnce(t *testing.T) {
	u := newUpstream(t)
	a := u.artifact(kubeadm)
	data := payload("k", 20_000)
	u.publish(a, data)
	d := newDownloader(t, nil)
	part := filepath.Join(d.Cache, a.File) + ".part"
	os.MkdirAll(filepath.Dir(part), 0o755)
	os.WriteFile(part, []byte("not the beginning of this file"), 0o644)
	res := fetchOK(t, d, a)
	if got, _ := os.ReadFile(res[0].Path); string(got) != string(data) {
		t.Error("file differs")
	}
	if res[0].Attempts != 2 {
		t.Errorf("attempts %d, want 2 (resume, then whole)", res[0].Attempts)
	}
}

func TestNotFound(t *testing.T) {
	u := newUpstream(t)
	a := u.artifact(kubeadm) // nothing published: wrong version
	d := newDownloader(t, nil)
	_, err := d.Fetch(context.Background(), []catalog.Artifact{a})
	want := "kubeadm v1.34.9 linux/amd64 not found at " + a.URL + " (404): is the version right?"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if !errors.Is(err, ErrNotFound) {
		t.Error("not ErrNotFound")
	}
	if n := u.count(pathOf(t, a.Checksum.URL)); n != 1 {
		t.Errorf("checksum file asked %d times: a 404 is not retried", n)
	}

	// Checksum published, file missing: the same message, from the download itself.
	u.put(pathOf(t, a.Checksum.URL), []byte(sha([]byte("x"))))
	_, err = d.Fetch(context.Background(), []catalog.Artifact{a})
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

func TestRetryAfterServerError(t *testing.T) {
	u := newUpstream(t)
	a := u.artifact(catalog.Component{Name: "crictl", Version: "v1.34.0", Arch: "amd64"})
	u.publish(a, payload("crictl", 3000))
	p := pathOf(t, a.URL)
	u.hook = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if (r.URL.Path == p || r.URL.Path == pathOf(t, a.Checksum.URL)) && n == 1 {
			http.Error(w, "boom", http.StatusInternalServerError)
			return true
		}
		return false
	}
	res := fetchOK(t, newDownloader(t, nil), a)
	if res[0].Attempts != 2 || u.count(p) != 2 {
		t.Errorf("attempts %d, requests %d, want 2 and 2", res[0].Attempts, u.count(p))
	}
}

func TestRetriesExhausted(t *testing.T) {
	u := newUpstream(t)
	a := u.artifact(kubeadm)
	u.publish(a, payload("k", 100))
	p := pathOf(t, a.URL)
	u.hook = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if r.URL.Path == p {
			http.Error(w, "down", http.StatusBadGateway)
			return true
		}
		return false
	}
	d := newDownloader(t, nil)
	d.Retries = 2
	_, err := d.Fetch(context.Background(), []catalog.Artifact{a})
	if err == nil || !strings.Contains(err.Error(), "502") || !strings.Contains(err.Error(), a.URL) || !strings.Contains(err.Error(), "kubeadm v1.34.9") {
		t.Fatalf("err = %v", err)
	}
	if n := u.count(p); n != 3 {
		t.Errorf("%d requests, want 3 (1 + 2 retries)", n)
	}
}

func TestChecksumFileMissing(t *testing.T) {
	u := newUpstream(t)
	a := u.artifact(kubeadm)
	u.put(pathOf(t, a.URL), payload("k", 100)) // the file but no .sha256
	d := newDownloader(t, nil)
	_, err := d.Fetch(context.Background(), []catalog.Artifact{a})
	if err == nil || !errors.Is(err, ErrNoChecksum) ||
		!strings.Contains(err.Error(), "checksum file for kubeadm v1.34.9 linux/amd64 not found at "+a.Checksum.URL+" (404)") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.Cache, a.File)); !os.IsNotExist(err) {
		t.Error("unverified file in the cache")
	}
	if n := u.count(pathOf(t, a.URL)); n != 1 {
		t.Errorf("artifact requested %d times, want 1 HEAD", n)
	}
}

func TestChecksumEntryMissing(t *testing.T) {
	u := newUpstream(t)
	a := u.artifact(catalog.Component{Name: "etcd", Version: "v3.5.21", Arch: "amd64"})
	u.put(pathOf(t, a.URL), payload("e", 100))
	u.put(pathOf(t, a.Checksum.URL), []byte(sha([]byte("a"))+"  etcd-v3.5.21-linux-arm64.tar.gz\n"))
	_, err := newDownloader(t, nil).Fetch(context.Background(), []catalog.Artifact{a})
	if err == nil || !errors.Is(err, ErrNoChecksum) || !strings.Contains(err.Error(), "no SHA-256 for etcd-v3.5.21-linux-amd64.tar.gz") ||
		!strings.Contains(err.Error(), a.Checksum.URL) {
		t.Fatalf("err = %v", err)
	}
}

func TestPinnedChecksum(t *testing.T) {
	u := newUpstream(t)
	a := u.artifact(catalog.Component{Name: "docker", Version: "28.3.2", Arch: "arm64"})
	data := payload("docker", 2000)
	u.publish(a, data)
	d := newDownloader(t, nil)
	_, err := d.Fetch(context.Background(), []catalog.Artifact{a})
	if err == nil || !errors.Is(err, ErrNoChecksum) || !strings.Contains(err.Error(), "pin its sha256") {
		t.Fatalf("unpinned docker: %v", err)
	}
	a.Checksum.Pinned = strings.ToUpper(sha(data))
	res := fetchOK(t, d, a)
	if res[0].SHA256 != sha(data) {
		t.Errorf("result %+v", res[0])
	}
	// A pin wins over the published file.
	k := u.artifact(kubeadm)
	u.publish(k, payload("k", 10))
	k.Checksum.Pinned = sha([]byte("something else"))
	_, err = d.Fetch(context.Background(), []catalog.Artifact{k})
	if !errors.Is(err, ErrChecksumMismatch) || !strings.Contains(err.Error(), "(from pinned)") {
		t.Errorf("pin vs published: %v", err)
	}
	if n := u.count(pathOf(t, k.Checksum.URL)); n != 0 {
		t.Errorf("checksum file fetched %d times despite a pin", n)
	}
}

func TestConcurrencyBound(t *testing.T) {
	u := newUpstream(t)
	var arts []catalog.Artifact
	for _, n := range []string{"kubeadm", "kubelet", "kubectl", "kube-proxy", "kube-scheduler", "kube-apiserver"} {
		a := u.artifact(catalog.Component{Name: n, Version: "v1.34.1", Arch: "arm64"})
		u.publish(a, payload(n, 1000))
		arts = append(arts, a)
	}
	u.hook = func(w http.ResponseWriter, r *http.Request, n int) bool {
		time.Sleep(30 * time.Millisecond)
		return false
	}
	d := newDownloader(t, nil)
	d.Concurrency = 2
	res := fetchOK(t, d, arts...)
	if len(res) != 6 {
		t.Fatal(len(res))
	}
	u.mu.Lock()
	peak := u.maxInflight
	u.mu.Unlock()
	if peak != 2 {
		t.Errorf("max requests in flight %d, want 2", peak)
	}
}

func TestDuplicateArtifactsFetchedOnce(t *testing.T) {
	u := newUpstream(t)
	a := u.artifact(kubeadm)
	u.publish(a, payload("k", 1000))
	res := fetchOK(t, newDownloader(t, nil), a, a)
	if len(res) != 2 || res[1].SHA256 != res[0].SHA256 || u.count(pathOf(t, a.URL)) != 1 {
		t.Errorf("results %+v, %d requests", res, u.count(pathOf(t, a.URL)))
	}
}

func TestCancel(t *testing.T) {
	u := newUpstream(t)
	a := u.artifact(kubeadm)
	data := payload("k", 1<<20)
	u.publish(a, data)
	p := pathOf(t, a.URL)
	u.hook = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if r.URL.Path != p {
			return false
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		bw := bufio.NewWriter(w)
		bw.Write(data[:1000])
		bw.Flush()
		http.NewResponseController(w).Flush()
		<-r.Context().Done() // stall until the client goes away
		return true
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := newDownloader(t, nil)
	d.Progress = func(ev Progress) {
		if ev.Kind == Started {
			cancel()
		}
	}
	start := time.Now()
	_, err := d.Fetch(ctx, []catalog.Artifact{a})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "kubeadm v1.34.9") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("cancel took too long")
	}
	if _, err := os.Stat(filepath.Join(d.Cache, a.File)); !os.IsNotExist(err) {
		t.Error("file in place after cancel")
	}

	// Cancelled before it starts: nothing is requested.
	before := u.total()
	_, err = d.Fetch(ctx, []catalog.Artifact{a})
	if !errors.Is(err, context.Canceled) || u.total() != before {
		t.Errorf("pre-cancelled: %v, %d requests", err, u.total()-before)
	}
}

func TestBadCachePath(t *testing.T) {
	a := catalog.Artifact{Component: kubeadm, URL: "http://127.0.0.1:1/x", File: "../escape"}
	_, err := newDownloader(t, nil).Fetch(context.Background(), []catalog.Artifact{a})
	if err == nil || !strings.Contains(err.Error(), "inside the cache") {
		t.Fatalf("err = %v", err)
	}
	if _, err := (&Downloader{}).Fetch(context.Background(), nil); err == nil {
		t.Error("no cache dir accepted")
	}
}
