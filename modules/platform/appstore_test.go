package platform

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"k8s.io/client-go/rest"

	"github.com/kk-project/kk/artifacts/charts"
)

// fakeMuseum answers ChartMuseum's two calls kk makes: GET /api/charts/NAME/VERSION and
// POST /api/charts with an archive as the body (refused with 409 when the version is there).
type fakeMuseum struct {
	mu      sync.Mutex
	digests map[string]string // "name version" -> digest
	posts   int
	fail    int // answer this status to everything when set
}

func (f *fakeMuseum) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != 0 {
		http.Error(w, `{"error":"broken"}`, f.fail)
		return
	}
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/charts/"):
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/charts/"), "/")
		if len(parts) != 2 {
			http.NotFound(w, r)
			return
		}
		d, ok := f.digests[parts[0]+" "+parts[1]]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":"improper constraint"}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"name": parts[0], "version": parts[1], "digest": d})
	case r.Method == http.MethodPost && r.URL.Path == "/api/charts":
		f.posts++
		body, _ := io.ReadAll(r.Body)
		ch, err := loader.LoadArchive(bytes.NewReader(body))
		if err != nil {
			http.Error(w, `{"error":"not a chart"}`, http.StatusInternalServerError)
			return
		}
		key := ch.Name() + " " + ch.Metadata.Version
		if _, ok := f.digests[key]; ok {
			http.Error(w, `{"error":"file already exists"}`, http.StatusConflict)
			return
		}
		sum := sha256.Sum256(body)
		f.digests[key] = hex.EncodeToString(sum[:])
		w.WriteHeader(http.StatusCreated)
		fmt.Fprint(w, `{"saved":true}`)
	default:
		http.NotFound(w, r)
	}
}

// testArchives packages charts named name-version under a temporary folder.
func testArchives(t *testing.T, named ...string) []charts.Archive {
	t.Helper()
	tmp := t.TempDir()
	var out []charts.Archive
	for _, nv := range named {
		name, version, _ := strings.Cut(nv, "-")
		dir := filepath.Join(tmp, "src", nv)
		if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o755); err != nil {
			t.Fatal(err)
		}
		for f, body := range map[string]string{
			"Chart.yaml":        "apiVersion: v2\nname: " + name + "\nversion: " + version + "\n",
			"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}}\n",
		} {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		a, err := charts.Package(dir, filepath.Join(tmp, "pkg"))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	return out
}

// Upload puts what the repository lacks, once: a second run finds every version there and
// uploads nothing; a version there from another archive is kept, not replaced.
func TestUploadIsIdempotent(t *testing.T) {
	fm := &fakeMuseum{digests: map[string]string{}}
	srv := httptest.NewServer(fm)
	defer srv.Close()
	api := HTTPRepo(srv.URL, nil)
	ctx := context.Background()
	archives := testArchives(t, "hello-1.2.3", "world-0.1.0")
	if missing, err := Missing(ctx, api, archives); err != nil || len(missing) != 2 {
		t.Fatalf("missing before: %v, %v", missing, err)
	}
	up, kept, err := Upload(ctx, api, archives, os.ReadFile)
	if err != nil || len(up) != 2 || len(kept) != 0 || fm.posts != 2 {
		t.Fatalf("first upload: %v kept %v, %v (%d posts)", up, kept, err, fm.posts)
	}
	if missing, err := Missing(ctx, api, archives); err != nil || len(missing) != 0 {
		t.Errorf("missing after: %v, %v", missing, err)
	}
	up, kept, err = Upload(ctx, api, archives, os.ReadFile)
	if err != nil || len(up) != 0 || len(kept) != 0 || fm.posts != 2 {
		t.Errorf("second upload: %v kept %v, %v (%d posts)", up, kept, err, fm.posts)
	}
	// the same version from another archive: kept, reported, not posted
	fm.digests["hello 1.2.3"] = strings.Repeat("0", 64)
	if st, err := StateOf(ctx, api, archives[0]); err != nil || st != ChartDiffers {
		t.Errorf("state %v, %v", st, err)
	}
	up, kept, err = Upload(ctx, api, archives, os.ReadFile)
	if err != nil || len(up) != 0 || !slices.Equal(kept, []charts.Chart{archives[0].Chart}) || fm.posts != 2 {
		t.Errorf("upload over another archive: %v kept %v, %v (%d posts)", up, kept, err, fm.posts)
	}
	if missing, _ := Missing(ctx, api, archives); len(missing) != 0 {
		t.Errorf("a version from another archive counts as missing: %v", missing)
	}
}

// A version uploaded by someone else between the look-up and the upload (409) is there, as
// wanted; any other answer is an error naming the chart and the answer.
func TestUploadAnswers(t *testing.T) {
	archives := testArchives(t, "hello-1.2.3")
	ctx := context.Background()
	race := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			http.NotFound(w, r)
			return
		}
		http.Error(w, `{"error":"file already exists"}`, http.StatusConflict)
	}))
	defer race.Close()
	if up, _, err := Upload(ctx, HTTPRepo(race.URL, nil), archives, os.ReadFile); err != nil || len(up) != 0 {
		t.Errorf("409: uploaded %v, %v", up, err)
	}
	fm := &fakeMuseum{digests: map[string]string{}, fail: http.StatusInternalServerError}
	broken := httptest.NewServer(fm)
	defer broken.Close()
	if _, _, err := Upload(ctx, HTTPRepo(broken.URL, nil), archives, os.ReadFile); err == nil ||
		!strings.Contains(err.Error(), "chart hello 1.2.3") || !strings.Contains(err.Error(), `HTTP 500: {"error":"broken"}`) {
		t.Errorf("500: %v", err)
	}
	if _, err := Missing(ctx, HTTPRepo("http://127.0.0.1:1", nil), archives); err == nil {
		t.Error("no answer, no error")
	}
}

