// Package dns configures the cluster's DNS as KubeKey does:
//
//   - nodelocaldns (kubernetes.nodelocaldns, on by default): a DNS cache on every node
//     (k8s-dns-node-cache, hostNetwork) listening on LocalIP, 169.254.25.10. Its Corefile
//     forwards the cluster domain, in-addr.arpa and ip6.arpa to CoreDNS's service address over
//     TCP, spec.dns.nodelocaldns.externalZones to their name servers, and everything else to
//     the node's /etc/resolv.conf. kubelet's clusterDNS is LocalIP while it is on
//     (KubeletClusterDNS), so pods resolve through the cache on their node.
//   - CoreDNS: kubeadm creates the coredns ConfigMap and Deployment in kube-system; kk applies
//     its own Corefile to that ConfigMap, built from spec.dns.coredns (additionalConfigs,
//     externalZones, rewriteBlock, upstreamDNSServers) and spec.dns.dnsEtcHosts, and rolls
//     the Deployment when the Corefile changes (its pod template carries the digest).
//   - spec.dns.nodeEtcHosts: extra lines in every node's /etc/hosts, in a block of their own
//     next to the one the os phase keeps (NodeHostsTask).
//
// dnsEtcHosts is served by CoreDNS's hosts plugin with the entries inline, and by
// nodelocaldns too (otherwise a pod's query for such a name would go from the node cache
// straight to the node's resolvers and never reach CoreDNS). The plugin's file argument is
// /dev/null: without one it would also serve the container's own /etc/hosts (the node's, for
// nodelocaldns on the host network).
//
// As with KubeKey, names outside the cluster domain and the external zones go from
// nodelocaldns to the node's resolvers, so CoreDNS's rewriteBlock, additionalConfigs and
// upstreamDNSServers act on queries that reach CoreDNS itself (the cluster domain, pods that
// use CoreDNS's service address).
package dns

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/versions"
	"github.com/kk-project/kk/modules/cni"
	"github.com/kk-project/kk/modules/kubeapply"
	"github.com/kk-project/kk/modules/osprep"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/templates"
)

// nodelocaldns settings, KubeKey's.
const (
	// LocalIP is the address nodelocaldns listens on (on its dummy interface) and kubelet's
	// clusterDNS while it is on.
	LocalIP = "169.254.25.10"
	// HealthPort is where nodelocaldns's health plugin answers on LocalIP (its probes).
	HealthPort = 9254
	// UpstreamService is the Service in kube-system whose address is CoreDNS's: kubeadm's
	// kube-dns (node-cache's -upstreamsvc).
	UpstreamService = "kube-dns"
	// hostsFile is the hosts plugin's file argument: nothing, the entries are inline.
	hostsFile = "/dev/null"
)

// Task names.
const (
	TaskNodeLocalDNS = "dns/nodelocaldns"
	TaskCoreDNS      = "dns/coredns"
	TaskNodeHosts    = "dns/node-etc-hosts"
)

// Markers of the block of spec.dns.nodeEtcHosts in /etc/hosts.
const (
	nodeHostsBegin = "# BEGIN kk dns.nodeEtcHosts"
	nodeHostsEnd   = "# END kk dns.nodeEtcHosts"
)

// Spec is the cluster DNS kk configures.
type Spec struct {
	// NodeLocalDNS deploys nodelocaldns (NodeLocalDNSObjects).
	NodeLocalDNS bool
	// ClusterDNS is CoreDNS's service address (nodelocaldns forwards the cluster domain to it).
	ClusterDNS string
	// Image is nodelocaldns's image, under the cluster's registry settings.
	Image string
	// NodeLocalCorefile and CoreDNSCorefile are the rendered Corefiles.
	NodeLocalCorefile string
	CoreDNSCorefile   string
	// NodeLocalDNSObjects are nodelocaldns's ServiceAccount, ConfigMap and DaemonSet;
	// CoreDNSObjects the coredns ConfigMap and the Deployment's pod-template digest.
	NodeLocalDNSObjects []*unstructured.Unstructured
	CoreDNSObjects      []*unstructured.Unstructured
	// WaitCoreDNS waits for CoreDNS to be rolled out after its Corefile is applied; false
	// when kk installs no pod network (CoreDNS cannot be ready before the user's).
	WaitCoreDNS bool
	// NodeHosts are spec.dns.nodeEtcHosts's entries; SkipNodeHosts is set by
	// spec.system.skipConfigureOS (the hosts file is left as the host has it).
	NodeHosts     []osprep.HostEntry
	SkipNodeHosts bool
	// WaitTimeout bounds each readiness wait (default 10 minutes).
	WaitTimeout time.Duration
}

