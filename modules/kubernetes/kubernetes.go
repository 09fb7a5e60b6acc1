// Package kubernetes brings up Kubernetes with kubeadm (the heart of `kk create cluster`):
// kubeadm, kubelet and kubectl on every node, the kubelet unit, a kubeadm v1beta4
// configuration on the control planes, `kubeadm init` on the first control plane, fresh join
// credentials, `kubeadm join` on the other control planes and on the workers, the admin
// kubeconfig on the control planes and on the machine kk runs on, and node roles.
//
// Every task checks before it acts, so a second run on a converged cluster changes nothing.
// Adaptations to hosts that run inside a container (systemd-nspawn, docker, lxc: see
// pipeline.Facts.Container) are decided per host at run time from its facts.
package kubernetes

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/dns"
	"github.com/kk-project/kk/modules/etcd"
	"github.com/kk-project/kk/modules/runtime"
	"github.com/kk-project/kk/pipeline"
)

// Paths on the hosts.
const (
	BinDir         = "/usr/local/bin"
	KubeletUnit    = "/etc/systemd/system/kubelet.service"
	KubeletDropIn  = "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
	KubeadmConfig  = "/etc/kubernetes/kubeadm-config.yaml"
	AdminConf      = "/etc/kubernetes/admin.conf"
	KubeletConf    = "/etc/kubernetes/kubelet.conf"
	RootKubeconfig = "/root/.kube/config"
	// joinConfig and uploadCertsConfig hold credentials; they exist only while kubeadm runs.
	joinConfig        = "/etc/kubernetes/kk-join.yaml"
	uploadCertsConfig = "/etc/kubernetes/kk-upload-certs.yaml"
	// kubeadmLog keeps kubeadm's full output on the host (root only).
	kubeadmLog = "/var/log/kk-kubeadm.log"
)

// Task names, for other modules' After lists.
const (
	TaskInstall          = "kubernetes/install"
	TaskKubeletService   = "kubernetes/kubelet-service"
	TaskKubeadmConfig    = "kubernetes/kubeadm-config"
	TaskInit             = "kubernetes/init"
	TaskJoinCredentials  = "kubernetes/join-credentials"
	TaskJoinControlPlane = "kubernetes/join-control-plane"
	TaskJoinWorker       = "kubernetes/join-worker"
	TaskKubeconfig       = "kubernetes/kubeconfig"
	TaskNodeRoles        = "kubernetes/node-roles"
)

// Programs are the binaries kubernetes/install puts in BinDir (names as in binaries.Files).
var Programs = []string{"kubeadm", "kubelet", "kubectl"}

// DefaultImageRepository is where kubeadm pulls its images when no private registry is set.
const DefaultImageRepository = "registry.k8s.io"

// Arg is one command-line flag of a Kubernetes component (kubeadm's extraArgs entry).
type Arg struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Node is one host that runs Kubernetes.
type Node struct {
	Name         string // host name = node name
	Address      string // internal IP (IPv4 when it has one): node-ip and advertise address
	IPv6         string // internal IPv6 address, "" when none
	ControlPlane bool
	Worker       bool
	Labels       map[string]string
}

// Etcd says where kube-apiserver finds etcd.
type Etcd struct {
	// Type is config.EtcdKubeadm (stacked: kubeadm runs a member on every control plane),
	// config.EtcdKubeKey or config.EtcdExternal (kube-apiserver reaches Endpoints).
	Type string
	// DataDir is the stacked member's data directory (type kubeadm); ExtraArgs are its
	// etcd.extraArgs (etcd.local.extraArgs).
	DataDir   string
	ExtraArgs []Arg
	// Endpoints are client URLs (types kubekey and external).
	Endpoints []string
	// CAFile, CertFile and KeyFile are paths on the control planes ("" = no TLS).
	CAFile, CertFile, KeyFile string
}

