package v1alpha2

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/api/config"
)

// loadNoDisk loads a file without the checks that look at the local disk.
func loadNoDisk(t *testing.T, path string) (*config.Cluster, Warnings) {
	t.Helper()
	c, w, err := LoadWithOptions(path, ParseOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatalf("%s:\n%v", path, err)
	}
	return c, w
}

// TestKubeKeyFixtures loads files written in KubeKey's own format.
func TestKubeKeyFixtures(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) < 5 {
		t.Fatalf("fixtures missing: %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { loadNoDisk(t, f) })
	}
}

func TestFixtureMasterRoleAndKubeSphereDocument(t *testing.T) {
	c, w := loadNoDisk(t, "testdata/kubekey-master.yaml")
	if cp := c.FirstControlPlane(); cp == nil || cp.Name != "master1" || !cp.Has(config.RoleEtcd) {
		t.Errorf("master not read as control plane: %+v", cp)
	}
	if c.Host("node1").User != "ubuntu" || c.Kubernetes.ContainerManager != "docker" || !c.Kubernetes.AutoRenewCerts {
		t.Errorf("values: %+v %+v", c.Host("node1"), c.Kubernetes)
	}
	if c.Kubernetes.ContainerRuntimeEndpoint != DefaultCriDockerdEndpoint {
		t.Errorf("docker endpoint %q", c.Kubernetes.ContainerRuntimeEndpoint)
	}
	// ks-installer's document is read: nothing switched on, what kk does not install warned
	// about by name at its line
	if c.Platform.MetricsServer || c.Platform.Source != "testdata/kubekey-master.yaml:49" {
		t.Errorf("platform %+v", c.Platform)
	}
	for _, want := range []string{
		"kubekey-master.yaml:54: ClusterConfiguration metadata.labels: the KubeSphere release",
		"kubekey-master.yaml:68: ClusterConfiguration spec.common: KubeSphere's core",
		"kubekey-master.yaml:65: ClusterConfiguration spec.etcd.endpointIps: kk scrapes every etcd member of the Cluster's",
	} {
		if !hasWarning(w, want) {
			t.Errorf("no warning %q in:\n%s", want, strings.Join(w, "\n"))
		}
	}
	if hasWarning(w, "spec.zone") || hasWarning(w, "spec.persistence") || hasWarning(w, "spec.devops") {
		t.Errorf("warnings about empty settings or switches that are off:\n%s", strings.Join(w, "\n"))
	}
}

func TestFixtureRegistry(t *testing.T) {
	c, _ := loadNoDisk(t, "testdata/kubekey-registry.yaml")
	if r := c.HostsWithRole(config.RoleRegistry); len(r) != 1 || r[0].Name != "registry1" {
		t.Errorf("registry hosts %v", r)
	}
	a, ok := c.Registry.Auths["dockerhub.kubekey.local"]
	if !ok || a.Username != "admin" || !a.SkipTLSVerify || a.CertsPath == "" {
		t.Errorf("auths %+v", c.Registry.Auths)
	}
	if c.Registry.PrivateRegistry != "dockerhub.kubekey.local" || c.Registry.NamespaceOverride != "kubesphereio" || c.Registry.Type != "registry" {
		t.Errorf("registry %+v", c.Registry)
	}
}

func TestFixtureAddons(t *testing.T) {
	c, _ := loadNoDisk(t, "testdata/kubekey-addons.yaml")
	if len(c.Addons) != 3 {
		t.Fatalf("addons %d", len(c.Addons))
	}
	ch := c.Addons[0].Sources.Chart
	if ch.Name != "nfs-client-provisioner" || ch.Repo == "" || len(ch.Values) != 3 || ch.ValuesFile == "" {
		t.Errorf("chart %+v", ch)
	}
	if c.Addons[1].Sources.Chart.Path != "/root/charts/demo" || c.Addons[1].Retries != 3 || !c.Addons[1].Sources.Chart.Wait {
		t.Errorf("local chart %+v", c.Addons[1])
	}
	if y := c.Addons[2].Sources.Yaml.Path; len(y) != 2 {
		t.Errorf("yaml %v", y)
	}
}

func TestFixtureCalico(t *testing.T) {
	c, _ := loadNoDisk(t, "testdata/kubekey-calico.yaml")
	if n := c.Network.Calico; n.IPIPMode != "Always" || n.VXLANMode != "Never" || !n.IPv4NatOutgoing || !n.DefaultIPPool {
		t.Errorf("calico %+v", n)
	}
	h := c.Host("node1")
	if h.Port != 8022 || len(c.HostsWithRole(config.RoleControlPlane)) != 3 {
		t.Errorf("node1 %+v", h)
	}
	if c.Host("node3").Arch != "arm64" || c.Host("node3").Timeout.Seconds() != 60 || c.Host("node2").Labels["disk"] != "SSD" {
		t.Error("host fields lost")
	}
	k := c.Kubernetes
	if k.ProxyMode != "ipvs" || !k.FeatureGates["TTLAfterFinished"] || k.KubeProxyConfiguration["ipvs"] == nil ||
		len(k.KubeletArgs) != 1 || len(k.ApiserverCertExtraSans) != 2 || k.KubeletConfiguration["maxParallelImagePulls"] == nil {
		t.Errorf("kubernetes %+v", k)
	}
	if c.Etcd.HeartbeatInterval != 250 || c.Etcd.QuotaBackendBytes != 2147483648 || c.Etcd.Metrics != "basic" {
		t.Errorf("etcd %+v", c.Etcd)
	}
	s := c.System
	if len(s.NTPServers) != 3 || s.Timezone != "Asia/Shanghai" || len(s.PreInstall) != 1 || !strings.Contains(s.PostInstall[0].Bash, "rm -fr") {
		t.Errorf("system %+v", s)
	}
	if len(c.DNS.CoreDNS.ExternalZones) != 1 || c.DNS.CoreDNS.ExternalZones[0].Cache != 300 || c.DNS.DNSEtcHosts == "" {
		t.Errorf("dns %+v", c.DNS)
	}
	if c.ControlPlaneEndpoint.InternalLoadbalancer != "haproxy" {
		t.Errorf("endpoint %+v", c.ControlPlaneEndpoint)
	}
}

