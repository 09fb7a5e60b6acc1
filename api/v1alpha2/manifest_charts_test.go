package v1alpha2

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kk-project/kk/artifacts/charts"
	"github.com/kk-project/kk/artifacts/charts/chartstest"
)

// kk create manifest -c lists the app store's charts with their names and versions, their
// paths relative to the manifest written; the manifest loads back with each path resolved
// against its own folder and each entry's line.
func TestStoreChartsRoundTrip(t *testing.T) {
	tmp := t.TempDir()
	chartstest.WriteChartDir(t, filepath.Join(tmp, "charts"), "hello", "1.2.3")
	pkg, err := charts.Package(chartstest.WriteChartDir(t, filepath.Join(tmp, "src"), "redis", "19.0.1"), filepath.Join(tmp, "charts"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(tmp, "cluster.yaml")
	c, _, err := ParseWithOptions(file, []byte(withPlatform("  openpitrix:\n    store:\n      enabled: true\n      charts: [charts/hello, charts/redis-19.0.1.tgz]\n")),
		ParseOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "out")
	list, err := StoreCharts(c, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "hello" || list[0].Version != "1.2.3" || list[0].Path != "../charts/hello" ||
		list[1].Name != "redis" || list[1].Version != "19.0.1" || list[1].Path != "../charts/redis-19.0.1.tgz" {
		t.Fatalf("charts %+v", list)
	}
	m, err := NewManifest(c)
	if err != nil {
		t.Fatal(err)
	}
	m.Spec.Charts = list
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "# spec.charts (kk extension)") {
		t.Errorf("no header about spec.charts:\n%s", data)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	mf := filepath.Join(out, "manifest.yaml")
	back, w, err := ParseManifest(mf, data)
	if err != nil || len(w) != 0 {
		t.Fatalf("%v, warnings %q\n%s", err, w, data)
	}
	if len(back.Spec.Charts) != 2 || back.Spec.Charts[0].File != filepath.Join(tmp, "charts/hello") || back.Spec.Charts[1].File != pkg.Path ||
		!strings.HasPrefix(back.Spec.Charts[1].Source, mf+":") {
		t.Errorf("charts read back %+v", back.Spec.Charts)
	}
	// as absolute paths when written to stdout
	if abs, err := StoreCharts(c, ""); err != nil || abs[1].Path != pkg.Path {
		t.Errorf("absolute charts %+v, %v", abs, err)
	}
	// switched off: none
	c.Platform.AppStore = false
	if none, err := StoreCharts(c, out); err != nil || none != nil {
		t.Errorf("store off: %+v, %v", none, err)
	}
}

// A chart that is not there or does not load, and one chart listed under two paths, are errors
// at their lines in the Cluster file, all of them at once.
func TestStoreChartsErrors(t *testing.T) {
	tmp := t.TempDir()
	hello := chartstest.WriteChartDir(t, tmp, "hello", "1.2.3")
	pkg, err := charts.Package(hello, filepath.Join(tmp, "pkg"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(tmp, "cluster.yaml")
	c, _, err := ParseWithOptions(file, []byte(withPlatform("  openpitrix:\n    store:\n      enabled: true\n      charts:\n      - missing.tgz\n      - hello\n      - "+pkg.Path+"\n")),
		ParseOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = StoreCharts(c, "")
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		file + ":23: ClusterConfiguration spec.openpitrix.store.charts: chart " + filepath.Join(tmp, "missing.tgz") + ": no such file",
		file + ":25: ClusterConfiguration spec.openpitrix.store.charts: " + pkg.Path + " is chart hello 1.2.3, as " + hello + " is",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\nlacks %q", err, want)
		}
	}
}

// spec.charts is checked at load time, each problem at its line.
func TestManifestChartsValidation(t *testing.T) {
	const head = "apiVersion: kubekey.kubesphere.io/v1alpha2\nkind: Manifest\nmetadata: {name: m}\nspec:\n  arches: [amd64]\n  charts:\n"
	_, _, err := ParseManifest("test.yaml", []byte(head+`  - {name: hello, version: 1.2.3, path: charts/hello}
  - {name: hello, version: 1.2.3, path: other}
  - {version: 1.0.0, path: x}
  - {name: a/b, version: 1.0.0, path: x}
  - {name: c, version: one, path: x}
  - {name: d, version: 1.0.0}
  - {name: e, version: 1.0.0, path: x, digest: y}
`))
	list, ok := err.(ErrorList)
	if !ok {
		t.Fatalf("error %T %v", err, err)
	}
	wantError(t, list, 8, "spec.charts[1]", "chart hello 1.2.3 is listed twice (first at spec.charts[0])")
	wantError(t, list, 9, "spec.charts[2]", "name is missing")
	wantError(t, list, 10, "spec.charts[3].name", `"a/b" is not a chart name`)
	wantError(t, list, 11, "spec.charts[4].version", `chart version "one" is not a SemVer version`)
	wantError(t, list, 12, "spec.charts[5]", "path is missing")
	wantError(t, list, 13, "spec.charts[6].digest")
	if len(list) != 6 {
		t.Errorf("errors:\n%v", list)
	}
	m, _, err := ParseManifest("/srv/m/manifest.yaml", []byte(head+"  - {name: hello, version: v1.2.3, path: charts/hello}\n  - {name: world, version: 2.0.0, path: /opt/world.tgz}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := m.Spec.Charts; c[0].File != "/srv/m/charts/hello" || c[0].Source != "/srv/m/manifest.yaml:7" || c[1].File != "/opt/world.tgz" {
		t.Errorf("charts %+v", c)
	}
}