// Spec is the Kubernetes cluster kubeadm must build.
type Spec struct {
	// Version is the Kubernetes version "vX.Y.Z" (kubeadm's kubernetesVersion).
	Version string
	// ClusterName is kubeadm's clusterName (it names the cluster in kubeconfigs).
	ClusterName string
	// DNSDomain is the cluster DNS domain (networking.dnsDomain).
	DNSDomain string
	// PodSubnet and ServiceSubnet may hold "IPv4CIDR,IPv6CIDR".
	PodSubnet, ServiceSubnet string
	// ProxyMode is kube-proxy's mode (iptables, ipvs, nftables); DisableKubeProxy skips it.
	ProxyMode        string
	DisableKubeProxy bool
	MasqueradeAll    bool
	NodeCIDRMaskSize int // 0 = kube-controller-manager's default

	// Extra flags of the control-plane components, "--feature-gates" included when
	// FeatureGates is set. They override kk's own flags of the same name.
	APIServerArgs, ControllerManagerArgs, SchedulerArgs []Arg
	// KubeletArgs become kubeletExtraArgs of every node (node-ip is added per node).
	KubeletArgs  []Arg
	FeatureGates map[string]bool

	// Kubelet settings kk sets in KubeletConfiguration; KubeletOverrides (the cluster's
	// kubeletConfiguration) is merged over them, KubeProxyOverrides over KubeProxyConfiguration.
	MaxPods              int
	PodPidsLimit         int
	ContainerLogMaxSize  string
	ContainerLogMaxFiles int
	KubeletOverrides     map[string]any
	KubeProxyOverrides   map[string]any
	// Audit turns on kube-apiserver's audit log (AuditPolicy, AuditLogDir).
	Audit bool
	// CertificateValidity is kubeadm's certificateValidityPeriod (0: kubeadm's one year;
	// v1beta4 only, the config validator refuses it for older releases).
	CertificateValidity time.Duration
	// ClusterDNS is kubelet's clusterDNS (nil: kubeadm's, CoreDNS's service address);
	// nodelocaldns's address while it is on (dns.KubeletClusterDNS).
	ClusterDNS []string

	Etcd Etcd
	// CertSANs are the extra names and addresses of the API server certificate.
	CertSANs []string
	// ImageRepository is kubeadm's imageRepository; DNSImageRepository is CoreDNS's
	// ("" = kubeadm's choice). Under a private registry they follow runtime.RewriteImage.
	ImageRepository    string
	DNSImageRepository string
	// ControlPlaneEndpoint is DOMAIN:PORT of the API server load balancer (or first control
	// plane); BindPort is the port kube-apiserver listens on.
	ControlPlaneEndpoint string
	BindPort             int
	// CRISocket is the container runtime endpoint of every node.
	CRISocket string

	// Nodes are the control planes and workers in file order; FirstControlPlane names the one
	// that runs kubeadm init.
	Nodes             []Node
	FirstControlPlane string

	// Kubeconfig is where the admin kubeconfig is written on the machine kk runs on (mode
	// 0600); KubeconfigServer is the API server URL written in it (reachable from that
	// machine: the control-plane address rather than the load-balancer domain, which only
	// the nodes' /etc/hosts resolve).
	Kubeconfig       string
	KubeconfigServer string
	// KubeconfigServers are all the servers the local kubeconfig names, KubeconfigServer
	// first: every control plane when that is the first control plane's address, so that the
	// kubeconfig outlives any one control plane (see LocalKubeconfig).
	KubeconfigServers []APIServer

	// Files holds kubeadm, kubelet and kubectl for every node's arch.
	Files binaries.Files

	// NodeAfter are tasks that must finish on a node before kubeadm runs there (the container
	// runtime being ready); InitAfter are tasks that must finish everywhere before kubeadm
	// init (an external etcd being healthy, its client certificates in place). The caller
	// may change both; a name not in the run is an error of the pipeline.
	NodeAfter []string
	InitAfter []string
	// BeforeInit, when set, runs on the first control plane right before kubeadm init, after
	// what an earlier failed run left was reset (kubeadm reset empties
	// /etc/kubernetes/manifests): it puts back the static pods kubeadm init needs besides its
	// own, such as kube-vip holding the VIP the API endpoint resolves to.
	BeforeInit func(ctx context.Context, t *pipeline.Target) error

	// Warnings are settings SpecFor could not honour (shown to the user before the run).
	Warnings []string
}

