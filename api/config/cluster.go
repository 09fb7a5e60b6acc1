package config

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/kk-project/kk/artifacts/versions"
)

// Cluster is the whole desired state of one cluster.
type Cluster struct {
	// Name is metadata.name of the file.
	Name string
	// Source is the path of the file the cluster was read from.
	Source string
	// Hosts in file order.
	Hosts []*Host

	ControlPlaneEndpoint Endpoint
	System               System
	Kubernetes           Kubernetes
	Etcd                 Etcd
	DNS                  DNS
	Network              Network
	Storage              Storage
	Registry             Registry
	Addons               []Addon
	KubeSphere           KubeSphere
	// Platform is what the KubeSphere ClusterConfiguration beside the Cluster switches on.
	Platform Platform
	// GPU is what kk sets up on the hosts whose facts list NVIDIA GPUs (spec.gpu).
	GPU GPU
}

// GPU is spec.gpu (kk's own): the NVIDIA GPU hosts' setup. The GPU hosts are those whose
// facts list NVIDIA GPUs on their PCI bus, and those whose labels say
// nvidia.com/gpu.present: "true".
type GPU struct {
	// DriverVersion is the NVIDIA driver kk installs from NVIDIA's .run installer (in the
	// bundle) on every GPU host ("570.195.03"); "" leaves the hosts' drivers alone.
	DriverVersion string
	// Toolkit is NVIDIA's container toolkit on the GPU hosts: containerd's "nvidia" runtime
	// handler (a drop-in written by nvidia-ctk), CDI, and the RuntimeClass "nvidia". It is on
	// when the file has spec.gpu, or KubeKey's kubernetes.nvidiaRuntime: true.
	Toolkit bool
	// ToolkitVersion is spec.gpu.toolkit.version; "" is kk's version table's (ToolkitRelease).
	ToolkitVersion string
	// DefaultRuntime makes nvidia containerd's default runtime on the GPU hosts (KubeKey's
	// kubernetes.nvidiaRuntime: true).
	DefaultRuntime bool
	// DevicePlugin is NVIDIA's device plugin DaemonSet on the GPU hosts' nodes (spec.gpu, unless
	// spec.gpu.devicePlugin.enabled: false); KubeKey's nvidiaRuntime alone does not deploy it.
	DevicePlugin bool
	// MIGStrategy is the device plugin's MIG strategy: MIGNone, MIGSingle or MIGMixed.
	MIGStrategy string
	// TimeSlicingReplicas, above 0, advertises each GPU that many times (time-slicing).
	TimeSlicingReplicas int
	// Exporter is kk's GPU exporter on the GPU hosts, its dashboard and its rules (spec.gpu,
	// unless spec.gpu.exporter.enabled: false).
	Exporter bool
}

// The device plugin's MIG strategies.
const (
	MIGNone   = "none"
	MIGSingle = "single"
	MIGMixed  = "mixed"
)

// ToolkitRelease is the container toolkit release kk installs beside the Kubernetes release
// of set: spec.gpu.toolkit.version, or the table's.
func (g GPU) ToolkitRelease(set versions.Set) string {
	return cmp.Or(g.ToolkitVersion, set.NvidiaContainerToolkit)
}

// GPUPresentLabel is the node label NVIDIA's tools give a node with GPUs; a host whose labels
// carry it with "true" is a GPU host for kk whatever its PCI bus shows.
const GPUPresentLabel = "nvidia.com/gpu.present"

// DeclaredGPUHosts lists the hosts whose labels declare them GPU hosts (GPUPresentLabel).
func (c *Cluster) DeclaredGPUHosts() []string {
	var out []string
	for _, h := range c.Hosts {
		if h.Labels[GPUPresentLabel] == "true" {
			out = append(out, h.Name)
		}
	}
	return out
}

