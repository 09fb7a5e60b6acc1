package bundle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/artifacts/catalog"
)

// upstream is a fake download site on loopback serving components at their upstream paths,
// each with its published checksum file.
type upstream struct {
	srv   *httptest.Server
	files map[string][]byte
	hits  atomic.Int64
}

func newUpstream(t *testing.T, comps ...catalog.Component) *upstream {
	t.Helper()
	u := &upstream{files: map[string][]byte{}}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		data, ok := u.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	}))
	t.Cleanup(u.srv.Close)
	rng := rand.New(rand.NewSource(int64(len(comps))))
	for _, c := range comps {
		a, err := catalog.Resolver{Mirror: u.srv.URL}.Resolve(c)
		if err != nil {
			t.Fatal(err)
		}
		if a.Layout.Format != catalog.Raw {
			t.Fatalf("test upstream serves raw files only: %s", c)
		}
		data := make([]byte, 96<<10+rng.Intn(64<<10))
		rng.Read(data)
		sum := sha256.Sum256(data)
		hexSum := hex.EncodeToString(sum[:])
		u.files[urlPath(t, a.URL)] = data
		if a.Checksum.Entry != "" {
			u.files[urlPath(t, a.Checksum.URL)] = []byte(hexSum + "  " + a.Checksum.Entry + "\n")
		} else {
			u.files[urlPath(t, a.Checksum.URL)] = []byte(hexSum + "\n")
		}
	}
	return u
}

func urlPath(t *testing.T, s string) string {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path
}

// newRegistry runs an in-process registry on loopback and pushes a small random image for
// each repo:tag; it returns the registry host:port.
func newRegistry(t *testing.T, refs ...string) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(nullLogger())))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	for i, r := range refs {
		img, err := random.Image(8<<10, 2, random.WithSource(rand.NewSource(int64(i+1))))
		if err != nil {
			t.Fatal(err)
		}
		push(t, host+"/"+r, img)
	}
	return host
}

func push(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

func kube(v string) []catalog.Component {
	var out []catalog.Component
	for _, n := range []string{"kubeadm", "kubelet", "kubectl"} {
		out = append(out, catalog.Component{Name: n, Version: v, Arch: "amd64"})
	}
	return out
}

// manifest parses a test manifest.
func manifest(t *testing.T, body string) *v1alpha2.Manifest {
	t.Helper()
	m, _, err := v1alpha2.ParseManifest("test-manifest.yaml", []byte(
		"apiVersion: kubekey.kubesphere.io/v1alpha2\nkind: Manifest\nmetadata: {name: test}\nspec:\n"+body))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fixture is an upstream, a registry and a manifest using both.
type fixture struct {
	up       *upstream
	regHost  string
	manifest *v1alpha2.Manifest
	workdir  string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	comps := append(kube("v1.34.1"), catalog.Component{Name: "runc", Version: "v1.3.0", Arch: "amd64"})
	f := &fixture{up: newUpstream(t, comps...), workdir: t.TempDir()}
	f.regHost = newRegistry(t, "kk/one:v1", "kk/two:v2")
	f.manifest = manifest(t, fmt.Sprintf(`  arches: [amd64]
  kubernetesDistributions: [{type: kubernetes, version: v1.34.1}]
  components:
    runc: {version: v1.3.0}
  images:
  - registry.k8s.io/kk/one:v1
  - %s/kk/two:v2
`, f.regHost))
	return f
}

func (f *fixture) options(out string) Options {
	return Options{
		Manifest:        f.manifest,
		Output:          out,
		Workdir:         f.workdir,
		Resolver:        catalog.Resolver{Mirror: f.up.srv.URL},
		RegistryMirrors: map[string]string{"registry.k8s.io": "http://" + f.regHost},
		KKVersion:       "v0.0.0-test",
		Now:             func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) },
	}
}

func (f *fixture) export(t *testing.T, out string) *Report {
	t.Helper()
	rep, err := Export(context.Background(), f.options(out))
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func nullLogger() *log.Logger { return log.New(io.Discard, "", 0) }
