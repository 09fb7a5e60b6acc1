package v1alpha2

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/kk-project/kk/api/config"
)

// validator checks a defaulted cluster and reports into rep.
type validator struct {
	rep  *report
	opts ParseOptions
}

// hosts checks spec.hosts (defaulted) and returns the index of each host name.
func (v *validator) hosts(hosts []HostCfg) map[string]int {
	names := map[string]int{}
	addrs := map[string]int{}
	internal := map[string]int{}
	for i := range hosts {
		h := &hosts[i]
		p := indexPath("spec.hosts", i)
		switch first, dup := names[h.Name]; {
		case h.Name == "":
			v.rep.errorf(p+".name", "name is required")
		case dup:
			v.rep.errorf(p+".name", "duplicate host name %q (also spec.hosts[%d])", h.Name, first)
		default:
			names[h.Name] = i
			if !isNodeName(h.Name) {
				v.rep.errorf(p+".name", "%q is not a valid node name: use lowercase letters, digits, '-' and '.'", h.Name)
			}
		}
		v.hostAddresses(h, p, i, addrs, internal)
		if h.Port < 1 || h.Port > 65535 {
			v.rep.errorf(p+".port", "port %d is out of range 1-65535", h.Port)
		}
		if h.Arch != "amd64" && h.Arch != "arm64" {
			v.rep.errorf(p+".arch", "unsupported arch %q: kk supports amd64 and arm64", h.Arch)
		}
		if *h.Timeout < 0 {
			v.rep.errorf(p+".timeout", "timeout must not be negative")
		}
		v.hostKey(h, p)
	}
	v.jumpHosts(hosts, names)
	return names
}

func (v *validator) hostAddresses(h *HostCfg, p string, i int, addrs, internal map[string]int) {
	if h.Address == "" {
		v.rep.errorf(p+".address", "address is required")
		return
	}
	if !isIPOrHostname(h.Address) {
		v.rep.errorf(p+".address", "%q is not a valid IP address or host name", h.Address)
	}
	// Several hosts may share an address behind NAT, on different SSH ports.
	key := net.JoinHostPort(h.Address, strconv.Itoa(h.Port))
	if first, dup := addrs[key]; dup {
		v.rep.errorf(p+".address", "duplicate address %s (also spec.hosts[%d])", key, first)
	} else {
		addrs[key] = i
	}
	ips, err := parseInternal(h.InternalAddress)
	if err != nil {
		v.rep.errorf(p+".internalAddress", "%v", err)
		return
	}
	for _, ip := range ips {
		if first, dup := internal[ip]; dup {
			v.rep.errorf(p+".internalAddress", "duplicate internal address %s (also spec.hosts[%d])", ip, first)
		} else {
			internal[ip] = i
		}
	}
}

// parseInternal checks an internalAddress: one IP, or "IPv4,IPv6".
func parseInternal(s string) ([]string, error) {
	parts := strings.Split(s, ",")
	var out []string
	var v4, v6 int
	for _, part := range parts {
		ip := net.ParseIP(strings.TrimSpace(part))
		if ip == nil {
			return nil, errors.New(strconv.Quote(s) + " is not an IP address (or \"IPv4,IPv6\" pair)")
		}
		if ip.To4() != nil {
			v4++
		} else {
			v6++
		}
		out = append(out, ip.String())
	}
	if len(parts) > 2 || v4 > 1 || v6 > 1 {
		return nil, errors.New(strconv.Quote(s) + ": at most one IPv4 and one IPv6 address")
	}
	return out, nil
}

// hostKey checks that the private key file the host will use exists.
func (v *validator) hostKey(h *HostCfg, p string) {
	if v.opts.SkipFileChecks || h.PrivateKey != "" || config.IsLocalAddress(h.Address) {
		return
	}
	written := keyPath(h)
	if written == "" {
		return
	}
	path := expandHome(written, v.opts.HomeDir)
	if _, err := os.Stat(path); err == nil {
		return
	} else if !errors.Is(err, fs.ErrNotExist) {
		v.rep.errorf(p+".privateKeyPath", "cannot read private key %s: %v", path, err)
		return
	}
	shown := strconv.Quote(written)
	if path != written {
		shown += " (" + path + ")"
	}
	if h.PrivateKeyPath == "" {
		v.rep.errorf(p, "no password, privateKey or privateKeyPath given, and the default key %s does not exist", shown)
		return
	}
	v.rep.errorf(p+".privateKeyPath", "private key %s does not exist", shown)
}

// jumpHosts checks that every jumpHost names another host, without cycles.
func (v *validator) jumpHosts(hosts []HostCfg, names map[string]int) {
	for i := range hosts {
		h := &hosts[i]
		if h.JumpHost == "" {
			continue
		}
		p := indexPath("spec.hosts", i) + ".jumpHost"
		if h.JumpHost == h.Name {
			v.rep.errorf(p, "host %q cannot be its own jump host", h.Name)
			continue
		}
		if _, ok := names[h.JumpHost]; !ok {
			v.rep.errorf(p, "jump host %q is not in spec.hosts", h.JumpHost)
			continue
		}
		// Follow the chain; a cycle comes back to h.
		seen := map[string]bool{h.Name: true}
		for next := h.JumpHost; next != ""; {
			if seen[next] {
				v.rep.errorf(p, "jump hosts form a cycle through %q", next)
				break
			}
			seen[next] = true
			j, ok := names[next]
			if !ok {
				break
			}
			next = hosts[j].JumpHost
		}
	}
}

// roles checks the cluster's role layout.
func (v *validator) roles(c *config.Cluster) {
	cps := c.HostsWithRole(config.RoleControlPlane)
	etcd := c.HostsWithRole(config.RoleEtcd)
	if len(cps) == 0 {
		v.rep.errorf("spec.roleGroups", "no control-plane host: list at least one host under roleGroups.control-plane (or master)")
	}
	if len(c.Hosts) == 0 {
		v.rep.errorf("spec.hosts", "no hosts: list the cluster's machines under spec.hosts")
	}
	switch c.Etcd.Type {
	case config.EtcdKubeadm:
		if n := len(cps); n > 0 && n%2 == 0 {
			v.rep.warnf("spec.roleGroups", "%d control planes with etcd type kubeadm make %d etcd members: use an odd number", n, n)
		}
		if len(etcd) > 0 {
			v.rep.warnf("spec.roleGroups.etcd", "roleGroups.etcd is ignored with etcd type kubeadm (etcd runs on the control planes)")
		}
	case config.EtcdKubeKey:
		if len(etcd) == 0 {
			v.rep.errorf("spec.roleGroups", "no etcd host: etcd type kubekey needs hosts under roleGroups.etcd")
		} else if len(etcd)%2 == 0 {
			v.rep.warnf("spec.roleGroups.etcd", "%d etcd members tolerate no more failures than %d would: use an odd number", len(etcd), len(etcd)-1)
		}
	case config.EtcdExternal:
		if len(etcd) > 0 {
			v.rep.warnf("spec.roleGroups.etcd", "roleGroups.etcd is ignored with etcd type external")
		}
	}
	if len(c.HostsWithRole(config.RoleWorker)) == 0 && len(cps) > 0 {
		v.rep.warnf("spec.roleGroups", "no worker host: list the control planes under roleGroups.worker too to run workloads on them")
	}
	for i, h := range c.Hosts {
		if len(h.Roles) == 0 && h.Name != "" {
			v.rep.warnf(indexPath("spec.hosts", i), "host %q has no role and will not be used", h.Name)
		}
	}
}
