package loadbalancer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"

	"github.com/kk-project/kk/templates"
)

// RenderHAProxyConfig renders haproxy.cfg.
func RenderHAProxyConfig(h HAProxySpec) ([]byte, error) {
	if len(h.Backends) == 0 {
		return nil, fmt.Errorf("haproxy: no control plane to balance")
	}
	for _, b := range h.Backends {
		if b.Address == "" || b.Port == 0 {
			return nil, fmt.Errorf("haproxy: control plane %s has no internal address", b.Name)
		}
	}
	if h.Bind == "" || h.Port == 0 || h.MonitorPort == 0 {
		return nil, fmt.Errorf("haproxy: bind address, port and monitor port must be set")
	}
	return templates.Render("loadbalancer/haproxy.cfg", h)
}

// RenderHAProxyManifest renders the haproxy static pod. It carries the sha256 of
// haproxy.cfg, so a new configuration makes kubelet recreate the pod.
func RenderHAProxyManifest(h HAProxySpec) ([]byte, error) {
	cfg, err := RenderHAProxyConfig(h)
	if err != nil {
		return nil, err
	}
	return templates.Render("loadbalancer/haproxy.yaml", map[string]any{
		"Image": h.Image, "MonitorPort": h.MonitorPort, "ConfigDir": h.ConfigDir, "ConfigSHA256": sha256hex(cfg),
	})
}

// KubeVIPKubeconfig is the kubeconfig kube-vip mounts on hostName: super-admin.conf on
// the first control plane while admin.conf does not exist yet (Kubernetes >= v1.29),
// else admin.conf.
func KubeVIPKubeconfig(k KubeVIPSpec, hostName string, adminConfExists bool) string {
	if k.SuperAdminOnInit && hostName == k.FirstHost && !adminConfExists {
		return "/etc/kubernetes/super-admin.conf"
	}
	return "/etc/kubernetes/admin.conf"
}

// RenderKubeVIPManifest renders the kube-vip static pod of control plane hostName, with
// the VIP on iface, kube-vip reading kubeconfig (a host path).
func RenderKubeVIPManifest(k KubeVIPSpec, hostName, iface, kubeconfig string) ([]byte, error) {
	ip := net.ParseIP(k.Address)
	if ip == nil {
		return nil, fmt.Errorf("kube-vip: the VIP %q (controlPlaneEndpoint.address) is not an IP address", k.Address)
	}
	if iface == "" {
		return nil, fmt.Errorf("kube-vip on %s: no interface for the VIP %s", hostName, k.Address)
	}
	cidr := "32"
	if ip.To4() == nil {
		cidr = "128"
	}
	mode := strings.ToUpper(k.Mode)
	data := map[string]any{
		"Image": k.Image, "Address": k.Address, "Port": k.Port, "Interface": iface, "CIDR": cidr,
		"Mode": mode, "Kubeconfig": kubeconfig, "LocalAS": k.LocalAS, "PeerAS": k.PeerAS, "RouterID": "", "Peers": "",
	}
	switch mode {
	case "ARP":
	case "BGP":
		var self string
		for _, h := range k.Hosts {
			if h.Name == hostName {
				self = h.Address
			}
		}
		if net.ParseIP(self).To4() == nil {
			return nil, fmt.Errorf("kube-vip BGP on %s: the router ID must be the host's IPv4 internal address, have %q", hostName, self)
		}
		peers := k.Peers
		if len(peers) == 0 {
			for _, h := range k.Hosts {
				if h.Name != hostName {
					peers = append(peers, h.Address)
				}
			}
		}
		if len(peers) == 0 {
			return nil, fmt.Errorf("kube-vip BGP on %s: no BGP peer (a single control plane has no other control plane to peer with)", hostName)
		}
		var list []string
		for _, p := range peers {
			// address:AS:password:multihop; an IPv6 address in brackets
			a := p
			if strings.Contains(p, ":") {
				a = "[" + p + "]"
			}
			list = append(list, a+":"+strconv.Itoa(k.PeerAS)+"::false")
		}
		data["RouterID"] = self
		data["Peers"] = strings.Join(list, ",")
	default:
		return nil, fmt.Errorf("kube-vip: mode %q is neither ARP nor BGP", k.Mode)
	}
	return templates.Render("loadbalancer/kube-vip.yaml", data)
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func manifestPath(dir, name string) string { return path.Join(dir, name+".yaml") }
