// Package runtime installs the container runtime of every Kubernetes node: containerd 2.x with
// runc, crictl and the CNI plugins (the default), or Docker with cri-dockerd. It writes the
// runtime's configuration (sandbox image, systemd cgroups, registry mirrors, insecure and
// private registries with their credentials and certificates), runs the service, imports an
// offline image archive, and waits until the CRI reports RuntimeReady.
//
// Every task checks before it acts: a second run on a converged host changes nothing, and the
// service is restarted only when its configuration, unit or binary changed.
package runtime

import (
	"slices"
	"sort"
	"strings"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/versions"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/pipeline"
)

// Container managers.
const (
	Containerd = "containerd"
	Docker     = "docker"
)

// The container managers' data roots unless the Cluster's registry settings name another.
const (
	DefaultContainerdRoot = "/var/lib/containerd"
	DefaultDockerRoot     = "/var/lib/docker"
)

// Root is the container manager's data root: DataRoot, else its manager's default.
func (s Spec) Root() string {
	switch {
	case s.DataRoot != "":
		return s.DataRoot
	case s.ContainerManager == Docker:
		return DefaultDockerRoot
	}
	return DefaultContainerdRoot
}

// CRI sockets of the two container managers (what kubelet's containerRuntimeEndpoint and
// kubeadm's nodeRegistration.criSocket name).
const (
	ContainerdSocket = "unix:///run/containerd/containerd.sock"
	CriDockerdSocket = "unix:///var/run/cri-dockerd.sock"
)

// CgroupDriver is the cgroup driver both runtimes are configured with (runc's SystemdCgroup,
// docker's native.cgroupdriver): kubelet's cgroupDriver must match it.
const CgroupDriver = "systemd"

// Task names, for other modules' After lists. ReadyTask is the last one: it runs after every
// other runtime task on the host and succeeds once the CRI reports RuntimeReady, so a module
// that needs a working runtime with the images imported orders after ReadyTask only.
const (
	TaskBinaries      = "runtime/binaries"
	TaskCNIPlugins    = "runtime/cni-plugins"
	TaskConfig        = "runtime/config"
	TaskRegistryHosts = "runtime/registry-hosts"
	TaskUnits         = "runtime/units"
	TaskService       = "runtime/service"
	TaskCrictl        = "runtime/crictl-config"
	TaskImages        = "runtime/images"
	ReadyTask         = "runtime/ready"
)

// Install locations on the hosts.
const (
	BinDir         = "/usr/local/bin"
	RuncPath       = "/usr/local/sbin/runc"
	CNIBinDir      = "/opt/cni/bin"
	CNIConfDir     = "/etc/cni/net.d"
	ContainerdConf = "/etc/containerd/config.toml"
	// ContainerdDropIns holds drop-in files containerd's configuration imports (*.toml):
	// NVIDIA's runtime on a GPU host, a user's own.
	ContainerdDropIns = "/etc/containerd/conf.d"
	CertsDir          = "/etc/containerd/certs.d"
	DockerConf        = "/etc/docker/daemon.json"
	DockerCertsDir    = "/etc/docker/certs.d"
	CrictlConf        = "/etc/crictl.yaml"
	UnitDir           = "/etc/systemd/system"
)

