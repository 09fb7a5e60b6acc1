package images

import (
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/artifacts/versions"
	"github.com/kk-project/kk/e2e/mirror"
)

// TestOfComponents: make demo's selection keeps the images whose mirror files its components
// build, and the images made of kk's own programs and Debian packages; it drops the others.
func TestOfComponents(t *testing.T) {
	spec := mirror.DefaultSpec()
	spec, err := spec.SelectKubernetes(spec.Kubernetes[:1])
	if err != nil {
		t.Fatal(err)
	}
	k8s := spec.Kubernetes[0]
	imgs, err := Images(spec, "/m", "/b", DebVersions{HAProxy: "2.6.12-1+deb12u4", Busybox: "1:1.35.0-4+b3"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ofComponents(imgs, spec, "/m", []string{"k8s", "etcd", "coredns"})
	if err != nil {
		t.Fatal(err)
	}
	var repos []string
	for _, im := range got {
		repos = append(repos, im.Repository)
	}
	want := []string{"registry.k8s.io/pause", ProbeRepository,
		"registry.k8s.io/kube-apiserver", "registry.k8s.io/kube-controller-manager", "registry.k8s.io/kube-scheduler", "registry.k8s.io/kube-proxy",
		"registry.k8s.io/etcd", "registry.k8s.io/coredns/coredns", "registry.k8s.io/dns/k8s-dns-node-cache",
		"docker.io/library/busybox", "docker.io/library/haproxy"} // Debian-made images stay: busybox, haproxy
	if !slices.Equal(repos, want) {
		t.Errorf("ofComponents(k8s,etcd,coredns) = %q, want %q", repos, want)
	}
	for _, im := range got {
		if strings.HasPrefix(im.Repository, "registry.k8s.io/kube-") && im.Tags[0] != k8s {
			t.Errorf("%s: another Kubernetes version than %s", im.Ref(), k8s)
		}
	}

	if _, err := ofComponents(imgs, spec, "/m", []string{"k8s", "nginx"}); err == nil || !strings.Contains(err.Error(), "nginx") {
		t.Errorf("unknown component: %v, want an error naming it", err)
	}
	// A mirror file that no artifact of the spec lists is reported, not silently kept or dropped.
	bare := spec
	bare.CoreDNS = ""
	if _, err := ofComponents(imgs, bare, "/m", []string{"k8s"}); err == nil || !strings.Contains(err.Error(), "coredns") {
		t.Errorf("image from a file outside the spec: %v, want an error naming it", err)
	}
}

// TestNvidiaDevicePluginImage: the device plugin's image is the reference kk's version table
// names, made of glibc and the mirror's binary, and --components nvidia-device-plugin builds it.
func TestNvidiaDevicePluginImage(t *testing.T) {
	spec := mirror.DefaultSpec()
	imgs, err := Images(spec, "/m", "/b", DebVersions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ofComponents(imgs, spec, "/m", []string{"nvidia-device-plugin"})
	if err != nil {
		t.Fatal(err)
	}
	want := versions.Latest().NvidiaDevicePluginImage()
	var im *Image
	for i := range got {
		if got[i].Ref() == want {
			im = &got[i]
		}
	}
	if im == nil {
		t.Fatalf("ofComponents(nvidia-device-plugin) has no %s", want)
	}
	bin := im.layers[len(im.layers)-1].files
	if len(bin) != 1 || bin[0].dst != "usr/bin/nvidia-device-plugin" || bin[0].src != "/m"+mirror.NvidiaDevicePluginPath(spec.NvidiaDevicePlugin) {
		t.Errorf("%s: binary layer %+v", want, bin)
	}
	if !slices.ContainsFunc(im.layers, func(l *layerSpec) bool { return l.name == "glibc" }) {
		t.Errorf("%s: no glibc layer (the binary is linked dynamically)", want)
	}
	if !slices.Equal(im.config.Entrypoint, []string{"nvidia-device-plugin"}) || !slices.Contains(im.config.Env, "NVIDIA_VISIBLE_DEVICES=all") ||
		!slices.Contains(im.config.Env, "NVIDIA_DRIVER_CAPABILITIES=compute,utility") || !slices.Contains(im.config.Env, defaultPath) {
		t.Errorf("%s: config %+v", want, im.config)
	}
	spec.NvidiaDevicePlugin = "v0.17.3"
	if _, err := Images(spec, "/m", "/b", DebVersions{}); err == nil || !strings.Contains(err.Error(), "nvidia-device-plugin") {
		t.Errorf("another release than the version table's: %v", err)
	}
}

// TestMonitoringImages: the monitoring stack's images are the references kk's version table
// names, each made of the mirror's binary of its component, which --components builds; a
// release other than the table's is refused.
func TestMonitoringImages(t *testing.T) {
	spec := mirror.DefaultSpec()
	imgs, err := Images(spec, "/m", "/b", DebVersions{})
	if err != nil {
		t.Fatal(err)
	}
	set := versions.Latest()
	for _, c := range []struct {
		component string
		refs      []string
		bins      []string // the mirror file of each ref's binary
		dsts      []string // where each lies in its image
	}{
		{"prometheus", []string{set.PrometheusImage()}, []string{mirror.PrometheusPath(spec.Prometheus)}, []string{"bin/prometheus"}},
		{"alertmanager", []string{set.AlertmanagerImage()}, []string{mirror.AlertmanagerPath(spec.Alertmanager)}, []string{"bin/alertmanager"}},
		{"node-exporter", []string{set.NodeExporterImage()}, []string{mirror.NodeExporterPath(spec.NodeExporter)}, []string{"bin/node_exporter"}},
		{"kube-state-metrics", []string{set.KubeStateMetricsImage()}, []string{mirror.KubeStateMetricsPath(spec.KubeStateMetrics)}, []string{"kube-state-metrics"}},
		{"prometheus-operator", []string{set.PrometheusOperatorImage(), set.PrometheusConfigReloaderImage()},
			[]string{mirror.PrometheusOperatorPath(spec.PrometheusOperator), mirror.PrometheusConfigReloaderPath(spec.PrometheusOperator)},
			[]string{"bin/operator", "bin/prometheus-config-reloader"}},
	} {
		got, err := ofComponents(imgs, spec, "/m", []string{c.component})
		if err != nil {
			t.Fatal(err)
		}
		var refs []string
		for _, im := range got {
			if !strings.HasPrefix(im.Repository, "registry.k8s.io/pause") && im.Repository != ProbeRepository {
				refs = append(refs, im.Ref())
			}
		}
		if !slices.Equal(refs, c.refs) {
			t.Errorf("--components %s builds %q, want %q", c.component, refs, c.refs)
			continue
		}
		for i, ref := range c.refs {
			im := got[slices.IndexFunc(got, func(im Image) bool { return im.Ref() == ref })]
			bin := im.layers[len(im.layers)-1].files
			if len(bin) != 1 || bin[0].dst != c.dsts[i] || bin[0].src != "/m"+c.bins[i] {
				t.Errorf("%s: binary layer %+v", ref, bin)
			}
			if !slices.Equal(im.config.Entrypoint[:1], []string{"/" + c.dsts[i]}) || im.config.User == "" {
				t.Errorf("%s: config %+v", ref, im.config)
			}
		}
	}
	for _, bad := range []func(*mirror.Spec){
		func(s *mirror.Spec) { s.Prometheus = "v3.15.0" },
		func(s *mirror.Spec) { s.Alertmanager = "v0.34.0" },
		func(s *mirror.Spec) { s.NodeExporter = "v1.11.1" },
		func(s *mirror.Spec) { s.KubeStateMetrics = "v2.19.1" },
		func(s *mirror.Spec) { s.PrometheusOperator = "v0.89.0" },
	} {
		s := mirror.DefaultSpec()
		bad(&s)
		if _, err := Images(s, "/m", "/b", DebVersions{}); err == nil || !strings.Contains(err.Error(), "artifacts/versions") {
			t.Errorf("another release than the version table's: %v", err)
		}
	}
	for _, want := range append(set.MonitoringImages(), set.AlertmanagerImage()) {
		if !slices.ContainsFunc(imgs, func(im Image) bool { return im.Ref() == want }) {
			t.Errorf("no image %s", want)
		}
	}
}

// TestLoggingImages: the logging's images are the references kk's version table names, each
// the mirror's binary of the victoria-logs component at upstream's path (/<program>-prod, the
// entrypoint); a release other than the table's is refused, and a spec without one has none.
func TestLoggingImages(t *testing.T) {
	spec := mirror.DefaultSpec()
	imgs, err := Images(spec, "/m", "/b", DebVersions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ofComponents(imgs, spec, "/m", []string{"victoria-logs"})
	if err != nil {
		t.Fatal(err)
	}
	set := versions.Latest()
	bins := map[string]string{set.VictoriaLogsImage(): mirror.VictoriaLogsPath(spec.VictoriaLogs), set.VLAgentImage(): mirror.VLAgentPath(spec.VictoriaLogs)}
	var refs []string
	for _, im := range got {
		if strings.HasPrefix(im.Repository, "registry.k8s.io/pause") || im.Repository == ProbeRepository {
			continue
		}
		refs = append(refs, im.Ref())
		bin := im.layers[len(im.layers)-1].files
		dst := path.Base(im.Repository) + "-prod"
		if len(bin) != 1 || bin[0].dst != dst || bin[0].src != "/m"+bins[im.Ref()] || bin[0].mode != 0o755 {
			t.Errorf("%s: binary layer %+v", im.Ref(), bin)
		}
		if !slices.Equal(im.config.Entrypoint, []string{"/" + dst}) || len(im.config.Ports) != 1 || !slices.Contains(im.requires, dst) {
			t.Errorf("%s: config %+v, requires %q", im.Ref(), im.config, im.requires)
		}
	}
	if want := set.LoggingImages(); !slices.Equal(refs, want) {
		t.Errorf("--components victoria-logs builds %q, want %q", refs, want)
	}
	s := mirror.DefaultSpec()
	s.VictoriaLogs = "v1.52.1"
	if _, err := Images(s, "/m", "/b", DebVersions{}); err == nil || !strings.Contains(err.Error(), "artifacts/versions") {
		t.Errorf("another release than the version table's: %v", err)
	}
	s.VictoriaLogs = ""
	none, err := Images(s, "/m", "/b", DebVersions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range set.LoggingImages() {
		if slices.ContainsFunc(none, func(im Image) bool { return im.Ref() == want }) {
			t.Errorf("a spec without VictoriaLogs has %s", want)
		}
	}
}

// TestChartMuseumImage: the app store's image is the reference kk's version table names, the
// mirror's chartmuseum binary as its entrypoint, run as upstream's user; --components
// chartmuseum builds it and another release than the table's is refused.
func TestChartMuseumImage(t *testing.T) {
	spec := mirror.DefaultSpec()
	imgs, err := Images(spec, "/m", "/b", DebVersions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ofComponents(imgs, spec, "/m", []string{"chartmuseum"})
	if err != nil {
		t.Fatal(err)
	}
	want := versions.Latest().ChartMuseumImage()
	var refs []string
	for _, im := range got {
		if !strings.HasPrefix(im.Repository, "registry.k8s.io/pause") && im.Repository != ProbeRepository {
			refs = append(refs, im.Ref())
		}
	}
	if !slices.Equal(refs, []string{want}) {
		t.Fatalf("--components chartmuseum builds %q, want %q", refs, want)
	}
	im := got[slices.IndexFunc(got, func(im Image) bool { return im.Ref() == want })]
	bin := im.layers[len(im.layers)-1].files
	if len(bin) != 1 || bin[0].dst != "chartmuseum" || bin[0].src != "/m"+mirror.ChartMuseumPath(spec.ChartMuseum) || bin[0].mode != 0o755 {
		t.Errorf("binary layer %+v", bin)
	}
	if !slices.Equal(im.config.Entrypoint, []string{"/chartmuseum"}) || im.config.User != "1000:1000" {
		t.Errorf("config %+v", im.config)
	}
	s := mirror.DefaultSpec()
	s.ChartMuseum = "v0.16.2"
	if _, err := Images(s, "/m", "/b", DebVersions{}); err == nil || !strings.Contains(err.Error(), "artifacts/versions") {
		t.Errorf("another release than the version table's: %v", err)
	}
	s.ChartMuseum = ""
	if imgs, err := Images(s, "/m", "/b", DebVersions{}); err != nil || slices.ContainsFunc(imgs, func(im Image) bool { return im.Ref() == want }) {
		t.Errorf("no chartmuseum release in the spec: %v, or its image is still made", err)
	}
}