// kk reaches the app store through the API server's service proxy: the Service's named port,
// ChartMuseum's paths under it, the archive as the POST body; the proxied status comes back.
func TestProxyRepo(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	var posted []byte
	apiserver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		if r.Method == http.MethodPost {
			posted, _ = io.ReadAll(r.Body)
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{"saved":true}`)
			return
		}
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":"improper constraint"}`)
	}))
	defer apiserver.Close()
	api, err := ProxyRepo(&rest.Config{Host: apiserver.URL})
	if err != nil {
		t.Fatal(err)
	}
	archives := testArchives(t, "hello-1.2.3")
	up, _, err := Upload(context.Background(), api, archives, os.ReadFile)
	if err != nil || len(up) != 1 {
		t.Fatalf("upload through the proxy: %v, %v", up, err)
	}
	const proxy = "/api/v1/namespaces/kubesphere-system/services/http:kk-app-store:http/proxy/"
	if want := []string{"GET " + proxy + "api/charts/hello/1.2.3", "POST " + proxy + "api/charts"}; !slices.Equal(seen, want) {
		t.Errorf("requests %q, want %q", seen, want)
	}
	if data, _ := os.ReadFile(archives[0].Path); !bytes.Equal(posted, data) {
		t.Errorf("posted %d bytes, not the archive's %d", len(posted), len(data))
	}
	if AppStoreURL() != "http://kk-app-store.kubesphere-system.svc:8080" {
		t.Errorf("AppStoreURL() = %s", AppStoreURL())
	}
}

// The app store's component carries the charts it is loaded with; switched off, none.
func TestComponentsWithCharts(t *testing.T) {
	archives := testArchives(t, "hello-1.2.3")
	c := cluster(false)
	c.Platform.AppStore = true
	comps, err := ComponentsWith(c, Inputs{Charts: archives})
	if err != nil {
		t.Fatal(err)
	}
	if got := named(t, comps, "app-store").Charts; len(got) != 1 || got[0] != archives[0] {
		t.Errorf("charts %+v", got)
	}
	for _, comp := range comps {
		if comp.Name != "app-store" && len(comp.Charts) > 0 {
			t.Errorf("%s has charts", comp.Name)
		}
	}
	c.Platform.AppStore = false
	comps, _ = ComponentsWith(c, Inputs{Charts: archives})
	if got := named(t, comps, "app-store").Charts; len(got) != 0 {
		t.Errorf("switched off, charts %+v", got)
	}
}
