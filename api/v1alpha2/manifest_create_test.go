package v1alpha2

import (
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/catalog"
	"github.com/kk-project/kk/artifacts/versions"
)

func TestNewManifestRoundTrip(t *testing.T) {
	c, _, errs := parse(t, base+`  controlPlaneEndpoint: {internalLoadbalancer: haproxy}
  kubernetes: {version: v1.33.2}
  etcd: {type: kubeadm}
`)
	if errs != nil {
		t.Fatal(errs)
	}
	c.Hosts[2].Arch = "arm64"
	m, err := NewManifest(c)
	if err != nil {
		t.Fatal(err)
	}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, w, err := ParseManifest("out.yaml", data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if len(w) != 0 {
		t.Errorf("warnings on kk's own manifest: %v", w)
	}
	if !slices.Equal(back.Spec.Arches, []string{"amd64", "arm64"}) {
		t.Errorf("arches %v", back.Spec.Arches)
	}
	comps := back.Components()
	for _, want := range []string{"kubeadm", "kubelet", "kubectl", "containerd", "runc", "crictl", "cni-plugins"} {
		if !slices.ContainsFunc(comps, func(c catalog.Component) bool { return c.Name == want && c.Arch == "arm64" }) {
			t.Errorf("no %s for arm64 in %v", want, comps)
		}
	}
	if slices.ContainsFunc(comps, func(c catalog.Component) bool { return c.Name == "helm" || c.Name == "calicoctl" }) {
		t.Errorf("helm or calicoctl listed, which kk does not install: %v", comps)
	}
	if slices.ContainsFunc(comps, func(c catalog.Component) bool { return c.Name == "etcd" }) {
		t.Error("etcd binary listed for a stacked (kubeadm) etcd")
	}
	imgs := strings.Join(back.Images(), "\n")
	set, err := versions.For("v1.33.2")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"registry.k8s.io/kube-apiserver:v1.33.2", "registry.k8s.io/pause:3.10\n", set.EtcdImageRef(),
		"registry.k8s.io/coredns/coredns:v1.12.0", "docker.io/calico/node:", "docker.io/library/haproxy:", "k8s-dns-node-cache"} {
		if !strings.Contains(imgs+"\n", want) {
			t.Errorf("missing %s in\n%s", want, imgs)
		}
	}
	if !strings.HasPrefix(string(data), "# kk Manifest") || !strings.Contains(string(data), "kind: Manifest") {
		t.Errorf("output:\n%s", data)
	}
}

func TestNewManifestDockerFlannelBinaryEtcd(t *testing.T) {
	c, _, errs := parse(t, base+`  kubernetes: {version: v1.30.1, containerManager: docker}
  network: {plugin: flannel}
`)
	if errs != nil {
		t.Fatal(errs)
	}
	m, err := NewManifest(c)
	if err != nil {
		t.Fatal(err)
	}
	comps := m.Components()
	for _, want := range []string{"docker", "cri-dockerd", "etcd"} {
		if !slices.ContainsFunc(comps, func(c catalog.Component) bool { return c.Name == want }) {
			t.Errorf("no %s in %v", want, comps)
		}
	}
	if slices.ContainsFunc(comps, func(c catalog.Component) bool { return c.Name == "runc" || c.Name == "calicoctl" }) {
		t.Errorf("runc or calicoctl listed: %v", comps)
	}
	imgs := strings.Join(m.Images(), " ")
	if !strings.Contains(imgs, "/flannel:") || strings.Contains(imgs, "calico") || strings.Contains(imgs, "registry.k8s.io/etcd") {
		t.Errorf("images %s", imgs)
	}
	// docker and cri-dockerd publish no checksums: the header asks for them, once
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "# containerRuntimes docker and cri-dockerd: their releases publish no checksum file"); n != 1 {
		t.Errorf("the header asks %d times for docker's checksums:\n%s", n, data)
	}
}

func TestNewManifestUnknownKubernetesMinor(t *testing.T) {
	c, _, errs := parse(t, base+"  kubernetes: {version: v1.19.3}\n")
	if errs != nil {
		t.Fatal(errs)
	}
	if _, err := NewManifest(c); err == nil || !strings.Contains(err.Error(), "no version table for v1.19") || !strings.Contains(err.Error(), "test.yaml") {
		t.Errorf("%v", err)
	}
}

