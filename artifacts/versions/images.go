package versions

import (
	"fmt"
	"strings"
)

// Upstream registries of the images kk installs.
const (
	K8sRegistry = "registry.k8s.io"
	DockerHub   = "docker.io"
	Quay        = "quay.io"
	GHCR        = "ghcr.io"
)

// KubeImages are the control-plane and node images: kube-apiserver, kube-controller-manager,
// kube-scheduler, kube-proxy (unless withProxy is false), pause and CoreDNS.
func (s Set) KubeImages(withProxy bool) []string {
	names := []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"}
	if withProxy {
		names = append(names, "kube-proxy")
	}
	var out []string
	for _, n := range names {
		out = append(out, K8sRegistry+"/"+n+":"+s.Kubernetes)
	}
	return append(out, s.PauseImage(), s.CoreDNSImage())
}

// PauseImage is the sandbox image.
func (s Set) PauseImage() string { return K8sRegistry + "/pause:" + s.Pause }

// CoreDNSImage is the cluster DNS image.
func (s Set) CoreDNSImage() string { return K8sRegistry + "/coredns/coredns:" + s.CoreDNS }

// EtcdImageRef is the image of a stacked (kubeadm) etcd.
func (s Set) EtcdImageRef() string { return K8sRegistry + "/etcd:" + s.EtcdImage }

// NodeLocalDNSImage is the node-local DNS cache.
func (s Set) NodeLocalDNSImage() string {
	return K8sRegistry + "/dns/k8s-dns-node-cache:" + s.Addons.NodeLocalDNS
}

// HAProxyImage is the local API server load balancer run on workers.
func (s Set) HAProxyImage() string { return DockerHub + "/library/haproxy:" + s.Addons.HAProxy }

// KubeVIPImage holds the control-plane virtual IP.
func (s Set) KubeVIPImage() string { return GHCR + "/kube-vip/kube-vip:" + s.Addons.KubeVIP }

// NVCR is NVIDIA's registry.
const NVCR = "nvcr.io"

// NvidiaDevicePluginImage is NVIDIA's device plugin (the GPU hosts' DaemonSet).
func (s Set) NvidiaDevicePluginImage() string {
	return NVCR + "/nvidia/k8s-device-plugin:" + s.Addons.NvidiaDevicePlugin
}

// MetricsServerImage is metrics-server (the platform's metrics_server switch).
func (s Set) MetricsServerImage() string {
	return K8sRegistry + "/metrics-server/metrics-server:" + s.Addons.MetricsServer
}

// PrometheusImage is Prometheus (the platform's monitoring).
func (s Set) PrometheusImage() string {
	return Quay + "/prometheus/prometheus:" + s.Addons.Prometheus
}

// AlertmanagerImage is Prometheus' Alertmanager.
func (s Set) AlertmanagerImage() string {
	return Quay + "/prometheus/alertmanager:" + s.Addons.Alertmanager
}

// NodeExporterImage is Prometheus' node exporter (a DaemonSet: every node's metrics).
func (s Set) NodeExporterImage() string {
	return Quay + "/prometheus/node-exporter:" + s.Addons.NodeExporter
}

// KubeStateMetricsImage is kube-state-metrics (metrics of the cluster's objects).
func (s Set) KubeStateMetricsImage() string {
	return K8sRegistry + "/kube-state-metrics/kube-state-metrics:" + s.Addons.KubeStateMetrics
}

// PrometheusOperatorImage is the Prometheus Operator.
func (s Set) PrometheusOperatorImage() string {
	return Quay + "/prometheus-operator/prometheus-operator:" + s.Addons.PrometheusOperator
}

// PrometheusConfigReloaderImage is the operator's config reloader (a sidecar of the Prometheus
// and Alertmanager pods it runs), released with the operator under the same tag.
func (s Set) PrometheusConfigReloaderImage() string {
	return Quay + "/prometheus-operator/prometheus-config-reloader:" + s.Addons.PrometheusOperator
}

// MonitoringImages are the images of the platform's monitoring stack: the operator and its
// config reloader (which the Alertmanager pods run too), Prometheus, the node exporter and
// kube-state-metrics. Alertmanager's (AlertmanagerImage) is alerting's.
func (s Set) MonitoringImages() []string {
	return []string{s.PrometheusOperatorImage(), s.PrometheusConfigReloaderImage(), s.PrometheusImage(),
		s.NodeExporterImage(), s.KubeStateMetricsImage()}
}

// VictoriaLogsImage is VictoriaLogs (the platform's logging: the log store).
func (s Set) VictoriaLogsImage() string {
	return DockerHub + "/victoriametrics/victoria-logs:" + s.Addons.VictoriaLogs
}

// VLAgentImage is vlagent, the logging's collector (a DaemonSet: every node's pod logs).
func (s Set) VLAgentImage() string {
	return DockerHub + "/victoriametrics/vlagent:" + s.Addons.VLAgent
}

