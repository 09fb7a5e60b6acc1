package v1alpha2

import (
	"cmp"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/kk-project/kk/api/config"
)

// build defaults, converts and validates obj, reporting into rep.
func build(obj *Cluster, source string, o ParseOptions, rep *report) *config.Cluster {
	upgradeLegacy(obj, rep)
	setDefaults(obj)
	v := &validator{rep: rep, opts: o}
	known := v.hosts(obj.Spec.Hosts)
	roles := expandRoleGroups(obj.Spec.RoleGroups, known, rep)

	s := &obj.Spec
	c := &config.Cluster{
		Name:                 obj.Metadata.Name,
		Source:               source,
		ControlPlaneEndpoint: convertEndpoint(s.ControlPlaneEndpoint),
		System:               convertSystem(s.System),
		Kubernetes:           convertKubernetes(s.Kubernetes),
		Etcd:                 convertEtcd(s.Etcd, o),
		DNS:                  convertDNS(s.DNS),
		Network:              convertNetwork(s.Network),
		Storage:              config.Storage{OpenEBSBasePath: s.Storage.OpenEBS.BasePath},
		Registry:             convertRegistry(s.Registry),
		Addons:               convertAddons(s.Addons),
		KubeSphere:           config.KubeSphere(s.KubeSphere),
		GPU:                  convertGPU(s.GPU, s.Kubernetes.NvidiaRuntime),
	}
	for i := range s.Hosts {
		c.Hosts = append(c.Hosts, convertHost(&s.Hosts[i], roles[s.Hosts[i].Name], o))
	}
	calicoPlacement(s.Network.Calico, c, rep)
	v.cluster(obj, c)
	return c
}

// convertGPU is spec.gpu; KubeKey's kubernetes.nvidiaRuntime: true asks for the toolkit too,
// with nvidia as containerd's default runtime.
func convertGPU(g *GPUConfig, nvidiaRuntime *bool) config.GPU {
	var out config.GPU
	if g != nil {
		out = config.GPU{DriverVersion: strings.TrimSpace(g.Driver.Version), Toolkit: true, ToolkitVersion: strings.TrimSpace(g.Toolkit.Version),
			DevicePlugin: g.DevicePlugin.Enabled == nil || *g.DevicePlugin.Enabled,
			Exporter:     g.Exporter.Enabled == nil || *g.Exporter.Enabled,
			MIGStrategy:  cmp.Or(strings.TrimSpace(g.DevicePlugin.MIGStrategy), config.MIGNone)}
		if ts := g.DevicePlugin.TimeSlicing; ts != nil {
			out.TimeSlicingReplicas = ts.Replicas
		}
	}
	if nvidiaRuntime != nil && *nvidiaRuntime {
		out.Toolkit, out.DefaultRuntime = true, true
	}
	return out
}

func convertHost(h *HostCfg, roles map[config.Role]bool, o ParseOptions) *config.Host {
	out := &config.Host{
		Name:            h.Name,
		Address:         h.Address,
		InternalAddress: h.InternalAddress,
		Port:            h.Port,
		User:            h.User,
		Password:        h.Password,
		PrivateKey:      h.PrivateKey,
		PrivateKeyPath:  expandHome(keyPath(h), o.HomeDir),
		Arch:            h.Arch,
		Labels:          h.Labels,
		JumpHost:        h.JumpHost,
		Timeout:         time.Duration(*h.Timeout) * time.Second,
	}
	for _, r := range config.Roles() {
		if roles[r] {
			out.Roles = append(out.Roles, r)
		}
	}
	return out
}

// keyPath is the private key path of h as written, or KubeKey's default when
// the host has neither a password nor a key.
func keyPath(h *HostCfg) string {
	if h.PrivateKeyPath == "" && h.PrivateKey == "" && h.Password == "" {
		return DefaultPrivateKeyPath
	}
	return h.PrivateKeyPath
}

// expandHome replaces a leading "~" (alone or followed by "/") with home.
func expandHome(p, home string) string {
	p = strings.TrimSpace(p)
	if home == "" || p == "" || p[0] != '~' {
		return p
	}
	if p == "~" {
		return home
	}
	if strings.HasPrefix(p, "~/") {
		return filepath.Join(home, p[2:])
	}
	return p // ~user/... is left alone
}

