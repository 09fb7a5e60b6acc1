// Package mirror builds and serves a local stand-in for the upstream
// download sites kk fetches release binaries from (dl.k8s.io and GitHub
// release pages), so that end-to-end tests run without internet access.
//
// Every binary is built from its real upstream Go module at a pinned
// version (fetched through the Go module proxy) and laid out at the same
// URL path, with the same archive format and checksum-file format, as the
// real site. The only exception is runc, which needs cgo and libseccomp:
// it is taken from Debian's runc package instead.
//
// Build is cached: an artifact is rebuilt only when its stamp file (under
// <dir>/.stamps) is missing, records another version or recipe, or one of
// its files is gone or has changed size.
package mirror

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
)

// Arch is the only architecture the mirror builds.
const Arch = "amd64"

// Spec pins every upstream version the mirror builds. DefaultSpec is the
// one place where the versions used by kk's e2e tests are chosen.
type Spec struct {
	// Kubernetes lists the k8s.io/kubernetes releases to build (kubeadm,
	// kubelet, kubectl and the control-plane binaries), e.g. "v1.34.4".
	Kubernetes []string
	// KubeadmValidate lists releases of which kubeadm alone is built: the boundary minors of
	// kk's kubeadm configuration (the first and last of v1beta3, the first of v1beta4, the
	// first kubelet that refuses cgroup v1), each checked with its own `kubeadm config validate`.
	KubeadmValidate []string
	// Etcd is the go.etcd.io/etcd release (etcd, etcdctl, etcdutl).
	Etcd string
	// Crictl is the sigs.k8s.io/cri-tools release.
	Crictl string
	// CNIPlugins is the github.com/containernetworking/plugins release.
	CNIPlugins string
	// Flannel is the github.com/flannel-io/flannel release (flanneld).
	Flannel string
	// FlannelCNIModule and FlannelCNI name the module and release the
	// "flannel" CNI plugin binary is built from. Upstream it lives in
	// github.com/flannel-io/cni-plugin, which the module proxy here does
	// not serve; containernetworking/plugins carried the same plugin
	// (plugins/meta/flannel) up to v0.9.x.
	FlannelCNIModule string
	FlannelCNI       string
	// CoreDNS is the github.com/coredns/coredns release.
	CoreDNS string
	// Containerd is the github.com/containerd/containerd/v2 release.
	Containerd string
	// Runc is the upstream runc release tag the Debian package stands in
	// for (the URL path uses it), RuncDeb the exact Debian package version
	// fetched with apt-get download.
	Runc    string
	RuncDeb string
	// Registry is the github.com/distribution/distribution/v3 release (cmd/registry).
	Registry string
	// KubeVIP is the github.com/kube-vip/kube-vip release (the binary of its image).
	KubeVIP string
	// Docker is the static docker release (download.docker.com, no leading "v") assembled
	// from Debian's packages at DockerDeb (docker.io), DockerContainerdDeb (containerd),
	// RuncDeb and TiniDeb (docker-init); see docker.go.
	Docker              string
	DockerDeb           string
	DockerContainerdDeb string
	TiniDeb             string
	// CriDockerd is the github.com/Mirantis/cri-dockerd release.
	CriDockerd string
	// Calico is the Calico release of kk's version table; CalicoModule and CalicoAPIModule
	// are the pseudo-versions of that release's commits of github.com/projectcalico/calico
	// and github.com/projectcalico/api, which its programs are built from (calico.go).
	Calico          string
	CalicoModule    string
	CalicoAPIModule string
	// MetricsServer is the sigs.k8s.io/metrics-server release (the binary of its image).
	MetricsServer string
	// Traefik is the github.com/traefik/traefik/v3 release (the binary of its image; the
	// platform's cluster gateway).
	Traefik string
	// NodeCache is the k8s-dns-node-cache tag kk's version table names (NodeLocalDNS). Its
	// module (k8s.io/dns) is not served here: the image is a stand-in built from CoreDNS
	// (the CoreDNS field) and kk's own setup program, see nodecache.go.
	NodeCache string
	// NvidiaContainerToolkit is the github.com/NVIDIA/nvidia-container-toolkit release (its
	// nvidia-container-toolkit-base Debian package, for kk's GPU support; see nvidia.go).
	NvidiaContainerToolkit string
	// NvidiaDevicePlugin is the github.com/NVIDIA/k8s-device-plugin release (the binary of its
	// image, nvcr.io/nvidia/k8s-device-plugin; see deviceplugin.go).
	NvidiaDevicePlugin string
	// The platform's monitoring stack (the binaries of its images; see monitoring.go), each
	// the release its image's tag names: Prometheus (built from its module's
	// PrometheusModuleVersion), Alertmanager, the node exporter, kube-state-metrics and the
	// Prometheus Operator (its operator and prometheus-config-reloader).
	Prometheus         string
	Alertmanager       string
	NodeExporter       string
	KubeStateMetrics   string
	PrometheusOperator string
	// VictoriaLogs is the github.com/VictoriaMetrics/VictoriaLogs release: the platform's log
	// store (victoria-logs) and its collector (vlagent), the binaries of their images (see
	// logging.go).
	VictoriaLogs string
	// ChartMuseum is the github.com/helm/chartmuseum release (the binary of its image; the
	// platform's app store, see chartmuseum.go).
	ChartMuseum string
	// The platform's CSI storage (the binaries of its images; see csi.go), each the release its
	// image's tag names: external-provisioner (csi-provisioner), external-snapshotter
	// (csi-snapshotter and snapshot-controller) and external-resizer (csi-resizer); they are
	// built together against CSIKubeLibs, the k8s.io libraries' release (v0.MINOR.PATCH).
	CSIProvisioner string
	CSISnapshotter string
	CSIResizer     string
	CSIKubeLibs    string
}