// Spec is the container runtime every node must run. SpecFor fills it from the cluster; the
// caller may then change any field (ImageArchive and Images are the caller's to set).
type Spec struct {
	// ContainerManager is "containerd" (default) or "docker" (Docker + cri-dockerd).
	ContainerManager string
	// CRISocket is the CRI endpoint URL kubelet and crictl use (see ContainerdSocket and
	// CriDockerdSocket); cri-dockerd listens on it.
	CRISocket string
	// SandboxImage is the pod sandbox (pause) image, already rewritten under PrivateRegistry.
	SandboxImage string
	// DataRoot is containerd's root (default /var/lib/containerd) or docker's data-root
	// (default /var/lib/docker); "" = the default. SpecFor takes registry.containerdDataDir or
	// registry.dockerDataDir (the running manager's), else registry.dataRoot.
	DataRoot string
	// BridgeIP is docker's bip ("" = docker's default); containerd ignores it.
	BridgeIP string

	// Files holds the programs to install: containerd, containerd-shim-runc-v2, ctr, runc,
	// crictl and cni/<plugin> (containerd); docker/<program>, cri-dockerd, crictl and
	// cni/<plugin> (docker).
	Files binaries.Files
	// CNIPlugins are the names (without "cni/") installed into /opt/cni/bin; SpecFor lists
	// every cni/ file of Files.
	CNIPlugins []string

	// PrivateRegistry is HOST[:PORT][/NAMESPACE] images are pulled from instead of their
	// upstream registries ("" = none).
	PrivateRegistry   string
	NamespaceOverride string
	// Mirrors maps a registry host ("docker.io", "registry.k8s.io") to mirror endpoints
	// (URLs; a bare host means https, or http with an HTTPS attempt first when it is
	// insecure). SpecFor puts the cluster's registryMirrors under docker.io, as KubeKey
	// and Docker read them.
	Mirrors map[string][]string
	// InsecureRegistries are registry hosts (HOST[:PORT], or an http:// or https:// URL)
	// whose TLS certificate is not verified; a bare host or http:// URL is tried over HTTPS
	// first, then plain HTTP.
	InsecureRegistries []string
	// Auths maps a registry host to its credentials and TLS options; CertsPath is a local
	// directory whose *.crt (CAs), *.cert and *.key (client pairs) files are copied to the
	// registry's certs.d directory.
	Auths map[string]config.RegistryAuth
	// RegistryCA is a PEM CA (kk-generated for its own registry) written as ca.crt in the
	// private registry's certs.d directory and trusted for it ("" = none).
	RegistryCA []byte

	// ImageArchive is a local tar of an OCI image layout imported into containerd's k8s.io
	// namespace (docker: docker load) when Images are missing; "" = no import.
	ImageArchive string
	// Images are the references that must be present after the import (the import's Check).
	Images []string

	// NvidiaRuntime tells the hosts (GPU hosts with NVIDIA's container toolkit) whose docker
	// runs every container through NVIDIA's runtime, its default-runtime: cri-dockerd serves
	// no RuntimeClass handler but docker's default (containerd's hosts get the runtime from
	// the gpu phase's drop-in instead). nil: none.
	NvidiaRuntime func(t *pipeline.Target) bool
}

// NVIDIA's container runtime, which the GPU hosts' container manager runs GPU containers
// through (containerd: the RuntimeClass of this name; docker: its default runtime).
const (
	NvidiaRuntime    = "nvidia"
	NvidiaRuntimeBin = "/usr/bin/nvidia-container-runtime"
)

// Nodes selects the hosts that run a container runtime: control planes and workers.
func Nodes() pipeline.Selector {
	return pipeline.Role(string(config.RoleControlPlane), string(config.RoleWorker))
}

