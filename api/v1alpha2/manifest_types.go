package v1alpha2

// ManifestKind is the kind of the files LoadManifest reads.
const ManifestKind = "Manifest"

// Manifest is a KubeKey v1alpha2 Manifest: what an offline bundle (artifact) holds. KubeKey's
// schema is read as it is; kk adds spec.components.runc, spec.components.cri-dockerd and
// spec.checksums (pinned SHA-256 per component file). Source is the file it was read from.
type Manifest struct {
	APIVersion string       `json:"apiVersion,omitempty" yaml:"apiVersion"`
	Kind       string       `json:"kind,omitempty" yaml:"kind"`
	Metadata   ManifestMeta `json:"metadata,omitempty" yaml:"metadata"`
	Spec       ManifestSpec `json:"spec,omitempty" yaml:"spec"`
	Source     string       `json:"-" yaml:"-"`
}

// ManifestMeta is the metadata of a Manifest.
type ManifestMeta struct {
	Name        string            `json:"name,omitempty" yaml:"name,omitempty"`
	Namespace   string            `json:"namespace,omitempty" yaml:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty" yaml:"annotations,omitempty"`
	// CreationTimestamp is accepted (Kubernetes tooling writes "creationTimestamp: null") and ignored.
	CreationTimestamp any `json:"creationTimestamp,omitempty" yaml:"-"`
}

// ManifestSpec is the body of a Manifest.
type ManifestSpec struct {
	// Arches are the CPU architectures the bundle carries: amd64, arm64.
	Arches           []string          `json:"arches,omitempty" yaml:"arches,omitempty"`
	OperatingSystems []OperatingSystem `json:"operatingSystems,omitempty" yaml:"operatingSystems,omitempty"`
	// KubernetesDistributions are the Kubernetes (or k3s) releases whose binaries the bundle carries.
	KubernetesDistributions []KubernetesDistribution `json:"kubernetesDistributions,omitempty" yaml:"kubernetesDistributions,omitempty"`
	Components              ManifestComponents       `json:"components,omitempty" yaml:"components,omitempty"`
	// Images are full image references pulled into the bundle.
	Images   []string         `json:"images,omitempty" yaml:"images,omitempty"`
	Registry ManifestRegistry `json:"registry,omitempty" yaml:"registry,omitempty"`
	// Checksums (kk extension) pin the SHA-256 of component files: used instead of the
	// checksum file upstream publishes, and needed where upstream publishes none (docker,
	// cri-dockerd).
	Checksums []PinnedChecksum `json:"checksums,omitempty" yaml:"checksums,omitempty"`
	// Charts (kk extension) are the local Helm charts the bundle carries for the platform's
	// app store (the ClusterConfiguration's spec.openpitrix.store.charts).
	Charts []ManifestChart `json:"charts,omitempty" yaml:"charts,omitempty"`
}

// ManifestChart (kk extension, spec.charts[]) is a local chart: kk artifact export packs it
// (a directory as helm package would) after checking that it is still the chart named here.
type ManifestChart struct {
	// Name and Version are the chart's (its Chart.yaml's), a SemVer version.
	Name    string `json:"name,omitempty" yaml:"name"`
	Version string `json:"version,omitempty" yaml:"version"`
	// Path is the chart's .tgz archive or directory, absolute or relative to the Manifest
	// file's folder.
	Path string `json:"path,omitempty" yaml:"path"`
	// File is Path as read from the machine (resolved against the Manifest's folder), Source
	// the FILE:LINE of the entry; neither is written.
	File   string `json:"-" yaml:"-"`
	Source string `json:"-" yaml:"-"`
}

// OperatingSystem is one entry of spec.operatingSystems (an OS package repository ISO).
type OperatingSystem struct {
	Arch       string       `json:"arch,omitempty" yaml:"arch,omitempty"`
	Type       string       `json:"type,omitempty" yaml:"type,omitempty"`
	ID         string       `json:"id,omitempty" yaml:"id,omitempty"`
	Version    string       `json:"version,omitempty" yaml:"version,omitempty"`
	OSImage    string       `json:"osImage,omitempty" yaml:"osImage,omitempty"`
	Repository OSRepository `json:"repository,omitempty" yaml:"repository,omitempty"`
}

// OSRepository is spec.operatingSystems[].repository.
type OSRepository struct {
	ISO OSRepositoryISO `json:"iso,omitempty" yaml:"iso,omitempty"`
}

// OSRepositoryISO says where a repository ISO comes from.
type OSRepositoryISO struct {
	LocalPath string `json:"localPath,omitempty" yaml:"localPath,omitempty"`
	URL       string `json:"url,omitempty" yaml:"url,omitempty"`
}

