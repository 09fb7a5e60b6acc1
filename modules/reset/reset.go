// Package reset takes hosts back to their state before kk (`kk delete cluster`, and `kk delete
// node` for one host): one script per host, run as root, removes what every kk module set up —
// kubelet and the pods, kk's etcd and its backup timer, the certificate renewal timer, haproxy's
// and kube-vip's static pods and the VIP, the pod network (interfaces, routes, iptables chains
// of every table and back end, nft tables, ipsets, IPVS, network namespaces), mounts, kk's
// /etc/hosts blocks, sysctl and modules-load files, kubeadm, kubelet, kubectl and etcd's
// programs and units, the CNI plugins. With All the container runtime goes too (services,
// programs, units, configuration, data); without it the runtime stays, running, with every
// Kubernetes pod removed through the CRI (its images stay cached).
//
// What stays, by design: the registry of `kk init registry` (its host, data and /etc/hosts
// block), the OS settings of `kk init os` that are not Kubernetes' (hostname, swap left off,
// chrony, timezone, packages), the kernel parameters in effect until reboot, loaded kernel
// modules, and, without All, the etcd snapshots in the backup directory and the data of the
// platform's local volumes.
//
// A read-only residue check (ResidueScript) prints one line per leftover: the reset task is
// done when it prints nothing, and fails naming the leftovers when they survive the reset.
package reset

import (
	"path"
	"slices"
	"strings"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/certs"
	"github.com/kk-project/kk/modules/etcd"
	"github.com/kk-project/kk/modules/gpu"
	"github.com/kk-project/kk/modules/kubernetes"
	"github.com/kk-project/kk/modules/loadbalancer"
	"github.com/kk-project/kk/modules/runtime"
)

// Container managers (runtime's).
const (
	Containerd = runtime.Containerd
	Docker     = runtime.Docker
)

// Spec is what the reset removes on each host. SpecFor fills it from the cluster.
type Spec struct {
	// All removes the container runtime too (kk delete cluster --all).
	All bool
	// ContainerManager is "containerd" or "docker"; CRISocket its CRI socket URL.
	ContainerManager string
	CRISocket        string
	// RuntimeRoot is the runtime's data root (containerd's root or docker's data-root).
	RuntimeRoot string
	// EtcdDataDir is etcd's data directory (removed with /var/lib/etcd and the
	// .kk-restore-* copies etcd restore set aside).
	EtcdDataDir string
	// EtcdBackupScript and EtcdBackupDir are the periodic backup's script and snapshots
	// (the snapshots are removed with All only).
	EtcdBackupScript string
	EtcdBackupDir    string
	// ProxyMode is kube-proxy's mode: with ipvs the IPVS table is cleared.
	ProxyMode string
	// VIP is kube-vip's address ("" without kube-vip): removed from any interface holding
	// it as a /32 or /128.
	VIP string
	// DockerAuth removes /root/.docker/config.json (docker with registry credentials, All).
	DockerAuth bool
	// LocalVolumes is the directory of the platform's local volumes ("" without local
	// storage): their data, removed with All only.
	LocalVolumes string
	// OnResidue, when set, receives each host's leftovers from the reset task's check
	// (what a dry run would remove).
	OnResidue func(host string, items []string)
}

// SpecFor derives the reset of every host of c; all is kk delete cluster --all.
func SpecFor(c *config.Cluster, all bool) Spec {
	rs := runtime.SpecFor(c, binaries.Files{})
	root := rs.Root()
	backupDir := c.Etcd.BackupDir
	if backupDir == "" {
		backupDir = "/var/backups/kube_etcd"
	}
	s := Spec{
		All: all, ContainerManager: rs.ContainerManager, CRISocket: rs.CRISocket, RuntimeRoot: root,
		EtcdDataDir:      c.Etcd.DataDir,
		EtcdBackupScript: etcd.Spec{Etcd: c.Etcd}.BackupScript(), EtcdBackupDir: backupDir,
		ProxyMode:  c.Kubernetes.ProxyMode,
		DockerAuth: rs.ContainerManager == Docker && len(c.Registry.Auths) > 0,
	}
	if c.Platform.LocalStorage {
		s.LocalVolumes = c.Storage.LocalVolumes()
	}
	if s.EtcdDataDir == "" {
		s.EtcdDataDir = "/var/lib/etcd"
	}
	if c.ControlPlaneEndpoint.InternalLoadbalancer == loadbalancer.KubeVIP {
		s.VIP = vipOf(c)
	}
	return s
}

