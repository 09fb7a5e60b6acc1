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
	// NvidiaContainerToolkit is NVIDIA's container toolkit release (its base .deb package:
	// nvidia-ctk, nvidia-container-runtime, nvidia-cdi-hook) on the GPU hosts.
	NvidiaContainerToolkit string
	Addons                 Addons
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
	MetricsServer    string // platform: registry.k8s.io/metrics-server/metrics-server tag
	// Traefik is docker.io/library/traefik's tag: the platform's cluster gateway (the ingress
	// controller serving networking.k8s.io/v1 Ingress).
	Traefik string
	// NvidiaDevicePlugin is nvcr.io/nvidia/k8s-device-plugin's tag: NVIDIA's device plugin
	// on the GPU hosts (nodes advertise nvidia.com/gpu).
	NvidiaDevicePlugin string
	// The platform's monitoring stack, each its image's tag: Prometheus
	// (quay.io/prometheus/prometheus), Alertmanager (quay.io/prometheus/alertmanager), the node
	// exporter (quay.io/prometheus/node-exporter), kube-state-metrics
	// (registry.k8s.io/kube-state-metrics/kube-state-metrics) and the Prometheus Operator
	// (quay.io/prometheus-operator/prometheus-operator, with its
	// quay.io/prometheus-operator/prometheus-config-reloader of the same tag).
	Prometheus         string
	Alertmanager       string
	NodeExporter       string
	KubeStateMetrics   string
	PrometheusOperator string
	// The platform's logging, each its image's tag: VictoriaLogs, the log store
	// (docker.io/victoriametrics/victoria-logs), and vlagent, its collector on every node
	// (docker.io/victoriametrics/vlagent). Upstream releases both from one repository under
	// one tag.
	VictoriaLogs string
	VLAgent      string
	// ChartMuseum is ghcr.io/helm/chartmuseum's tag: the Helm chart repository of the
	// platform's app store (spec.openpitrix.store.enabled).
	ChartMuseum string
	// The platform's local storage: kk's own CSI driver (LocalCSI, the tag of
	// ghcr.io/kk-project/kk-local-csi, built from cmd/kk-local-csi) with the Kubernetes CSI
	// sidecars, each its image's tag under registry.k8s.io/sig-storage: external-provisioner
	// (csi-provisioner), external-snapshotter (csi-snapshotter and snapshot-controller, one
	// release; its snapshot CRDs are templates/files/platform/snapshot-crds.yaml) and
	// external-resizer (csi-resizer).
	LocalCSI       string
	CSIProvisioner string
	CSISnapshotter string
	CSIResizer     string
}

// row is one line of the table, keyed by Kubernetes minor.
type row struct {
	minor                           int
	etcd, etcdImage, coredns, pause string
	cni, containerd, runc           string
	docker, criDockerd, helm        string
	crictl                          string
}

// Choices that hold for every supported minor. etcd: kk runs one etcd release for every
// minor, as KubeKey does (etcd v3.6 serves every API server from v1.28 on; a stacked etcd
// still uses the image kubeadm names for its minor). containerd 2.2 speaks CRI v1, which
// every supported kubelet uses. crictl is a CRI v1 client: kk installs its newest release with
// every minor, as KubeKey installs one crictl for all.
const (
	etcdAll       = "v3.6.5"
	containerdAll = "v2.2.9"
	cniAll        = "v1.9.1"
	runcAll       = "v1.3.0"
	crictlAll     = "v1.37.0"
	// the NVIDIA container toolkit's newest release the module proxy serves (it is built
	// from its Go module for the tests' mirror)
	nvidiaToolkitAll = "v1.20.2"
)

// table lists the supported Kubernetes minors, newest first: every minor upstream still
// supports and those KubeKey users still run. The stacked etcd image, CoreDNS and pause are
// kubeadm's own defaults for the minor (cmd/kubeadm/app/constants of its newest patch).
func table() []row {
	return []row{
		{37, etcdAll, "3.7.0-0", "v1.14.6", "3.10.2", cniAll, containerdAll, runcAll, "28.3.3", "v0.3.19", "v3.18.6", crictlAll},
		{36, etcdAll, "3.6.8-0", "v1.14.2", "3.10.2", cniAll, containerdAll, runcAll, "28.3.3", "v0.3.19", "v3.18.6", crictlAll},
		{35, etcdAll, "3.6.6-0", "v1.13.1", "3.10.1", cniAll, containerdAll, runcAll, "28.3.3", "v0.3.19", "v3.18.6", crictlAll},
		{34, etcdAll, "3.6.5-0", "v1.12.1", "3.10.1", cniAll, containerdAll, runcAll, "28.3.3", "v0.3.19", "v3.18.6", crictlAll},
		{33, etcdAll, "3.5.24-0", "v1.12.0", "3.10", cniAll, containerdAll, runcAll, "28.3.3", "v0.3.19", "v3.18.6", crictlAll},
		{32, etcdAll, "3.5.24-0", "v1.11.3", "3.10", cniAll, containerdAll, runcAll, "27.5.1", "v0.3.16", "v3.17.3", crictlAll},
		{31, etcdAll, "3.5.24-0", "v1.11.3", "3.10", cniAll, containerdAll, runcAll, "27.5.1", "v0.3.16", "v3.16.4", crictlAll},
		{30, etcdAll, "3.5.15-0", "v1.11.3", "3.9", cniAll, containerdAll, runcAll, "26.1.4", "v0.3.14", "v3.15.4", crictlAll},
		{29, etcdAll, "3.5.12-0", "v1.11.1", "3.9", cniAll, containerdAll, runcAll, "24.0.9", "v0.3.14", "v3.14.4", crictlAll},
		{28, etcdAll, "3.5.15-0", "v1.10.1", "3.9", cniAll, containerdAll, runcAll, "24.0.9", "v0.3.14", "v3.14.4", crictlAll},
	}
}