// KubernetesDistribution is one entry of spec.kubernetesDistributions.
type KubernetesDistribution struct {
	// Type is kubernetes (kubeadm, kubelet, kubectl) or k3s.
	Type    string `json:"type,omitempty" yaml:"type,omitempty"`
	Version string `json:"version,omitempty" yaml:"version,omitempty"`
}

// ComponentVersion is a component entry that only names a version.
type ComponentVersion struct {
	Version string `json:"version,omitempty" yaml:"version,omitempty"`
}

// ContainerRuntime is one entry of spec.components.containerRuntimes.
type ContainerRuntime struct {
	// Type is containerd or docker.
	Type    string `json:"type,omitempty" yaml:"type,omitempty"`
	Version string `json:"version,omitempty" yaml:"version,omitempty"`
}

// ManifestComponents is spec.components.
type ManifestComponents struct {
	Helm              ComponentVersion   `json:"helm,omitempty" yaml:"helm,omitempty"`
	CNI               ComponentVersion   `json:"cni,omitempty" yaml:"cni,omitempty"`
	Etcd              ComponentVersion   `json:"etcd,omitempty" yaml:"etcd,omitempty"`
	ContainerRuntimes []ContainerRuntime `json:"containerRuntimes,omitempty" yaml:"containerRuntimes,omitempty"`
	Crictl            ComponentVersion   `json:"crictl,omitempty" yaml:"crictl,omitempty"`
	Calicoctl         ComponentVersion   `json:"calicoctl,omitempty" yaml:"calicoctl,omitempty"`
	// DockerRegistry, Harbor and DockerCompose are KubeKey's registry packages. kk packages
	// the distribution registry program for DockerRegistry (kk init registry runs it) and
	// reads but does not package Harbor and DockerCompose (a warning says so).
	DockerRegistry ComponentVersion `json:"docker-registry,omitempty" yaml:"docker-registry,omitempty"`
	Harbor         ComponentVersion `json:"harbor,omitempty" yaml:"harbor,omitempty"`
	DockerCompose  ComponentVersion `json:"docker-compose,omitempty" yaml:"docker-compose,omitempty"`
	// Runc (kk extension) goes with a containerd runtime; defaulted from kk's version table.
	Runc ComponentVersion `json:"runc,omitempty" yaml:"runc,omitempty"`
	// CriDockerd (kk extension) goes with a docker runtime; defaulted from kk's version table.
	CriDockerd ComponentVersion `json:"cri-dockerd,omitempty" yaml:"cri-dockerd,omitempty"`
	// NvidiaDriver (kk extension) is NVIDIA's driver installer (.run) for GPU hosts: a
	// Cluster's spec.gpu.driver.version.
	NvidiaDriver ComponentVersion `json:"nvidia-driver,omitempty" yaml:"nvidia-driver,omitempty"`
	// NvidiaContainerToolkit (kk extension) is NVIDIA's container toolkit release (its
	// Debian packages' tarball) for GPU hosts: NVIDIA publishes no checksum file for it, so
	// the Manifest pins one (spec.checksums).
	NvidiaContainerToolkit ComponentVersion `json:"nvidia-container-toolkit,omitempty" yaml:"nvidia-container-toolkit,omitempty"`
}

// ManifestRegistry is spec.registry: credentials for the registries images are pulled from.
type ManifestRegistry struct {
	Auths map[string]ManifestRegistryAuth `json:"auths,omitempty" yaml:"auths,omitempty"`
}

// ManifestRegistryAuth is one entry of spec.registry.auths, keyed by registry host.
type ManifestRegistryAuth struct {
	Username      string `json:"username,omitempty" yaml:"username,omitempty"`
	Password      string `json:"password,omitempty" yaml:"password,omitempty"`
	SkipTLSVerify bool   `json:"skipTLSVerify,omitempty" yaml:"skipTLSVerify,omitempty"`
	PlainHTTP     bool   `json:"plainHTTP,omitempty" yaml:"plainHTTP,omitempty"`
	CertsPath     string `json:"certsPath,omitempty" yaml:"certsPath,omitempty"`
}

// PinnedChecksum (kk extension, spec.checksums[]) pins one component file's SHA-256.
type PinnedChecksum struct {
	// Component is a catalogue name: kubeadm, etcd, containerd, cni-plugins (or cni), ...
	Component string `json:"component,omitempty" yaml:"component"`
	Version   string `json:"version,omitempty" yaml:"version"`
	Arch      string `json:"arch,omitempty" yaml:"arch"`
	SHA256    string `json:"sha256,omitempty" yaml:"sha256"`
}
