package v1alpha2

import (
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/catalog"
	"github.com/kk-project/kk/artifacts/versions"
)

// cluster validates everything but spec.hosts and roleGroups syntax, which
// were checked before conversion.
func (v *validator) cluster(obj *Cluster, c *config.Cluster) {
	if !isDNSName(c.Name) {
		v.rep.errorf("metadata.name", "%q is not a valid name: use lowercase letters, digits, '-' and '.'", c.Name)
	}
	v.roles(c)
	v.endpoint(c)
	v.kubernetes(obj.Spec.Kubernetes)
	v.etcd(c.Etcd)
	v.network(c)
	v.registry(c.Registry)
	v.addons(c.Addons)
	v.system(c.System)
	v.gpu(obj.Spec.GPU, c)
	v.unsupported(obj, c)
}

func (v *validator) endpoint(c *config.Cluster) {
	const p = "spec.controlPlaneEndpoint"
	e := c.ControlPlaneEndpoint
	switch e.InternalLoadbalancer {
	case config.LoadBalancerNone:
	case config.LoadBalancerHAProxy:
		if e.Address != "" {
			v.rep.errorf(p+".address", "address must be empty with internalLoadbalancer haproxy (kk runs haproxy on every node instead of an external load balancer)")
		}
	case config.LoadBalancerKubeVIP:
		if e.Address == "" {
			v.rep.errorf(p+".address", "internalLoadbalancer kube-vip needs address: the virtual IP the control planes share")
		}
		if e.KubeVIPMode != "ARP" && e.KubeVIPMode != "BGP" {
			v.rep.errorf(p+".kubevip.mode", "kube-vip mode %q is not supported: use ARP or BGP", e.KubeVIPMode)
		}
	default:
		v.rep.errorf(p+".internalLoadbalancer", "internalLoadbalancer %q is not supported: use haproxy, kube-vip or leave it empty", e.InternalLoadbalancer)
	}
	if e.Address != "" && net.ParseIP(e.Address) == nil {
		v.rep.errorf(p+".address", "%q is not an IP address", e.Address)
	}
	if e.ExternalDNS && e.Address != "" {
		v.rep.warnf(p+".address", "address is ignored with externalDNS: the domain is resolved by your DNS")
	}
	if !isHostname(e.Domain) {
		v.rep.errorf(p+".domain", "%q is not a valid domain name", e.Domain)
	}
	if e.Port < 1 || e.Port > 65535 {
		v.rep.errorf(p+".port", "port %d is out of range 1-65535", e.Port)
	}
	if len(c.HostsWithRole(config.RoleControlPlane)) > 1 && e.InternalLoadbalancer == "" && e.Address == "" && !e.ExternalDNS {
		v.rep.warnf(p, "several control planes but no load balancer: set address (an external load balancer), "+
			"internalLoadbalancer (haproxy or kube-vip) or externalDNS; otherwise the API endpoint is the first control plane only")
	}
}

var versionRE = regexp.MustCompile(`^v\d+\.\d+\.\d+$`)

// Bounds of kubernetes.certificateValidityPeriod.
const (
	MinCertificateValidity = time.Hour
	MaxCertificateValidity = 10 * 365 * 24 * time.Hour
)

// minorAtLeast says whether version v (vX.Y.Z) is at least 1.minor.
func minorAtLeast(v string, minor int) bool {
	pv, err := versions.Parse(v)
	return err == nil && pv.AtLeast(1, minor)
}

