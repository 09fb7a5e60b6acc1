package v1alpha2

import "github.com/kk-project/kk/api/config"

// Defaults: KubeKey's, except where kk deliberately differs (marked).
const (
	DefaultSSHPort        = 22
	DefaultSSHUser        = "root"
	DefaultSSHTimeout     = 30 // seconds
	DefaultArch           = "amd64"
	DefaultPrivateKeyPath = "~/.ssh/id_rsa" // used when a host has no password and no key

	DefaultLBDomain    = "lb.kubesphere.local"
	DefaultLBPort      = 6443
	DefaultKubeVipMode = "ARP"

	// DefaultKubernetesVersion is kk's (KubeKey's is much older).
	DefaultKubernetesVersion = "v1.37.2"
	DefaultClusterName       = "cluster.local"
	DefaultDNSDomain         = "cluster.local"
	// DefaultContainerManager is kk's: KubeKey defaults to docker.
	DefaultContainerManager = "containerd"
	// DefaultProxyMode is kk's: KubeKey defaults to ipvs.
	DefaultProxyMode        = "iptables"
	DefaultMaxPods          = 110
	DefaultPodPidsLimit     = 10000
	DefaultNodeCidrMaskSize = 24

	DefaultContainerdEndpoint = "unix:///run/containerd/containerd.sock"
	DefaultCriDockerdEndpoint = "unix:///var/run/cri-dockerd.sock"

	DefaultNetworkPlugin = "calico"
	// AllInOneNetworkPlugin is the network of a cluster described without a Cluster file:
	// `kk create cluster` without -f (this machine alone) and `kk create manifest
	// --with-kubernetes`, which must agree so that the bundle of one installs the other.
	// It is flannel, the plugin kk's end-to-end tests bring up on machines; calico, the
	// default of Cluster files as in KubeKey, is rendered and applied but not run here.
	AllInOneNetworkPlugin = "flannel"
	DefaultPodsCIDR       = "10.233.64.0/18"
	DefaultServiceCIDR    = "10.233.0.0/18"
	DefaultIPIPMode       = "Always"
	DefaultVXLANMode      = "Never"
	DefaultFlannelMode    = "vxlan"

	DefaultEtcdType          = "kubekey"
	DefaultEtcdPort          = 2379
	DefaultEtcdPeerPort      = 2380
	DefaultEtcdDataDir       = "/var/lib/etcd"
	DefaultEtcdBackupDir     = "/var/backups/kube_etcd"
	DefaultEtcdBackupPeriod  = 1440 // minutes
	DefaultEtcdKeepBackups   = 5
	DefaultEtcdBackupScripts = "/usr/local/bin/kube-scripts"

	DefaultOpenEBSBasePath = config.DefaultLocalStorageBasePath
	DefaultClusterObject   = "cluster" // metadata.name when absent
)

// etcd tuning defaults, as KubeKey writes them into etcd's environment.
const (
	defaultEtcdHeartbeat     = 250
	defaultEtcdElection      = 5000
	defaultEtcdSnapshotCount = 10000
	defaultEtcdCompaction    = 8
	defaultEtcdMetrics       = "basic"
	defaultEtcdQuotaBytes    = 2147483648
	defaultEtcdMaxRequest    = 1572864
	defaultEtcdMaxSnapshots  = 5
	defaultEtcdMaxWals       = 5
	defaultEtcdLogLevel      = "info"
)

// setDefaults fills every unset field of spec that has a default. Host key
// defaults (privateKeyPath) are left to conversion, which must know whether the
// path was written.
func setDefaults(obj *Cluster) {
	if obj.Metadata.Name == "" {
		obj.Metadata.Name = DefaultClusterObject
	}
	s := &obj.Spec
	for i := range s.Hosts {
		defaultHost(&s.Hosts[i])
	}
	defaultEndpoint(&s.ControlPlaneEndpoint)
	defaultKubernetes(&s.Kubernetes)
	defaultEtcd(&s.Etcd)
	defaultNetwork(&s.Network)
	if s.Storage.OpenEBS.BasePath == "" {
		s.Storage.OpenEBS.BasePath = DefaultOpenEBSBasePath
	}
}