// DefaultSpec returns the pinned versions used by kk's e2e tests: the
// newest patch releases the module proxy serves for each line.
func DefaultSpec() Spec {
	return Spec{
		// The HA e2e cluster runs the newest minor, the lifecycle e2e starts one minor before it
		// and upgrades to it, the all-in-one runs the oldest kubeadm v1beta3 one.
		Kubernetes: []string{"v1.37.2", "v1.36.3", "v1.30.14"},
		// v1.31.0: the module proxy refuses k8s.io/kube-proxy v0.31.13 and v0.31.14, which
		// kubeadm of those patches imports.
		KubeadmValidate: []string{"v1.28.15", "v1.31.0", "v1.35.4"},
		// kk's version table runs etcd v3.6.5 for every minor (a stacked etcd's image takes
		// the tag kubeadm names: see e2e/images).
		Etcd:             "v3.6.5",
		Crictl:           "v1.37.0",
		CNIPlugins:       "v1.9.1",
		Flannel:          "v0.28.10",
		FlannelCNIModule: "github.com/containernetworking/plugins",
		FlannelCNI:       "v0.9.1",
		CoreDNS:          "v1.14.6",
		Containerd:       "v2.2.9",
		// runc needs cgo and libseccomp: Debian's runc 1.1.5 package stands in for the
		// release kk's version table names (v1.3.0), served at that release's URL.
		Runc:     "v1.3.0",
		RuncDeb:  "1.1.5+ds1-1+deb12u1",
		Registry: "v3.0.0",
		// kube-vip v0.8.x is not served by the module proxy here; v0.9.1 is the nearest
		// release it serves (loadbalancer.KubeVIPVersion pins the same).
		KubeVIP: "v0.9.1",
		// Debian bookworm's docker.io 20.10.24 with its containerd 1.6.20 (docker.go);
		// cri-dockerd v0.3.17 is the newest release the module proxy serves before v0.4.
		Docker:              "20.10.24",
		DockerDeb:           "20.10.24+dfsg1-1+deb12u1+b6",
		DockerContainerdDeb: "1.6.20~ds1-1+deb12u3",
		TiniDeb:             "0.19.0-1+b3",
		CriDockerd:          "v0.3.17",
		// Calico v3.31.0: the calico repository's tags (v3.x) are no module versions of the v0
		// module, and the proxy lists none, but it serves a commit's pseudo-version.
		Calico:          "v3.31.0",
		CalicoModule:    "v0.0.0-20251021213802-b1f3c43f8437",
		CalicoAPIModule: "v0.0.0-20251022175904-f2ab03771208",
		NodeCache:       "1.25.0",  // artifacts/versions Addons.NodeLocalDNS (nodecache_test.go checks)
		MetricsServer:   "v0.8.0",  // artifacts/versions Addons.MetricsServer (e2e/images checks)
		Traefik:         "v3.7.13", // artifacts/versions Addons.Traefik (e2e/images checks)
		// nvidia-container-toolkit-base only (nvidia.go); upstream publishes no checksum.
		NvidiaContainerToolkit: "v1.20.2",
		NvidiaDevicePlugin:     "v0.17.4", // artifacts/versions Addons.NvidiaDevicePlugin (e2e/images checks)
		// the monitoring stack: artifacts/versions Addons.Prometheus and the others (e2e/images checks)
		Prometheus:         "v3.16.0",
		Alertmanager:       "v0.35.0",
		NodeExporter:       "v1.12.1",
		KubeStateMetrics:   "v2.20.0",
		PrometheusOperator: "v0.90.1",
		// the logging: artifacts/versions Addons.VictoriaLogs and Addons.VLAgent (e2e/images checks)
		VictoriaLogs: "v1.52.2",
		ChartMuseum:  "v0.16.3", // artifacts/versions Addons.ChartMuseum (e2e/images checks)
		// the CSI sidecars: artifacts/versions Addons.CSIProvisioner and the others (e2e/images checks)
		CSIProvisioner: "v6.4.0",
		CSISnapshotter: "v8.7.0",
		CSIResizer:     "v2.3.0",
		// the newest k8s.io release the three require: external-resizer v2.3.0's
		CSIKubeLibs: "v0.37.1",
	}
}

