//go:build integration

package loadbalancer

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kk-project/kk/artifacts/versions"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/kk-project/kk/e2e/images"
)

// TestHAProxyBalancesAndFailsOver runs the real haproxy of the test image
// (the haproxy image of kk's version table in the OCI layout KK_IMAGES_DIR/oci, default
// /var/tmp/kk-images/oci), flattened into a temp dir and run in a chroot on loopback,
// with the configuration kk renders, in front of fake API servers (TLS, /readyz):
// requests reach every ready one; a server whose /readyz fails (an API server in its
// shutdown delay, still serving) leaves the rotation without cutting the request it is
// serving; a stopped one leaves too; when none is ready, requests still reach them; and the
// monitor endpoint answers. Needs root (chroot).
func TestHAProxyBalancesAndFailsOver(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("chroot needs root: run the integration tests as root")
	}
	root := haproxyRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The production configurations are valid.
	for _, n := range []int{1, 3} {
		cfg, err := RenderHAProxyConfig(SpecFor(cluster(HAProxy, n)).HAProxy)
		if err != nil {
			t.Fatal(err)
		}
		checkConfig(t, ctx, root, cfg)
	}

	// Fake API servers: each answers /readyz and says who it is on any other path; on
	// /slow, c says so on slowStarted and answers once it has failed 3 checks (haproxy marks
	// it down after 2): a request in flight while it turns unready.
	sick, sickAnswers := map[string]bool{}, map[string]int{}
	var mu sync.Mutex
	slowStarted := make(chan struct{}, 1)
	newAPI := func(name string) *httptest.Server {
		return httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.URL.Path == "/readyz":
				mu.Lock()
				s := sick[name]
				if s {
					sickAnswers[name]++
				}
				mu.Unlock()
				if s {
					http.Error(w, "[-]shutdown failed: reason withheld", http.StatusInternalServerError)
					return
				}
				io.WriteString(w, "ok")
				return
			case r.URL.Path == "/slow" && name == "c":
				slowStarted <- struct{}{}
				for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
					mu.Lock()
					n := sickAnswers["c"]
					mu.Unlock()
					if n >= 3 {
						break
					}
				}
			}
			io.WriteString(w, name)
		}))
	}
	a, b, c := newAPI("a"), newAPI("b"), newAPI("c")
	defer a.Close()
	defer b.Close()
	defer c.Close()

	h := HAProxySpec{Bind: "127.0.0.1", Port: freePort(t), MonitorPort: freePort(t)}
	for _, s := range []*httptest.Server{a, b, c} {
		addr := s.Listener.Addr().(*net.TCPAddr)
		h.Backends = append(h.Backends, Backend{Name: "api-" + fmt.Sprint(addr.Port), Address: "127.0.0.1", Port: addr.Port})
	}
	cfg, err := RenderHAProxyConfig(h)
	if err != nil {
		t.Fatal(err)
	}
	checkConfig(t, ctx, root, cfg)
	logs := startHAProxy(t, ctx, root, cfg)
	defer func() {
		if t.Failed() {
			t.Logf("haproxy output:\n%s", logs.String())
		}
	}()

	// The monitor endpoint answers (the liveness probe).
	monitor := fmt.Sprintf("http://127.0.0.1:%d/healthz", h.MonitorPort)
	waitFor(t, ctx, "haproxy's monitor endpoint answers 200", func() (bool, string) {
		resp, err := http.Get(monitor)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})

	// The wait kk runs before pointing kubelet at haproxy passes now, and fails without one.
	if out, err := exec.CommandContext(ctx, "sh", "-c", WaitHAProxy(h, 3)).CombinedOutput(); err != nil {
		t.Errorf("waitHAProxy with haproxy running: %v: %s", err, out)
	}
	none := h
	none.MonitorPort = freePort(t)
	if out, err := exec.CommandContext(ctx, "sh", "-c", WaitHAProxy(none, 2)).CombinedOutput(); err == nil || !strings.Contains(string(out), "haproxy does not answer") {
		t.Errorf("waitHAProxy without haproxy: %v: %s", err, out)
	}

	tr := a.Client().Transport.(*http.Transport).Clone() // trusts the fake servers' certificate
	tr.DisableKeepAlives = true                          // a new connection, so a new choice, per request
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	slowClient := &http.Client{Transport: tr, Timeout: time.Minute}
	url := fmt.Sprintf("https://127.0.0.1:%d/version", h.Port)
	get := func() (string, error) {
		resp, err := client.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return string(body), err
	}
	// seen sends n requests and counts who answered; any failure is an error.
	seen := func(n int) (map[string]int, error) {
		m := map[string]int{}
		for range n {
			who, err := get()
			if err != nil {
				return m, err
			}
			m[who]++
		}
		return m, nil
	}

	// 1. Requests reach every API server.
	waitFor(t, ctx, "requests through haproxy reach a, b and c", func() (bool, string) {
		m, err := seen(30)
		if err != nil {
			return false, err.Error()
		}
		return m["a"] > 0 && m["b"] > 0 && m["c"] > 0, fmt.Sprint(m)
	})

	// 2. An API server whose /readyz fails (it still serves: a stopping API server in its
	// shutdown delay) leaves the rotation; the request it is serving then is not cut.
	slow := make(chan string, 1)
	for {
		go func() {
			resp, err := slowClient.Get(fmt.Sprintf("https://127.0.0.1:%d/slow", h.Port))
			if err != nil {
				slow <- err.Error()
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				slow <- err.Error()
				return
			}
			slow <- string(body)
		}()
		select {
		case who := <-slow: // a or b answered at once (or it failed): again
			if who != "a" && who != "b" {
				t.Fatalf("GET /slow through haproxy: %s", who)
			}
			continue
		case <-slowStarted:
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		break
	}
	mu.Lock()
	sick["c"] = true
	mu.Unlock()
	if who := <-slow; who != "c" {
		t.Errorf("a request c was serving when it turned unready: %q, want its answer (haproxy cut it)", who)
	}
	waitFor(t, ctx, "an unready c gets no request (30 in a row)", func() (bool, string) {
		m, err := seen(30)
		if err != nil {
			return false, err.Error()
		}
		return m["c"] == 0 && m["a"] > 0 && m["b"] > 0, fmt.Sprint(m)
	})

	// 3. A stopped API server leaves the rotation: every request succeeds through b.
	a.Close()
	waitFor(t, ctx, "with a stopped and c unhealthy, 30 requests in a row succeed through b", func() (bool, string) {
		m, err := seen(30)
		if err != nil {
			return false, err.Error()
		}
		return m["b"] == 30, fmt.Sprint(m)
	})

	// 4. c recovers and comes back.
	mu.Lock()
	sick["c"] = false
	mu.Unlock()
	waitFor(t, ctx, "a recovered c gets requests again", func() (bool, string) {
		m, err := seen(30)
		if err != nil {
			return false, err.Error()
		}
		return m["c"] > 0, fmt.Sprint(m)
	})

	// 5. Every API server left fails /readyz (b and c: the etcd they share electing a
	// leader): once haproxy has marked both down (3 failed checks each), requests still reach
	// them, through the unchecked backups, where an empty pool would close the connection.
	mu.Lock()
	sick["b"], sick["c"] = true, true
	sickAnswers["b"], sickAnswers["c"] = 0, 0
	mu.Unlock()
	waitFor(t, ctx, "b and c fail 3 checks each", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return sickAnswers["b"] >= 3 && sickAnswers["c"] >= 3, fmt.Sprint(sickAnswers)
	})
	if m, err := seen(30); err != nil || m["b"]+m["c"] != 30 {
		t.Errorf("with every API server unready, 30 requests through haproxy: %v (answered %v), want all answered by b and c", err, m)
	}

	resp, err := http.Get(monitor)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("monitor endpoint: %s", resp.Status)
	}
}

