package bundle

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kk-project/kk/artifacts/charts"
	"github.com/kk-project/kk/artifacts/charts/chartstest"
)

// The manifest's charts travel in the bundle: a directory packaged, an archive as it is, each
// under charts/ in the index, verified with the rest and unpacked where Imported.Charts says.
func TestExportCharts(t *testing.T) {
	f := newFixture(t)
	src := t.TempDir()
	dir := chartstest.WriteChartDir(t, src, "hello", "1.2.3")
	pkg, err := charts.Package(chartstest.WriteChartDir(t, src, "redis", "19.0.1"), filepath.Join(src, "pkg"))
	if err != nil {
		t.Fatal(err)
	}
	f.manifest.Spec.Charts = manifest(t, fmt.Sprintf("  arches: [amd64]\n  charts:\n  - {name: hello, version: 1.2.3, path: %s}\n  - {name: redis, version: 19.0.1, path: %s}\n",
		dir, pkg.Path)).Spec.Charts
	out := filepath.Join(t.TempDir(), "bundle.tar.gz")
	rep := f.export(t, out)
	if len(rep.Charts) != 2 || rep.Charts[0].Path != filepath.Join(f.workdir, "cache", ChartsDir, "hello-1.2.3.tgz") || rep.Charts[1] != pkg {
		t.Fatalf("charts packed %+v", rep.Charts)
	}
	ctx := context.Background()
	ix, err := Verify(ctx, out, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ix.Charts) != 2 || ix.Charts[0].Path != "charts/hello-1.2.3.tgz" || ix.Charts[1] != (ChartEntry{Name: "redis", Version: "19.0.1",
		Path: "charts/redis-19.0.1.tgz", SHA256: pkg.SHA256, Size: pkg.Size}) {
		t.Fatalf("index charts %+v", ix.Charts)
	}
	imp, err := Import(ctx, out, ImportOptions{Workdir: f.workdir})
	if err != nil {
		t.Fatal(err)
	}
	got := imp.Charts()
	if len(got) != 2 {
		t.Fatalf("imported charts %+v", got)
	}
	for i, a := range got {
		c, err := charts.Inspect(a.Path)
		sum, size, _ := charts.Digest(a.Path)
		if err != nil || c != rep.Charts[i].Chart || sum != rep.Charts[i].SHA256 || size != a.Size || !strings.HasPrefix(a.Path, imp.Dir) {
			t.Errorf("unpacked chart %+v: %+v, %v", a, c, err)
		}
	}
}

// A chart no longer what the manifest lists, or no longer there, stops the export before any
// image is pulled, naming the manifest's entry; no bundle is written.
func TestExportChartsChanged(t *testing.T) {
	f := newFixture(t)
	src := t.TempDir()
	dir := chartstest.WriteChartDir(t, src, "hello", "1.2.4")
	f.manifest.Spec.Charts = manifest(t, fmt.Sprintf("  arches: [amd64]\n  charts:\n  - {name: hello, version: 1.2.3, path: %s}\n  - {name: gone, version: 1.0.0, path: %s}\n",
		dir, filepath.Join(src, "gone.tgz"))).Spec.Charts
	out := filepath.Join(t.TempDir(), "bundle.tar.gz")
	_, err := Export(context.Background(), f.options(out))
	for _, want := range []string{
		"test-manifest.yaml:7: spec.charts[0]: " + dir + " is chart hello 1.2.4, the manifest lists hello 1.2.3",
		"test-manifest.yaml:8: spec.charts[1]: chart " + filepath.Join(src, "gone.tgz") + ": no such file",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nlacks %q", err, want)
		}
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a bundle was written: %v", err)
	}
}

// An index whose chart entry is not one of its members is refused.
func TestIndexChartsAreMembers(t *testing.T) {
	const sum = "0000000000000000000000000000000000000000000000000000000000000000"
	ok := `{"format":"kk-bundle/v1","files":[{"path":"charts/a-1.0.0.tgz","sha256":"` + sum + `","size":3}],"charts":[{"name":"a","version":"1.0.0","path":"charts/a-1.0.0.tgz","sha256":"` + sum + `","size":3}]}`
	if _, err := parseIndex("t", []byte(ok)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		strings.Replace(ok, `"size":3}]}`, `"size":4}]}`, 1),
		strings.Replace(ok, `"path":"charts/a-1.0.0.tgz","sha256":"`+sum+`","size":3}]}`, `"path":"files/x","sha256":"`+sum+`","size":3}]}`, 1),
	} {
		if _, err := parseIndex("t", []byte(bad)); err == nil || !strings.Contains(err.Error(), "chart a 1.0.0") {
			t.Errorf("index %s: %v", bad, err)
		}
	}
}