// calico with typha bundles calico-typha's image, the one kk's manifest deploys.
func TestNewManifestCalicoTypha(t *testing.T) {
	c := &config.Cluster{Name: "t", Hosts: []*config.Host{{Name: "n1", Arch: "amd64"}}}
	c.Kubernetes.Version = "v1.37.2"
	c.Network.Plugin = "calico"
	m, err := NewManifest(c)
	if err != nil {
		t.Fatal(err)
	}
	typha := versions.Latest().CalicoTyphaImage()
	if slices.Contains(m.Spec.Images, typha) {
		t.Errorf("typha listed while off: %v", m.Spec.Images)
	}
	c.Network.Calico.Typha = true
	if m, err = NewManifest(c); err != nil || !slices.Contains(m.Spec.Images, typha) {
		t.Errorf("typha on: %v %v", err, m.Spec.Images)
	}
}

// The ClusterConfiguration's metrics_server, gateway and logging switches bundle their images.
func TestNewManifestPlatform(t *testing.T) {
	c := &config.Cluster{Name: "t", Hosts: []*config.Host{{Name: "n1", Arch: "amd64"}}}
	c.Kubernetes.Version = "v1.37.2"
	c.Network.Plugin = "flannel"
	ms := versions.Latest().MetricsServerImage()
	m, err := NewManifest(c)
	if err != nil || slices.Contains(m.Spec.Images, ms) {
		t.Errorf("metrics-server listed while off: %v %v", err, m.Spec.Images)
	}
	gw := versions.Latest().TraefikImage()
	if slices.Contains(m.Spec.Images, gw) {
		t.Errorf("traefik listed while the gateway is off: %v", m.Spec.Images)
	}
	logging := versions.Latest().LoggingImages()
	for _, img := range logging {
		if slices.Contains(m.Spec.Images, img) {
			t.Errorf("%s listed while logging is off: %v", img, m.Spec.Images)
		}
	}
	c.Platform.MetricsServer, c.Platform.Gateway, c.Platform.Logging = true, true, true
	if m, err = NewManifest(c); err != nil || !slices.Contains(m.Spec.Images, ms) || !slices.Contains(m.Spec.Images, gw) {
		t.Errorf("metrics-server and gateway on: %v %v", err, m.Spec.Images)
	}
	for _, img := range logging {
		if !slices.Contains(m.Spec.Images, img) {
			t.Errorf("logging on: %s not listed in %v", img, m.Spec.Images)
		}
	}
}

// TestNewManifestNvidiaDriver: spec.gpu.driver.version puts NVIDIA's installer in the Manifest
// for every arch, with the header asking for its checksum; the written Manifest reads back.
func TestNewManifestNvidiaDriver(t *testing.T) {
	c, _, errs := parse(t, base+"  gpu:\n    driver:\n      version: 570.195.03\n")
	if errs != nil {
		t.Fatal(errs)
	}
	if c.GPU.DriverVersion != "570.195.03" {
		t.Fatalf("spec.gpu.driver.version not converted: %+v", c.GPU)
	}
	m, err := NewManifest(c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(m.Components(), catalog.Component{Name: catalog.NvidiaDriver, Version: "570.195.03", Arch: "amd64"}) {
		t.Errorf("no nvidia-driver in %v", m.Components())
	}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "pin the sha256 of NVIDIA-Linux-<arch>-570.195.03.run in spec.checksums") ||
		!strings.Contains(string(data), "nvidia-driver:\n      version: 570.195.03") ||
		!strings.Contains(string(data), "pin the sha256 of nvidia-container-toolkit_1.20.2_deb_<arch>.tar.gz") ||
		!strings.Contains(string(data), "nvidia-container-toolkit:\n      version: v1.20.2") {
		t.Errorf("manifest:\n%s", data)
	}
	back, _, err := ParseManifest("m.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if back.Spec.Components.NvidiaDriver.Version != "570.195.03" || back.Spec.Components.NvidiaContainerToolkit.Version != "v1.20.2" {
		t.Errorf("read back: %+v", back.Spec.Components)
	}
	// without spec.gpu, neither the components nor the headers
	c.GPU = config.GPU{}
	m, _ = NewManifest(c)
	if data, _ := m.Marshal(); strings.Contains(string(data), "nvidia") {
		t.Errorf("a manifest without spec.gpu names nvidia:\n%s", data)
	}
}
