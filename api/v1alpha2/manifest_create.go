package v1alpha2

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/charts"
	"github.com/kk-project/kk/artifacts/versions"
)

// NewManifest returns the Manifest cluster c needs to be installed offline: the Kubernetes
// binaries of its version, etcd (when kk runs it as binaries), the container runtime (containerd
// with runc, or docker with cri-dockerd), crictl, the CNI plugins,
// and the images: kube-*, pause, CoreDNS, etcd (stacked), nodelocaldns, the network plugin's
// images, haproxy or kube-vip for the internal load balancer. The versions that go with the
// Kubernetes version come from kk's table (artifacts/versions). Arches are the hosts' arches.
func NewManifest(c *config.Cluster) (*Manifest, error) {
	set, err := versions.For(c.Kubernetes.Version)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c, err)
	}
	m := &Manifest{
		APIVersion: APIVersion,
		Kind:       ManifestKind,
		Metadata:   ManifestMeta{Name: c.Name},
	}
	s := &m.Spec
	s.Arches = c.Arches()
	s.KubernetesDistributions = []KubernetesDistribution{{Type: DistributionKubernetes, Version: set.Kubernetes}}
	comps := &s.Components
	comps.CNI.Version = set.CNI
	comps.Crictl.Version = set.Crictl
	if len(c.HostsWithRole(config.RoleRegistry)) > 0 {
		comps.DockerRegistry.Version = DefaultRegistryVersion // kk init registry runs it
	}
	if c.Etcd.Type == config.EtcdKubeKey {
		comps.Etcd.Version = set.Etcd
	}
	switch c.Kubernetes.ContainerManager {
	case RuntimeDocker:
		comps.ContainerRuntimes = []ContainerRuntime{{Type: RuntimeDocker, Version: set.Docker}}
		comps.CriDockerd.Version = set.CriDockerd
	default:
		comps.ContainerRuntimes = []ContainerRuntime{{Type: RuntimeContainerd, Version: set.Containerd}}
		comps.Runc.Version = set.Runc
	}
	comps.NvidiaDriver.Version = c.GPU.DriverVersion
	if c.GPU.Toolkit {
		comps.NvidiaContainerToolkit.Version = c.GPU.ToolkitRelease(set)
	}
	// helm and calicoctl are left out: kk installs charts with the helm SDK from the machine it
	// runs on and puts neither program on the hosts (a Manifest listing them still bundles
	// them).
	plugin := strings.ToLower(c.Network.Plugin)
	imgs, err := clusterImages(c, set, plugin)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c, err)
	}
	s.Images = imgs
	return m, nil
}

// StoreCharts are the Manifest entries (spec.charts) of the charts cluster c loads its app
// store with (spec.openpitrix.store.charts): each chart is read from the disk for its name and
// version, its path written relative to dir, the folder of the Manifest file written ("": as
// absolute paths). A chart that is not there or does not load is an error at its FILE:LINE in
// the Cluster file, all of them together.
func StoreCharts(c *config.Cluster, dir string) ([]ManifestChart, error) {
	if !c.Platform.AppStore {
		return nil, nil
	}
	var out []ManifestChart
	var errs []error
	seen := map[charts.Chart]string{}
	for _, lc := range c.Platform.StoreCharts {
		ch, err := charts.Inspect(lc.Path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %sspec.openpitrix.store.charts: %w", lc.Source, ccPrefix, err))
			continue
		}
		if first, dup := seen[ch]; dup {
			errs = append(errs, fmt.Errorf("%s: %sspec.openpitrix.store.charts: %s is chart %s, as %s is", lc.Source, ccPrefix, lc.Path, ch, first))
			continue
		}
		seen[ch] = lc.Path
		p := lc.Path
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		if dir != "" {
			if d, err := filepath.Abs(dir); err == nil {
				if rel, err := filepath.Rel(d, p); err == nil {
					p = rel
				}
			}
		}
		out = append(out, ManifestChart{Name: ch.Name, Version: ch.Version, Path: filepath.ToSlash(p), File: lc.Path, Source: lc.Source})
	}
	return out, errors.Join(errs...)
}

// ManifestFor describes a cluster kk has no Cluster file for: a Kubernetes version alone
// (kk create manifest --with-kubernetes) or what a running cluster reports (--kubeconfig).
// Empty fields take the Cluster file defaults.
type ManifestFor struct {
	Name              string   // metadata.name (default "sample")
	KubernetesVersion string   // vX.Y.Z (default DefaultKubernetesVersion)
	Arches            []string // the nodes' arches (default amd64)
	ContainerManager  string   // containerd or docker
	NetworkPlugin     string   // spec.network.plugin
	EtcdType          string   // spec.etcd.type
	Registry          bool     // the registry program kk init registry runs, too
	LocalStorage      bool     // the images of the platform's local storage, too
	Images            []string // more images, after the ones kk's table gives (a running cluster's)
}

