package registry

import (
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// testLayout writes an OCI layout: pause for amd64 and arm64, coredns for amd64.
func testLayout(t *testing.T) string {
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	add := func(ref, arch string) {
		img, err := random.Image(1024, 2)
		if err != nil {
			t.Fatal(err)
		}
		err = p.AppendImage(img, layout.WithAnnotations(map[string]string{annotationRefName: ref, annotationContainerd: ref}),
			layout.WithPlatform(v1.Platform{OS: "linux", Architecture: arch}))
		if err != nil {
			t.Fatal(err)
		}
	}
	add("registry.k8s.io/pause:3.10.1", "amd64")
	add("registry.k8s.io/pause:3.10.1", "arm64")
	add("registry.k8s.io/coredns/coredns:v1.12.0", "amd64")
	return dir
}

// tlsRegistry is an in-memory registry over TLS; with user set it wants basic auth. It counts
// blob uploads (POST to /blobs/uploads/).
func tlsRegistry(t *testing.T, user, password string) (srv *httptest.Server, ca []byte, uploads *atomic.Int64) {
	reg := ggcrregistry.New()
	uploads = &atomic.Int64{}
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user != "" {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != password {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
		}
		if r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/blobs/uploads/") {
			uploads.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ca = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return srv, ca, uploads
}

func TestPushTLSAuthAndSkipExisting(t *testing.T) {
	srv, ca, uploads := tlsRegistry(t, "admin", "pw")
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
	// the test certificate covers example.com: reach it there, dialing loopback
	reg := "example.com:" + port
	o := PushOptions{Layout: testLayout(t), Registry: reg, CA: ca, Username: "admin", Password: "pw", DialAddress: "127.0.0.1"}
	pushed, err := Push(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(pushed) != 2 {
		t.Fatalf("pushed %v", pushed)
	}
	byTarget := map[string]Pushed{}
	for _, p := range pushed {
		byTarget[p.Target] = p
	}
	pause, ok := byTarget[reg+"/pause:3.10.1"]
	if !ok || strings.Join(pause.Arches, ",") != "amd64,arm64" {
		t.Errorf("pause: %+v (all: %v)", pause, pushed)
	}
	if _, ok := byTarget[reg+"/coredns/coredns:v1.12.0"]; !ok {
		t.Errorf("coredns not pushed as %s/coredns/coredns:v1.12.0: %v", reg, pushed)
	}
	// what the registry holds: pause as an index of two arches
	tr, _ := o.transport()
	ref, _ := name.ParseReference(reg + "/pause:3.10.1")
	idx, err := remote.Index(ref, remote.WithTransport(tr), remote.WithAuth(&authn.Basic{Username: "admin", Password: "pw"}))
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 {
		t.Errorf("pause index has %d manifests", len(im.Manifests))
	}
	first := uploads.Load()
	if first == 0 {
		t.Fatal("no blob uploaded")
	}
	// a second push uploads no blob
	if _, err := Push(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if n := uploads.Load() - first; n != 0 {
		t.Errorf("second push uploaded %d blobs", n)
	}

	// wrong password: refused
	o.Password = "nope"
	if _, err := Push(context.Background(), o); err == nil {
		t.Error("push with a wrong password succeeded")
	}
	// no credentials: said so before anything is pushed
	o.Username, o.Password = "", ""
	if _, err := Push(context.Background(), o); err == nil || !strings.Contains(err.Error(), "registry "+reg+" (dialed at 127.0.0.1) requires a username and password") {
		t.Errorf("push without credentials: %v", err)
	}
}

func TestPushUntrustedCA(t *testing.T) {
	srv, _, _ := tlsRegistry(t, "", "")
	o := PushOptions{Layout: testLayout(t), Registry: strings.TrimPrefix(srv.URL, "https://")}
	_, err := Push(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("push to a registry with an unknown CA: %v", err)
	}
}

func TestPushUnreachableNamesRegistry(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	_, err = Push(context.Background(), PushOptions{Layout: testLayout(t), Registry: addr + "/ns"})
	if err == nil || !strings.Contains(err.Error(), "registry "+addr+" is unreachable") {
		t.Errorf("want an error naming %s as unreachable, got %v", addr, err)
	}
}

func TestPushEmptyLayout(t *testing.T) {
	dir := t.TempDir()
	if _, err := layout.Write(dir, empty.Index); err != nil {
		t.Fatal(err)
	}
	if _, err := Push(context.Background(), PushOptions{Layout: dir, Registry: "127.0.0.1:1"}); err == nil || !strings.Contains(err.Error(), "names no image") {
		t.Errorf("empty layout: %v", err)
	}
}
