package versions

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestForKnownMinors(t *testing.T) {
	for _, minor := range Supported() {
		s, err := For(minor + ".3")
		if err != nil {
			t.Fatal(err)
		}
		wantCrictl := "v1.37.0" // one crictl (a CRI v1 client) for every minor
		if s.Kubernetes != minor+".3" || s.Crictl != wantCrictl {
			t.Errorf("%s: %+v", minor, s)
		}
		for name, v := range map[string]string{"etcd": s.Etcd, "etcd image": s.EtcdImage, "coredns": s.CoreDNS, "pause": s.Pause,
			"cni": s.CNI, "containerd": s.Containerd, "runc": s.Runc, "docker": s.Docker, "cri-dockerd": s.CriDockerd, "helm": s.Helm} {
			if v == "" {
				t.Errorf("%s: no %s version", minor, name)
			}
		}
		// The stacked etcd image is kubeadm's tag: "X.Y.Z-N".
		if !regexp.MustCompile(`^3\.\d+\.\d+-\d+$`).MatchString(s.EtcdImage) {
			t.Errorf("%s: etcd image tag %s", minor, s.EtcdImage)
		}
	}
}

func TestForRejects(t *testing.T) {
	for _, v := range []string{"v1.20.1", "v2.0.0", "latest", ""} {
		if _, err := For(v); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
	_, err := For("v1.99.0")
	if err == nil || !strings.Contains(err.Error(), "v1.37") {
		t.Errorf("error does not list the supported minors: %v", err)
	}
}

func TestImages(t *testing.T) {
	s, err := For("1.34.1")
	if err != nil {
		t.Fatal(err)
	}
	imgs := s.KubeImages(true)
	for _, want := range []string{"registry.k8s.io/kube-apiserver:v1.34.1", "registry.k8s.io/kube-proxy:v1.34.1",
		"registry.k8s.io/pause:3.10.1", "registry.k8s.io/coredns/coredns:v1.12.1"} {
		if !slices.Contains(imgs, want) {
			t.Errorf("missing %s in %v", want, imgs)
		}
	}
	if slices.ContainsFunc(s.KubeImages(false), func(i string) bool { return strings.Contains(i, "kube-proxy") }) {
		t.Error("kube-proxy listed without proxy")
	}
	for _, p := range []string{"calico", "flannel", "cilium", "kubeovn", "hybridnet"} {
		if imgs, err := s.CNIImages(p); err != nil || len(imgs) == 0 {
			t.Errorf("%s: %v %v", p, imgs, err)
		}
	}
	if imgs, err := s.CNIImages("none"); err != nil || imgs != nil {
		t.Errorf("none: %v %v", imgs, err)
	}
	if _, err := s.CNIImages("weave"); err == nil {
		t.Error("unknown plugin accepted")
	}
	if Latest().Kubernetes != "v1.37.0" {
		t.Errorf("latest %s", Latest().Kubernetes)
	}
}

// TestSupportedRange locks the range users run: every minor from v1.28 to v1.37, with no gap.
func TestSupportedRange(t *testing.T) {
	got := Supported()
	if len(got) != 10 || got[0] != "v1.37" || got[len(got)-1] != "v1.28" || Newest() != "v1.37" || Oldest() != "v1.28" {
		t.Fatalf("supported %v (oldest %s, newest %s)", got, Oldest(), Newest())
	}
	for i := 1; i < len(got); i++ {
		a, _ := Minor(got[i-1])
		b, _ := Minor(got[i])
		if a != b+1 {
			t.Errorf("gap between %s and %s", got[i-1], got[i])
		}
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]Version{"v1.37.2": {1, 37, 2}, "1.30.14": {1, 30, 14}, "v1.38.0-beta.0": {1, 38, 0}} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("%s: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"v1.30", "latest", "v1.x.0", ""} {
		if _, err := Parse(in); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
	if v, _ := Parse("v1.30.14"); v.AtLeast(1, 31) || !v.AtLeast(1, 30) || !v.Less(Version{1, 31, 0}) {
		t.Errorf("ordering of %v", v)
	}
}

// TestMonitoringImages: the monitoring stack's images are upstream's references, tagged with the
// releases of DefaultAddons (the config reloader with the operator's).
func TestMonitoringImages(t *testing.T) {
	s := Latest()
	want := []string{
		"quay.io/prometheus-operator/prometheus-operator:" + s.Addons.PrometheusOperator,
		"quay.io/prometheus-operator/prometheus-config-reloader:" + s.Addons.PrometheusOperator,
		"quay.io/prometheus/prometheus:" + s.Addons.Prometheus,
		"quay.io/prometheus/node-exporter:" + s.Addons.NodeExporter,
		"registry.k8s.io/kube-state-metrics/kube-state-metrics:" + s.Addons.KubeStateMetrics,
	}
	if got := s.MonitoringImages(); !slices.Equal(got, want) {
		t.Errorf("MonitoringImages() = %q, want %q", got, want)
	}
	for name, v := range map[string]string{"prometheus": s.Addons.Prometheus, "alertmanager": s.Addons.Alertmanager, "node-exporter": s.Addons.NodeExporter,
		"kube-state-metrics": s.Addons.KubeStateMetrics, "prometheus-operator": s.Addons.PrometheusOperator} {
		if _, err := Parse(v); err != nil || !strings.HasPrefix(v, "v") {
			t.Errorf("%s: tag %q is not vX.Y.Z", name, v)
		}
	}
}

// TestLoggingImages: the logging's images are upstream's references on Docker Hub, tagged with
// DefaultAddons' releases, and the store and its collector come from one release (one module
// is built for both).
func TestLoggingImages(t *testing.T) {
	s := Latest()
	want := []string{
		"docker.io/victoriametrics/victoria-logs:" + s.Addons.VictoriaLogs,
		"docker.io/victoriametrics/vlagent:" + s.Addons.VLAgent,
	}
	if got := s.LoggingImages(); !slices.Equal(got, want) {
		t.Errorf("LoggingImages() = %q, want %q", got, want)
	}
	if _, err := Parse(s.Addons.VictoriaLogs); err != nil || !strings.HasPrefix(s.Addons.VictoriaLogs, "v") {
		t.Errorf("victoria-logs: tag %q is not vX.Y.Z", s.Addons.VictoriaLogs)
	}
	if s.Addons.VLAgent != s.Addons.VictoriaLogs {
		t.Errorf("vlagent %s and victoria-logs %s: upstream releases them together", s.Addons.VLAgent, s.Addons.VictoriaLogs)
	}
}

// TestChartMuseumImage: the app store's repository is upstream's image under ghcr.io, tagged
// with the release of DefaultAddons (a vX.Y.Z tag, as upstream tags its images).
func TestChartMuseumImage(t *testing.T) {
	s := Latest()
	if v := s.Addons.ChartMuseum; !strings.HasPrefix(v, "v") {
		t.Fatalf("ChartMuseum tag %q is not vX.Y.Z", v)
	} else if _, err := Parse(v); err != nil {
		t.Fatalf("ChartMuseum tag %q: %v", v, err)
	}
	if got, want := s.ChartMuseumImage(), "ghcr.io/helm/chartmuseum:"+s.Addons.ChartMuseum; got != want {
		t.Errorf("ChartMuseumImage() = %q, want %q", got, want)
	}
	for _, minor := range []string{"v1.28.15", "v1.37.2"} {
		set, err := For(minor)
		if err != nil {
			t.Fatal(err)
		}
		if set.ChartMuseumImage() != s.ChartMuseumImage() {
			t.Errorf("Kubernetes %s runs %s, the newest %s: the add-on does not depend on the minor", minor, set.ChartMuseumImage(), s.ChartMuseumImage())
		}
	}
}

// TestLocalStorageImages: the local storage's images are kk's driver and the storage SIG's
// references, tagged with the releases of DefaultAddons (the snapshot-controller with the
// snapshotter's), each named once.
func TestLocalStorageImages(t *testing.T) {
	s := Latest()
	a := s.Addons
	want := []string{
		"ghcr.io/kk-project/kk-local-csi:" + a.LocalCSI,
		"registry.k8s.io/sig-storage/csi-provisioner:" + a.CSIProvisioner,
		"registry.k8s.io/sig-storage/csi-snapshotter:" + a.CSISnapshotter,
		"registry.k8s.io/sig-storage/csi-resizer:" + a.CSIResizer,
		"registry.k8s.io/sig-storage/snapshot-controller:" + a.CSISnapshotter,
	}
	got := s.LocalStorageImages()
	if !slices.Equal(got, want) {
		t.Errorf("LocalStorageImages() = %q, want %q", got, want)
	}
	if len(slices.Compact(slices.Sorted(slices.Values(got)))) != len(got) {
		t.Errorf("LocalStorageImages() names an image twice: %q", got)
	}
	for name, v := range map[string]string{"kk-local-csi": a.LocalCSI,
		"csi-provisioner": a.CSIProvisioner, "csi-snapshotter": a.CSISnapshotter, "csi-resizer": a.CSIResizer} {
		if _, err := Parse(v); err != nil || !strings.HasPrefix(v, "v") {
			t.Errorf("%s: tag %q is not vX.Y.Z", name, v)
		}
	}
}
