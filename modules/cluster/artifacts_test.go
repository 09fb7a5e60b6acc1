package cluster

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/artifacts/charts/chartstest"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/artifacts/charts"
	"github.com/kk-project/kk/artifacts/versions"
)

// A bundle must hold every image the cluster runs: local storage switched on by
// --with-local-storage needs its two images in it.
func TestLackedImages(t *testing.T) {
	c := loadExample(t, "ha-3cp-2w.yaml")
	m, err := v1alpha2.NewManifest(c)
	if err != nil {
		t.Fatal(err)
	}
	have := m.Images()
	if got, err := lackedImages(c, have); err != nil || len(got) != 0 {
		t.Errorf("the bundle of the same file lacks %v (%v)", got, err)
	}
	c.Platform.LocalStorage = true
	got, _ := lackedImages(c, have)
	set, _ := versions.For(c.Kubernetes.Version)
	if !slices.Equal(got, set.LocalStorageImages()) {
		t.Errorf("with local storage, lacked %v, want %v", got, set.LocalStorageImages())
	}
	c.Registry.PrivateRegistry = "registry.local:5000"
	if got, _ := lackedImages(c, nil); len(got) != 0 {
		t.Errorf("with a private registry: %v", got)
	}
}

// Without a bundle the Cluster file's charts are packaged (a directory into the cache, an
// archive as it is), a broken one an error at its line; with a bundle, the bundle must carry
// the charts the file names that are on this machine, and some chart when the file names any.
func TestStoreChartsArtifacts(t *testing.T) {
	tmp := t.TempDir()
	dir := chartstest.WriteChartDir(t, tmp, "hello", "1.2.3")
	pkg, err := charts.Package(chartstest.WriteChartDir(t, tmp, "world", "0.1.0"), filepath.Join(tmp, "pkg"))
	if err != nil {
		t.Fatal(err)
	}
	c := loadExample(t, "ha-3cp-2w.yaml")
	c.Platform.AppStore = true
	c.Platform.StoreCharts = []config.LocalChart{{Path: dir, Source: "c.yaml:30"}, {Path: pkg.Path, Source: "c.yaml:31"}}
	cache := filepath.Join(tmp, "cache")
	got, err := packStoreCharts(c, cache)
	if err != nil || len(got) != 2 || got[0].Path != filepath.Join(cache, "hello-1.2.3.tgz") || got[1] != pkg {
		t.Fatalf("packed %+v, %v", got, err)
	}
	if lacked := lackedCharts(c, got); len(lacked) != 0 {
		t.Errorf("the bundle of the same charts lacks %v", lacked)
	}
	if lacked := lackedCharts(c, got[1:]); !slices.Equal(lacked, []string{"c.yaml:30 hello 1.2.3"}) {
		t.Errorf("lacked %v", lacked)
	}
	if lacked := lackedCharts(c, nil); len(lacked) != 2 {
		t.Errorf("a bundle without charts lacks %v", lacked)
	}
	// a chart not on this machine (the file copied without it): the bundle's is taken
	c.Platform.StoreCharts = append(c.Platform.StoreCharts, config.LocalChart{Path: filepath.Join(tmp, "elsewhere.tgz"), Source: "c.yaml:32"})
	if lacked := lackedCharts(c, got); len(lacked) != 0 {
		t.Errorf("lacked %v", lacked)
	}
	if _, err := packStoreCharts(c, cache); err == nil || !strings.Contains(err.Error(), "c.yaml:32: ClusterConfiguration spec.openpitrix.store.charts: chart "+filepath.Join(tmp, "elsewhere.tgz")) {
		t.Errorf("a missing chart: %v", err)
	}
}