// Node returns the node named name.
func (s Spec) Node(name string) (Node, bool) {
	i := slices.IndexFunc(s.Nodes, func(n Node) bool { return n.Name == name })
	if i < 0 {
		return Node{}, false
	}
	return s.Nodes[i], true
}

// Joiners are the nodes that join the first control plane's cluster.
func (s Spec) Joiners() []Node {
	var out []Node
	for _, n := range s.Nodes {
		if n.Name != s.FirstControlPlane {
			out = append(out, n)
		}
	}
	return out
}

// KubeconfigPath is where SpecFor puts the admin kubeconfig under workdir:
// config-<metadata.name>, or kubeconfig when the cluster has no name.
func KubeconfigPath(c *config.Cluster, workdir string) string {
	if c.Name == "" {
		return filepath.Join(workdir, "kubeconfig")
	}
	return filepath.Join(workdir, "config-"+c.Name)
}

// SpecFor derives the Kubernetes cluster from the config. It fails, before any host is
// touched, on an unsupported version or a flag it cannot read.
func SpecFor(c *config.Cluster, workdir string, files binaries.Files) (Spec, error) {
	k := c.Kubernetes
	warnings, err := ValidateVersions(k.Version, Running{})
	if err != nil {
		return Spec{}, err
	}
	s := Spec{
		Version:              k.Version,
		ClusterName:          or(k.ClusterName, "cluster.local"),
		DNSDomain:            or(k.DNSDomain, "cluster.local"),
		PodSubnet:            c.Network.KubePodsCIDR,
		ServiceSubnet:        c.Network.KubeServiceCIDR,
		ProxyMode:            or(k.ProxyMode, "iptables"),
		DisableKubeProxy:     k.DisableKubeProxy,
		MasqueradeAll:        k.MasqueradeAll,
		NodeCIDRMaskSize:     k.NodeCidrMaskSize,
		FeatureGates:         k.FeatureGates,
		MaxPods:              k.MaxPods,
		PodPidsLimit:         k.PodPidsLimit,
		ContainerLogMaxSize:  "5Mi",
		ContainerLogMaxFiles: 3,
		KubeletOverrides:     k.KubeletConfiguration,
		KubeProxyOverrides:   k.KubeProxyConfiguration,
		ClusterDNS:           dns.KubeletClusterDNS(c),
		Audit:                k.Audit,
		CertificateValidity:  k.CertificateValidity,
		CRISocket:            or(k.ContainerRuntimeEndpoint, runtime.ContainerdSocket),
		Files:                files,
		Kubeconfig:           KubeconfigPath(c, workdir),
		NodeAfter:            []string{runtime.ReadyTask},
		Warnings:             warnings,
	}
	if s.MaxPods == 0 {
		s.MaxPods = 110
	}
	args := func(field string, in []string) []Arg {
		if err != nil {
			return nil
		}
		var out []Arg
		out, err = ParseArgs(in)
		if err != nil {
			err = fmt.Errorf("kubernetes.%s: %w", field, err)
		}
		return out
	}
	s.APIServerArgs = args("apiserverArgs", k.ApiserverArgs)
	s.ControllerManagerArgs = args("controllerManagerArgs", k.ControllerManagerArgs)
	s.SchedulerArgs = args("schedulerArgs", k.SchedulerArgs)
	s.KubeletArgs = args("kubeletArgs", k.KubeletArgs)
	if err != nil {
		return Spec{}, err
	}
	if len(k.KubeProxyArgs) > 0 {
		s.Warnings = append(s.Warnings, "kubernetes.kubeProxyArgs are not applied: kubeadm has no extra args for kube-proxy; use kubernetes.kubeProxyConfiguration")
	}
	if v, err := ParseVersion(s.Version); err == nil && v.AtLeast(1, 35) {
		s.Warnings = append(s.Warnings, CgroupV1Note(s.Version))
		if s.ProxyMode == "ipvs" && !s.DisableKubeProxy {
			s.Warnings = append(s.Warnings, fmt.Sprintf("kubernetes.proxyMode ipvs is deprecated in Kubernetes %s (since v1.35): consider nftables (or iptables)", s.Version))
		}
	}

	// etcd
	s.Etcd.Type = or(c.Etcd.Type, config.EtcdKubeKey)
	switch s.Etcd.Type {
	case config.EtcdKubeadm:
		s.Etcd.DataDir = or(c.Etcd.DataDir, "/var/lib/etcd")
		extra, err := etcd.ExtraArgs(c.Etcd)
		if err != nil {
			return Spec{}, err
		}
		for _, a := range extra {
			s.Etcd.ExtraArgs = append(s.Etcd.ExtraArgs, Arg{a.Name, a.Value})
		}
	default:
		s.Etcd.Endpoints = etcd.Endpoints(c)
		s.Etcd.CAFile, s.Etcd.CertFile, s.Etcd.KeyFile = etcd.ClientFiles(c)
		if len(s.Etcd.Endpoints) == 0 {
			return Spec{}, fmt.Errorf("etcd type %s: no etcd endpoints (no host with role etcd?)", s.Etcd.Type)
		}
		if s.Etcd.Type == config.EtcdKubeKey {
			s.InitAfter = []string{etcd.TaskHealth, etcd.TaskClientCerts}
		} else if s.Etcd.CAFile != "" {
			s.InitAfter = []string{etcd.TaskClientCerts}
		}
	}

	// images
	s.ImageRepository, s.DNSImageRepository = ImageRepositories(c.Registry.PrivateRegistry, c.Registry.NamespaceOverride)

	// endpoint
	e := c.ControlPlaneEndpoint
	port := e.Port
	if port == 0 {
		port = 6443
	}
	domain := or(e.Domain, "lb.kubesphere.local")
	s.ControlPlaneEndpoint = net.JoinHostPort(domain, strconv.Itoa(port))
	s.BindPort = port
	server := domain
	if addr := c.ControlPlaneAddress(); addr != "" && !e.ExternalDNS {
		server = addr
	}
	s.KubeconfigServer = "https://" + net.JoinHostPort(server, strconv.Itoa(port))
	s.KubeconfigServers = []APIServer{{URL: s.KubeconfigServer}}
	if first := c.FirstControlPlane(); first != nil && server == first.InternalIP() && c.ControlPlaneEndpoint.Address == "" {
		s.KubeconfigServers[0].Node = first.Name
		for _, h := range c.HostsWithRole(config.RoleControlPlane) {
			if h.Name != first.Name && h.InternalIP() != "" {
				s.KubeconfigServers = append(s.KubeconfigServers, APIServer{Node: h.Name, URL: "https://" + net.JoinHostPort(h.InternalIP(), strconv.Itoa(port))})
			}
		}
	}

	// nodes
	for _, h := range c.Hosts {
		cp, w := h.Has(config.RoleControlPlane), h.Has(config.RoleWorker)
		if !cp && !w {
			continue
		}
		n := Node{Name: h.Name, Address: h.InternalIP(), ControlPlane: cp, Worker: w, Labels: h.Labels}
		if v6 := h.InternalIPv6(); v6 != "" && v6 != n.Address {
			n.IPv6 = v6
		}
		s.Nodes = append(s.Nodes, n)
	}
	first := c.FirstControlPlane()
	if first == nil {
		return Spec{}, fmt.Errorf("the cluster has no control-plane host")
	}
	s.FirstControlPlane = first.Name
	s.CertSANs = CertSANs(c)
	return s, nil
}