func defaultHost(h *HostCfg) {
	if h.Address == "" {
		h.Address = h.InternalAddress
	}
	if h.InternalAddress == "" {
		h.InternalAddress = h.Address
	}
	if h.User == "" {
		h.User = DefaultSSHUser
	}
	if h.Port == 0 {
		h.Port = DefaultSSHPort
	}
	if h.Arch == "" {
		h.Arch = DefaultArch
	}
	if h.Timeout == nil {
		t := int64(DefaultSSHTimeout)
		h.Timeout = &t
	}
}

func defaultEndpoint(e *ControlPlaneEndpoint) {
	setStr(&e.Domain, DefaultLBDomain)
	setInt(&e.Port, DefaultLBPort)
	setStr(&e.KubeVip.Mode, DefaultKubeVipMode)
}

func defaultKubernetes(k *Kubernetes) {
	setStr(&k.Type, "kubernetes")
	setStr(&k.Version, DefaultKubernetesVersion)
	setStr(&k.ClusterName, DefaultClusterName)
	setStr(&k.DNSDomain, DefaultDNSDomain)
	setStr(&k.ContainerManager, DefaultContainerManager)
	if k.ContainerRuntimeEndpoint == "" {
		switch k.ContainerManager {
		case "containerd":
			k.ContainerRuntimeEndpoint = DefaultContainerdEndpoint
		case "docker":
			k.ContainerRuntimeEndpoint = DefaultCriDockerdEndpoint
		}
	}
	setStr(&k.ProxyMode, DefaultProxyMode)
	setInt(&k.MaxPods, DefaultMaxPods)
	setInt(&k.PodPidsLimit, DefaultPodPidsLimit)
	setInt(&k.NodeCidrMaskSize, DefaultNodeCidrMaskSize)
	if k.Nodelocaldns == nil {
		k.Nodelocaldns = ptr(true)
	}
	if k.AutoRenewCerts == nil {
		k.AutoRenewCerts = ptr(true) // KubeKey's default
	}
}

func defaultEtcd(e *EtcdCluster) {
	setStr(&e.Type, DefaultEtcdType)
	setStr(&e.BackupDir, DefaultEtcdBackupDir)
	setInt(&e.BackupPeriod, DefaultEtcdBackupPeriod)
	setInt(&e.KeepBackupNumber, DefaultEtcdKeepBackups)
	setStr(&e.BackupScriptDir, DefaultEtcdBackupScripts)
	setPtr(&e.Port, DefaultEtcdPort)
	setPtr(&e.PeerPort, DefaultEtcdPeerPort)
	setPtr(&e.DataDir, DefaultEtcdDataDir)
	setPtr(&e.HeartbeatInterval, defaultEtcdHeartbeat)
	setPtr(&e.ElectionTimeout, defaultEtcdElection)
	setPtr(&e.SnapshotCount, defaultEtcdSnapshotCount)
	setPtr(&e.AutoCompactionRetention, defaultEtcdCompaction)
	setPtr(&e.Metrics, defaultEtcdMetrics)
	setPtr(&e.QuotaBackendBytes, defaultEtcdQuotaBytes)
	setPtr(&e.MaxRequestBytes, defaultEtcdMaxRequest)
	setPtr(&e.MaxSnapshots, defaultEtcdMaxSnapshots)
	setPtr(&e.MaxWals, defaultEtcdMaxWals)
	setPtr(&e.LogLevel, defaultEtcdLogLevel)
}

func defaultNetwork(n *NetworkConfig) {
	setStr(&n.Plugin, DefaultNetworkPlugin)
	setStr(&n.KubePodsCIDR, DefaultPodsCIDR)
	setStr(&n.KubeServiceCIDR, DefaultServiceCIDR)
	if n.Calico.IPIPMode == "" && n.Calico.VXLANMode != "" && n.Calico.VXLANMode != "Never" {
		n.Calico.IPIPMode = "Never" // VXLAN was chosen: IPIP must be off
	}
	setStr(&n.Calico.IPIPMode, DefaultIPIPMode)
	setStr(&n.Calico.VXLANMode, DefaultVXLANMode)
	setPtr(&n.Calico.Ipv4NatOutgoing, true)
	setPtr(&n.Calico.DefaultIPPOOL, true)
	setStr(&n.Flannel.BackendMode, DefaultFlannelMode)
}

func setStr(p *string, v string) {
	if *p == "" {
		*p = v
	}
}

func setInt(p *int, v int) {
	if *p == 0 {
		*p = v
	}
}

func setPtr[T any](p **T, v T) {
	if *p == nil {
		*p = &v
	}
}

func ptr[T any](v T) *T { return &v }