func (v *validator) kubernetes(k Kubernetes) {
	const p = "spec.kubernetes"
	if !versionRE.MatchString(k.Version) {
		v.rep.errorf(p+".version", "version %q is not of the form vX.Y.Z (e.g. %s)", k.Version, DefaultKubernetesVersion)
	}
	if k.Type != "kubernetes" {
		v.rep.errorf(p+".type", "type %q is not supported: kk installs kubernetes only", k.Type)
	}
	switch k.ContainerManager {
	case "containerd", "docker":
	case "isula", "crio", "cri-o":
		v.rep.errorf(p+".containerManager", "containerManager %q is not supported: use containerd or docker (kk installs those two; KubeKey's isula and crio are not)", k.ContainerManager)
	default:
		v.rep.errorf(p+".containerManager", "containerManager %q is not supported: use containerd or docker", k.ContainerManager)
	}
	switch k.ProxyMode {
	case "iptables", "ipvs", "nftables":
	default:
		v.rep.errorf(p+".proxyMode", "proxyMode %q is not supported: use iptables, ipvs or nftables", k.ProxyMode)
	}
	if !isDNSName(k.ClusterName) {
		v.rep.errorf(p+".clusterName", "%q is not a valid cluster name", k.ClusterName)
	}
	if !isDNSName(k.DNSDomain) {
		v.rep.errorf(p+".dnsDomain", "%q is not a valid DNS domain", k.DNSDomain)
	}
	for name, n := range map[string]int{"maxPods": k.MaxPods, "podPidsLimit": k.PodPidsLimit} {
		if n < 0 {
			v.rep.errorf(p+"."+name, "%s must not be negative", name)
		}
	}
	if k.NodeCidrMaskSize < 1 || k.NodeCidrMaskSize > 128 {
		v.rep.errorf(p+".nodeCidrMaskSize", "nodeCidrMaskSize %d is out of range 1-128", k.NodeCidrMaskSize)
	}
	if k.CertificateValidityPeriod != "" {
		d, err := time.ParseDuration(k.CertificateValidityPeriod)
		switch {
		case err != nil:
			v.rep.errorf(p+".certificateValidityPeriod", "%q is not a duration (e.g. 8760h, 4h)", k.CertificateValidityPeriod)
		case d < MinCertificateValidity:
			v.rep.errorf(p+".certificateValidityPeriod", "%s is shorter than %s: certificates would expire before a renewal could run", d, MinCertificateValidity)
		case d > MaxCertificateValidity:
			v.rep.errorf(p+".certificateValidityPeriod", "%s is longer than the CAs' 10 years", d)
		case versionRE.MatchString(k.Version) && !minorAtLeast(k.Version, 31):
			v.rep.errorf(p+".certificateValidityPeriod", "needs Kubernetes v1.31 or newer (kubeadm's v1beta4 configuration); %s uses v1beta3, which has no such field", k.Version)
		}
	}
	for i, san := range k.ApiserverCertExtraSans {
		if net.ParseIP(san) == nil && !isHostname(strings.TrimPrefix(san, "*.")) {
			v.rep.errorf(indexPath(p+".apiserverCertExtraSans", i), "%q is neither an IP address nor a DNS name", san)
		}
	}
}

func (v *validator) etcd(e config.Etcd) {
	const p = "spec.etcd"
	switch e.Type {
	case config.EtcdKubeKey, config.EtcdKubeadm:
	case config.EtcdExternal:
		v.externalEtcd(e.External)
	default:
		v.rep.errorf(p+".type", "etcd type %q is not supported: use kubekey, kubeadm or external", e.Type)
	}
	for name, port := range map[string]int{"port": e.Port, "peerPort": e.PeerPort} {
		if port < 1 || port > 65535 {
			v.rep.errorf(p+"."+name, "%s %d is out of range 1-65535", name, port)
		}
	}
	for name, n := range map[string]int{"backupPeriod": e.BackupPeriod, "keepBackupNumber": e.KeepBackupNumber} {
		if n < 0 {
			v.rep.errorf(p+"."+name, "%s must not be negative", name)
		}
	}
	switch e.LogLevel {
	case "debug", "info", "warn", "error", "panic", "fatal":
	default:
		v.rep.errorf(p+".logLevel", "logLevel %q is not one of debug, info, warn, error, panic, fatal", e.LogLevel)
	}
}

func (v *validator) externalEtcd(x config.ExternalEtcd) {
	const p = "spec.etcd.external"
	if len(x.Endpoints) == 0 {
		v.rep.errorf(p+".endpoints", "etcd type external needs external.endpoints (e.g. https://10.0.0.5:2379)")
	}
	for i, ep := range x.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.rep.errorf(indexPath(p+".endpoints", i), "%q is not an http(s)://HOST:PORT URL", ep)
		}
	}
	if (x.CertFile == "") != (x.KeyFile == "") {
		v.rep.errorf(p, "certFile and keyFile go together: set both or neither")
	}
	if v.opts.SkipFileChecks {
		return
	}
	for name, f := range map[string]string{"caFile": x.CAFile, "certFile": x.CertFile, "keyFile": x.KeyFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			v.rep.errorf(p+"."+name, "cannot read %s: %v", f, unwrapPathErr(err))
		}
	}
}

func (v *validator) registry(r config.Registry) {
	const p = "spec.registry"
	if strings.Contains(r.PrivateRegistry, "://") {
		v.rep.errorf(p+".privateRegistry", "privateRegistry %q must be HOST[:PORT][/NAMESPACE], without a scheme", r.PrivateRegistry)
	}
	switch r.Type {
	case "", "registry":
	case "harbor":
		v.rep.errorf(p+".type", "registry type harbor is not supported: kk deploys the distribution registry (type: registry, or leave it empty)")
	default:
		v.rep.errorf(p+".type", "registry type %q is not supported: use registry (or leave it empty)", r.Type)
	}
	for k := range r.Auths {
		if strings.TrimSpace(k) == "" {
			v.rep.errorf(p+".auths", "a registry name is empty")
		}
	}
}