// HostsWithRole returns the hosts having role r, in file order.
func (c *Cluster) HostsWithRole(r Role) []*Host {
	var out []*Host
	for _, h := range c.Hosts {
		if h.Has(r) {
			out = append(out, h)
		}
	}
	return out
}

// Host returns the host named name, or nil.
func (c *Cluster) Host(name string) *Host {
	for _, h := range c.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// FirstControlPlane returns the first control-plane host in file order (the one
// that initialises the cluster), or nil when there is none.
func (c *Cluster) FirstControlPlane() *Host {
	for _, h := range c.Hosts {
		if h.Has(RoleControlPlane) {
			return h
		}
	}
	return nil
}

// ControlPlaneAddress is the IP the control-plane domain resolves to for the
// cluster: ControlPlaneEndpoint.Address when set, else the internal IP of the
// first control plane (KubeKey's behaviour). It is "" only when ExternalDNS is set
// and no address is given, or the cluster has no control plane.
func (c *Cluster) ControlPlaneAddress() string {
	if c.ControlPlaneEndpoint.Address != "" {
		return c.ControlPlaneEndpoint.Address
	}
	if c.ControlPlaneEndpoint.ExternalDNS {
		return ""
	}
	if h := c.FirstControlPlane(); h != nil {
		return h.InternalIP()
	}
	return ""
}

// APIServerURL is the URL clients use for the API server: https://DOMAIN:PORT.
func (c *Cluster) APIServerURL() string {
	e := c.ControlPlaneEndpoint
	return "https://" + net.JoinHostPort(e.Domain, strconv.Itoa(e.Port))
}

// String names the cluster and its file, for logs.
func (c *Cluster) String() string {
	return fmt.Sprintf("cluster %q (%s)", c.Name, c.Source)
}

// Internal load balancers for the control-plane endpoint.
const (
	LoadBalancerNone    = ""
	LoadBalancerHAProxy = "haproxy"
	LoadBalancerKubeVIP = "kube-vip"
)

// Endpoint is how clients and nodes reach the API servers.
type Endpoint struct {
	// InternalLoadbalancer is "", "haproxy" (a local haproxy on every worker)
	// or "kube-vip" (a virtual IP held by the control planes; Address is the VIP).
	InternalLoadbalancer string
	// Domain is the DNS name of the API server (default lb.kubesphere.local).
	Domain string
	// Address is the load balancer / VIP address as written ("" if none).
	// See Cluster.ControlPlaneAddress for the effective address.
	Address string
	// Port of the API server endpoint (default 6443).
	Port int
	// ExternalDNS means Domain resolves in the environment's DNS, so kk does not
	// write it into /etc/hosts.
	ExternalDNS bool
	// KubeVIPMode is "ARP" (default) or "BGP".
	KubeVIPMode string
}

// System is operating-system level configuration applied to every host.
type System struct {
	NTPServers []string
	Timezone   string
	// Rpms and Debs are extra packages to install.
	Rpms []string
	Debs []string
	// PreInstall runs before anything else, PostInstall after the hosts are set
	// up, PostClusterInstall once the cluster is up.
	PreInstall         []Script
	PostInstall        []Script
	PostClusterInstall []Script
	// SkipConfigureOS leaves kernel modules, sysctl, /etc/hosts and NTP alone.
	SkipConfigureOS bool
}

// Script is a user shell script run on hosts.
type Script struct {
	Name string
	// Bash is the command line or script body.
	Bash string
	// Role restricts the script to hosts with that role ("" for all).
	Role string
	// Materials are local files copied next to the script first.
	Materials []string
}

// Kubernetes is the configuration of the Kubernetes components.
type Kubernetes struct {
	// Version is "vX.Y.Z".
	Version string
	// ClusterName is the kubeadm cluster name (default cluster.local).
	ClusterName string
	// DNSDomain is the cluster DNS domain (default cluster.local).
	DNSDomain string
	// ContainerManager is "containerd" (default) or "docker".
	ContainerManager string
	// ContainerRuntimeEndpoint is the CRI socket URL (defaulted from ContainerManager).
	ContainerRuntimeEndpoint string
	// AutoRenewCerts installs, on every control-plane and etcd host, a systemd timer that
	// renews the certificates close to expiry (KubeKey's default: true).
	AutoRenewCerts bool
	// CertificateValidity is the lifetime of the leaf certificates kubeadm and kk's etcd PKI
	// issue (0: their default, one year). CAs are never re-issued.
	CertificateValidity time.Duration
	// ProxyMode is kube-proxy's mode: "iptables" (kk default), "ipvs" or "nftables".
	ProxyMode        string
	DisableKubeProxy bool
	MasqueradeAll    bool
	MaxPods          int
	PodPidsLimit     int
	NodeCidrMaskSize int
	// NodeLocalDNS deploys nodelocaldns (default true).
	NodeLocalDNS         bool
	Audit                bool
	Kata                 bool
	NodeFeatureDiscovery bool
	FeatureGates         map[string]bool
	// Extra command-line flags, each "--flag=value".
	ApiserverArgs         []string
	ControllerManagerArgs []string
	SchedulerArgs         []string
	KubeletArgs           []string
	KubeProxyArgs         []string
	// ApiserverCertExtraSans are extra SANs of the API server certificate.
	ApiserverCertExtraSans []string
	// KubeletConfiguration and KubeProxyConfiguration are merged into the
	// generated KubeletConfiguration / KubeProxyConfiguration (nil when unset).
	KubeletConfiguration   map[string]any
	KubeProxyConfiguration map[string]any
}

// Etcd types.
const (
	EtcdKubeKey  = "kubekey"
	EtcdKubeadm  = "kubeadm"
	EtcdExternal = "external"
)

// Etcd is the configuration of the etcd cluster.
type Etcd struct {
	// Type is "kubekey" (binary etcd on the etcd hosts, default), "kubeadm"
	// (stacked static pods on the control planes) or "external".
	Type     string
	External ExternalEtcd
	Port     int
	PeerPort int
	DataDir  string
	// BackupDir, BackupPeriod (minutes), KeepBackupNumber and BackupScriptDir
	// configure the periodic backup installed with Type kubekey.
	BackupDir               string
	BackupPeriod            int
	KeepBackupNumber        int
	BackupScriptDir         string
	HeartbeatInterval       int // milliseconds
	ElectionTimeout         int // milliseconds
	SnapshotCount           int
	AutoCompactionRetention int // hours
	Metrics                 string
	QuotaBackendBytes       int64
	MaxRequestBytes         int64
	MaxSnapshots            int
	MaxWals                 int
	LogLevel                string
	// ExtraArgs are extra etcd flags ("flag-name" -> value, without the leading "--"),
	// KubeKey 3.1's etcd.extraArgs; they win over the flags kk derives from the fields above.
	ExtraArgs map[string]string
}

// ExternalEtcd says how to reach an etcd cluster kk does not manage.
type ExternalEtcd struct {
	Endpoints []string
	// CAFile, CertFile and KeyFile are local paths ("" when TLS is not used).
	CAFile   string
	CertFile string
	KeyFile  string
}

// DNS is the configuration of cluster DNS.
type DNS struct {
	// DNSEtcHosts is extra /etc/hosts content served by CoreDNS.
	DNSEtcHosts string
	// NodeEtcHosts is extra content for every node's /etc/hosts.
	NodeEtcHosts string
	CoreDNS      CoreDNS
	NodeLocalDNS NodeLocalDNS
}

// CoreDNS tunes the CoreDNS deployment.
type CoreDNS struct {
	AdditionalConfigs  string
	ExternalZones      []ExternalZone
	RewriteBlock       string
	UpstreamDNSServers []string
}

// NodeLocalDNS tunes nodelocaldns.
type NodeLocalDNS struct {
	ExternalZones []ExternalZone
}

// ExternalZone forwards some zones to other name servers.
type ExternalZone struct {
	Zones       []string
	Nameservers []string
	Cache       int
	Rewrite     []string
}

// Network is the pod network configuration.
type Network struct {
	// Plugin is the CNI plugin: calico (default), flannel, cilium, kubeovn,
	// hybridnet or none.
	Plugin string
	// KubePodsCIDR and KubeServiceCIDR may hold "IPv4CIDR,IPv6CIDR" (dual stack).
	KubePodsCIDR    string
	KubeServiceCIDR string
	Calico          Calico
	Flannel         Flannel
	// KubeOVN, Cilium and Hybridnet hold the plugin's section as written
	// (nil when absent); kk passes them on to the plugin's templates.
	KubeOVN   map[string]any
	Cilium    map[string]any
	Hybridnet map[string]any
	MultusCNI bool
}

// Calico tunes Calico.
type Calico struct {
	IPIPMode        string // Always (default), CrossSubnet, Never
	VXLANMode       string // Never (default), Always, CrossSubnet
	VethMTU         int    // 0: auto-detect
	IPv4NatOutgoing bool   // default true
	DefaultIPPool   bool   // default true
	// Typha runs calico-typha (KubeKey turns it on for clusters of 50 nodes or more).
	Typha bool
	// ReplicaCount and NodeSelector place calico-kube-controllers and typha.
	ReplicaCount int
	NodeSelector map[string]string
}

// Flannel tunes Flannel.
type Flannel struct {
	BackendMode   string // vxlan (default), host-gw, ...
	DirectRouting bool
}

// Storage is the built-in storage configuration.
type Storage struct {
	// OpenEBSBasePath is the base directory of the OpenEBS local PV provisioner.
	OpenEBSBasePath string
}

// LocalVolumes is where the platform's local volumes live: OpenEBSBasePath, or
// DefaultLocalStorageBasePath when it is unset.
func (s Storage) LocalVolumes() string {
	if s.OpenEBSBasePath == "" {
		return DefaultLocalStorageBasePath
	}
	return s.OpenEBSBasePath
}

// Registry is the image registry configuration.
type Registry struct {
	// Type of registry kk deploys on registry hosts ("" , "registry" or "harbor").
	Type               string
	PrivateRegistry    string
	NamespaceOverride  string
	RegistryMirrors    []string
	InsecureRegistries []string
	DataRoot           string
	BridgeIP           string
	// ContainerdDataDir and DockerDataDir are the container runtime's data root on every
	// node (containerd's root, docker's data-root); "" keeps the runtime's default.
	// RegistryDataDir is where the registry kk deploys on registry hosts keeps its data.
	ContainerdDataDir string
	DockerDataDir     string
	RegistryDataDir   string
	// Auths maps a registry host to its credentials.
	Auths            map[string]RegistryAuth
	NamespaceRewrite *NamespaceRewrite
}

// RegistryAuth holds credentials and TLS options for one registry.
type RegistryAuth struct {
	Username      string
	Password      string
	SkipTLSVerify bool
	PlainHTTP     bool
	// CertsPath is a directory of *.crt, *.cert and *.key files.
	CertsPath string
}

// NamespaceRewrite rewrites image namespaces when pulling from PrivateRegistry.
type NamespaceRewrite struct {
	Policy string
	Src    []string
	Dest   string
}

// Addon is something installed after the cluster is up: a Helm chart or YAML.
type Addon struct {
	Name      string
	Namespace string
	Sources   AddonSources
	Retries   int
	Delay     int // seconds between retries
}

// AddonSources says where an addon comes from; exactly one of Chart or Yaml is set.
type AddonSources struct {
	Chart Chart
	Yaml  AddonYaml
}

// Chart is a Helm chart: Name from Repo, or a local Path.
type Chart struct {
	Name       string
	Repo       string
	Path       string
	Version    string
	ValuesFile string
	Values     []string
	Wait       bool
}

// AddonYaml lists manifests (local paths or URLs) applied in order.
type AddonYaml struct {
	Path []string
	// Values are "key=value" pairs substituted into the manifests ({{ .Values.key }}),
	// KubeKey 3.1's sources.yaml.values.
	Values []string
}

// Platform is the components of kk's platform phase that the file's KubeSphere
// ClusterConfiguration (installer.kubesphere.io/v1alpha1) switches on.
type Platform struct {
	// Source is FILE:LINE of the ClusterConfiguration document; "" when the file has none.
	Source string
	// MetricsServer is spec.metrics_server.enabled: metrics-server and its APIService
	// (kubectl top, the HorizontalPodAutoscaler's resource metrics).
	MetricsServer bool
	// LocalStorage is the default StorageClass "local" of node-local volumes under
	// Storage.OpenEBSBasePath, as KubeKey installs with KubeSphere (the ClusterConfiguration's
	// spec.persistence.storageClass empty or "local") or with --with-local-storage.
	LocalStorage bool
	// Gateway is the cluster gateway: an ingress controller (Traefik) on every worker serving
	// networking.k8s.io/v1 Ingress on the nodes' ports 80 and 443, with the default
	// IngressClass. KubeSphere 3.x switches its gateway on in the console; kk reads
	// spec.gateway.enabled from the ClusterConfiguration.
	Gateway bool
	// Logging is spec.logging.enabled: every node's pod logs collected (vlagent, a DaemonSet)
	// into a log store inside the cluster (VictoriaLogs, on a volume of the default
	// StorageClass), queried through the store's HTTP API. LoggingRetention is how long it
	// keeps them (kk's spec.logging.retention, VictoriaLogs' -retentionPeriod: a number and
	// h, d, w or y), LoggingVolumeSize its volume's size (kk's spec.logging.volumeSize, a
	// quantity); "" is DefaultLoggingRetention and DefaultLoggingVolumeSize.
	Logging           bool
	LoggingRetention  string
	LoggingVolumeSize string
	// AppStore is spec.openpitrix.store.enabled: a Helm chart repository inside the cluster
	// (ChartMuseum), loaded with StoreCharts, that helm installs from with no network.
	AppStore bool
	// StoreCharts are kk's spec.openpitrix.store.charts: local charts (archives made by helm
	// package, or chart directories) kk uploads into the app store; with an offline bundle,
	// the bundle's packages of them (kk create manifest lists them, kk artifact export packs
	// them).
	StoreCharts []LocalChart
	// Workspaces are KubeSphere-like tenants (kk's own spec.workspaces): each groups
	// namespaces that its admin group administers, each namespace with the same quota.
	Workspaces []Workspace
	// Monitoring is the monitoring stack (spec.monitoring), Alerting its alert rules and
	// Alertmanager (spec.alerting).
	Monitoring Monitoring
	Alerting   Alerting
}

// Monitoring is the platform's monitoring stack: the Prometheus Operator, Prometheus,
// node-exporter on every node, kube-state-metrics and the scrape configurations
// (ServiceMonitors) of the API servers, the kubelets, the nodes and, with Etcd, every etcd
// member. KubeSphere 3.x always installs its monitoring: kk installs it when the
// ClusterConfiguration has a spec.monitoring section, unless kk's spec.monitoring.enabled is
// false.
type Monitoring struct {
	Enabled bool
	// StorageClass is the class of Prometheus' and Alertmanager's volume claims ("": the
	// cluster's default class).
	StorageClass string
	// PrometheusReplicas, PrometheusVolumeSize and PrometheusMemoryRequest size Prometheus;
	// Retention is how long it keeps samples (a Prometheus duration: 7d, 12h).
	PrometheusReplicas      int
	PrometheusVolumeSize    string
	PrometheusMemoryRequest string
	Retention               string
	// AlertmanagerReplicas is the number of Alertmanager pods (with Alerting).
	AlertmanagerReplicas int
	// NodeExporterPort is node-exporter's port on every node (it runs on the host network).
	NodeExporterPort int
	// Etcd is spec.etcd.monitoring: Prometheus scrapes every etcd member with a client
	// certificate of the cluster's etcd, kept in the Secret kube-etcd-client-certs.
	Etcd bool
}

// Monitoring's defaults, KubeSphere 3.x's.
const (
	DefaultPrometheusVolumeSize    = "20Gi"
	DefaultPrometheusMemoryRequest = "400Mi"
	DefaultPrometheusRetention     = "7d"
	DefaultNodeExporterPort        = 9100
)

// Alerting is spec.alerting: Alertmanager, kk's default alert rules (nodes, etcd, the API
// servers, certificates close to expiry, pods) and the receivers every alert goes to.
type Alerting struct {
	Enabled bool
	// Receivers are kk's spec.alerting.receivers: every alert is sent to each of them.
	Receivers []Receiver
}

// AlertNullReceiver is kk's receiver of the alerts no receiver of the file takes: they stay
// in Alertmanager (its API and UI list them) and go nowhere else.
const AlertNullReceiver = "kk-none"

// Receiver is an alert receiver: Alertmanager posts each group of alerts to WebhookURL
// (Alertmanager's webhook format).
type Receiver struct {
	Name       string
	WebhookURL string
}

// LocalChart is a chart on the machine kk runs on.
type LocalChart struct {
	// Path is the chart archive (.tgz) or directory, absolute or relative to kk's working
	// directory (the file's relative paths are made relative to the Cluster file's folder).
	Path string
	// Source is FILE:LINE of the entry, for messages about the chart it names.
	Source string
}

// Workspace is one tenant: namespaces grouped under a name (each labelled
// kubesphere.io/workspace with it), administered by a group (the ClusterRole admin in each),
// each namespace holding a ResourceQuota of Quota.
type Workspace struct {
	Name       string
	AdminGroup string
	Namespaces []string
	// Quota is each namespace's ResourceQuota: resource name (requests.cpu, limits.memory,
	// requests.nvidia.com/gpu, pods, ...) to quantity; empty, none is made.
	Quota map[string]string
}

// Local storage: the default StorageClass's name (KubeKey's OpenEBS local PV class has the
// same) and where its volumes live unless spec.storage.openebs.basePath says otherwise.
const (
	LocalStorageClass           = "local"
	DefaultLocalStorageBasePath = "/var/openebs/local"
)

// The logging's defaults: KubeSphere's own (its log store's logMaxAge, 7 days, and its data
// volume, 20Gi).
const (
	DefaultLoggingRetention  = "7d"
	DefaultLoggingVolumeSize = "20Gi"
)

// LogCollectorDir is where the logging's collector on each node keeps what it has not sent
// yet (a host directory: it outlives the collector's pod); kk delete cluster removes it.
const LogCollectorDir = "/var/lib/kk-vlagent"

// KubeSphere is KubeKey's switch to install KubeSphere on top of the cluster.
type KubeSphere struct {
	Enabled        bool
	Version        string
	Configurations string
}

// DefaultArch is the arch of a host whose arch is not given.
const DefaultArch = "amd64"

// Arches lists the hosts' arches, sorted, each once (DefaultArch for a host without one, and
// for a cluster without hosts).
func (c *Cluster) Arches() []string {
	var arches []string
	for _, h := range c.Hosts {
		a := h.Arch
		if a == "" {
			a = DefaultArch
		}
		if !slices.Contains(arches, a) {
			arches = append(arches, a)
		}
	}
	if len(arches) == 0 {
		arches = []string{DefaultArch}
	}
	slices.Sort(arches)
	return arches
}