// ClusterDNSIP is CoreDNS's service address as kubeadm assigns it: the tenth address of the
// first service CIDR (10.233.0.10 for 10.233.0.0/18).
func ClusterDNSIP(c *config.Cluster) (string, error) {
	first, _, _ := strings.Cut(c.Network.KubeServiceCIDR, ",")
	_, n, err := net.ParseCIDR(strings.TrimSpace(first))
	if err != nil {
		return "", fmt.Errorf("kubeServiceCIDR %q: %w", c.Network.KubeServiceCIDR, err)
	}
	ip := make(net.IP, len(n.IP))
	copy(ip, n.IP)
	carry := 10
	for i := len(ip) - 1; i >= 0 && carry > 0; i-- {
		sum := int(ip[i]) + carry
		ip[i], carry = byte(sum), sum>>8
	}
	if !n.Contains(ip) {
		return "", fmt.Errorf("kubeServiceCIDR %q: too small for the DNS service address (its tenth address)", c.Network.KubeServiceCIDR)
	}
	return ip.String(), nil
}

// KubeletClusterDNS is kubelet's clusterDNS: LocalIP while nodelocaldns is on, nil otherwise
// (kubeadm then sets CoreDNS's service address).
func KubeletClusterDNS(c *config.Cluster) []string {
	if c.Kubernetes.NodeLocalDNS {
		return []string{LocalIP}
	}
	return nil
}

// NodeLocalDNSImage is nodelocaldns's image for c (artifacts/versions, the one source for the
// deploy and `kk create manifest`), under c's registry settings.
func NodeLocalDNSImage(c *config.Cluster) (string, error) {
	set, err := versions.For(c.Kubernetes.Version)
	if err != nil {
		return "", err
	}
	return cni.ImageRef(c.Registry, set.NodeLocalDNSImage()), nil
}

func sha256hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// zone is an external zone as the Corefile templates use it.
type zone struct {
	Zones, Nameservers, Rewrite []string
	Cache                       int
}

func zones(in []config.ExternalZone, what string) ([]zone, error) {
	var out []zone
	for i, z := range in {
		if len(z.Zones) == 0 || len(z.Nameservers) == 0 {
			return nil, fmt.Errorf("%s.externalZones[%d]: zones and nameservers must both be set", what, i)
		}
		if z.Cache < 0 {
			return nil, fmt.Errorf("%s.externalZones[%d]: cache %d is negative", what, i, z.Cache)
		}
		out = append(out, zone{Zones: z.Zones, Nameservers: z.Nameservers, Rewrite: z.Rewrite, Cache: z.Cache})
	}
	return out, nil
}

// ParseHosts reads /etc/hosts-style text ("ADDRESS NAME..." per line, # comments) into
// entries; a line without a name or with an address that is not an IP is an error.
func ParseHosts(text, what string) ([]osprep.HostEntry, error) {
	var out []osprep.HostEntry
	for i, l := range strings.Split(text, "\n") {
		if j := strings.IndexByte(l, '#'); j >= 0 {
			l = l[:j]
		}
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if net.ParseIP(f[0]) == nil || len(f) < 2 {
			return nil, fmt.Errorf("%s line %d: %q is not \"ADDRESS NAME...\"", what, i+1, strings.TrimSpace(l))
		}
		out = append(out, osprep.HostEntry{Address: f[0], Names: f[1:]})
	}
	return out, nil
}