// TestFixtureKubeOVN: kk reads KubeKey's whole kubeovn section, and refuses the plugin
// itself (kk cannot install it) at its line: that is the file's only error.
func TestFixtureKubeOVN(t *testing.T) {
	const f = "testdata/refused/kubekey-kubeovn.yaml"
	c, _, err := LoadWithOptions(f, ParseOptions{SkipFileChecks: true})
	var errs ErrorList
	if c != nil || !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("want exactly one error, got cluster %v, error %v", c != nil, err)
	}
	if got, want := errs[0].Error(), f+":16: spec.network.plugin: network plugin kubeovn is not supported by kk yet"; !strings.HasPrefix(got, want) {
		t.Errorf("error %q, want prefix %q", got, want)
	}
}

// TestExamples loads every kind: Cluster file of examples/.
func TestExamples(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "\nkind: Cluster\n") {
			continue
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, w := loadNoDisk(t, f)
			for _, x := range w {
				t.Logf("warning: %s", x)
			}
		})
	}
	if n < 4 {
		t.Errorf("only %d Cluster examples found", n)
	}
}

// The platform example switches on every component kk serves, with nothing warned about.
func TestExamplePlatform(t *testing.T) {
	c, w := loadNoDisk(t, "../../examples/platform.yaml")
	if len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
	p := c.Platform
	if !p.AppStore || len(p.StoreCharts) != 1 || p.StoreCharts[0].Path != "../../examples/charts/hello" {
		t.Errorf("app store %v, charts %+v", p.AppStore, p.StoreCharts)
	}
	if !p.LocalStorage || !p.MetricsServer || !p.Gateway || len(p.Workspaces) != 2 ||
		p.Workspaces[0].Quota["requests.nvidia.com/gpu"] != "4" || c.Storage.LocalVolumes() != "/data/local-volumes" ||
		!p.Monitoring.Enabled || !p.Monitoring.Etcd || !p.Alerting.Enabled || len(p.Alerting.Receivers) != 1 || !p.Logging {
		t.Errorf("platform %+v", p)
	}
}

func TestExampleHA(t *testing.T) {
	c, w := loadNoDisk(t, "../../examples/ha-3cp-2w.yaml")
	if len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
	if len(c.HostsWithRole(config.RoleControlPlane)) != 3 || len(c.HostsWithRole(config.RoleEtcd)) != 3 ||
		len(c.HostsWithRole(config.RoleWorker)) != 2 || c.ControlPlaneEndpoint.InternalLoadbalancer != "haproxy" {
		t.Errorf("ha layout wrong")
	}
}

// KubeSphere 3.4's whole ClusterConfiguration with metrics_server on: loads, metrics-server on,
// what kk does not install warned about.
func TestFixtureKubeSphere34(t *testing.T) {
	c, w := loadNoDisk(t, "testdata/kubekey-kubesphere.yaml")
	// KubeSphere always installs its monitoring: the document's monitoring section turns kk's on
	if m := c.Platform.Monitoring; !c.Platform.MetricsServer || !m.Enabled || m.Etcd || m.NodeExporterPort != 9100 || c.Platform.Alerting.Enabled {
		t.Errorf("platform %+v", c.Platform)
	}
	for _, want := range []string{"spec.common:", "spec.terminal:", "spec.etcd.endpointIps:"} {
		if !hasWarning(w, "ClusterConfiguration "+want) {
			t.Errorf("no warning for %s in:\n%s", want, strings.Join(w, "\n"))
		}
	}
}

// The GPU example installs the driver it names, with nothing warned about, and its Manifest
// carries NVIDIA's installer.
func TestExampleGPU(t *testing.T) {
	c, w := loadNoDisk(t, "../../examples/gpu-workers.yaml")
	if len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
	if c.GPU.DriverVersion != "570.195.03" || !c.GPU.Toolkit || c.GPU.DefaultRuntime || !c.GPU.DevicePlugin || c.GPU.TimeSlicingReplicas != 2 {
		t.Errorf("gpu %+v", c.GPU)
	}
	m, err := NewManifest(c)
	if err != nil {
		t.Fatal(err)
	}
	if m.Spec.Components.NvidiaDriver.Version != "570.195.03" || m.Spec.Components.NvidiaContainerToolkit.Version != "v1.20.2" {
		t.Errorf("manifest components %+v", m.Spec.Components)
	}
	if !slices.Contains(m.Spec.Images, "nvcr.io/nvidia/k8s-device-plugin:v0.17.4") {
		t.Errorf("manifest images %v, want the device plugin's", m.Spec.Images)
	}
}