// NewManifestFor is NewManifest of the cluster o describes, with every other setting at
// its default: one host per arch, the first one etcd and control plane. o.Images follow the
// table's images, without duplicates.
func NewManifestFor(o ManifestFor) (*Manifest, error) {
	setStr(&o.Name, "sample")
	obj := &Cluster{APIVersion: APIVersion, Kind: Kind, Metadata: ObjectMeta{Name: o.Name}}
	s := &obj.Spec
	s.Kubernetes.Version, s.Kubernetes.ContainerManager = o.KubernetesVersion, o.ContainerManager
	s.Network.Plugin, s.Etcd.Type = o.NetworkPlugin, o.EtcdType
	s.RoleGroups = map[string][]string{}
	arches := o.Arches
	if len(arches) == 0 {
		arches = []string{DefaultArch}
	}
	for _, a := range arches {
		n := "node-" + a
		if slices.ContainsFunc(s.Hosts, func(h HostCfg) bool { return h.Name == n }) {
			continue
		}
		s.Hosts = append(s.Hosts, HostCfg{Name: n, Address: fmt.Sprintf("127.0.0.%d", len(s.Hosts)+1), Arch: a})
		s.RoleGroups["worker"] = append(s.RoleGroups["worker"], n)
	}
	s.RoleGroups["etcd"] = []string{s.Hosts[0].Name}
	s.RoleGroups["control-plane"] = []string{s.Hosts[0].Name}
	source := "manifest " + o.Name
	rep := &report{file: source, lines: lineIndex{}}
	c := build(obj, source, ParseOptions{SkipFileChecks: true}, rep)
	if err := rep.err(); err != nil {
		return nil, err
	}
	c.Platform.LocalStorage = o.LocalStorage
	m, err := NewManifest(c)
	if err != nil {
		return nil, err
	}
	if o.Registry {
		m.Spec.Components.DockerRegistry.Version = DefaultRegistryVersion
	}
	m.Spec.Images = append(m.Spec.Images, o.Images...)
	m.Spec.Images = m.Images()
	return m, nil
}

func clusterImages(c *config.Cluster, set versions.Set, plugin string) ([]string, error) {
	imgs := set.KubeImages(!c.Kubernetes.DisableKubeProxy)
	if c.Etcd.Type == config.EtcdKubeadm {
		imgs = append(imgs, set.EtcdImageRef())
	}
	if c.Kubernetes.NodeLocalDNS {
		imgs = append(imgs, set.NodeLocalDNSImage())
	}
	cni, err := set.CNIImages(plugin)
	if err != nil {
		return nil, err
	}
	imgs = append(imgs, cni...)
	if plugin == "calico" && c.Network.Calico.Typha {
		imgs = append(imgs, set.CalicoTyphaImage())
	}
	if c.Network.MultusCNI {
		imgs = append(imgs, set.MultusImage())
	}
	switch c.ControlPlaneEndpoint.InternalLoadbalancer {
	case config.LoadBalancerHAProxy:
		imgs = append(imgs, set.HAProxyImage())
	case config.LoadBalancerKubeVIP:
		imgs = append(imgs, set.KubeVIPImage())
	}
	// the platform phase's components that run images (modules/platform's catalogue, whose
	// test holds this list to it: this package is below the pipeline that package needs)
	if c.Platform.LocalStorage {
		imgs = append(imgs, set.LocalStorageImages()...)
	}
	if c.Platform.MetricsServer {
		imgs = append(imgs, set.MetricsServerImage())
	}
	if c.Platform.Monitoring.Enabled {
		imgs = append(imgs, set.MonitoringImages()...)
	}
	if c.Platform.Alerting.Enabled {
		imgs = append(imgs, set.AlertmanagerImage())
	}
	if c.Platform.Logging {
		imgs = append(imgs, set.LoggingImages()...)
	}
	if c.Platform.Gateway {
		imgs = append(imgs, set.TraefikImage())
	}
	if c.Platform.AppStore {
		imgs = append(imgs, set.ChartMuseumImage())
	}
	if c.GPU.DevicePlugin {
		imgs = append(imgs, set.NvidiaDevicePluginImage())
	}
	return imgs, nil
}

// Marshal writes the manifest as YAML, fields in KubeKey's order, with a header comment.
func (m *Manifest) Marshal() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# kk Manifest: what an offline bundle holds (kk artifact export -m FILE -o bundle.tar.gz).\n")
	b.WriteString("# KubeKey's kind: Manifest; spec.components.runc, spec.components.cri-dockerd and\n")
	b.WriteString("# spec.checksums ({component, version, arch, sha256}) are kk extensions.\n")
	if len(m.Spec.Charts) > 0 {
		b.WriteString("# spec.charts (kk extension): the app store's charts, {name, version, path}, the path a .tgz\n")
		b.WriteString("# archive or a chart directory relative to this file; kk artifact export packs each one.\n")
	}
	if slices.ContainsFunc(m.Spec.Components.ContainerRuntimes, func(rt ContainerRuntime) bool { return rt.Type == RuntimeDocker }) {
		b.WriteString("# containerRuntimes docker and cri-dockerd: their releases publish no checksum file: pin\n")
		b.WriteString("# the sha256 of each one's download per arch in spec.checksums (component: docker,\n")
		b.WriteString("# cri-dockerd) before kk artifact export.\n")
	}
	if v := m.Spec.Components.NvidiaDriver.Version; v != "" {
		b.WriteString("# spec.components.nvidia-driver (kk extension): NVIDIA publishes no checksum file for its\n")
		b.WriteString("# driver installer: pin the sha256 of NVIDIA-Linux-<arch>-" + v + ".run in spec.checksums\n")
		b.WriteString("# (component: nvidia-driver) before kk artifact export.\n")
	}
	if v := m.Spec.Components.NvidiaContainerToolkit.Version; v != "" {
		b.WriteString("# spec.components.nvidia-container-toolkit (kk extension): NVIDIA publishes no checksum file\n")
		b.WriteString("# for its container toolkit: pin the sha256 of nvidia-container-toolkit_" + strings.TrimPrefix(v, "v") + "_deb_<arch>.tar.gz\n")
		b.WriteString("# in spec.checksums (component: nvidia-container-toolkit) before kk artifact export.\n")
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", m.Metadata.Name, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", m.Metadata.Name, err)
	}
	return b.Bytes(), nil
}
