package v1alpha2

// NetworkConfig is spec.network. The cilium and hybridnet sections are accepted
// free-form: their content is handed to the plugin as written.
type NetworkConfig struct {
	Plugin          string         `json:"plugin,omitempty"`
	KubePodsCIDR    string         `json:"kubePodsCIDR,omitempty"`
	KubeServiceCIDR string         `json:"kubeServiceCIDR,omitempty"`
	Calico          CalicoCfg      `json:"calico,omitempty"`
	Flannel         FlannelCfg     `json:"flannel,omitempty"`
	Kubeovn         KubeovnCfg     `json:"kubeovn,omitempty"`
	Cilium          map[string]any `json:"cilium,omitempty"`
	Hybridnet       map[string]any `json:"hybridnet,omitempty"`
	MultusCNI       Toggle         `json:"multusCNI,omitempty"`
}

// CalicoCfg is spec.network.calico.
type CalicoCfg struct {
	IPIPMode        string `json:"ipipMode,omitempty"`
	VXLANMode       string `json:"vxlanMode,omitempty"`
	VethMTU         int    `json:"vethMTU,omitempty"`
	Ipv4NatOutgoing *bool  `json:"ipv4NatOutgoing,omitempty"`
	DefaultIPPOOL   *bool  `json:"defaultIPPOOL,omitempty"`
	// The fields below are KubeKey 3.1's.
	IPAutoDetectionMethod string           `json:"ipAutoDetectionMethod,omitempty"`
	Ipv6NatOutgoing       *bool            `json:"ipv6NatOutgoing,omitempty"`
	Typha                 CalicoTypha      `json:"typha,omitempty"`
	Controller            CalicoController `json:"controller,omitempty"`
}

// CalicoTypha is spec.network.calico.typha. KubeKey runs typha when enabled is true or the
// cluster has more than 50 nodes.
type CalicoTypha struct {
	Enabled      *bool             `json:"enabled,omitempty"`
	Replicas     int               `json:"replicas,omitempty"`
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
}

// CalicoController is spec.network.calico.controller (calico-kube-controllers).
type CalicoController struct {
	Replicas     int               `json:"replicas,omitempty"`
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
}

// FlannelCfg is spec.network.flannel.
type FlannelCfg struct {
	BackendMode   string `json:"backendMode,omitempty"`
	Directrouting bool   `json:"directRouting,omitempty"`
}

// KubeovnCfg is spec.network.kubeovn.
type KubeovnCfg struct {
	EnableSSL             bool              `json:"enableSSL,omitempty"`
	JoinCIDR              string            `json:"joinCIDR,omitempty"`
	Label                 string            `json:"label,omitempty"`
	TunnelType            string            `json:"tunnelType,omitempty"`
	SvcYamlIpfamilypolicy string            `json:"svcYamlIpfamilypolicy,omitempty"`
	Dpdk                  Dpdk              `json:"dpdk,omitempty"`
	OvsOvn                OvsOvn            `json:"ovs-ovn,omitempty"`
	KubeOvnController     KubeOvnController `json:"kube-ovn-controller,omitempty"`
	KubeOvnCni            KubeOvnCni        `json:"kube-ovn-cni,omitempty"`
	KubeOvnPinger         KubeOvnPinger     `json:"kube-ovn-pinger,omitempty"`
}

// Dpdk is spec.network.kubeovn.dpdk.
type Dpdk struct {
	DpdkMode        bool   `json:"dpdkMode,omitempty"`
	DpdkTunnelIface string `json:"dpdkTunnelIface,omitempty"`
	DpdkVersion     string `json:"dpdkVersion,omitempty"`
}

// OvsOvn is spec.network.kubeovn.ovs-ovn.
type OvsOvn struct {
	HwOffload bool `json:"hwOffload,omitempty"`
}

// KubeOvnController is spec.network.kubeovn.kube-ovn-controller.
type KubeOvnController struct {
	PodGateway        string `json:"podGateway,omitempty"`
	CheckGateway      *bool  `json:"checkGateway,omitempty"`
	LogicalGateway    bool   `json:"logicalGateway,omitempty"`
	ExcludeIps        string `json:"excludeIps,omitempty"`
	NetworkType       string `json:"networkType,omitempty"`
	VlanInterfaceName string `json:"vlanInterfaceName,omitempty"`
	VlanID            string `json:"vlanID,omitempty"`
	PodNicType        string `json:"podNicType,omitempty"`
	EnableLB          *bool  `json:"enableLB,omitempty"`
	EnableNP          *bool  `json:"enableNP,omitempty"`
	EnableEipSnat     *bool  `json:"enableEipSnat,omitempty"`
	EnableExternalVPC *bool  `json:"enableExternalVPC,omitempty"`
}

