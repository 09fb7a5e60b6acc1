package v1alpha2

import (
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/versions"
)

// NewManifest returns the Manifest cluster c needs to be installed offline: the Kubernetes
// binaries of its version, etcd (when kk runs it as binaries), the container runtime (containerd
// with runc, or docker with cri-dockerd), crictl, the CNI plugins, helm, calicoctl (calico),
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
	comps.Helm.Version = set.Helm
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
	plugin := strings.ToLower(c.Network.Plugin)
	if plugin == "calico" {
		comps.Calicoctl.Version = set.Addons.Calico
	}
	imgs, err := clusterImages(c, set, plugin)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c, err)
	}
	s.Images = imgs
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
	if c.Network.MultusCNI {
		imgs = append(imgs, set.MultusImage())
	}
	switch c.ControlPlaneEndpoint.InternalLoadbalancer {
	case config.LoadBalancerHAProxy:
		imgs = append(imgs, set.HAProxyImage())
	case config.LoadBalancerKubeVIP:
		imgs = append(imgs, set.KubeVIPImage())
	}
	return imgs, nil
}

// Marshal writes the manifest as YAML, fields in KubeKey's order, with a header comment.
func (m *Manifest) Marshal() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# kk Manifest: what an offline bundle holds (kk artifact export -m FILE -o bundle.tar.gz).\n")
	b.WriteString("# KubeKey's kind: Manifest; spec.components.runc, spec.components.cri-dockerd and\n")
	b.WriteString("# spec.checksums ({component, version, arch, sha256}) are kk extensions.\n")
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
