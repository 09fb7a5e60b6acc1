package addons

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/api/config"
)

func TestKind(t *testing.T) {
	for _, c := range []struct {
		a    config.Addon
		want string
	}{
		{config.Addon{Name: "y", Sources: config.AddonSources{Yaml: config.AddonYaml{Path: []string{"a.yaml"}}}}, "yaml"},
		{config.Addon{Name: "c", Sources: config.AddonSources{Chart: config.Chart{Path: "x"}}}, "chart"},
		{config.Addon{Name: "both", Sources: config.AddonSources{Chart: config.Chart{Name: "x", Repo: "http://r"}, Yaml: config.AddonYaml{Path: []string{"a"}}}}, "error: both"},
		{config.Addon{Name: "none"}, "error: neither"},
	} {
		got, err := Kind(c.a)
		if err != nil {
			got = "error: " + err.Error()
		}
		if !strings.HasPrefix(got, c.want) && !strings.Contains(got, strings.TrimPrefix(c.want, "error: ")) {
			t.Errorf("Kind(%s) = %q, want %q", c.a.Name, got, c.want)
		}
		if err != nil && !strings.Contains(err.Error(), "addon "+c.a.Name) {
			t.Errorf("error does not name the addon: %v", err)
		}
	}
}

func TestYAMLObjectsFromDirectory(t *testing.T) {
	a := config.Addon{Name: "d", Namespace: "kk-addon-yaml", Sources: config.AddonSources{Yaml: config.AddonYaml{Path: []string{"testdata/yaml"}}}}
	objs, err := yamlObjects(context.Background(), a, Options{HTTPTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetKind()+"/"+o.GetName())
	}
	// The namespace is in the sources, so none is added; README.txt is not read.
	if got := strings.Join(names, " "); got != "Namespace/kk-addon-yaml ConfigMap/addon-config ConfigMap/addon-config-2" {
		t.Fatal(got)
	}
	a.Namespace = "other"
	objs, err = yamlObjects(context.Background(), a, Options{HTTPTimeout: time.Second})
	if err != nil || objs[0].GetKind() != "Namespace" || objs[0].GetName() != "other" {
		t.Fatalf("the addon's namespace is not created first: %v", err)
	}
}

func TestBadSources(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"), 0o644)
	for _, c := range []struct{ path, want string }{
		{"/nonexistent/kk.yaml", "addon x: yaml path /nonexistent/kk.yaml:"},
		{srv.URL + "/missing.yaml", "addon x: fetch " + srv.URL + "/missing.yaml: 404"},
		{bad, "addon x: " + bad + ": document 1: ConfigMap has no metadata.name"},
		{dir + "/empty-dir-does-not-exist", "yaml path"},
	} {
		a := config.Addon{Name: "x", Sources: config.AddonSources{Yaml: config.AddonYaml{Path: []string{c.path}}}}
		// No cluster is reached: the sources fail first.
		_, err := InstallOne(context.Background(), nil, a, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.path, err, c.want)
		}
	}
}

func TestRetriesAndDelay(t *testing.T) {
	a := config.Addon{Name: "r", Retries: 2, Delay: 0, Sources: config.AddonSources{Yaml: config.AddonYaml{Path: []string{"/nonexistent.yaml"}}}}
	var lines []string
	r, err := InstallOne(context.Background(), nil, a, Options{Log: func(f string, args ...any) { lines = append(lines, f) }})
	if err == nil || r.Attempts != 3 || !strings.Contains(err.Error(), "after 3 attempts") || len(lines) != 2 {
		t.Fatalf("attempts %d, %d retry lines, err %v", r.Attempts, len(lines), err)
	}
}

func TestChartValues(t *testing.T) {
	a := config.Addon{Sources: config.AddonSources{Chart: config.Chart{ValuesFile: "testdata/values.yaml",
		Values: []string{"extra.color=blue", "replicas=3", "greeting=hi"}}}}
	v, err := chartValues(a)
	if err != nil {
		t.Fatal(err)
	}
	if v["greeting"] != "hi" || v["replicas"] != int64(3) || v["extra"].(map[string]any)["color"] != "blue" {
		t.Fatalf("%#v", v)
	}
	a.Sources.Chart.ValuesFile = "testdata/none.yaml"
	if _, err := chartValues(a); err == nil || !strings.Contains(err.Error(), "testdata/none.yaml") {
		t.Fatalf("missing values file: %v", err)
	}
}

// chartArchive packs testdata/tinychart as a .tgz with the given version.
func chartArchive(t *testing.T, version string) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	root := "testdata/tinychart"
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		if filepath.Base(p) == "Chart.yaml" {
			b = bytes.Replace(b, []byte("version: 0.1.0"), []byte("version: "+version), 1)
		}
		rel, _ := filepath.Rel(root, p)
		tw.WriteHeader(&tar.Header{Name: "tinychart/" + rel, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
		return nil
	})
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func TestChartFromRepo(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/charts/index.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`apiVersion: v1
entries:
  tinychart:
  - name: tinychart
    version: 0.1.0
    urls: [tinychart-0.1.0.tgz]
  - name: tinychart
    version: 0.3.0
    urls: [pkgs/tinychart-0.3.0.tgz]
  - name: tinychart
    version: 0.4.0-rc.1
    urls: [tinychart-0.4.0-rc.1.tgz]
`))
	})
	mux.HandleFunc("/charts/tinychart-0.1.0.tgz", func(w http.ResponseWriter, r *http.Request) { w.Write(chartArchive(t, "0.1.0")) })
	mux.HandleFunc("/charts/pkgs/tinychart-0.3.0.tgz", func(w http.ResponseWriter, r *http.Request) { w.Write(chartArchive(t, "0.3.0")) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	o := Options{HTTPTimeout: 5 * time.Second}
	for _, c := range []struct{ version, want string }{{"0.1.0", "0.1.0"}, {"", "0.3.0"}} {
		a := config.Addon{Name: "t", Sources: config.AddonSources{Chart: config.Chart{Name: "tinychart", Repo: srv.URL + "/charts", Version: c.version}}}
		ch, err := chartFor(context.Background(), a, o)
		if err != nil {
			t.Fatalf("version %q: %v", c.version, err)
		}
		if ch.Metadata.Version != c.want {
			t.Fatalf("version %q: got chart %s", c.version, ch.Metadata.Version)
		}
	}
	a := config.Addon{Name: "t", Sources: config.AddonSources{Chart: config.Chart{Name: "tinychart", Repo: srv.URL + "/charts", Version: "9.9.9"}}}
	if _, err := chartFor(context.Background(), a, o); err == nil || !strings.Contains(err.Error(), `no version "9.9.9"`) {
		t.Fatalf("missing version: %v", err)
	}
	a.Sources.Chart.Name = "other"
	if _, err := chartFor(context.Background(), a, o); err == nil || !strings.Contains(err.Error(), `no chart "other"`) {
		t.Fatalf("missing chart: %v", err)
	}
}
