// Package versions is kk's compatibility table: for each Kubernetes minor release it says which
// etcd, CoreDNS, pause, crictl, CNI plugins, containerd, runc, cri-dockerd and helm go with it,
// and which versions of the CNI plugins' and load balancers' images kk installs. It is the one
// place these choices are made; it holds no checksums (those come from upstream or a Manifest).
package versions

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Set is what goes with one Kubernetes release. Image tags are written as the image
// publishes them ("3.6.5-0", "v1.12.1"); binary versions carry a leading "v" except docker's.
type Set struct {
	// Kubernetes is the version asked for, "vX.Y.Z".
	Kubernetes string
	// Etcd is the etcd binary release (etcd type kubekey), EtcdImage the image tag kubeadm
	// uses for a stacked etcd.
	Etcd       string
	EtcdImage  string
	CoreDNS    string // image tag of registry.k8s.io/coredns/coredns
	Pause      string // image tag of registry.k8s.io/pause
	Crictl     string
	CNI        string // containernetworking/plugins release
	Containerd string
	Runc       string
	Docker     string // docker static release (no "v")
	CriDockerd string
	Helm       string
	Addons     Addons
}

// Addons are the versions of what kk deploys on top of Kubernetes; they do not depend on the
// Kubernetes minor (within the supported range).
type Addons struct {
	Calico           string
	Flannel          string
	FlannelCNIPlugin string
	Cilium           string
	KubeOVN          string
	Hybridnet        string
	Multus           string
	NodeLocalDNS     string // registry.k8s.io/dns/k8s-dns-node-cache tag
	HAProxy          string // docker.io/library/haproxy tag
	KubeVIP          string
}

// row is one line of the table, keyed by Kubernetes minor.
type row struct {
	minor                           int
	etcd, etcdImage, coredns, pause string
	cni, containerd, runc           string
	docker, criDockerd, helm        string
}

// table lists the supported Kubernetes minors, newest first. etcd, CoreDNS and pause follow
// kubeadm's own defaults for the minor; crictl always matches the minor.
func table() []row {
	return []row{
		{34, "v3.6.5", "3.6.5-0", "v1.12.1", "3.10.1", "v1.9.1", "v2.1.4", "v1.3.0", "28.3.3", "v0.3.19", "v3.18.6"},
		{33, "v3.5.21", "3.5.21-0", "v1.12.0", "3.10", "v1.7.1", "v2.1.4", "v1.3.0", "28.3.3", "v0.3.19", "v3.18.6"},
		{32, "v3.5.16", "3.5.16-0", "v1.11.3", "3.10", "v1.6.2", "v2.0.5", "v1.2.6", "27.5.1", "v0.3.16", "v3.17.3"},
		{31, "v3.5.15", "3.5.15-0", "v1.11.3", "3.10", "v1.6.2", "v1.7.27", "v1.2.6", "27.5.1", "v0.3.16", "v3.16.4"},
		{30, "v3.5.12", "3.5.12-0", "v1.11.1", "3.9", "v1.4.1", "v1.7.27", "v1.1.15", "26.1.4", "v0.3.14", "v3.15.4"},
		{29, "v3.5.10", "3.5.10-0", "v1.11.1", "3.9", "v1.4.1", "v1.7.27", "v1.1.15", "24.0.9", "v0.3.14", "v3.14.4"},
		{28, "v3.5.9", "3.5.9-0", "v1.10.1", "3.9", "v1.4.1", "v1.7.27", "v1.1.15", "24.0.9", "v0.3.14", "v3.14.4"},
	}
}

// DefaultAddons are the add-on versions kk installs.
func DefaultAddons() Addons {
	return Addons{
		Calico:           "v3.29.3",
		Flannel:          "v0.26.7",
		FlannelCNIPlugin: "v1.6.2-flannel1",
		Cilium:           "v1.17.4",
		KubeOVN:          "v1.13.13",
		Hybridnet:        "v0.8.8",
		Multus:           "v4.1.4",
		NodeLocalDNS:     "1.25.0",
		HAProxy:          "2.9.6-alpine",
		KubeVIP:          "v0.9.1",
	}
}

// For returns the set that goes with Kubernetes version v ("v1.34.1" or "1.34.1").
func For(v string) (Set, error) {
	minor, err := Minor(v)
	if err != nil {
		return Set{}, err
	}
	t := table()
	i := slices.IndexFunc(t, func(r row) bool { return r.minor == minor })
	if i < 0 {
		return Set{}, fmt.Errorf("Kubernetes %s: kk has no version table for v1.%d (supported: %s)", v, minor, strings.Join(Supported(), ", "))
	}
	r := t[i]
	return Set{
		Kubernetes: "v" + strings.TrimPrefix(strings.TrimSpace(v), "v"),
		Etcd:       r.etcd, EtcdImage: r.etcdImage, CoreDNS: r.coredns, Pause: r.pause,
		Crictl: fmt.Sprintf("v1.%d.0", minor),
		CNI:    r.cni, Containerd: r.containerd, Runc: r.runc,
		Docker: r.docker, CriDockerd: r.criDockerd, Helm: r.helm,
		Addons: DefaultAddons(),
	}, nil
}

// Latest is the set of the newest supported minor's first release; it supplies defaults
// when no Kubernetes version is known (a Manifest listing only tools).
func Latest() Set {
	s, err := For(fmt.Sprintf("v1.%d.0", table()[0].minor))
	if err != nil {
		panic(err) // the table is not empty
	}
	return s
}

// Supported lists the supported minors, newest first ("v1.34", ...).
func Supported() []string {
	var out []string
	for _, r := range table() {
		out = append(out, fmt.Sprintf("v1.%d", r.minor))
	}
	return out
}

// Minor returns Y of a "vX.Y.Z" Kubernetes version; X must be 1.
func Minor(v string) (int, error) {
	s := strings.TrimPrefix(strings.TrimSpace(v), "v")
	parts := strings.SplitN(s, ".", 3)
	if len(parts) < 2 || parts[0] != "1" {
		return 0, fmt.Errorf("Kubernetes version %q: want v1.Y.Z", v)
	}
	minor, err := strconv.Atoi(parts[1])
	if err != nil || minor < 0 {
		return 0, fmt.Errorf("Kubernetes version %q: want v1.Y.Z", v)
	}
	return minor, nil
}