func (v *validator) addons(addons []config.Addon) {
	seen := map[string]int{}
	for i, a := range addons {
		p := indexPath("spec.addons", i)
		if a.Name == "" {
			v.rep.errorf(p+".name", "name is required")
		} else if first, dup := seen[a.Name]; dup {
			v.rep.errorf(p+".name", "duplicate addon name %q (also spec.addons[%d])", a.Name, first)
		} else {
			seen[a.Name] = i
		}
		ch, y := a.Sources.Chart, a.Sources.Yaml
		hasChart := ch.Name != "" || ch.Path != ""
		switch {
		case hasChart && len(y.Path) > 0:
			v.rep.errorf(p+".sources", "give sources.chart or sources.yaml, not both")
		case !hasChart && len(y.Path) == 0:
			v.rep.errorf(p+".sources", "sources needs chart (name and repo, or path) or yaml.path")
		case ch.Name != "" && ch.Repo == "" && ch.Path == "":
			v.rep.errorf(p+".sources.chart", "chart %q needs repo (or path for a local chart)", ch.Name)
		}
		if a.Retries < 0 || a.Delay < 0 {
			v.rep.errorf(p, "retries and delay must not be negative")
		}
	}
}

// gpu checks the driver's and the toolkit's versions as the catalogue does before any
// download, that the toolkit has a runtime kk configures it for, and the device plugin's
// settings (spec, the file's spec.gpu, nil without one).
func (v *validator) gpu(spec *GPUConfig, c *config.Cluster) {
	g := c.GPU
	if g.DriverVersion != "" {
		if _, err := (catalog.Resolver{}).Resolve(catalog.Component{Name: catalog.NvidiaDriver, Version: g.DriverVersion, Arch: "amd64"}); err != nil {
			v.rep.errorf("spec.gpu.driver.version", "%v", err)
		}
	}
	if !g.Toolkit {
		return
	}
	if g.ToolkitVersion != "" {
		if _, err := (catalog.Resolver{}).Resolve(catalog.Component{Name: catalog.NvidiaContainerToolkit, Version: g.ToolkitVersion, Arch: "amd64"}); err != nil {
			v.rep.errorf("spec.gpu.toolkit.version", "%v", err)
		}
	}
	if spec != nil {
		dp := spec.DevicePlugin
		if !g.DevicePlugin && (dp.MIGStrategy != "" || dp.TimeSlicing != nil) {
			v.rep.warnf("spec.gpu.devicePlugin", "enabled is false: kk deploys no device plugin, so its migStrategy and timeSlicing do nothing")
		}
		if g.DevicePlugin && !slices.Contains([]string{config.MIGNone, config.MIGSingle, config.MIGMixed}, g.MIGStrategy) {
			v.rep.errorf("spec.gpu.devicePlugin.migStrategy", "%q: want none, single or mixed", g.MIGStrategy)
		}
		if ts := dp.TimeSlicing; g.DevicePlugin && ts != nil {
			switch {
			case ts.Replicas < 2:
				v.rep.errorf("spec.gpu.devicePlugin.timeSlicing.replicas", "%d: want 2 or more (how many pods share each GPU)", ts.Replicas)
			case g.MIGStrategy == config.MIGMixed:
				v.rep.errorf("spec.gpu.devicePlugin.timeSlicing", "kk time-slices whole GPUs (nvidia.com/gpu), not the MIG devices of migStrategy mixed")
			}
		}
	}
	if c.Kubernetes.ContainerManager == RuntimeDocker {
		path := "spec.gpu"
		if g.DefaultRuntime {
			path = "spec.kubernetes.nvidiaRuntime"
		}
		v.rep.warnf(path, "containerManager docker: NVIDIA's runtime is docker's default on the GPU hosts, so every container there runs "+
			"through it (cri-dockerd serves no RuntimeClass handler but docker's default): kk makes no RuntimeClass nvidia")
	}
}

func (v *validator) system(s config.System) {
	for i, n := range s.NTPServers {
		if strings.TrimSpace(n) == "" {
			v.rep.errorf(indexPath("spec.system.ntpServers", i), "empty NTP server")
		}
	}
	for name, scripts := range map[string][]config.Script{"preInstall": s.PreInstall, "postInstall": s.PostInstall, "postClusterInstall": s.PostClusterInstall} {
		for i, sc := range scripts {
			if strings.TrimSpace(sc.Bash) == "" {
				v.rep.errorf(indexPath("spec.system."+name, i)+".bash", "bash is required")
			}
		}
	}
}

var (
	nodeNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	hostnameRE = regexp.MustCompile(`^(?i)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\.?$`)
)

// isNodeName reports whether s is a valid Kubernetes node name (RFC 1123 subdomain).
func isNodeName(s string) bool {
	return len(s) <= 253 && nodeNameRE.MatchString(s) && labelsFit(s)
}

// isDNSName is isNodeName: lowercase RFC 1123 subdomain.
func isDNSName(s string) bool { return isNodeName(s) }

// isHostname accepts a DNS name in any case.
func isHostname(s string) bool {
	return len(s) <= 253 && hostnameRE.MatchString(s) && labelsFit(s)
}

func labelsFit(s string) bool {
	for _, l := range strings.Split(s, ".") {
		if len(l) > 63 {
			return false
		}
	}
	return true
}

// isIPOrHostname accepts an IP, or a host name that does not look like a
// mistyped IP (all digits and dots).
func isIPOrHostname(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	if strings.Contains(s, ":") || strings.Trim(s, "0123456789.") == "" {
		return false
	}
	return isHostname(s)
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