func hostsLines(es []osprep.HostEntry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "%s %s\n", e.Address, strings.Join(e.Names, " "))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// NewSpec renders c's cluster DNS: both Corefiles and their objects, and the nodes' hosts
// entries. Errors name the spec.dns field at fault.
func NewSpec(c *config.Cluster) (Spec, error) {
	s := Spec{NodeLocalDNS: c.Kubernetes.NodeLocalDNS, WaitCoreDNS: c.Network.Plugin != cni.None && c.Network.Plugin != "",
		SkipNodeHosts: c.System.SkipConfigureOS, WaitTimeout: 10 * time.Minute}
	domain := c.Kubernetes.DNSDomain
	if domain == "" {
		domain = "cluster.local"
	}
	dnsHosts, err := ParseHosts(c.DNS.DNSEtcHosts, "spec.dns.dnsEtcHosts")
	if err != nil {
		return s, err
	}
	if s.NodeHosts, err = ParseHosts(c.DNS.NodeEtcHosts, "spec.dns.nodeEtcHosts"); err != nil {
		return s, err
	}
	cz, err := zones(c.DNS.CoreDNS.ExternalZones, "spec.dns.coredns")
	if err != nil {
		return s, err
	}
	upstream := c.DNS.CoreDNS.UpstreamDNSServers
	if len(upstream) == 0 {
		upstream = []string{"/etc/resolv.conf"}
	}
	corefile, err := templates.Render("dns/coredns.Corefile", map[string]any{
		"ExternalZones": cz, "Hosts": hostsLines(dnsHosts), "HostsFile": hostsFile,
		"AdditionalConfigs": strings.TrimSpace(c.DNS.CoreDNS.AdditionalConfigs), "RewriteBlock": strings.TrimSpace(c.DNS.CoreDNS.RewriteBlock),
		"Domain": domain, "Upstream": upstream,
	})
	if err != nil {
		return s, err
	}
	s.CoreDNSCorefile = strings.TrimSpace(string(corefile)) + "\n"
	docs, err := templates.Render("dns/coredns.yaml", map[string]any{"Corefile": s.CoreDNSCorefile, "CorefileSHA256": sha256hex(s.CoreDNSCorefile)})
	if err != nil {
		return s, err
	}
	if s.CoreDNSObjects, err = kubeapply.Decode(docs); err != nil {
		return s, fmt.Errorf("coredns objects: %w", err)
	}

	if !s.NodeLocalDNS {
		return s, nil
	}
	if s.ClusterDNS, err = ClusterDNSIP(c); err != nil {
		return s, err
	}
	if net.ParseIP(s.ClusterDNS).To4() == nil {
		return s, fmt.Errorf("kubernetes.nodelocaldns: nodelocaldns listens on %s and forwards to CoreDNS at %s; kk needs an IPv4 first service CIDR for it (or set nodelocaldns: false)", LocalIP, s.ClusterDNS)
	}
	if s.Image, err = NodeLocalDNSImage(c); err != nil {
		return s, err
	}
	nz, err := zones(c.DNS.NodeLocalDNS.ExternalZones, "spec.dns.nodelocaldns")
	if err != nil {
		return s, err
	}
	corefile, err = templates.Render("dns/nodelocaldns.Corefile", map[string]any{
		"ExternalZones": nz, "Hosts": hostsLines(dnsHosts), "HostsFile": hostsFile,
		"Domain": domain, "LocalIP": LocalIP, "HealthPort": HealthPort, "ClusterDNS": s.ClusterDNS,
	})
	if err != nil {
		return s, err
	}
	s.NodeLocalCorefile = strings.TrimSpace(string(corefile)) + "\n"
	docs, err = templates.Render("dns/nodelocaldns.yaml", map[string]any{
		"Corefile": s.NodeLocalCorefile, "CorefileSHA256": sha256hex(s.NodeLocalCorefile),
		"LocalIP": LocalIP, "HealthPort": HealthPort, "ClusterDNS": s.ClusterDNS,
		"Image": s.Image, "UpstreamService": UpstreamService,
	})
	if err != nil {
		return s, err
	}
	if s.NodeLocalDNSObjects, err = kubeapply.Decode(docs); err != nil {
		return s, fmt.Errorf("nodelocaldns objects: %w", err)
	}
	return s, nil
}

// Tasks are the cluster DNS tasks of the network phase: CoreDNS's Corefile (after the tasks
// named in after, the pod network's) and nodelocaldns when it is on.
func Tasks(s Spec, kubeconfig func(ctx context.Context) (*rest.Config, error), after []string) []pipeline.Task {
	out := []pipeline.Task{applyTask(TaskCoreDNS, "apply CoreDNS's Corefile (spec.dns) and roll it out", s.CoreDNSObjects, s.WaitCoreDNS, s.WaitTimeout, kubeconfig, after)}
	if s.NodeLocalDNS {
		out = append(out, applyTask(TaskNodeLocalDNS, "deploy nodelocaldns ("+LocalIP+") on every node", s.NodeLocalDNSObjects, true, s.WaitTimeout, kubeconfig, nil))
	}
	return out
}