// KubeOvnCni is spec.network.kubeovn.kube-ovn-cni.
type KubeOvnCni struct {
	EnableMirror      bool   `json:"enableMirror,omitempty"`
	Iface             string `json:"iface,omitempty"`
	CNIConfigPriority string `json:"CNIConfigPriority,omitempty"`
	Modules           string `json:"modules,omitempty"`
	RPMs              string `json:"RPMs,omitempty"`
}

// KubeOvnPinger is spec.network.kubeovn.kube-ovn-pinger.
type KubeOvnPinger struct {
	PingerExternalAddress string `json:"pingerExternalAddress,omitempty"`
	PingerExternalDomain  string `json:"pingerExternalDomain,omitempty"`
}

// RegistryConfig is spec.registry.
type RegistryConfig struct {
	Type               string                  `json:"type,omitempty"`
	RegistryMirrors    []string                `json:"registryMirrors,omitempty"`
	InsecureRegistries []string                `json:"insecureRegistries,omitempty"`
	PrivateRegistry    string                  `json:"privateRegistry,omitempty"`
	DataRoot           string                  `json:"dataRoot,omitempty"`
	NamespaceOverride  string                  `json:"namespaceOverride,omitempty"`
	BridgeIP           string                  `json:"bridgeIP,omitempty"`
	Auths              map[string]RegistryAuth `json:"auths,omitempty"`
	NamespaceRewrite   *NamespaceRewrite       `json:"namespaceRewrite,omitempty"`
	// ContainerdDataDir, DockerDataDir and RegistryDataDir are KubeKey 3.1's data roots of
	// containerd, docker and the registry kk deploys.
	ContainerdDataDir string `json:"containerdDataDir,omitempty"`
	DockerDataDir     string `json:"dockerDataDir,omitempty"`
	RegistryDataDir   string `json:"registryDataDir,omitempty"`
	// Port (KubeKey 3.x) is the port of the registry KubeKey deploys; RemoteMirrors (KubeKey
	// 3.1) is free-form. kk reads both and warns that it ignores them.
	Port          int `json:"port,omitempty"`
	RemoteMirrors any `json:"remoteMirrors,omitempty"`
}

// RegistryAuth is one entry of spec.registry.auths.
type RegistryAuth struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	SkipTLSVerify bool   `json:"skipTLSVerify,omitempty"`
	PlainHTTP     bool   `json:"plainHTTP,omitempty"`
	CertsPath     string `json:"certsPath,omitempty"`
}

// NamespaceRewrite is spec.registry.namespaceRewrite.
type NamespaceRewrite struct {
	Policy string   `json:"policy,omitempty"`
	Src    []string `json:"src,omitempty"`
	Dest   string   `json:"dest,omitempty"`
}

// Addon is one entry of spec.addons.
type Addon struct {
	Name      string  `json:"name,omitempty"`
	Namespace string  `json:"namespace,omitempty"`
	Sources   Sources `json:"sources,omitempty"`
	Retries   int     `json:"retries,omitempty"`
	Delay     int     `json:"delay,omitempty"`
	// PreInstall and PostInstall (KubeKey 3.1) are scripts run around the addon's install.
	PreInstall  []CustomScripts `json:"preInstall,omitempty"`
	PostInstall []CustomScripts `json:"postInstall,omitempty"`
}

// Sources is spec.addons[].sources.
type Sources struct {
	Chart Chart `json:"chart,omitempty"`
	Yaml  Yaml  `json:"yaml,omitempty"`
}

// Chart is spec.addons[].sources.chart.
type Chart struct {
	Name       string   `json:"name,omitempty"`
	Repo       string   `json:"repo,omitempty"`
	Path       string   `json:"path,omitempty"`
	Version    string   `json:"version,omitempty"`
	ValuesFile string   `json:"valuesFile,omitempty"`
	Values     []string `json:"values,omitempty"`
	Wait       bool     `json:"wait,omitempty"`
}

// Yaml is spec.addons[].sources.yaml.
type Yaml struct {
	Path []string `json:"path,omitempty"`
	// Values (KubeKey 3.1) are "key=value" pairs substituted into the manifests.
	Values []string `json:"values,omitempty"`
}
