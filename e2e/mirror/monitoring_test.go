package mirror

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/artifacts/versions"
)

// TestMonitoringIsKKs: the mirror builds the monitoring releases kk deploys (its version
// table), whose tags the images carry.
func TestMonitoringIsKKs(t *testing.T) {
	s, a := DefaultSpec(), versions.DefaultAddons()
	for name, v := range map[string][2]string{"prometheus": {s.Prometheus, a.Prometheus}, "alertmanager": {s.Alertmanager, a.Alertmanager},
		"node-exporter": {s.NodeExporter, a.NodeExporter}, "kube-state-metrics": {s.KubeStateMetrics, a.KubeStateMetrics},
		"prometheus-operator": {s.PrometheusOperator, a.PrometheusOperator}} {
		if v[0] == "" || v[0] != v[1] {
			t.Errorf("the mirror builds %s %q, kk deploys %s (artifacts/versions)", name, v[0], v[1])
		}
	}
}

func TestPrometheusModuleVersion(t *testing.T) {
	for in, want := range map[string]string{"v3.16.0": "v0.316.0", "v3.5.1": "v0.305.1", "v2.55.1": "v0.55.1"} {
		if got, err := PrometheusModuleVersion(in); err != nil || got != want {
			t.Errorf("PrometheusModuleVersion(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"v1.8.2", "v3.100.0", "3.16"} {
		if _, err := PrometheusModuleVersion(bad); err == nil {
			t.Errorf("PrometheusModuleVersion(%s): no error", bad)
		}
	}
	s := DefaultSpec()
	s.Prometheus = "v1.8.2"
	if err := s.validate(); err == nil || !strings.Contains(err.Error(), "prometheus") {
		t.Errorf("validate accepted prometheus v1.8.2: %v", err)
	}
}

// Each monitoring component builds one job, its binaries and their checksums, which Artifacts
// lists; Prometheus' job is the release's, built from its module version.
func TestMonitoringJobs(t *testing.T) {
	s := DefaultSpec()
	b := &builder{dir: t.TempDir(), spec: s, log: io.Discard, out: io.Discard}
	jobs := b.jobs()
	for _, c := range []struct {
		component, version string
		paths              []string
	}{
		{"prometheus", s.Prometheus, []string{"/bin/prometheus/v3.16.0/linux/amd64/prometheus"}},
		{"alertmanager", s.Alertmanager, []string{"/bin/alertmanager/v0.35.0/linux/amd64/alertmanager"}},
		{"node-exporter", s.NodeExporter, []string{"/bin/node_exporter/v1.12.1/linux/amd64/node_exporter"}},
		{"kube-state-metrics", s.KubeStateMetrics, []string{"/bin/kube-state-metrics/v2.20.0/linux/amd64/kube-state-metrics"}},
		{"prometheus-operator", s.PrometheusOperator, []string{"/bin/prometheus-operator/v0.90.1/linux/amd64/operator",
			"/bin/prometheus-operator/v0.90.1/linux/amd64/prometheus-config-reloader"}},
	} {
		if !slices.Contains(Components, c.component) {
			t.Errorf("Components has no %s", c.component)
		}
		var only []job
		for _, j := range jobs {
			if j.component == c.component {
				only = append(only, j)
			}
		}
		if len(only) != 1 {
			t.Errorf("%d %s jobs, want 1", len(only), c.component)
			continue
		}
		var want []string
		for _, p := range c.paths {
			want = append(want, p[1:], p[1:]+".sha256")
		}
		if j := only[0]; j.version != c.version || !slices.Equal(j.outputs, want) {
			t.Errorf("job %s %s outputs %q, want %q", j.name, j.version, j.outputs, want)
		}
		var got []string
		for _, a := range s.Artifacts() {
			if a.Component == c.component {
				got = append(got, a.Path)
				if a.Checksum != a.Path+".sha256" || a.ChecksumFormat != HexOnly || a.Version != c.version {
					t.Errorf("artifact %+v", a)
				}
			}
		}
		if !slices.Equal(got, c.paths) {
			t.Errorf("Artifacts of %s: %q, want %q", c.component, got, c.paths)
		}
	}
}

func TestGoBinaryName(t *testing.T) {
	for pkg, want := range map[string]string{"k8s.io/kube-state-metrics/v2": "kube-state-metrics", "github.com/prometheus/node_exporter": "node_exporter",
		"github.com/prometheus/prometheus/cmd/prometheus": "prometheus", "example.com/cmd/v2tool": "v2tool"} {
		if got := goBinaryName(pkg); got != want {
			t.Errorf("goBinaryName(%s) = %s, want %s", pkg, got, want)
		}
	}
}
