package config

import (
	"net"
	"strconv"
	"strings"
	"time"
)

// Role is a function a host has in the cluster.
type Role string

// The roles a host can have. KubeKey's "master" is read as RoleControlPlane.
const (
	RoleEtcd         Role = "etcd"
	RoleControlPlane Role = "control-plane"
	RoleWorker       Role = "worker"
	RoleRegistry     Role = "registry"
)

// Roles returns every role in canonical order.
func Roles() []Role {
	return []Role{RoleEtcd, RoleControlPlane, RoleWorker, RoleRegistry}
}

// Host is one machine of the cluster and how to reach it over SSH.
type Host struct {
	// Name is the host's unique name; it becomes the Kubernetes node name.
	Name string
	// Address is what kk connects to over SSH (an IP or a DNS name).
	Address string
	// InternalAddress is the IP the cluster uses between nodes (defaults to Address).
	// It may hold "IPv4,IPv6" for dual-stack nodes; see InternalIPv4 and InternalIPv6.
	InternalAddress string
	// Port is the SSH port (default 22).
	Port int
	// User is the SSH user (default root).
	User string
	// Password is the SSH password, also used for sudo when User is not root.
	Password string
	// PrivateKeyPath is the path of an SSH private key, with "~" already expanded.
	PrivateKeyPath string
	// PrivateKey is an inline SSH private key (PEM).
	PrivateKey string
	// Arch is the CPU architecture: "amd64" or "arm64".
	Arch string
	// Labels are Kubernetes labels to set on the node.
	Labels map[string]string
	// Roles the host has, in canonical order (see Roles), without duplicates.
	Roles []Role
	// JumpHost names another host of the cluster used as SSH bastion ("" for none).
	JumpHost string
	// Timeout bounds the SSH connection set-up (default 30s).
	Timeout time.Duration
}

// Has reports whether the host has role r.
func (h *Host) Has(r Role) bool {
	for _, x := range h.Roles {
		if x == r {
			return true
		}
	}
	return false
}

// SSHAddress is Address:Port, ready for net.Dial.
func (h *Host) SSHAddress() string {
	return net.JoinHostPort(h.Address, strconv.Itoa(h.Port))
}

// InternalIPv4 is the IPv4 part of InternalAddress ("" when it has none).
func (h *Host) InternalIPv4() string {
	for _, a := range strings.Split(h.InternalAddress, ",") {
		if ip := net.ParseIP(strings.TrimSpace(a)); ip != nil && ip.To4() != nil {
			return ip.String()
		}
	}
	return ""
}

// InternalIPv6 is the IPv6 part of InternalAddress ("" when it has none).
func (h *Host) InternalIPv6() string {
	for _, a := range strings.Split(h.InternalAddress, ",") {
		if ip := net.ParseIP(strings.TrimSpace(a)); ip != nil && ip.To4() == nil {
			return ip.String()
		}
	}
	return ""
}

// InternalIP is the address other nodes reach this one on: the IPv4 internal
// address when there is one, else the IPv6 one.
func (h *Host) InternalIP() string {
	if ip := h.InternalIPv4(); ip != "" {
		return ip
	}
	return h.InternalIPv6()
}

// IsLocalAddress reports whether a host's SSH address is the machine kk runs on: kk reaches
// it with the local connector (no SSH), so it needs no key or password.
func IsLocalAddress(addr string) bool {
	return addr == "localhost" || addr == "127.0.0.1" || addr == "::1"
}