// vipOf is kube-vip's address, unless a host has it (a mistaken file must not cost a host
// its address).
func vipOf(c *config.Cluster) string {
	vip := c.ControlPlaneEndpoint.Address
	for _, h := range c.Hosts {
		if vip == h.Address || slices.Contains(strings.Split(h.InternalAddress, ","), vip) {
			return ""
		}
	}
	return vip
}

// KKUnits are kk's own systemd units, stopped first (kubelet before anything else).
var KKUnits = []string{
	"kubelet.service",
	certs.TimerUnit, certs.ServiceUnit,
	etcd.BackupUnit + ".timer", etcd.BackupUnit + ".service",
	"etcd.service",
	// runs kk from /var/lib/kk, which goes too
	gpu.ExporterUnit,
}

// RuntimeUnits are the container runtime's units kk writes (removed with All).
func (s Spec) RuntimeUnits() []string {
	if !s.All {
		return nil
	}
	if s.ContainerManager == Docker {
		return []string{"cri-docker.service", "cri-docker.socket", "docker.service", "docker.socket"}
	}
	return []string{"containerd.service"}
}

// Units are every unit the reset stops, disables and removes.
func (s Spec) Units() []string { return append(slices.Clone(KKUnits), s.RuntimeUnits()...) }

// cniPlugins are the programs kk's runtime phase and the CNI plugins' pods put in /opt/cni/bin.
var cniPlugins = []string{
	"bandwidth", "bridge", "dhcp", "dummy", "firewall", "host-device", "host-local", "ipvlan", "loopback",
	"macvlan", "portmap", "ptp", "sbr", "static", "tap", "tuning", "vlan", "vrf",
	"flannel", "calico", "calico-ipam", "install", "cilium-cni",
}

// Paths are the files and directories the reset removes (a mount point is emptied instead).
func (s Spec) Paths() []string {
	var p []string
	for _, u := range s.Units() {
		p = append(p, path.Join(runtime.UnitDir, u))
	}
	p = append(p, path.Dir(kubernetes.KubeletDropIn))
	for _, b := range append(slices.Clone(kubernetes.Programs), etcd.Programs...) {
		p = append(p, path.Join(kubernetes.BinDir, b))
	}
	p = append(p,
		// Kubernetes, kubelet, kubeadm's and the audit logs
		"/etc/kubernetes", "/var/lib/kubelet", "/run/kubernetes", "/var/log/kubernetes", "/var/log/kk-kubeadm.log",
		"/var/log/pods", "/var/log/containers",
		// etcd (kk's and kubeadm's stacked one), its restore and backup script
		"/var/lib/etcd", path.Dir(etcd.CertDir), etcd.EnvFile, etcd.AppliedFile, etcd.IdentityFile,
		etcd.RestoreDir, s.EtcdBackupScript,
		// the certificate renewal's kk, haproxy's configuration, the runtime's image imports
		path.Dir(certs.Binary), loadbalancer.HAProxyConfigDir, "/var/lib/kk",
		// the pod network's state (/etc/cni: emptiedDirs while the runtime stays)
		"/var/lib/cni", "/run/flannel", "/run/calico", "/var/lib/calico", "/var/log/calico", "/run/cilium",
		// kk init os's kernel parameters and modules
		"/etc/sysctl.d/99-kubernetes-kk.conf", "/etc/modules-load.d/kubernetes-kk.conf",
		// the platform logging's collector buffer (whether logging is on now or was earlier)
		config.LogCollectorDir,
	)
	if s.EtcdDataDir != "/var/lib/etcd" {
		p = append(p, s.EtcdDataDir)
	}
	if s.All {
		p = append(p, CNIConfParent)
	}
	return append(p, s.runtimePaths()...)
}

// CNIConfParent holds the pod network's configuration (net.d, and what some plugins add).
const CNIConfParent = "/etc/cni"

// emptiedDirs are emptied but stay, each keeping the others of the list below it: while the
// runtime stays (not All), the CNI configuration directory goes only as far as containerd
// lets it. containerd watches /etc/cni/net.d: removed, its CRI plugin stops and systemd starts
// containerd again, which makes the directory anew (an empty one, after the reset's check).
func (s Spec) emptiedDirs() []string {
	if s.All {
		return nil
	}
	return []string{CNIConfParent, runtime.CNIConfDir}
}