// SpecFor derives the runtime of every node from the cluster: its container manager and CRI
// endpoint, the sandbox image that goes with its Kubernetes version (pause 3.10.1 for v1.34,
// 3.10 for v1.33; under the private registry when one is set), and its registry settings.
func SpecFor(c *config.Cluster, files binaries.Files) Spec {
	k := c.Kubernetes
	s := Spec{
		ContainerManager: k.ContainerManager,
		CRISocket:        k.ContainerRuntimeEndpoint,
		DataRoot:         c.Registry.DataRoot,
		BridgeIP:         c.Registry.BridgeIP,
		Files:            files,

		PrivateRegistry:    c.Registry.PrivateRegistry,
		NamespaceOverride:  c.Registry.NamespaceOverride,
		InsecureRegistries: slices.Clone(c.Registry.InsecureRegistries),
		Mirrors:            map[string][]string{},
		Auths:              map[string]config.RegistryAuth{},
	}
	if s.ContainerManager == "" {
		s.ContainerManager = Containerd
	}
	if s.CRISocket == "" {
		s.CRISocket = ContainerdSocket
		if s.ContainerManager == Docker {
			s.CRISocket = CriDockerdSocket
		}
	}
	// KubeKey 3.1's registry.containerdDataDir / dockerDataDir win over registry.dataRoot
	// for their runtime
	if d := c.Registry.ContainerdDataDir; d != "" && s.ContainerManager == Containerd {
		s.DataRoot = d
	}
	if d := c.Registry.DockerDataDir; d != "" && s.ContainerManager == Docker {
		s.DataRoot = d
	}
	set, err := versions.For(k.Version)
	if err != nil {
		set = versions.Latest()
	}
	s.SandboxImage = RewriteImage(set.PauseImage(), s.PrivateRegistry, s.NamespaceOverride)
	if len(c.Registry.RegistryMirrors) > 0 {
		s.Mirrors["docker.io"] = slices.Clone(c.Registry.RegistryMirrors)
	}
	for h, a := range c.Registry.Auths {
		s.Auths[h] = a
	}
	seen := map[string]bool{}
	for _, a := range files.Arches() {
		for _, n := range files.Names(a, "cni/") {
			if p := strings.TrimPrefix(n, "cni/"); !seen[p] {
				seen[p] = true
				s.CNIPlugins = append(s.CNIPlugins, p)
			}
		}
	}
	sort.Strings(s.CNIPlugins)
	return s
}

// RewriteImage returns ref as pulled from privateRegistry the way KubeKey names images there:
// REGISTRY/NAMESPACE/NAME:TAG, the namespace being the upstream repository path without its
// last element (namespaceOverride replaces it). With no private registry ref is returned as is.
//
//	("registry.k8s.io/pause:3.10.1", "reg.local:5000", "")           -> "reg.local:5000/pause:3.10.1"
//	("registry.k8s.io/coredns/coredns:v1.12.1", "reg.local", "")     -> "reg.local/coredns/coredns:v1.12.1"
//	("docker.io/calico/node:v3.29.3", "reg.local", "kubesphereio")   -> "reg.local/kubesphereio/node:v3.29.3"
func RewriteImage(ref, privateRegistry, namespaceOverride string) string {
	if privateRegistry == "" {
		return ref
	}
	_, rest := splitRef(ref)
	ns, name := "", rest
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		ns, name = rest[:i], rest[i+1:]
	}
	if namespaceOverride != "" {
		ns = namespaceOverride
	}
	out := strings.TrimSuffix(privateRegistry, "/") + "/"
	if ns != "" {
		out += ns + "/"
	}
	return out + name
}

// splitRef splits an image reference into its registry host and repository path (with tag
// or digest), normalising Docker Hub: "haproxy:2.6" -> ("docker.io", "library/haproxy:2.6").
func splitRef(ref string) (host, rest string) {
	i := strings.Index(ref, "/")
	if i < 0 {
		return "docker.io", "library/" + ref
	}
	first := ref[:i]
	if strings.ContainsAny(first, ".:") || first == "localhost" {
		return first, ref[i+1:]
	}
	return "docker.io", ref
}

// registryHost is the HOST[:PORT] of a registry given as a host, HOST/NAMESPACE or URL.
func registryHost(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	if i := strings.Index(s, "/"); i >= 0 {
		s = s[:i]
	}
	return s
}

// BinaryNames are the Files names the spec installs for arch, for a check of the artifacts
// before any host is touched.
func (s Spec) BinaryNames(arch string) []string {
	var out []string
	if s.ContainerManager == Docker {
		out = append(out, s.Files.Names(arch, "docker/")...)
		out = append(out, "cri-dockerd", "crictl")
	} else {
		out = append(out, "containerd", "containerd-shim-runc-v2", "ctr", "runc", "crictl")
	}
	for _, p := range s.CNIPlugins {
		out = append(out, "cni/"+p)
	}
	return out
}