// Components are the names accepted by BuildOptions.Only, in build order.
var Components = []string{"k8s", "kubeadm", "etcd", "crictl", "cni", "flannel", "coredns", "containerd", "runc", "registry", "kube-vip", "calico", "docker", "cri-dockerd", "metrics-server", "traefik", "nvidia-container-toolkit", "nvidia-device-plugin",
	"prometheus", "alertmanager", "node-exporter", "kube-state-metrics", "prometheus-operator", "victoria-logs", "chartmuseum", "csi-sidecars"}

// Checksum-file formats.
const (
	// HexOnly: the file holds just the lowercase hex digest (dl.k8s.io,
	// cri-tools).
	HexOnly = "hex"
	// SumLines: sha256sum(1) output, "<hex>  <file name>" per line
	// (etcd SHA256SUMS, CNI plugins, containerd, runc).
	SumLines = "sha256sum"
)

// Artifact is one downloadable file of the mirror.
type Artifact struct {
	Component string // one of Components
	Name      string // binary or archive name, e.g. "kubeadm"
	Version   string // upstream version, e.g. "v1.34.4"
	// Path is the URL path (and the path under the mirror dir), with a
	// leading slash, e.g. "/release/v1.34.4/bin/linux/amd64/kubeadm".
	Path string
	// Checksum is the URL path of its sha256 checksum file.
	Checksum       string
	ChecksumFormat string // HexOnly or SumLines
	// Members lists the regular files an archive must contain; nil for
	// plain binaries.
	Members []string
}