// runtimePaths are the runtime's programs, configuration and data, the etcd snapshots and
// the local volumes' data (All only).
func (s Spec) runtimePaths() []string {
	if !s.All {
		return nil
	}
	bin := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, path.Join(runtime.BinDir, n))
		}
		return out
	}
	p := []string{runtime.CrictlConf, s.RuntimeRoot, "/run/containerd", s.EtcdBackupDir}
	if s.LocalVolumes != "" {
		p = append(p, s.LocalVolumes)
	}
	if s.ContainerManager == Docker {
		p = append(p, bin("docker", "dockerd", "docker-init", "docker-proxy", "containerd", "containerd-shim-runc-v2",
			"ctr", "runc", "cri-dockerd", "crictl")...)
		p = append(p, "/etc/docker", "/var/lib/cri-dockerd", "/run/docker", "/run/docker.sock", "/run/cri-dockerd.sock",
			path.Dir(runtime.RestrictedRunc), "/var/lib/dockershim")
		if s.DockerAuth {
			p = append(p, "/root/.docker/config.json")
		}
		return p
	}
	p = append(p, bin("containerd", "containerd-shim-runc-v2", "ctr", "crictl")...)
	return append(p, runtime.RuncPath, "/etc/containerd", "/opt/containerd")
}

// emptyDirs are removed when the reset left them empty (deepest first).
func (s Spec) emptyDirs() []string {
	return []string{path.Dir(s.EtcdBackupScript), path.Dir(loadbalancer.HAProxyConfigDir), runtime.CNIBinDir, path.Dir(runtime.CNIBinDir), "/root/.kube"}
}

// mountPrefixes are where every mount below is unmounted.
func (s Spec) mountPrefixes() []string {
	p := []string{"/var/lib/kubelet/", "/run/netns/cni-", "/run/containerd/io.containerd.runtime.v2.task/k8s.io/",
		"/run/containerd/io.containerd.grpc.v1.cri/", path.Join(s.RuntimeRoot, "io.containerd.grpc.v1.cri") + "/"}
	if s.All {
		p = append(p, "/run/containerd/", s.RuntimeRoot+"/", "/run/docker/")
	}
	return p
}

// Interfaces kk's pod networks, kube-proxy and nodelocaldns create (tunl0 is handled apart:
// it cannot be deleted).
var (
	kkIfaces = []string{"cni0", "flannel.1", "flannel-v6.1", "flannel-wg", "flannel-wg-v6", "vxlan.calico",
		"vxlan-v6.calico", "wireguard.cali", "wg-v6.cali", "kube-ipvs0", "nodelocaldns", "kube-bridge", "kube-dummy-if",
		"cilium_host", "cilium_net", "cilium_vxlan", "cilium_geneve"}
	kkIfacePrefixes = []string{"cali"}
)

func (s Spec) ifaces() []string {
	if s.All && s.ContainerManager == Docker {
		return append(slices.Clone(kkIfaces), "docker0")
	}
	return kkIfaces
}

// procs are the daemons (by /proc/PID/comm) that must not run after the reset.
func (s Spec) procs() []string {
	p := []string{"kubelet", "etcd", "kube-apiserver", "kube-controller", "kube-scheduler", "kube-proxy", "kube-vip"}
	if s.All {
		p = append(p, "containerd", "containerd-shim")
		if s.ContainerManager == Docker {
			p = append(p, "dockerd", "cri-dockerd")
		}
	}
	return p
}

// Regular expressions of the objects of kk's network: iptables chains (kube-proxy, flannel,
// the CNI plugins, calico, cilium; docker's with All), nft tables, ipsets.
const (
	chainRE = `^(KUBE-|FLANNEL-|CNI-|cali-|CILIUM_)`
	nftRE   = `^(kube-proxy|calico|cali-.*|flannel.*|cilium.*)$`
	ipsetRE = `^(KUBE-|cali)`
)

func (s Spec) chainRE() string {
	if s.All && s.ContainerManager == Docker {
		return `^(KUBE-|FLANNEL-|CNI-|cali-|CILIUM_|DOCKER)`
	}
	return chainRE
}

// hostsBlocks are the first lines of kk's /etc/hosts blocks (os, the API server endpoint,
// spec.dns.nodeEtcHosts); each ends with the same line starting "# END". kk init registry's
// block stays.
var hostsBlocks = []string{"# BEGIN kk managed hosts", "# BEGIN kk API server endpoint", "# BEGIN kk dns.nodeEtcHosts"}

// routeProtos are the protocols of calico's blackhole routes (bird's 12, felix's 80).
var routeProtos = []string{"12", "80"}
