package v1alpha2

import (
	"fmt"
	"net"
	"strings"

	"github.com/kk-project/kk/api/config"
)

func (v *validator) network(c *config.Cluster) {
	const p = "spec.network"
	n := c.Network
	switch n.Plugin {
	case "calico", "flannel", "cilium", "none":
	case "kubeovn", "hybridnet":
		v.rep.errorf(p+".plugin", "network plugin %s is not supported by kk yet: use calico, flannel, cilium or none", n.Plugin)
	default:
		v.rep.errorf(p+".plugin", "network plugin %q is not supported: use calico, flannel, cilium or none", n.Plugin)
	}
	pods, perr := parseCIDRs(n.KubePodsCIDR)
	if perr != nil {
		v.rep.errorf(p+".kubePodsCIDR", "%v", perr)
	}
	svcs, serr := parseCIDRs(n.KubeServiceCIDR)
	if serr != nil {
		v.rep.errorf(p+".kubeServiceCIDR", "%v", serr)
	}
	for _, a := range pods {
		for _, b := range svcs {
			if overlap(a, b) {
				v.rep.errorf(p+".kubeServiceCIDR", "service CIDR %s overlaps pod CIDR %s", b, a)
			}
		}
	}
	for i, h := range c.Hosts {
		for _, addr := range strings.Split(h.InternalAddress, ",") {
			ip := net.ParseIP(strings.TrimSpace(addr))
			for _, r := range append(append([]*net.IPNet{}, pods...), svcs...) {
				if ip != nil && r.Contains(ip) {
					v.rep.errorf(indexPath("spec.hosts", i)+".internalAddress",
						"host address %s lies inside the cluster range %s (spec.network); pick other pod/service CIDRs", ip, r)
				}
			}
		}
	}
	v.calico(n.Calico)
}

func (v *validator) calico(c config.Calico) {
	const p = "spec.network.calico"
	modes := map[string]string{"ipipMode": c.IPIPMode, "vxlanMode": c.VXLANMode}
	for name, m := range modes {
		switch m {
		case "Always", "CrossSubnet", "Never":
		default:
			v.rep.errorf(p+"."+name, "%s %q is not one of Always, CrossSubnet, Never", name, m)
		}
	}
	if c.IPIPMode != "Never" && c.VXLANMode != "Never" {
		v.rep.errorf(p, "ipipMode and vxlanMode cannot both be on: set one of them to Never")
	}
	if c.VethMTU < 0 {
		v.rep.errorf(p+".vethMTU", "vethMTU must not be negative (0 means auto-detect)")
	}
}

// parseCIDRs parses a CIDR or an "IPv4CIDR,IPv6CIDR" dual-stack pair.
func parseCIDRs(s string) ([]*net.IPNet, error) {
	parts := strings.Split(s, ",")
	var out []*net.IPNet
	var v4, v6 int
	for _, part := range parts {
		ip, n, err := net.ParseCIDR(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR (e.g. 10.233.64.0/18, or an IPv4,IPv6 pair)", s)
		}
		if !ip.Equal(n.IP) {
			return nil, fmt.Errorf("%q has host bits set: did you mean %s?", strings.TrimSpace(part), n)
		}
		if ip.To4() != nil {
			v4++
		} else {
			v6++
		}
		out = append(out, n)
	}
	if v4 > 1 || v6 > 1 {
		return nil, fmt.Errorf("%q: at most one IPv4 and one IPv6 CIDR", s)
	}
	return out, nil
}

// overlap reports whether two networks share an address.
func overlap(a, b *net.IPNet) bool {
	return a.Contains(b.IP) || b.Contains(a.IP)
}
