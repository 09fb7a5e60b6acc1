package v1alpha2

// Kubernetes is spec.kubernetes.
type Kubernetes struct {
	Type                   string   `json:"type,omitempty"`
	Version                string   `json:"version,omitempty"`
	ClusterName            string   `json:"clusterName,omitempty"`
	DNSDomain              string   `json:"dnsDomain,omitempty"`
	DisableKubeProxy       bool     `json:"disableKubeProxy,omitempty"`
	MasqueradeAll          bool     `json:"masqueradeAll,omitempty"`
	MaxPods                int      `json:"maxPods,omitempty"`
	PodPidsLimit           int      `json:"podPidsLimit,omitempty"`
	NodeCidrMaskSize       int      `json:"nodeCidrMaskSize,omitempty"`
	NodeCidrMaskSizeIPv6   int      `json:"nodeCidrMaskSizeIPv6,omitempty"`
	ApiserverCertExtraSans []string `json:"apiserverCertExtraSans,omitempty"`
	ProxyMode              string   `json:"proxyMode,omitempty"`
	AutoRenewCerts         *bool    `json:"autoRenewCerts,omitempty"`
	// CertificateValidityPeriod (kk) is the lifetime of every leaf certificate kubeadm and
	// kk's etcd PKI issue, as a Go duration ("8760h", "4h"): kubeadm v1beta4's
	// ClusterConfiguration.certificateValidityPeriod. CAs keep their own lifetime.
	CertificateValidityPeriod string          `json:"certificateValidityPeriod,omitempty"`
	Nodelocaldns              *bool           `json:"nodelocaldns,omitempty"`
	ContainerManager          string          `json:"containerManager,omitempty"`
	ContainerRuntimeEndpoint  string          `json:"containerRuntimeEndpoint,omitempty"`
	NodeFeatureDiscovery      Toggle          `json:"nodeFeatureDiscovery,omitempty"`
	Kata                      Toggle          `json:"kata,omitempty"`
	ApiServerArgs             []string        `json:"apiserverArgs,omitempty"`
	ControllerManagerArgs     []string        `json:"controllerManagerArgs,omitempty"`
	SchedulerArgs             []string        `json:"schedulerArgs,omitempty"`
	KubeletArgs               []string        `json:"kubeletArgs,omitempty"`
	KubeProxyArgs             []string        `json:"kubeProxyArgs,omitempty"`
	FeatureGates              map[string]bool `json:"featureGates,omitempty"`
	KubeletConfiguration      map[string]any  `json:"kubeletConfiguration,omitempty"`
	KubeProxyConfiguration    map[string]any  `json:"kubeProxyConfiguration,omitempty"`
	Audit                     Toggle          `json:"audit,omitempty"`
	// NvidiaRuntime (KubeKey 3.1) makes nvidia containerd's default runtime on GPU nodes.
	NvidiaRuntime *bool `json:"nvidiaRuntime,omitempty"`

	// Fields of older KubeKey files, read with a warning (see compat.go). ImageRepo is
	// KubeKey 1.x's; the etcd backup fields moved from kubernetes to etcd in KubeKey 2.1.
	ImageRepo           string `json:"imageRepo,omitempty"`
	EtcdBackupDir       string `json:"etcdBackupDir,omitempty"`
	EtcdBackupPeriod    int    `json:"etcdBackupPeriod,omitempty"`
	KeepBackupNumber    int    `json:"keepBackupNumber,omitempty"`
	EtcdBackupScriptDir string `json:"etcdBackupScript,omitempty"`
}

// Toggle is an {enabled: bool} switch (kata, nodeFeatureDiscovery, audit, multusCNI).
type Toggle struct {
	Enabled *bool `json:"enabled,omitempty"`
}

// On reports whether the toggle is set and true.
func (t Toggle) On() bool { return t.Enabled != nil && *t.Enabled }

// EtcdCluster is spec.etcd.
type EtcdCluster struct {
	Type                    string       `json:"type,omitempty"`
	External                ExternalEtcd `json:"external,omitempty"`
	Port                    *int         `json:"port,omitempty"`
	PeerPort                *int         `json:"peerPort,omitempty"`
	BackupDir               string       `json:"backupDir,omitempty"`
	BackupPeriod            int          `json:"backupPeriod,omitempty"`
	KeepBackupNumber        int          `json:"keepBackupNumber,omitempty"`
	BackupScriptDir         string       `json:"backupScript,omitempty"`
	DataDir                 *string      `json:"dataDir,omitempty"`
	HeartbeatInterval       *int         `json:"heartbeatInterval,omitempty"`
	ElectionTimeout         *int         `json:"electionTimeout,omitempty"`
	SnapshotCount           *int         `json:"snapshotCount,omitempty"`
	AutoCompactionRetention *int         `json:"autoCompactionRetention,omitempty"`
	Metrics                 *string      `json:"metrics,omitempty"`
	QuotaBackendBytes       *int64       `json:"quotaBackendBytes,omitempty"`
	MaxRequestBytes         *int64       `json:"maxRequestBytes,omitempty"`
	MaxSnapshots            *int         `json:"maxSnapshots,omitempty"`
	MaxWals                 *int         `json:"maxWals,omitempty"`
	LogLevel                *string      `json:"logLevel,omitempty"`
	// ExtraArgs (KubeKey 3.1) are extra etcd flags: a list of "--name=value" as KubeKey
	// writes them, or a mapping name: value.
	ExtraArgs FlagArgs `json:"extraArgs,omitempty"`
}

// ExternalEtcd is spec.etcd.external.
type ExternalEtcd struct {
	Endpoints []string `json:"endpoints,omitempty"`
	CAFile    string   `json:"caFile,omitempty"`
	CertFile  string   `json:"certFile,omitempty"`
	KeyFile   string   `json:"keyFile,omitempty"`
}

// DNS is spec.dns.
type DNS struct {
	DNSEtcHosts  string       `json:"dnsEtcHosts,omitempty"`
	NodeEtcHosts string       `json:"nodeEtcHosts,omitempty"`
	CoreDNS      CoreDNS      `json:"coredns,omitempty"`
	NodeLocalDNS NodeLocalDNS `json:"nodelocaldns,omitempty"`
}

// CoreDNS is spec.dns.coredns.
type CoreDNS struct {
	AdditionalConfigs  string         `json:"additionalConfigs,omitempty"`
	ExternalZones      []ExternalZone `json:"externalZones,omitempty"`
	RewriteBlock       string         `json:"rewriteBlock,omitempty"`
	UpstreamDNSServers []string       `json:"upstreamDNSServers,omitempty"`
}

// NodeLocalDNS is spec.dns.nodelocaldns.
type NodeLocalDNS struct {
	ExternalZones []ExternalZone `json:"externalZones,omitempty"`
}

// ExternalZone is one entry of externalZones.
type ExternalZone struct {
	Zones       []string `json:"zones,omitempty"`
	Nameservers []string `json:"nameservers,omitempty"`
	Cache       int      `json:"cache,omitempty"`
	Rewrite     []string `json:"rewrite,omitempty"`
}
