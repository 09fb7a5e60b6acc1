package v1alpha2

// APIVersion and Kind of the files this package reads.
const (
	Group      = "kubekey.kubesphere.io"
	APIVersion = Group + "/v1alpha2"
	Kind       = "Cluster"
)

// Cluster is a KubeKey v1alpha2 Cluster file.
type Cluster struct {
	APIVersion string      `json:"apiVersion,omitempty"`
	Kind       string      `json:"kind,omitempty"`
	Metadata   ObjectMeta  `json:"metadata,omitempty"`
	Spec       ClusterSpec `json:"spec,omitempty"`
}

// ObjectMeta is the subset of Kubernetes object metadata a Cluster file carries.
type ObjectMeta struct {
	Name        string            `json:"name,omitempty"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// CreationTimestamp is accepted (Kubernetes tooling and KubeKey's "kk create config"
	// write "creationTimestamp: null") and ignored.
	CreationTimestamp any `json:"creationTimestamp,omitempty"`
}

// ClusterSpec is the body of a Cluster.
type ClusterSpec struct {
	Hosts []HostCfg `json:"hosts,omitempty"`
	// RoleGroups maps a role (etcd, master, control-plane, worker, registry) to
	// host names; an entry may be a range such as node[1:3].
	RoleGroups           map[string][]string  `json:"roleGroups,omitempty"`
	ControlPlaneEndpoint ControlPlaneEndpoint `json:"controlPlaneEndpoint,omitempty"`
	System               System               `json:"system,omitempty"`
	Etcd                 EtcdCluster          `json:"etcd,omitempty"`
	DNS                  DNS                  `json:"dns,omitempty"`
	Kubernetes           Kubernetes           `json:"kubernetes,omitempty"`
	Network              NetworkConfig        `json:"network,omitempty"`
	Storage              StorageConfig        `json:"storage,omitempty"`
	Registry             RegistryConfig       `json:"registry,omitempty"`
	Addons               []Addon              `json:"addons,omitempty"`
	KubeSphere           KubeSphere           `json:"kubesphere,omitempty"`
	// GPU (kk extension) sets up the hosts whose facts list NVIDIA GPUs (or whose labels
	// say nvidia.com/gpu.present: "true"); given at all, it installs NVIDIA's container
	// toolkit there.
	GPU *GPUConfig `json:"gpu,omitempty"`
}

// GPUConfig is spec.gpu (kk extension).
type GPUConfig struct {
	Driver       GPUDriver       `json:"driver,omitempty"`
	Toolkit      GPUToolkit      `json:"toolkit,omitempty"`
	DevicePlugin GPUDevicePlugin `json:"devicePlugin,omitempty"`
	Exporter     GPUExporter     `json:"exporter,omitempty"`
}

// GPUExporter is spec.gpu.exporter: kk's GPU exporter on the GPU hosts (NVML metrics under
// dcgm-exporter's names, port 9835) with its Grafana dashboard and Prometheus rules, on with
// spec.gpu unless enabled is false.
type GPUExporter struct {
	Enabled *bool `json:"enabled,omitempty"`
}

// GPUDevicePlugin is spec.gpu.devicePlugin: NVIDIA's device plugin on the GPU hosts (the nodes
// advertise nvidia.com/gpu), on with spec.gpu unless enabled is false.
type GPUDevicePlugin struct {
	Enabled *bool `json:"enabled,omitempty"`
	// MIGStrategy is how MIG devices are advertised: none (the default: whole GPUs), single
	// (every GPU's MIG devices as nvidia.com/gpu) or mixed (nvidia.com/mig-<profile>).
	MIGStrategy string `json:"migStrategy,omitempty"`
	// TimeSlicing shares each GPU between pods, taking turns.
	TimeSlicing *GPUTimeSlicing `json:"timeSlicing,omitempty"`
}

// GPUTimeSlicing is spec.gpu.devicePlugin.timeSlicing: each GPU is advertised Replicas times.
type GPUTimeSlicing struct {
	Replicas int `json:"replicas,omitempty"`
}

// GPUToolkit is spec.gpu.toolkit: NVIDIA's container toolkit release (default: kk's version
// table's), whose Debian packages kk artifact export puts in the bundle.
type GPUToolkit struct {
	Version string `json:"version,omitempty"`
}

// GPUDriver is spec.gpu.driver: the NVIDIA driver version kk installs on every GPU host from
// NVIDIA's .run installer, which kk artifact export puts in the bundle.
type GPUDriver struct {
	Version string `json:"version,omitempty"`
}

// HostCfg is one entry of spec.hosts.
type HostCfg struct {
	Name            string `json:"name,omitempty"`
	Address         string `json:"address,omitempty"`
	InternalAddress string `json:"internalAddress,omitempty"`
	Port            int    `json:"port,omitempty"`
	User            string `json:"user,omitempty"`
	Password        string `json:"password,omitempty"`
	PrivateKey      string `json:"privateKey,omitempty"`
	PrivateKeyPath  string `json:"privateKeyPath,omitempty"`
	Arch            string `json:"arch,omitempty"`
	// Timeout of the SSH connection, in seconds.
	Timeout *int64            `json:"timeout,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
	// JumpHost (kk extension) names another host of spec.hosts to use as SSH bastion.
	JumpHost string `json:"jumpHost,omitempty"`
}

// ControlPlaneEndpoint is spec.controlPlaneEndpoint.
type ControlPlaneEndpoint struct {
	InternalLoadbalancer string  `json:"internalLoadbalancer,omitempty"`
	Domain               string  `json:"domain,omitempty"`
	ExternalDNS          *bool   `json:"externalDNS,omitempty"`
	Address              string  `json:"address,omitempty"`
	Port                 int     `json:"port,omitempty"`
	KubeVip              KubeVip `json:"kubevip,omitempty"`
}

// KubeVip is spec.controlPlaneEndpoint.kubevip.
type KubeVip struct {
	Mode string `json:"mode,omitempty"`
}

// System is spec.system.
type System struct {
	NtpServers         []string        `json:"ntpServers,omitempty"`
	Timezone           string          `json:"timezone,omitempty"`
	Rpms               []string        `json:"rpms,omitempty"`
	Debs               []string        `json:"debs,omitempty"`
	PreInstall         []CustomScripts `json:"preInstall,omitempty"`
	PostClusterInstall []CustomScripts `json:"postClusterInstall,omitempty"`
	PostInstall        []CustomScripts `json:"postInstall,omitempty"`
	SkipConfigureOS    bool            `json:"skipConfigureOS,omitempty"`
}

// CustomScripts is one user script of spec.system.
type CustomScripts struct {
	Name      string   `json:"name,omitempty"`
	Bash      string   `json:"bash,omitempty"`
	Role      string   `json:"role,omitempty"`
	Materials []string `json:"materials,omitempty"`
}

// StorageConfig is spec.storage.
type StorageConfig struct {
	OpenEBS OpenEBS `json:"openebs,omitempty"`
}

// OpenEBS is spec.storage.openebs.
type OpenEBS struct {
	BasePath string `json:"basePath,omitempty"`
}

// KubeSphere is spec.kubesphere.
type KubeSphere struct {
	Enabled        bool   `json:"enabled,omitempty"`
	Version        string `json:"version,omitempty"`
	Configurations string `json:"configurations,omitempty"`
}
