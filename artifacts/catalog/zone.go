package catalog

import "strings"

// ZoneCN is the China zone preset, like KubeKey's KKZONE=cn.
const ZoneCN = "cn"

// zoneRoots returns a zone's replacement roots (base + repo path) per component. The China
// roots are the public mirrors KubeKey documents for KKZONE=cn (the QingStor buckets
// kubernetes-release / containernetworking and Aliyun's docker-ce mirror); they keep
// upstream's versioned paths below the root. helm and k3s keep their upstream base: those
// mirrors lay them out differently. A mirror that lacks a checksum file fails with a clear
// error; pin the checksum or use --mirror then.
func zoneRoots(zone string) (map[string]string, bool) {
	switch strings.ToLower(zone) {
	case "":
		return nil, true
	case ZoneCN:
		const qs = "https://kubernetes-release.pek3b.qingstor.com"
		m := map[string]string{
			"etcd":        qs + "/etcd/release/download",
			"containerd":  qs + "/containerd/containerd/releases/download",
			"runc":        qs + "/opencontainers/runc/releases/download",
			"crictl":      qs + "/cri-tools/releases/download",
			"cni-plugins": "https://containernetworking.pek3b.qingstor.com/plugins/releases/download",
			"calicoctl":   qs + "/projectcalico/calico/releases/download",
			"cri-dockerd": qs + "/cri-dockerd/releases/download",
			"docker":      "https://mirrors.aliyun.com/docker-ce/linux/static/stable",
		}
		for _, k := range kubeBinaries() {
			m[k] = qs + "/release"
		}
		return m, true
	}
	return nil, false
}