// applyTask applies objs from the kk machine with server-side apply and, when wait is set,
// waits until they are Current (kstatus). It runs once, on the first control plane, like the
// network task: Check is a server-side dry run (and a readiness poll), so a converged cluster
// reports ok; Run reports changed only when an object was created or configured.
func applyTask(name, desc string, objs []*unstructured.Unstructured, wait bool, timeout time.Duration,
	kubeconfig func(ctx context.Context) (*rest.Config, error), after []string) pipeline.Task {
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	client := func(ctx context.Context) (*kubeapply.Client, error) {
		cfg, err := kubeconfig(ctx)
		if err != nil {
			return nil, err
		}
		return kubeapply.NewClient(cfg)
	}
	return pipeline.Task{
		Name: name, Desc: desc, After: after,
		Hosts: pipeline.FirstOf(string(config.RoleControlPlane)),
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			c, err := client(ctx)
			if err != nil {
				return false, err
			}
			res, err := c.Apply(ctx, objs, kubeapply.Options{DryRun: true})
			if err != nil {
				return false, fmt.Errorf("%s (dry run): %w", name, err)
			}
			why := ""
			if n := res.Changed(); n > 0 {
				why = fmt.Sprintf("%d object(s) would change (%s)", n, res)
			} else if wait {
				if nr := c.NotReady(ctx, objs, ""); len(nr) > 0 {
					why = fmt.Sprintf("%s: %s %s", nr[0].Ref, nr[0].Status, nr[0].Message)
				}
			}
			if why != "" && t.Log != nil {
				t.Log.Info("not converged", "task", name, "reason", why)
			}
			return why == "", nil
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			c, err := client(ctx)
			if err != nil {
				return false, err
			}
			res, err := c.Apply(ctx, objs, kubeapply.Options{})
			if t.Log != nil && len(res.Objects) > 0 {
				t.Log.Info("applied", "task", name, "result", res.String())
			}
			if err != nil {
				return res.Changed() > 0, fmt.Errorf("%s: %w", name, err)
			}
			if wait {
				if err := c.Wait(ctx, res.Applied(), kubeapply.WaitOptions{Timeout: timeout}); err != nil {
					return res.Changed() > 0, fmt.Errorf("%s not ready: %w", name, err)
				}
			}
			return res.Changed() > 0, nil
		},
		Timeout: timeout + 2*time.Minute,
	}
}

// NodeHostsTask keeps spec.dns.nodeEtcHosts in every host's /etc/hosts, in a block of its own
// (other lines are left alone). It belongs to the os phase, after the tasks named in after
// (the os phase's own /etc/hosts task: both rewrite the file, so they must not run at once).
// Nothing is written when there are no entries and no block; under skipConfigureOS it is
// skipped.
func NodeHostsTask(s Spec, after []string) pipeline.Task {
	render := func(ctx context.Context, t *pipeline.Target) (cur, want string, err error) {
		data, err := t.Fetch(ctx, "/etc/hosts")
		if err != nil {
			return "", "", fmt.Errorf("read /etc/hosts: %w", err)
		}
		cur = string(data)
		if len(s.NodeHosts) == 0 && !strings.Contains(cur, nodeHostsBegin) {
			return cur, cur, nil
		}
		want = osprep.RenderBlock(cur, nodeHostsBegin, nodeHostsEnd, s.NodeHosts)
		if len(s.NodeHosts) == 0 { // entries removed from the config: so is the block
			want = strings.Replace(want, nodeHostsBegin+"\n"+nodeHostsEnd+"\n", "", 1)
		}
		return cur, want, nil
	}
	skip := ""
	if s.SkipNodeHosts {
		skip = "spec.system.skipConfigureOS is true: /etc/hosts left as the host has it"
	}
	return pipeline.Task{
		Name: TaskNodeHosts, Desc: "spec.dns.nodeEtcHosts in /etc/hosts", Skip: skip,
		Hosts: pipeline.AllHosts(), After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			cur, want, err := render(ctx, t)
			return cur == want, err
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			_, want, err := render(ctx, t)
			if err != nil {
				return false, err
			}
			return t.Upload(ctx, connector.File{Path: "/etc/hosts", Data: []byte(want), Mode: 0o644})
		},
	}
}
