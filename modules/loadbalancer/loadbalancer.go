// Package loadbalancer sets up the internal load balancer of the API servers
// (controlPlaneEndpoint.internalLoadbalancer): a local haproxy on every worker, or a
// virtual IP held by kube-vip on the control planes.
//
// # haproxy
//
// On every worker that is not a control plane, kk writes /etc/kubekey/haproxy/haproxy.cfg
// and the static pod /etc/kubernetes/manifests/haproxy.yaml. haproxy listens on
// 127.0.0.1:<endpoint port> and forwards TCP to every control plane's internal
// address:6443, health-checked with GET /readyz over TLS; a dead or stopping API server
// leaves the rotation after about 4 seconds (a stopping one serves on for its shutdown delay,
// kubernetes.APIServerShutdownDelay, so no request is cut). 127.0.0.1:8081/healthz answers
// the liveness probe.
// On those workers the load-balancer domain resolves to 127.0.0.1 (EndpointAddress), so
// kubelet and kube-proxy (host network, the node's /etc/hosts) go through haproxy.
//
// # Joining a node before haproxy runs
//
// haproxy only runs once kubelet runs, and kubelet only runs from kubeadm join's
// kubelet-start phase. But kubeadm join needs the API server before that: with token
// discovery it takes the API server URL for the TLS bootstrap (and for reading the
// kubeadm and kubelet configuration) from the cluster-info ConfigMap, which names
// https://<LB domain>:<port>. A joining control plane's own API server does not answer yet
// either. So while a node joins, the domain maps to the first control plane
// (JoinEndpointAddress); once it has joined (and, on a worker, its haproxy answers:
// HAProxyUp) it maps to EndpointAddress. kubelet.conf keeps the domain throughout; only
// that /etc/hosts line changes (kk create cluster's loadbalancer/endpoint tasks, in
// modules/cluster). Running haproxy before join as a plain container or systemd unit was
// rejected: a second copy of the same program with its own life cycle.
//
// # kube-vip
//
// kube-vip runs as the static pod /etc/kubernetes/manifests/kube-vip.yaml on every control
// plane: ARP mode with leader election by default (one control plane answers for the VIP and
// announces it with gratuitous ARP), BGP when asked (every control plane announces the VIP
// to its peers, by default the other control planes). The interface is Spec.KubeVIP.Interface
// or, when empty, the one the host routes the VIP through. kube-vip talks to its local API
// server as "kubernetes" (a host alias for 127.0.0.1), never through the VIP. Every node
// maps the load-balancer domain (kubeadm's controlPlaneEndpoint) to the VIP.
//
// The manifest is written in three steps (create cluster's wiring is in modules/cluster):
//   - TaskKubeVIP, before kubeadm init, on the first control plane only: kubeadm init needs
//     the VIP to answer. From Kubernetes v1.29 admin.conf has no rights until kubeadm init
//     has bound them, so while admin.conf does not exist the manifest mounts
//     super-admin.conf (KubeVIPKubeconfig). kubeadm init's own preflight only checks its
//     component manifests. Right before kubeadm init runs, kubeadm's task writes it again
//     (WriteKubeVIPManifest, always on super-admin.conf): kubeadm reset of a failed init
//     removes it, and an interrupted init leaves an admin.conf that may lack its rights.
//   - TaskKubeVIPAdmin, after kubeadm init, on the first control plane: the same manifest
//     with admin.conf; it waits until kubelet replaced the running kube-vip and the VIP
//     answers again, and nodes join only after it.
//   - TaskKubeVIPJoined, on every other control plane once it joined (admin.conf): kubeadm
//     join's preflight wants an empty /etc/kubernetes/manifests
//     (DirAvailable--etc-kubernetes-manifests), so nothing is written there before.
package loadbalancer

import (
	"net"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/versions"
)

// Defaults.
const (
	// APIServerPort is the port every kube-apiserver binds; haproxy's backends use it.
	APIServerPort = 6443
	// DefaultMonitorPort serves haproxy's /healthz on 127.0.0.1.
	DefaultMonitorPort = 8081
	// DefaultBGPAS is the AS number of the control planes (and of their peers) in BGP mode.
	DefaultBGPAS = 65000

	// HAProxyConfigDir holds haproxy.cfg on the host.
	HAProxyConfigDir = "/etc/kubekey/haproxy"
	// ManifestDir is kubelet's static pod directory.
	ManifestDir = "/etc/kubernetes/manifests"
)