// KubernetesBinaries are the binaries built per Kubernetes release.
var KubernetesBinaries = []string{"kubeadm", "kubelet", "kubectl", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"}

// CNIPluginNames returns the plugins packed into the CNI plugins archive.
// (The windows plugins are left out: they do not build for linux.)
func CNIPluginNames() []string {
	return []string{
		// plugins/main
		"bridge", "dummy", "host-device", "ipvlan", "loopback", "macvlan", "ptp", "tap", "vlan",
		// plugins/ipam
		"dhcp", "host-local", "static",
		// plugins/meta
		"bandwidth", "firewall", "portmap", "sbr", "tuning", "vrf",
	}
}

// cniPluginPkg maps a plugin name to its directory in the module.
func cniPluginPkg(name string) string {
	switch name {
	case "dhcp", "host-local", "static":
		return "plugins/ipam/" + name
	case "bandwidth", "firewall", "portmap", "sbr", "tuning", "vrf", "flannel":
		return "plugins/meta/" + name
	}
	return "plugins/main/" + name
}

// KubernetesPath is the dl.k8s.io path of a Kubernetes release binary.
func KubernetesPath(version, bin string) string {
	return fmt.Sprintf("/release/%s/bin/linux/%s/%s", version, Arch, bin)
}

// EtcdPath is the GitHub release path of the etcd archive.
func EtcdPath(version string) string {
	return fmt.Sprintf("/etcd-io/etcd/releases/download/%s/etcd-%s-linux-%s.tar.gz", version, version, Arch)
}

// CrictlPath is the GitHub release path of the crictl archive.
func CrictlPath(version string) string {
	return fmt.Sprintf("/kubernetes-sigs/cri-tools/releases/download/%s/crictl-%s-linux-%s.tar.gz", version, version, Arch)
}

// CNIPluginsPath is the GitHub release path of the CNI plugins archive.
func CNIPluginsPath(version string) string {
	return fmt.Sprintf("/containernetworking/plugins/releases/download/%s/cni-plugins-linux-%s-%s.tgz", version, Arch, version)
}

// ContainerdPath is the GitHub release path of the containerd archive
// (its file name carries the version without the leading "v").
func ContainerdPath(version string) string {
	return fmt.Sprintf("/containerd/containerd/releases/download/%s/containerd-%s-linux-%s.tar.gz", version, strings.TrimPrefix(version, "v"), Arch)
}

// RuncPath is the GitHub release path of the runc binary.
func RuncPath(version string) string {
	return fmt.Sprintf("/opencontainers/runc/releases/download/%s/runc.%s", version, Arch)
}

// BinPath is where binaries that have no upstream download of their own
// (they ship as container images) are put: /bin/<project>/<version>/linux/amd64/<bin>.
func BinPath(project, version, bin string) string {
	return fmt.Sprintf("/bin/%s/%s/linux/%s/%s", project, version, Arch, bin)
}

// Artifacts lists every file the mirror serves for spec with a checksum file of its own,
// and, for archives, the members it must contain. Docker's, cri-dockerd's and the NVIDIA
// Container Toolkit's releases publish no checksum file (kk's Manifest pins theirs), so they
// are not listed: a test computes the pin from the file (the stamp records it too).
func (s Spec) Artifacts() []Artifact {
	var out []Artifact
	for _, v := range s.Kubernetes {
		for _, b := range KubernetesBinaries {
			p := KubernetesPath(v, b)
			out = append(out, Artifact{Component: "k8s", Name: b, Version: v, Path: p, Checksum: p + ".sha256", ChecksumFormat: HexOnly})
		}
	}
	if s.Etcd != "" {
		p := EtcdPath(s.Etcd)
		top := fmt.Sprintf("etcd-%s-linux-%s/", s.Etcd, Arch)
		out = append(out, Artifact{Component: "etcd", Name: path.Base(p), Version: s.Etcd, Path: p,
			Checksum: path.Dir(p) + "/SHA256SUMS", ChecksumFormat: SumLines,
			Members: []string{top + "etcd", top + "etcdctl", top + "etcdutl"}})
	}
	if s.Crictl != "" {
		p := CrictlPath(s.Crictl)
		out = append(out, Artifact{Component: "crictl", Name: path.Base(p), Version: s.Crictl, Path: p,
			Checksum: p + ".sha256", ChecksumFormat: HexOnly, Members: []string{"crictl"}})
	}
	if s.CNIPlugins != "" {
		p := CNIPluginsPath(s.CNIPlugins)
		var members []string
		for _, n := range CNIPluginNames() {
			members = append(members, "./"+n)
		}
		out = append(out, Artifact{Component: "cni", Name: path.Base(p), Version: s.CNIPlugins, Path: p,
			Checksum: p + ".sha256", ChecksumFormat: SumLines, Members: members})
	}
	if s.Flannel != "" {
		p := BinPath("flannel", s.Flannel, "flanneld")
		out = append(out, Artifact{Component: "flannel", Name: "flanneld", Version: s.Flannel, Path: p, Checksum: p + ".sha256", ChecksumFormat: HexOnly})
	}
	if s.FlannelCNI != "" {
		p := BinPath("flannel-cni-plugin", s.FlannelCNI, "flannel")
		out = append(out, Artifact{Component: "flannel", Name: "flannel", Version: s.FlannelCNI, Path: p, Checksum: p + ".sha256", ChecksumFormat: HexOnly})
	}
	if s.CoreDNS != "" {
		p := BinPath("coredns", s.CoreDNS, "coredns")
		out = append(out, Artifact{Component: "coredns", Name: "coredns", Version: s.CoreDNS, Path: p, Checksum: p + ".sha256", ChecksumFormat: HexOnly})
	}
	if s.NodeCache != "" {
		p := NodeCachePath(s.NodeCache)
		out = append(out, Artifact{Component: "coredns", Name: "node-cache", Version: s.NodeCache, Path: p, Checksum: p + ".sha256", ChecksumFormat: HexOnly})
	}
	if s.Containerd != "" {
		p := ContainerdPath(s.Containerd)
		out = append(out, Artifact{Component: "containerd", Name: path.Base(p), Version: s.Containerd, Path: p,
			Checksum: p + ".sha256sum", ChecksumFormat: SumLines,
			Members: []string{"bin/containerd", "bin/containerd-shim-runc-v2", "bin/ctr"}})
	}
	if s.Runc != "" {
		p := RuncPath(s.Runc)
		out = append(out, Artifact{Component: "runc", Name: path.Base(p), Version: s.Runc, Path: p,
			Checksum: path.Dir(p) + "/runc.sha256sum", ChecksumFormat: SumLines})
	}
	if s.Registry != "" {
		p := RegistryPath(s.Registry)
		out = append(out, Artifact{Component: "registry", Name: path.Base(p), Version: s.Registry, Path: p,
			Checksum: p + ".sha256", ChecksumFormat: HexOnly, Members: []string{"registry", "README.md", "LICENSE"}})
	}
	if s.Calico != "" {
		for _, n := range slices.Sorted(maps.Keys(CalicoBinaries)) {
			p := CalicoPath(s.Calico, n)
			out = append(out, Artifact{Component: "calico", Name: n, Version: s.Calico, Path: p, Checksum: p + ".sha256", ChecksumFormat: HexOnly})
		}
		p := CalicoPath(s.Calico, CalicoNodeFiles)
		out = append(out, Artifact{Component: "calico", Name: CalicoNodeFiles, Version: s.Calico, Path: p, Checksum: p + ".sha256", ChecksumFormat: HexOnly,
			Members: []string{"usr/sbin/start_runit", "etc/rc.local", "etc/service/available/felix/run", "etc/calico/confd/templates/bird.cfg.template"}})
	}
	if s.KubeVIP != "" {
		p := KubeVIPPath(s.KubeVIP)
		out = append(out, Artifact{Component: "kube-vip", Name: "kube-vip", Version: s.KubeVIP, Path: p, Checksum: p + ".sha256", ChecksumFormat: HexOnly})
	}
	if s.MetricsServer != "" {
		p := MetricsServerPath(s.MetricsServer)
		out = append(out, Artifact{Component: "metrics-server", Name: "metrics-server", Version: s.MetricsServer, Path: p, Checksum: p + ".sha256", ChecksumFormat: HexOnly})
	}
	if s.Traefik != "" {
		p := TraefikPath(s.Traefik)
		out = append(out, Artifact{Component: "traefik", Name: "traefik", Version: s.Traefik, Path: p, Checksum: p + ".sha256", ChecksumFormat: HexOnly})
	}
	if s.NvidiaDevicePlugin != "" {
		p := NvidiaDevicePluginPath(s.NvidiaDevicePlugin)
		out = append(out, Artifact{Component: "nvidia-device-plugin", Name: "nvidia-device-plugin", Version: s.NvidiaDevicePlugin, Path: p, Checksum: p + ".sha256", ChecksumFormat: HexOnly})
	}
	for _, m := range []struct{ component, name, version, path string }{
		{"prometheus", "prometheus", s.Prometheus, PrometheusPath(s.Prometheus)},
		{"alertmanager", "alertmanager", s.Alertmanager, AlertmanagerPath(s.Alertmanager)},
		{"node-exporter", "node_exporter", s.NodeExporter, NodeExporterPath(s.NodeExporter)},
		{"kube-state-metrics", "kube-state-metrics", s.KubeStateMetrics, KubeStateMetricsPath(s.KubeStateMetrics)},
		{"prometheus-operator", "operator", s.PrometheusOperator, PrometheusOperatorPath(s.PrometheusOperator)},
		{"prometheus-operator", "prometheus-config-reloader", s.PrometheusOperator, PrometheusConfigReloaderPath(s.PrometheusOperator)},
		{"victoria-logs", "victoria-logs", s.VictoriaLogs, VictoriaLogsPath(s.VictoriaLogs)},
		{"victoria-logs", "vlagent", s.VictoriaLogs, VLAgentPath(s.VictoriaLogs)},
		{"chartmuseum", "chartmuseum", s.ChartMuseum, ChartMuseumPath(s.ChartMuseum)},
	} {
		if m.version != "" {
			out = append(out, Artifact{Component: m.component, Name: m.name, Version: m.version, Path: m.path, Checksum: m.path + ".sha256", ChecksumFormat: HexOnly})
		}
	}
	if s.CSIProvisioner != "" {
		for _, p := range s.csiSidecars() {
			out = append(out, Artifact{Component: "csi-sidecars", Name: p.cmd, Version: p.version, Path: p.path, Checksum: p.path + ".sha256", ChecksumFormat: HexOnly})
		}
	}
	return out
}

// validate reports a Spec that cannot be built.
func (s Spec) validate() error {
	check := func(what, v string) error {
		if v == "" {
			return nil
		}
		if !strings.HasPrefix(v, "v") || strings.ContainsAny(v, "/ \t\n") {
			return fmt.Errorf("mirror: %s version %q: want a tag like v1.2.3", what, v)
		}
		return nil
	}
	for _, v := range s.Kubernetes {
		if err := check("kubernetes", v); err != nil {
			return err
		}
		if _, _, _, err := semverParts(v); err != nil {
			return fmt.Errorf("mirror: kubernetes version %q: %w", v, err)
		}
	}
	for what, v := range map[string]string{"etcd": s.Etcd, "crictl": s.Crictl, "cni": s.CNIPlugins, "flannel": s.Flannel,
		"flannel-cni": s.FlannelCNI, "coredns": s.CoreDNS, "containerd": s.Containerd, "runc": s.Runc, "kube-vip": s.KubeVIP, "cri-dockerd": s.CriDockerd, "calico": s.Calico, "metrics-server": s.MetricsServer,
		"traefik": s.Traefik, "nvidia-container-toolkit": s.NvidiaContainerToolkit,
		"nvidia-device-plugin": s.NvidiaDevicePlugin, "prometheus": s.Prometheus, "alertmanager": s.Alertmanager,
		"node-exporter": s.NodeExporter, "kube-state-metrics": s.KubeStateMetrics, "prometheus-operator": s.PrometheusOperator, "victoria-logs": s.VictoriaLogs, "chartmuseum": s.ChartMuseum,
		"csi-provisioner": s.CSIProvisioner, "csi-snapshotter": s.CSISnapshotter, "csi-resizer": s.CSIResizer} {
		if err := check(what, v); err != nil {
			return err
		}
	}
	if s.FlannelCNI != "" && s.FlannelCNIModule == "" {
		return fmt.Errorf("mirror: flannel-cni %s: FlannelCNIModule is empty", s.FlannelCNI)
	}
	if s.Calico != "" && (s.CalicoModule == "" || s.CalicoAPIModule == "") {
		return fmt.Errorf("mirror: calico %s: CalicoModule and CalicoAPIModule (the pseudo-versions of its commits) must be set", s.Calico)
	}
	if s.Prometheus != "" {
		if _, err := PrometheusModuleVersion(s.Prometheus); err != nil {
			return err
		}
	}
	if s.CSIProvisioner != "" || s.CSISnapshotter != "" || s.CSIResizer != "" {
		// one build makes the four programs: it needs every release, and the libraries'
		for base, v := range map[string]string{CSIProvisionerBase: s.CSIProvisioner, CSISnapshotterBase: s.CSISnapshotter, CSIResizerBase: s.CSIResizer} {
			if _, err := CSIModule(base, v); err != nil {
				return err
			}
		}
		if major, _, _, err := semverParts(s.CSIKubeLibs); err != nil || major != 0 {
			return fmt.Errorf("mirror: CSIKubeLibs %q: want the k8s.io libraries' release, v0.MINOR.PATCH", s.CSIKubeLibs)
		}
	}
	if s.Runc != "" && s.RuncDeb == "" {
		return fmt.Errorf("mirror: runc %s: RuncDeb (the Debian package version) is empty", s.Runc)
	}
	return nil
}

// semverParts splits "v1.34.4" into 1, 34, 4.
func semverParts(v string) (major, minor, patch int, err error) {
	core := strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(core, "-+"); i >= 0 {
		core = core[:i]
	}
	if n, _ := fmt.Sscanf(core, "%d.%d.%d", &major, &minor, &patch); n != 3 {
		return 0, 0, 0, fmt.Errorf("not a vMAJOR.MINOR.PATCH version")
	}
	return major, minor, patch, nil
}
