package v1alpha2

import (
	"slices"
	"strings"
	"testing"
)

func TestNewManifestForDescribedCluster(t *testing.T) {
	m, err := NewManifestFor(ManifestFor{
		KubernetesVersion: "v1.33.2", Arches: []string{"arm64", "amd64", "arm64"}, ContainerManager: RuntimeDocker,
		NetworkPlugin: "flannel", EtcdType: "kubeadm", Registry: true,
		Images: []string{"docker.io/library/nginx:1.27", "registry.k8s.io/kube-apiserver:v1.33.2"},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := m.Spec
	if m.Metadata.Name != "sample" || !slices.Equal(s.Arches, []string{"amd64", "arm64"}) || s.KubernetesDistributions[0].Version != "v1.33.2" {
		t.Errorf("name %q arches %v distributions %+v", m.Metadata.Name, s.Arches, s.KubernetesDistributions)
	}
	if len(s.Components.ContainerRuntimes) != 1 || s.Components.ContainerRuntimes[0].Type != RuntimeDocker || s.Components.CriDockerd.Version == "" {
		t.Errorf("runtimes %+v cri-dockerd %q", s.Components.ContainerRuntimes, s.Components.CriDockerd.Version)
	}
	if s.Components.Etcd.Version != "" || s.Components.DockerRegistry.Version != DefaultRegistryVersion {
		t.Errorf("etcd %q (kubeadm runs it), registry %q", s.Components.Etcd.Version, s.Components.DockerRegistry.Version)
	}
	imgs := m.Images()
	if !slices.Equal(imgs, s.Images) || imgs[len(imgs)-1] != "docker.io/library/nginx:1.27" {
		t.Errorf("images not deduplicated or the extra ones not last: %v", s.Images)
	}
	if !slices.ContainsFunc(imgs, func(i string) bool { return strings.Contains(i, "/flannel:") }) ||
		slices.ContainsFunc(imgs, func(i string) bool { return strings.Contains(i, "calico") }) {
		t.Errorf("flannel cluster images: %v", imgs)
	}
	// defaults: kk's version, containerd, calico, binary etcd, amd64
	d, err := NewManifestFor(ManifestFor{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Spec.KubernetesDistributions[0].Version != DefaultKubernetesVersion || !slices.Equal(d.Spec.Arches, []string{DefaultArch}) ||
		d.Spec.Components.Etcd.Version == "" || d.Spec.Components.Calicoctl.Version != "" {
		t.Errorf("defaults: %+v", d.Spec)
	}
	for _, bad := range []ManifestFor{{Arches: []string{"sparc"}}, {KubernetesVersion: "v1.9.0"}, {ContainerManager: "crio"}} {
		if _, err := NewManifestFor(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