// waitFor polls cond until it holds; it fails the test when ctx ends first (no timing is
// asserted: the deadline only bounds a broken run).
func waitFor(t *testing.T, ctx context.Context, what string, cond func() (bool, string)) {
	t.Helper()
	start := time.Now()
	last := ""
	for {
		ok, state := cond()
		if ok {
			t.Logf("%s (after %.1fs: %s)", what, time.Since(start).Seconds(), state)
			return
		}
		last = state
		select {
		case <-ctx.Done():
			t.Fatalf("%s: never happened; last: %s", what, last)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

const cfgPath = "/usr/local/etc/haproxy/haproxy.cfg"

func writeConfig(t *testing.T, root string, cfg []byte) {
	t.Helper()
	p := filepath.Join(root, cfgPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkConfig runs haproxy -c on cfg.
func checkConfig(t *testing.T, ctx context.Context, root string, cfg []byte) {
	t.Helper()
	writeConfig(t, root, cfg)
	out, err := chroot(ctx, root, "/usr/local/sbin/haproxy", "-c", "-f", cfgPath).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Configuration file is valid") {
		t.Fatalf("haproxy -c: %v: %s\n%s", err, out, cfg)
	}
}

func chroot(ctx context.Context, root string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "chroot", append([]string{root}, args...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	return cmd
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startHAProxy runs haproxy in the foreground with cfg until the test ends.
func startHAProxy(t *testing.T, ctx context.Context, root string, cfg []byte) *syncBuffer {
	t.Helper()
	writeConfig(t, root, cfg)
	out := &syncBuffer{}
	cmd := chroot(ctx, root, "/usr/local/sbin/haproxy", "-db", "-f", cfgPath)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return out
}

// haproxyRoot flattens the haproxy image of the test OCI layout into a temp dir.
func haproxyRoot(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("KK_IMAGES_DIR")
	if dir == "" {
		dir = images.DefaultOutDir
	}
	lp := images.LayoutDir(dir)
	idx, err := layout.ImageIndexFromPath(lp)
	if err != nil {
		t.Fatalf("the test images are not built (make mirror): %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	want := versions.Latest().HAProxyImage()
	for _, d := range im.Manifests {
		if d.Annotations[images.AnnotationContainerdRef] != want {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		root := t.TempDir()
		rc := mutate.Extract(img)
		defer rc.Close()
		if err := untar(rc, root); err != nil {
			t.Fatalf("flatten %s: %v", want, err)
		}
		return root
	}
	t.Fatalf("%s is not in the OCI layout %s", want, lp)
	return ""
}

func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean("/" + h.Name)
		if name == "/" {
			continue
		}
		dst := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, os.FileMode(h.Mode&0o777))
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			f.Close()
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			os.Remove(dst)
			if err := os.Symlink(h.Linkname, dst); err != nil {
				return err
			}
		case tar.TypeLink:
			os.Remove(dst)
			if err := os.Link(filepath.Join(dir, filepath.Clean("/"+h.Linkname)), dst); err != nil {
				return err
			}
		default:
			continue
		}
		os.Lchown(dst, h.Uid, h.Gid)
		if h.Typeflag == tar.TypeDir || h.Typeflag == tar.TypeReg {
			os.Chmod(dst, os.FileMode(h.Mode&0o777))
		}
	}
}