func convertEndpoint(e ControlPlaneEndpoint) config.Endpoint {
	return config.Endpoint{
		InternalLoadbalancer: e.InternalLoadbalancer,
		Domain:               e.Domain,
		Address:              e.Address,
		Port:                 e.Port,
		ExternalDNS:          e.ExternalDNS != nil && *e.ExternalDNS,
		KubeVIPMode:          e.KubeVip.Mode,
	}
}

func convertSystem(s System) config.System {
	return config.System{
		NTPServers:         s.NtpServers,
		Timezone:           s.Timezone,
		Rpms:               s.Rpms,
		Debs:               s.Debs,
		PreInstall:         convertScripts(s.PreInstall),
		PostInstall:        convertScripts(s.PostInstall),
		PostClusterInstall: convertScripts(s.PostClusterInstall),
		SkipConfigureOS:    s.SkipConfigureOS,
	}
}

func convertScripts(in []CustomScripts) []config.Script {
	var out []config.Script
	for _, s := range in {
		out = append(out, config.Script(s))
	}
	return out
}

func convertKubernetes(k Kubernetes) config.Kubernetes {
	return config.Kubernetes{
		Version:                  k.Version,
		ClusterName:              k.ClusterName,
		DNSDomain:                k.DNSDomain,
		ContainerManager:         k.ContainerManager,
		ContainerRuntimeEndpoint: k.ContainerRuntimeEndpoint,
		AutoRenewCerts:           k.AutoRenewCerts != nil && *k.AutoRenewCerts,
		CertificateValidity:      validity(k.CertificateValidityPeriod),
		ProxyMode:                k.ProxyMode,
		DisableKubeProxy:         k.DisableKubeProxy,
		MasqueradeAll:            k.MasqueradeAll,
		MaxPods:                  k.MaxPods,
		PodPidsLimit:             k.PodPidsLimit,
		NodeCidrMaskSize:         k.NodeCidrMaskSize,
		NodeLocalDNS:             *k.Nodelocaldns,
		Audit:                    k.Audit.On(),
		Kata:                     k.Kata.On(),
		NodeFeatureDiscovery:     k.NodeFeatureDiscovery.On(),
		FeatureGates:             k.FeatureGates,
		ApiserverArgs:            k.ApiServerArgs,
		ControllerManagerArgs:    k.ControllerManagerArgs,
		SchedulerArgs:            k.SchedulerArgs,
		KubeletArgs:              k.KubeletArgs,
		KubeProxyArgs:            k.KubeProxyArgs,
		ApiserverCertExtraSans:   k.ApiserverCertExtraSans,
		KubeletConfiguration:     k.KubeletConfiguration,
		KubeProxyConfiguration:   k.KubeProxyConfiguration,
	}
}

func convertEtcd(e EtcdCluster, o ParseOptions) config.Etcd {
	return config.Etcd{
		Type: e.Type,
		External: config.ExternalEtcd{
			Endpoints: e.External.Endpoints,
			CAFile:    expandHome(e.External.CAFile, o.HomeDir),
			CertFile:  expandHome(e.External.CertFile, o.HomeDir),
			KeyFile:   expandHome(e.External.KeyFile, o.HomeDir),
		},
		Port:                    *e.Port,
		PeerPort:                *e.PeerPort,
		DataDir:                 *e.DataDir,
		BackupDir:               e.BackupDir,
		BackupPeriod:            e.BackupPeriod,
		KeepBackupNumber:        e.KeepBackupNumber,
		BackupScriptDir:         e.BackupScriptDir,
		HeartbeatInterval:       *e.HeartbeatInterval,
		ElectionTimeout:         *e.ElectionTimeout,
		SnapshotCount:           *e.SnapshotCount,
		AutoCompactionRetention: *e.AutoCompactionRetention,
		Metrics:                 *e.Metrics,
		QuotaBackendBytes:       *e.QuotaBackendBytes,
		MaxRequestBytes:         *e.MaxRequestBytes,
		MaxSnapshots:            *e.MaxSnapshots,
		MaxWals:                 *e.MaxWals,
		LogLevel:                *e.LogLevel,
		ExtraArgs:               nilIfEmpty(e.ExtraArgs),
	}
}