// Modes (the values of config.Endpoint.InternalLoadbalancer).
const (
	None    = config.LoadBalancerNone
	HAProxy = config.LoadBalancerHAProxy
	KubeVIP = config.LoadBalancerKubeVIP
)

// Backend is one API server behind haproxy.
type Backend struct {
	Name    string
	Address string
	Port    int
}

// HostPort is Address:Port (IPv6 in brackets).
func (b Backend) HostPort() string { return net.JoinHostPort(b.Address, strconv.Itoa(b.Port)) }

// HAProxySpec is the haproxy on the workers.
type HAProxySpec struct {
	// Hosts are the kk host names that run haproxy: workers that are not control planes.
	Hosts []string
	// Bind is the address haproxy listens on (127.0.0.1).
	Bind string
	// Port is the frontend port: the control-plane endpoint's port.
	Port int
	// MonitorPort serves /healthz (the liveness probe).
	MonitorPort int
	// Backends are the control planes' API servers.
	Backends []Backend
	Image    string
	// ConfigDir holds haproxy.cfg on the host; ManifestDir is kubelet's static pod directory.
	ConfigDir   string
	ManifestDir string
}

// KubeVIPSpec is kube-vip on the control planes.
type KubeVIPSpec struct {
	// Hosts are the control planes (Name, internal Address).
	Hosts []Backend
	// FirstHost initialises the cluster (it mounts super-admin.conf until admin.conf exists
	// when SuperAdminOnInit).
	FirstHost string
	// Address is the VIP; Port the API server port it fronts.
	Address string
	Port    int
	// Mode is "ARP" or "BGP".
	Mode string
	// Interface carries the VIP; "" = the interface the host routes the VIP through.
	Interface string
	Image     string
	// SuperAdminOnInit: Kubernetes >= v1.29 (admin.conf is powerless before init ends).
	SuperAdminOnInit bool
	// LocalAS and PeerAS are the BGP AS numbers; Peers the BGP peers' addresses
	// (default: the other control planes).
	LocalAS, PeerAS int
	Peers           []string
	ManifestDir     string
}

// Spec is the internal load balancer of a cluster.
type Spec struct {
	// Mode is None, HAProxy or KubeVIP; Tasks returns nothing for None.
	Mode string
	// Domain is the API server's name (lb.kubesphere.local); its URL is https://Domain:Port.
	Domain  string
	Port    int
	HAProxy HAProxySpec
	KubeVIP KubeVIPSpec
}

// SpecFor derives the load balancer from the cluster.
func SpecFor(c *config.Cluster) Spec {
	e := c.ControlPlaneEndpoint
	port := e.Port
	if port == 0 {
		port = APIServerPort
	}
	s := Spec{Mode: e.InternalLoadbalancer, Domain: e.Domain, Port: port}
	// The images are the ones kk's version table lists (and `kk create manifest` bundles).
	set, err := versions.For(c.Kubernetes.Version)
	if err != nil {
		set = versions.Latest()
	}
	cps := c.HostsWithRole(config.RoleControlPlane)
	switch s.Mode {
	case HAProxy:
		h := HAProxySpec{Bind: "127.0.0.1", Port: port, MonitorPort: DefaultMonitorPort,
			Image: imageRef(c.Registry, set.HAProxyImage()), ConfigDir: HAProxyConfigDir, ManifestDir: ManifestDir}
		for _, cp := range cps {
			h.Backends = append(h.Backends, Backend{Name: cp.Name, Address: cp.InternalIP(), Port: APIServerPort})
		}
		for _, w := range c.HostsWithRole(config.RoleWorker) {
			if !w.Has(config.RoleControlPlane) {
				h.Hosts = append(h.Hosts, w.Name)
			}
		}
		s.HAProxy = h
	case KubeVIP:
		k := KubeVIPSpec{Address: e.Address, Port: port, Mode: strings.ToUpper(e.KubeVIPMode),
			Image: imageRef(c.Registry, set.KubeVIPImage()), SuperAdminOnInit: atLeast(c.Kubernetes.Version, 1, 29),
			LocalAS: DefaultBGPAS, PeerAS: DefaultBGPAS, ManifestDir: ManifestDir}
		if k.Mode == "" {
			k.Mode = "ARP"
		}
		for _, cp := range cps {
			k.Hosts = append(k.Hosts, Backend{Name: cp.Name, Address: cp.InternalIP(), Port: port})
		}
		if f := c.FirstControlPlane(); f != nil {
			k.FirstHost = f.Name
		}
		s.KubeVIP = k
	}
	return s
}

