package cni

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/versions"
	"github.com/kk-project/kk/templates"
)

// Calico files under templates/files: the manifest rendered from the cluster, and upstream's
// CustomResourceDefinitions of the same release, applied as they are.
const (
	calicoTemplate = "cni/calico.yaml"
	calicoCRDsFile = "cni/calico-crds.yaml"
)

// CalicoBackend is calico_backend in the calico-config ConfigMap: "bird" (BGP, with IPIP
// encapsulation when ipipMode asks for it) unless the pool uses VXLAN and no IPIP, where
// calico-node runs without BIRD ("vxlan"), as upstream's calico-vxlan.yaml does.
func CalicoBackend(cc config.Calico) string {
	ipip, vxlan := calicoModes(cc)
	if ipip == "Never" && vxlan != "Never" {
		return "vxlan"
	}
	return "bird"
}

// calicoModes are the default IP pool's ipipMode and vxlanMode, KubeKey's defaults filled in.
func calicoModes(cc config.Calico) (ipip, vxlan string) {
	return or(cc.IPIPMode, "Always"), or(cc.VXLANMode, "Never")
}

// calicoImages returns the upstream references of Calico's cni, node, kube-controllers and
// typha images: kk's version table (set) unless o overrides them.
func calicoImages(set versions.Set, o Options) (cni, node, controllers, typha string, err error) {
	refs, err := set.CNIImages(Calico)
	if err != nil {
		return "", "", "", "", err
	}
	pick := func(override, repo string) (string, error) {
		if override != "" {
			return override, nil
		}
		for _, r := range refs {
			if strings.Contains(r, "/"+repo+":") {
				return r, nil
			}
		}
		return "", fmt.Errorf("calico: kk's version table names no %s image (it names %s)", repo, strings.Join(refs, ", "))
	}
	if cni, err = pick(o.CalicoCNIImage, "calico/cni"); err != nil {
		return
	}
	if node, err = pick(o.CalicoNodeImage, "calico/node"); err != nil {
		return
	}
	if controllers, err = pick(o.CalicoControllersImage, "calico/kube-controllers"); err != nil {
		return
	}
	return cni, node, controllers, or(o.CalicoTyphaImage, set.CalicoTyphaImage()), nil
}

// calicoCNIConf is the cni_network_config of the calico-config ConfigMap: upstream's conflist,
// whose __TOKENS__ the install-cni container fills in on each node.
// With dualStack calico-ipam gives each pod an IPv4 and an IPv6 address.
// The bandwidth plugin is no longer chained, as in upstream's v3.31 manifests: felix applies a
// pod's kubernetes.io/ingress-bandwidth and egress-bandwidth annotations itself (QoS controls).
func calicoCNIConf(dualStack bool) (string, error) {
	ipam := map[string]any{"type": "calico-ipam"}
	if dualStack {
		ipam["assign_ipv4"], ipam["assign_ipv6"] = "true", "true"
	}
	conf, err := jsonIndent(map[string]any{
		"name": "k8s-pod-network", "cniVersion": "0.3.1",
		"plugins": []any{
			map[string]any{"type": "calico", "log_level": "info", "log_file_path": "/var/log/calico/cni/cni.log",
				"datastore_type": "kubernetes", "nodename": "__KUBERNETES_NODE_NAME__", "mtu": "__CNI_MTU__",
				"ipam":       ipam,
				"policy":     map[string]any{"type": "k8s"},
				"kubernetes": map[string]any{"kubeconfig": "__KUBECONFIG_FILEPATH__"}},
			map[string]any{"type": "portmap", "snat": true, "capabilities": map[string]any{"portMappings": true}},
		},
	})
	// mtu is a number in the file install-cni writes: the token replaces the quoted string.
	return strings.Replace(conf, `"__CNI_MTU__"`, "__CNI_MTU__", 1), err
}