// ImageRepositories returns kubeadm's imageRepository and CoreDNS's for a private registry,
// named as runtime.RewriteImage names images there; the upstream ones without one.
func ImageRepositories(privateRegistry, namespaceOverride string) (repo, dns string) {
	if privateRegistry == "" {
		return DefaultImageRepository, ""
	}
	// kube-apiserver lives at the registry's root namespace upstream: REG/kube-apiserver,
	// or REG/OVERRIDE/kube-apiserver; CoreDNS at REG/coredns/coredns or REG/OVERRIDE/coredns.
	base := strings.TrimSuffix(privateRegistry, "/")
	api := runtime.RewriteImage(DefaultImageRepository+"/kube-apiserver:v0", base, namespaceOverride)
	dnsRef := runtime.RewriteImage(DefaultImageRepository+"/coredns/coredns:v0", base, namespaceOverride)
	return dirOf(api), dirOf(strings.TrimSuffix(dnsRef, ":v0"))
}

func dirOf(ref string) string {
	ref = strings.TrimSuffix(ref, ":v0")
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		return ref[:i]
	}
	return ref
}

// CertSANs are the API server certificate's extra names: the load-balancer domain and
// address, every control plane's name (and name.clusterName, as in /etc/hosts) and
// addresses, localhost, the in-cluster service names and the configured extra SANs.
func CertSANs(c *config.Cluster) []string {
	var out []string
	add := func(vs ...string) {
		for _, v := range vs {
			if v != "" && !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	domain := or(c.ControlPlaneEndpoint.Domain, "lb.kubesphere.local")
	add(domain, c.ControlPlaneEndpoint.Address, c.ControlPlaneAddress())
	dnsDomain := or(c.Kubernetes.DNSDomain, "cluster.local")
	add("kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc."+dnsDomain)
	add("localhost", "127.0.0.1")
	if svc := firstServiceIP(c.Network.KubeServiceCIDR); svc != "" {
		add(svc)
	}
	clusterName := or(c.Kubernetes.ClusterName, "cluster.local")
	for _, h := range c.HostsWithRole(config.RoleControlPlane) {
		add(h.Name, h.Name+"."+clusterName, h.InternalIPv4(), h.InternalIPv6())
		if net.ParseIP(h.Address) != nil {
			add(h.Address)
		}
	}
	add(c.Kubernetes.ApiserverCertExtraSans...)
	return out
}

// firstServiceIP is the kubernetes service's ClusterIP: the first address of the (IPv4)
// service CIDR.
func firstServiceIP(cidrs string) string {
	first, _, _ := strings.Cut(cidrs, ",")
	_, n, err := net.ParseCIDR(strings.TrimSpace(first))
	if err != nil {
		return ""
	}
	ip := slices.Clone(n.IP)
	ip[len(ip)-1]++
	return ip.String()
}

// ParseArgs reads "--flag=value" entries (a bare "--flag" means "true").
func ParseArgs(in []string) ([]Arg, error) {
	var out []Arg
	for _, a := range in {
		s := strings.TrimSpace(a)
		if !strings.HasPrefix(s, "-") {
			return nil, fmt.Errorf("%q is not a --flag=value", a)
		}
		s = strings.TrimLeft(s, "-")
		name, value, ok := strings.Cut(s, "=")
		if name == "" {
			return nil, fmt.Errorf("%q has no flag name", a)
		}
		if !ok {
			value = "true"
		}
		out = setArg(out, name, value)
	}
	return out, nil
}

// setArg sets name to value in args (replacing an earlier value).
func setArg(args []Arg, name, value string) []Arg {
	for i := range args {
		if args[i].Name == name {
			args[i].Value = value
			return args
		}
	}
	return append(args, Arg{name, value})
}

// mergeArgs returns defaults with over applied on top (over wins for the same name).
func mergeArgs(defaults, over []Arg) []Arg {
	out := slices.Clone(defaults)
	for _, a := range over {
		out = setArg(out, a.Name, a.Value)
	}
	return out
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