// runsHAProxy: a worker that is not a control plane, in haproxy mode.
func runsHAProxy(c *config.Cluster, h *config.Host) bool {
	return c.ControlPlaneEndpoint.InternalLoadbalancer == HAProxy && h != nil &&
		h.Has(config.RoleWorker) && !h.Has(config.RoleControlPlane)
}

// EndpointAddress is the address the load-balancer domain must map to in hostName's
// /etc/hosts once the host is part of the cluster: 127.0.0.1 on a worker running haproxy,
// the host's own internal address on a control plane in haproxy mode (its own API server),
// the VIP with kube-vip, and otherwise Cluster.ControlPlaneAddress (the external load
// balancer's address, or the first control plane's). "" for an unknown host or when there
// is nothing to map (ExternalDNS without an address).
func EndpointAddress(c *config.Cluster, hostName string) string {
	h := c.Host(hostName)
	if h == nil {
		return ""
	}
	switch c.ControlPlaneEndpoint.InternalLoadbalancer {
	case HAProxy:
		if runsHAProxy(c, h) {
			return "127.0.0.1"
		}
		if h.Has(config.RoleControlPlane) {
			return h.InternalIP()
		}
	case KubeVIP:
		if c.ControlPlaneEndpoint.Address != "" {
			return c.ControlPlaneEndpoint.Address
		}
	}
	return c.ControlPlaneAddress()
}

// JoinEndpointAddress is what the load-balancer domain must map to while hostName runs
// kubeadm join: in haproxy mode the first control plane, for control planes (their own API
// server does not answer until join is done) and workers (their haproxy does not run yet)
// alike; else EndpointAddress.
func JoinEndpointAddress(c *config.Cluster, hostName string) string {
	h := c.Host(hostName)
	if h != nil && c.ControlPlaneEndpoint.InternalLoadbalancer == HAProxy && (h.Has(config.RoleControlPlane) || runsHAProxy(c, h)) {
		if f := c.FirstControlPlane(); f != nil {
			return f.InternalIP()
		}
	}
	return EndpointAddress(c, hostName)
}

// CertSANs are the extra subject alternative names the API server certificate needs for
// this load balancer: 127.0.0.1 and localhost for haproxy (workers reach it on loopback),
// the VIP for kube-vip, the external address when one is given.
func CertSANs(c *config.Cluster) []string {
	e := c.ControlPlaneEndpoint
	var out []string
	switch e.InternalLoadbalancer {
	case HAProxy:
		out = append(out, "127.0.0.1", "localhost")
	}
	if e.Address != "" && !slices.Contains(out, e.Address) {
		out = append(out, e.Address)
	}
	return out
}

// imageRef maps an upstream image to the cluster's private registry: the registry host is
// replaced and, with a namespace override, the namespace too (KubeKey's rule).
func imageRef(r config.Registry, upstream string) string {
	if r.PrivateRegistry == "" {
		return upstream
	}
	rest := upstream
	if i := strings.IndexByte(upstream, '/'); i > 0 && strings.ContainsAny(upstream[:i], ".:") {
		rest = upstream[i+1:]
	}
	if r.NamespaceOverride != "" {
		rest = r.NamespaceOverride + "/" + path.Base(rest)
	}
	return strings.TrimSuffix(r.PrivateRegistry, "/") + "/" + rest
}

// atLeast reports whether version "vX.Y.Z" is at least major.minor ("" counts as new).
func atLeast(version string, major, minor int) bool {
	v := strings.TrimPrefix(version, "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return true
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return true
	}
	return ma > major || (ma == major && mi >= minor)
}
