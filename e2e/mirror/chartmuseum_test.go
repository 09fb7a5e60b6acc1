package mirror

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/artifacts/versions"
)

// TestChartMuseumJob: the app store's ChartMuseum is kk's release, built as one job into its
// BinPath with a checksum that Artifacts lists; its version ldflags are upstream's (the release
// without "v", the short commit when the proxy records one).
func TestChartMuseumJob(t *testing.T) {
	s := DefaultSpec()
	if a := versions.DefaultAddons(); s.ChartMuseum == "" || s.ChartMuseum != a.ChartMuseum {
		t.Errorf("the mirror builds chartmuseum %q, kk deploys %q (artifacts/versions)", s.ChartMuseum, a.ChartMuseum)
	}
	if !slices.Contains(Components, "chartmuseum") {
		t.Error("Components has no chartmuseum")
	}
	b := &builder{dir: t.TempDir(), spec: s, log: io.Discard, out: io.Discard}
	var only []job
	for _, j := range b.jobs() {
		if j.component == "chartmuseum" {
			only = append(only, j)
		}
	}
	p := ChartMuseumPath(s.ChartMuseum)
	if want := []string{p[1:], p[1:] + ".sha256"}; len(only) != 1 || only[0].version != s.ChartMuseum || !slices.Equal(only[0].outputs, want) {
		t.Fatalf("chartmuseum jobs %+v, want one of %s with outputs %q", only, s.ChartMuseum, want)
	}
	var got []Artifact
	for _, a := range s.Artifacts() {
		if a.Component == "chartmuseum" {
			got = append(got, a)
		}
	}
	if len(got) != 1 || got[0].Path != p || got[0].Checksum != p+".sha256" || got[0].ChecksumFormat != HexOnly || got[0].Version != s.ChartMuseum {
		t.Errorf("Artifacts of chartmuseum: %+v", got)
	}
	if ld := chartMuseumLdflags("v0.16.3", "fce57c005209cf414254a234ecf3b841d25f9827"); !slices.Equal(ld, []string{"-X main.Version=0.16.3", "-X main.Revision=fce57c0"}) {
		t.Errorf("ldflags %q", ld)
	}
	if ld := chartMuseumLdflags("v0.16.3", ""); !slices.Equal(ld, []string{"-X main.Version=0.16.3"}) {
		t.Errorf("ldflags without a commit %q", ld)
	}
	s.ChartMuseum = "0.16.3"
	if err := s.validate(); err == nil || !strings.Contains(err.Error(), "chartmuseum") {
		t.Errorf("validate accepted chartmuseum 0.16.3: %v", err)
	}
}
