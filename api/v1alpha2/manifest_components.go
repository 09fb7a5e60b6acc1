package v1alpha2

import (
	"strings"

	"github.com/kk-project/kk/artifacts/catalog"
)

// Container runtime and distribution types a Manifest names.
const (
	RuntimeContainerd        = "containerd"
	RuntimeDocker            = "docker"
	DistributionKubernetes   = "kubernetes"
	DistributionK3s          = "k3s"
	manifestComponentsPrefix = "spec.components"
)

// Components lists the catalogue components the manifest asks for, for every arch of
// spec.arches: kubeadm, kubelet and kubectl per Kubernetes distribution (k3s for a k3s one),
// then helm, cni-plugins, etcd, the container runtimes (containerd with runc, docker with
// cri-dockerd), crictl and calicoctl, each when its version is set. Versions are as written;
// the catalogue puts them in canonical form. There are no duplicates.
func (m *Manifest) Components() []catalog.Component {
	var out []catalog.Component
	seen := map[catalog.Component]bool{}
	for _, p := range m.placed(m.Spec.Arches) {
		if !seen[p.c] {
			seen[p.c] = true
			out = append(out, p.c)
		}
	}
	return out
}

// Images lists spec.images without blanks or duplicates, in file order.
func (m *Manifest) Images() []string {
	var out []string
	seen := map[string]bool{}
	for _, img := range m.Spec.Images {
		img = strings.TrimSpace(img)
		if img != "" && !seen[img] {
			seen[img] = true
			out = append(out, img)
		}
	}
	return out
}

// Checksum returns the SHA-256 spec.checksums pins for c (lowercase hex), or "". Names and
// versions match in their catalogue form: "cni" is "cni-plugins", "3.5.9" is "v3.5.9".
func (m *Manifest) Checksum(c catalog.Component) string {
	want, ok := canonicalComponent(c)
	if !ok {
		return ""
	}
	for _, p := range m.Spec.Checksums {
		if got, ok := canonicalComponent(catalog.Component{Name: p.Component, Version: p.Version, Arch: p.Arch}); ok && got == want {
			return strings.ToLower(strings.TrimSpace(p.SHA256))
		}
	}
	return ""
}

// canonicalComponent is c as the catalogue names it, or false when the catalogue rejects it.
func canonicalComponent(c catalog.Component) (catalog.Component, bool) {
	a, err := catalog.Resolver{}.Resolve(c)
	return a.Component, err == nil
}

// placedComponent is a component with the field path its version comes from.
type placedComponent struct {
	c    catalog.Component
	path string
}

// placed lists the manifest's components for arches, each with its field path.
func (m *Manifest) placed(arches []string) []placedComponent {
	var out []placedComponent
	comps := m.Spec.Components
	for _, arch := range arches {
		arch = strings.TrimSpace(arch)
		add := func(name, version, path string) {
			if v := strings.TrimSpace(version); v != "" {
				out = append(out, placedComponent{catalog.Component{Name: name, Version: v, Arch: arch}, path})
			}
		}
		for i, d := range m.Spec.KubernetesDistributions {
			p := indexPath("spec.kubernetesDistributions", i) + ".version"
			switch strings.ToLower(strings.TrimSpace(d.Type)) {
			case DistributionKubernetes:
				for _, n := range []string{"kubeadm", "kubelet", "kubectl"} {
					add(n, d.Version, p)
				}
			case DistributionK3s:
				add("k3s", d.Version, p)
			}
		}
		cp := func(field string) string { return manifestComponentsPrefix + "." + field + ".version" }
		add("helm", comps.Helm.Version, cp("helm"))
		add("cni-plugins", comps.CNI.Version, cp("cni"))
		add("etcd", comps.Etcd.Version, cp("etcd"))
		for i, rt := range comps.ContainerRuntimes {
			p := indexPath(manifestComponentsPrefix+".containerRuntimes", i) + ".version"
			switch strings.ToLower(strings.TrimSpace(rt.Type)) {
			case RuntimeContainerd:
				add("containerd", rt.Version, p)
			case RuntimeDocker:
				add("docker", rt.Version, p)
			}
		}
		add("runc", comps.Runc.Version, cp("runc"))
		add("cri-dockerd", comps.CriDockerd.Version, cp("cri-dockerd"))
		add("crictl", comps.Crictl.Version, cp("crictl"))
		add("calicoctl", comps.Calicoctl.Version, cp("calicoctl"))
		add("registry", RegistryVersion(comps.DockerRegistry.Version), cp("docker-registry"))
		add(catalog.NvidiaDriver, comps.NvidiaDriver.Version, cp("nvidia-driver"))
		add(catalog.NvidiaContainerToolkit, comps.NvidiaContainerToolkit.Version, cp("nvidia-container-toolkit"))
	}
	return out
}

// DefaultRegistryVersion is the distribution registry kk packages for
// spec.components.docker-registry when the Manifest names only a major version ("2", as
// KubeKey's manifests do: KubeKey runs the registry:2 image, kk runs the program).
const DefaultRegistryVersion = "v3.0.0"

// RegistryVersion is the registry release packaged for a docker-registry version as written:
// a full release (v3.0.0, 3.0.1) as is, a bare major version as DefaultRegistryVersion.
func RegistryVersion(v string) string {
	v = strings.TrimSpace(v)
	if v == "" {
		return ""
	}
	if strings.Count(v, ".") < 2 {
		return DefaultRegistryVersion
	}
	return v
}

// hasRuntime says whether spec.components.containerRuntimes lists a runtime of type t.
func (m *Manifest) hasRuntime(t string) bool {
	for _, rt := range m.Spec.Components.ContainerRuntimes {
		if strings.EqualFold(strings.TrimSpace(rt.Type), t) {
			return true
		}
	}
	return false
}