// LoggingImages are the images of the platform's logging: the store, then the collector.
func (s Set) LoggingImages() []string {
	return []string{s.VictoriaLogsImage(), s.VLAgentImage()}
}

// SigStorage is the registry path of the Kubernetes storage SIG's images.
const SigStorage = K8sRegistry + "/sig-storage"

// KKRegistry is where kk's own images are published.
const KKRegistry = GHCR + "/kk-project"

// LocalCSIImage is kk's local volume driver (cmd/kk-local-csi), the local storage's CSI driver
// on every node.
func (s Set) LocalCSIImage() string { return KKRegistry + "/kk-local-csi:" + s.Addons.LocalCSI }

// CSIProvisionerImage is external-provisioner (creates and deletes the volumes of claims).
func (s Set) CSIProvisionerImage() string {
	return SigStorage + "/csi-provisioner:" + s.Addons.CSIProvisioner
}

// CSISnapshotterImage is external-snapshotter's sidecar (creates and deletes snapshots).
func (s Set) CSISnapshotterImage() string {
	return SigStorage + "/csi-snapshotter:" + s.Addons.CSISnapshotter
}

// SnapshotControllerImage is external-snapshotter's snapshot-controller (binds VolumeSnapshots
// to their contents), released with the sidecar under the same tag.
func (s Set) SnapshotControllerImage() string {
	return SigStorage + "/snapshot-controller:" + s.Addons.CSISnapshotter
}

// CSIResizerImage is external-resizer (expands the volumes of claims).
func (s Set) CSIResizerImage() string { return SigStorage + "/csi-resizer:" + s.Addons.CSIResizer }

// LocalStorageImages are the images of the platform's local storage, in the order its template
// reads them: kk's driver, then the sidecars of its DaemonSet, then the snapshot-controller.
func (s Set) LocalStorageImages() []string {
	return []string{s.LocalCSIImage(), s.CSIProvisionerImage(), s.CSISnapshotterImage(), s.CSIResizerImage(),
		s.SnapshotControllerImage()}
}

// TraefikImage is the platform's cluster gateway (its ingress controller).
func (s Set) TraefikImage() string { return DockerHub + "/library/traefik:" + s.Addons.Traefik }

// ChartMuseumImage is ChartMuseum, the Helm chart repository of the platform's app store.
func (s Set) ChartMuseumImage() string { return GHCR + "/helm/chartmuseum:" + s.Addons.ChartMuseum }

// MultusImage is the Multus meta-plugin.
func (s Set) MultusImage() string {
	return GHCR + "/k8snetworkplumbingwg/multus-cni:" + s.Addons.Multus
}

// CalicoTyphaImage is calico-typha, which Calico runs only when network.calico.typha is on
// (KubeKey turns it on for large clusters); it is not among CNIImages("calico").
func (s Set) CalicoTyphaImage() string { return DockerHub + "/calico/typha:" + s.Addons.Calico }

// FlannelImage is flanneld's image (kube-flannel.yml of the release).
func (s Set) FlannelImage() string { return GHCR + "/flannel-io/flannel:" + s.Addons.Flannel }

// FlannelCNIPluginImage holds the flannel CNI plugin, copied onto every node.
func (s Set) FlannelCNIPluginImage() string {
	return GHCR + "/flannel-io/flannel-cni-plugin:" + s.Addons.FlannelCNIPlugin
}

// CalicoCNIImage installs calico's CNI plugins and configuration on every node.
func (s Set) CalicoCNIImage() string { return DockerHub + "/calico/cni:" + s.Addons.Calico }

// CalicoNodeImage is calico-node (felix, confd, BIRD).
func (s Set) CalicoNodeImage() string { return DockerHub + "/calico/node:" + s.Addons.Calico }

// CalicoControllersImage is calico-kube-controllers.
func (s Set) CalicoControllersImage() string {
	return DockerHub + "/calico/kube-controllers:" + s.Addons.Calico
}

// CNIImages are the images of a network plugin: calico, flannel, cilium, kubeovn, hybridnet;
// none (or "") has none.
func (s Set) CNIImages(plugin string) ([]string, error) {
	a := s.Addons
	switch strings.ToLower(plugin) {
	case "", "none":
		return nil, nil
	case "calico":
		return []string{s.CalicoCNIImage(), s.CalicoNodeImage(), s.CalicoControllersImage()}, nil
	case "flannel":
		return []string{s.FlannelImage(), s.FlannelCNIPluginImage()}, nil
	case "cilium":
		return []string{
			Quay + "/cilium/cilium:" + a.Cilium,
			Quay + "/cilium/operator-generic:" + a.Cilium,
		}, nil
	case "kubeovn", "kube-ovn":
		return []string{DockerHub + "/kubeovn/kube-ovn:" + a.KubeOVN}, nil
	case "hybridnet":
		return []string{DockerHub + "/hybridnetdev/hybridnet:" + a.Hybridnet}, nil
	}
	return nil, fmt.Errorf("network plugin %q: kk knows no images for it (known: calico, flannel, cilium, kubeovn, hybridnet, none)", plugin)
}