// yamlMap renders a string map as block YAML lines ("key: value"), keys sorted; JSON strings
// are valid YAML scalars, so any key or value is quoted safely.
func yamlMap(m map[string]string) (string, error) {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		kj, err := json.Marshal(k)
		if err != nil {
			return "", err
		}
		vj, err := json.Marshal(m[k])
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s: %s\n", kj, vj)
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// calico renders Calico's CRDs and manifest for c. An IPv4 pod CIDR is required; with an IPv6
// one beside it (dual stack) calico-node also runs IPv6 with a VXLAN pool, as in KubeKey.
// network.calico maps onto the manifest as in KubeKey: ipipMode/vxlanMode/ipv4NatOutgoing go to the default IPv4 pool that calico-node
// creates (defaultIPPOOL false creates none), vethMTU to veth_mtu, typha adds calico-typha
// with replicaCount replicas (default 1), nodeSelector places calico-kube-controllers and
// calico-typha (beside kubernetes.io/os: linux).
func calico(c *config.Cluster, o Options) ([]byte, error) {
	v4, v6, err := podCIDRs(c)
	if err != nil {
		return nil, err
	}
	if v4 == "" {
		return nil, fmt.Errorf("calico: kk's calico manifest needs an IPv4 pod CIDR (kubePodsCIDR %q)", c.Network.KubePodsCIDR)
	}
	cc := c.Network.Calico
	for what, mode := range map[string]string{"ipipMode": cc.IPIPMode, "vxlanMode": cc.VXLANMode} {
		if mode != "" && !slices.Contains([]string{"Always", "CrossSubnet", "Never"}, mode) {
			return nil, fmt.Errorf("calico: network.calico.%s %q: want Always, CrossSubnet or Never", what, mode)
		}
	}
	ipip, vxlan := calicoModes(cc)
	if ipip != "Never" && vxlan != "Never" {
		return nil, fmt.Errorf("calico: network.calico ipipMode %s and vxlanMode %s: an IP pool uses IPIP or VXLAN, not both (set one to Never)", ipip, vxlan)
	}
	set := imageSet(c)
	cniImg, nodeImg, ctrlImg, typhaImg, err := calicoImages(set, o)
	if err != nil {
		return nil, err
	}
	cniConf, err := calicoCNIConf(v6 != "")
	if err != nil {
		return nil, err
	}
	blockSize := c.Kubernetes.NodeCidrMaskSize
	if blockSize == 0 {
		blockSize = 24
	}
	replicas := cc.ReplicaCount
	if replicas <= 0 {
		replicas = 1
	}
	sel := map[string]string{"kubernetes.io/os": "linux"}
	maps.Copy(sel, cc.NodeSelector)
	selYAML, err := yamlMap(sel)
	if err != nil {
		return nil, err
	}
	manifest, err := templates.Render(calicoTemplate, map[string]any{
		"Version":          set.Addons.Calico,
		"Accounts":         []string{"calico-kube-controllers", "calico-node", "calico-cni-plugin"},
		"Backend":          CalicoBackend(cc),
		"VethMTU":          cc.VethMTU, // 0: calico detects it
		"CNIConf":          cniConf,
		"PodCIDR":          v4,
		"PodCIDRv6":        v6, // "" for IPv4 only
		"BlockSize":        blockSize,
		"IPIPMode":         ipip,
		"VXLANMode":        vxlan,
		"NatOutgoing":      cc.IPv4NatOutgoing,
		"DefaultPool":      cc.DefaultIPPool,
		"Typha":            cc.Typha,
		"TyphaReplicas":    replicas,
		"NodeSelector":     selYAML,
		"CNIImage":         ImageRef(c.Registry, cniImg),
		"NodeImage":        ImageRef(c.Registry, nodeImg),
		"ControllersImage": ImageRef(c.Registry, ctrlImg),
		"TyphaImage":       ImageRef(c.Registry, typhaImg),
	})
	if err != nil {
		return nil, err
	}
	crds, err := fs.ReadFile(templates.FS(), calicoCRDsFile)
	if err != nil {
		return nil, fmt.Errorf("calico: %w", err)
	}
	return append(append(crds, []byte("\n---\n")...), manifest...), nil
}