// DefaultAddons are the add-on versions kk installs.
func DefaultAddons() Addons {
	return Addons{
		Calico:           "v3.31.0",
		Flannel:          "v0.28.10",
		FlannelCNIPlugin: "v1.9.1-flannel3",
		Cilium:           "v1.17.4",
		KubeOVN:          "v1.13.13",
		Hybridnet:        "v0.8.8",
		Multus:           "v4.1.4",
		NodeLocalDNS:     "1.25.0",
		HAProxy:          "2.9.6-alpine",
		KubeVIP:          "v0.9.1",
		// v0.8.0: the newest approved release the module proxy serves (v0.9.0 is served but
		// not an approved release); proven on the e2e's v1.37.
		MetricsServer: "v0.8.0",
		// v3.7.13: the Traefik v3 release the module proxy lists
		Traefik: "v3.7.13",
		// v0.17.4: the release the module proxy serves (builds with -mod=mod)
		NvidiaDevicePlugin: "v0.17.4",
		// The monitoring stack: the newest releases the module proxy serves. Prometheus v3.16.0 is
		// its Go module's v0.316.0 (e2e/mirror maps the one to the other); the operator's v0.95.x
		// are refused by the proxy ("not available"), v0.90.1 is served with its sub-modules.
		Prometheus:         "v3.16.0",
		Alertmanager:       "v0.35.0",
		NodeExporter:       "v1.12.1",
		KubeStateMetrics:   "v2.20.0",
		PrometheusOperator: "v0.90.1",
		// The logging: VictoriaLogs v1.52.2, the newest release the module proxy serves (its
		// collector is released with it). Loki is not used: it is AGPL; VictoriaLogs is Apache-2.0.
		VictoriaLogs: "v1.52.2",
		VLAgent:      "v1.52.2",
		// v0.16.3: the newest release the module proxy serves (under github.com/helm/chartmuseum;
		// its declared path helm.sh/chartmuseum is refused, and so is v0.16.4)
		ChartMuseum: "v0.16.3",
		// The local storage's CSI programs: kk's driver (raise LocalCSI when
		// modules/platform/localcsi or cmd/kk-local-csi changes: nodes keep an image by its tag)
		// and the sidecars, the newest releases the module proxy serves (external-provisioner
		// v6.4.0, external-snapshotter v8.7.0 with its client module's CRDs, external-resizer
		// v2.3.0).
		LocalCSI:       "v0.1.0",
		CSIProvisioner: "v6.4.0",
		CSISnapshotter: "v8.7.0",
		CSIResizer:     "v2.3.0",
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
		Crictl: r.crictl,
		CNI:    r.cni, Containerd: r.containerd, Runc: r.runc,
		Docker: r.docker, CriDockerd: r.criDockerd, Helm: r.helm,
		NvidiaContainerToolkit: nvidiaToolkitAll,
		Addons:                 DefaultAddons(),
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

// Version is a parsed "vX.Y.Z"; it is kk's one version parser (Kubernetes and the
// components it pins).
type Version struct{ Major, Minor, Patch int }

// Parse reads "vX.Y.Z" or "X.Y.Z" (a pre-release or build suffix is ignored).
func Parse(v string) (Version, error) {
	s := strings.TrimPrefix(strings.TrimSpace(v), "v")
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return Version{}, fmt.Errorf("version %q is not vX.Y.Z", v)
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 {
			return Version{}, fmt.Errorf("version %q is not vX.Y.Z", v)
		}
		n[i] = x
	}
	return Version{n[0], n[1], n[2]}, nil
}

func (v Version) String() string { return fmt.Sprintf("v%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Less orders versions.
func (v Version) Less(o Version) bool {
	if v.Major != o.Major {
		return v.Major < o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor < o.Minor
	}
	return v.Patch < o.Patch
}

// AtLeast says whether v is major.minor or newer.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

// Oldest and Newest are the ends of the supported range ("v1.28", "v1.37").
func Oldest() string { t := table(); return fmt.Sprintf("v1.%d", t[len(t)-1].minor) }

// Newest is the newest supported minor.
func Newest() string { return fmt.Sprintf("v1.%d", table()[0].minor) }

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