func convertDNS(d DNS) config.DNS {
	return config.DNS{
		DNSEtcHosts:  d.DNSEtcHosts,
		NodeEtcHosts: d.NodeEtcHosts,
		CoreDNS: config.CoreDNS{
			AdditionalConfigs:  d.CoreDNS.AdditionalConfigs,
			ExternalZones:      convertZones(d.CoreDNS.ExternalZones),
			RewriteBlock:       d.CoreDNS.RewriteBlock,
			UpstreamDNSServers: d.CoreDNS.UpstreamDNSServers,
		},
		NodeLocalDNS: config.NodeLocalDNS{ExternalZones: convertZones(d.NodeLocalDNS.ExternalZones)},
	}
}

func convertZones(in []ExternalZone) []config.ExternalZone {
	var out []config.ExternalZone
	for _, z := range in {
		out = append(out, config.ExternalZone(z))
	}
	return out
}

func convertNetwork(n NetworkConfig) config.Network {
	return config.Network{
		Plugin:          n.Plugin,
		KubePodsCIDR:    n.KubePodsCIDR,
		KubeServiceCIDR: n.KubeServiceCIDR,
		Calico: config.Calico{
			IPIPMode:        n.Calico.IPIPMode,
			VXLANMode:       n.Calico.VXLANMode,
			VethMTU:         n.Calico.VethMTU,
			IPv4NatOutgoing: *n.Calico.Ipv4NatOutgoing,
			DefaultIPPool:   *n.Calico.DefaultIPPOOL,
		},
		Flannel:   config.Flannel{BackendMode: n.Flannel.BackendMode, DirectRouting: n.Flannel.Directrouting},
		KubeOVN:   toMap(n.Kubeovn),
		Cilium:    n.Cilium,
		Hybridnet: n.Hybridnet,
		MultusCNI: n.MultusCNI.On(),
	}
}

func convertRegistry(r RegistryConfig) config.Registry {
	out := config.Registry{
		Type:               r.Type,
		PrivateRegistry:    r.PrivateRegistry,
		NamespaceOverride:  r.NamespaceOverride,
		RegistryMirrors:    r.RegistryMirrors,
		InsecureRegistries: r.InsecureRegistries,
		DataRoot:           r.DataRoot,
		BridgeIP:           r.BridgeIP,
		ContainerdDataDir:  r.ContainerdDataDir,
		DockerDataDir:      r.DockerDataDir,
		RegistryDataDir:    r.RegistryDataDir,
	}
	if len(r.Auths) > 0 {
		out.Auths = map[string]config.RegistryAuth{}
		for k, a := range r.Auths {
			out.Auths[k] = config.RegistryAuth(a)
		}
	}
	if nr := r.NamespaceRewrite; nr != nil {
		out.NamespaceRewrite = &config.NamespaceRewrite{Policy: nr.Policy, Src: nr.Src, Dest: nr.Dest}
	}
	return out
}

func convertAddons(in []Addon) []config.Addon {
	var out []config.Addon
	for _, a := range in {
		out = append(out, config.Addon{
			Name:      a.Name,
			Namespace: a.Namespace,
			Retries:   a.Retries,
			Delay:     a.Delay,
			Sources: config.AddonSources{
				Chart: config.Chart(a.Sources.Chart),
				Yaml:  config.AddonYaml{Path: a.Sources.Yaml.Path, Values: a.Sources.Yaml.Values},
			},
		})
	}
	return out
}

// nilIfEmpty is a's map, nil when it has no entry.
func nilIfEmpty(a FlagArgs) map[string]string {
	if len(a) == 0 {
		return nil
	}
	return a
}

// toMap turns a section into its JSON form as a map (nil when it is unset).
func toMap(v any) map[string]any {
	if reflect.ValueOf(v).IsZero() {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

// validity is certificateValidityPeriod as a duration (0 when unset; the validator refused
// what does not parse).
func validity(s string) time.Duration {
	d, _ := time.ParseDuration(s)
	return d
}
