package cni

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/versions"
)

// calicoCluster is a cluster with KubeKey's default calico settings and a known version.
func calicoCluster(cc config.Calico) *config.Cluster {
	c := cluster(Calico, "10.233.64.0/18")
	c.Kubernetes.Version = "v1.34.4"
	c.Network.Calico = cc
	return c
}

var kkDefaults = config.Calico{IPIPMode: "Always", VXLANMode: "Never", IPv4NatOutgoing: true, DefaultIPPool: true}

// nodeEnv returns the literal env values of the calico-node container, and the names of the
// env entries taken from elsewhere (ConfigMap, field refs) with value "<ref>".
func nodeEnv(t *testing.T, ds *unstructured.Unstructured) map[string]string {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(ds.Object, "spec", "template", "spec", "containers")
	vars := map[string]string{}
	for _, e := range cs[0].(map[string]any)["env"].([]any) {
		m := e.(map[string]any)
		v, ok := m["value"].(string)
		if !ok {
			v = "<ref>"
		}
		vars[m["name"].(string)] = v
	}
	return vars
}

// replicas is a Deployment's spec.replicas as decoded from YAML (a float64), or -1.
func replicas(d *unstructured.Unstructured) float64 {
	if n, ok := d.Object["spec"].(map[string]any)["replicas"].(float64); ok {
		return n
	}
	return -1
}

// grants says whether one of role's rules allows verb on resource of group.
func grants(t *testing.T, role *unstructured.Unstructured, group, resource, verb string) bool {
	t.Helper()
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	for _, r := range rules {
		m := r.(map[string]any)
		g, _, _ := unstructured.NestedStringSlice(m, "apiGroups")
		res, _, _ := unstructured.NestedStringSlice(m, "resources")
		v, _, _ := unstructured.NestedStringSlice(m, "verbs")
		if slices.Contains(g, group) && slices.Contains(res, resource) && slices.Contains(v, verb) {
			return true
		}
	}
	return false
}

func probe(t *testing.T, ds *unstructured.Unstructured, which string) string {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(ds.Object, "spec", "template", "spec", "containers")
	cmd, _, err := unstructured.NestedStringSlice(cs[0].(map[string]any), which, "exec", "command")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(cmd, " ")
}

func TestCalicoIPIP(t *testing.T) {
	objs := decode(t, calicoCluster(kkDefaults))
	var crds []string
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o.GetName())
		}
	}
	calicoCRDs := 0
	for _, n := range crds {
		if strings.HasSuffix(n, ".crd.projectcalico.org") {
			calicoCRDs++
		}
	}
	if len(crds) != 24 || calicoCRDs != 22 {
		t.Fatalf("want Calico v3.31's 24 CRDs (22 of crd.projectcalico.org), got %d: %v", len(crds), crds)
	}
	for _, n := range []string{"ippools.crd.projectcalico.org", "bgpfilters.crd.projectcalico.org", "tiers.crd.projectcalico.org",
		"stagednetworkpolicies.crd.projectcalico.org", "adminnetworkpolicies.policy.networking.k8s.io",
		"baselineadminnetworkpolicies.policy.networking.k8s.io"} {
		if !slices.Contains(crds, n) {
			t.Fatalf("CRDs %v lack %s", crds, n)
		}
	}
	// upstream's schemas, not open ones: the IPPool spec names its fields
	pool := find(t, objs, "CustomResourceDefinition", "ippools.crd.projectcalico.org")
	vs, _, _ := unstructured.NestedSlice(pool.Object, "spec", "versions")
	if _, ok, _ := unstructured.NestedMap(vs[0].(map[string]any), "schema", "openAPIV3Schema", "properties", "spec", "properties", "vxlanMode"); !ok {
		t.Fatal("ippools CRD has no spec.vxlanMode in its schema")
	}

	cm := find(t, objs, "ConfigMap", "calico-config")
	data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
	if data["calico_backend"] != "bird" || data["typha_service_name"] != "none" || data["veth_mtu"] != "0" {
		t.Fatalf("calico-config: %v", data)
	}
	if !strings.Contains(data["cni_network_config"], `"mtu": __CNI_MTU__`) || !strings.Contains(data["cni_network_config"], `"type": "calico-ipam"`) ||
		strings.Contains(data["cni_network_config"], "bandwidth") {
		t.Fatalf("cni_network_config: %s", data["cni_network_config"])
	}

	set, _ := versions.For("v1.34.4")
	want, _ := set.CNIImages(Calico)
	ds := find(t, objs, "DaemonSet", "calico-node")
	dep := find(t, objs, "Deployment", "calico-kube-controllers")
	got := append(images(t, ds), images(t, dep)...)
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Fatalf("images %v lack %s (kk's version table)", got, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Fatalf("image %s is not in kk's version table %v", g, want)
		}
	}
	env := nodeEnv(t, ds)
	for k, v := range map[string]string{"CALICO_IPV4POOL_CIDR": "10.233.64.0/18", "CALICO_IPV4POOL_BLOCK_SIZE": "24",
		"CALICO_IPV4POOL_IPIP": "Always", "CALICO_IPV4POOL_VXLAN": "Never", "CALICO_IPV4POOL_NAT_OUTGOING": "true",
		"CALICO_NETWORKING_BACKEND": "<ref>", "DATASTORE_TYPE": "kubernetes", "IP_AUTODETECTION_METHOD": "can-reach=$(NODEIP)"} {
		if env[k] != v {
			t.Errorf("calico-node %s = %q, want %q", k, env[k], v)
		}
	}
	if _, ok := env["NO_DEFAULT_POOLS"]; ok {
		t.Error("NO_DEFAULT_POOLS set with defaultIPPOOL true")
	}
	if _, ok := env["FELIX_TYPHAK8SSERVICENAME"]; ok {
		t.Error("Typha service named without typha")
	}
	if p := probe(t, ds, "readinessProbe"); p != "/bin/calico-node -felix-ready -bird-ready" {
		t.Errorf("readiness: %s", p)
	}
	// v3.31: RuntimeDefault seccomp, the renamed eBPF init container, the loadbalancer controller
	for _, d := range []*unstructured.Unstructured{ds, dep} {
		if sp, _, _ := unstructured.NestedString(d.Object, "spec", "template", "spec", "securityContext", "seccompProfile", "type"); sp != "RuntimeDefault" {
			t.Errorf("%s seccompProfile %q", d.GetName(), sp)
		}
	}
	inits, _, _ := unstructured.NestedSlice(ds.Object, "spec", "template", "spec", "initContainers")
	var initNames []string
	for _, c := range inits {
		initNames = append(initNames, c.(map[string]any)["name"].(string))
	}
	if strings.Join(initNames, ",") != "upgrade-ipam,install-cni,ebpf-bootstrap" {
		t.Errorf("calico-node init containers %v", initNames)
	}
	if ctrl := nodeEnv(t, dep); ctrl["ENABLED_CONTROLLERS"] != "node,loadbalancer" {
		t.Errorf("kube-controllers ENABLED_CONTROLLERS %q", ctrl["ENABLED_CONTROLLERS"])
	}
	// kube-controller-manager's garbage collector reads Tiers through calico-tier-getter
	find(t, objs, "ClusterRole", "calico-tier-getter")
	subjects, _, _ := unstructured.NestedSlice(find(t, objs, "ClusterRoleBinding", "calico-tier-getter").Object, "subjects")
	if len(subjects) != 1 || subjects[0].(map[string]any)["name"] != "system:kube-controller-manager" {
		t.Errorf("calico-tier-getter subjects %v", subjects)
	}
	if !grants(t, find(t, objs, "ClusterRole", "calico-node"), "crd.projectcalico.org", "tiers", "create") ||
		!grants(t, find(t, objs, "ClusterRole", "calico-node"), "policy.networking.k8s.io", "adminnetworkpolicies", "watch") ||
		!grants(t, find(t, objs, "ClusterRole", "calico-kube-controllers"), "", "services/status", "update") {
		t.Error("v3.31's RBAC rules missing")
	}
	for _, o := range objs {
		if strings.Contains(o.GetName(), "typha") {
			t.Errorf("%s %s without typha", o.GetKind(), o.GetName())
		}
	}
}

func TestCalicoVXLAN(t *testing.T) {
	cc := kkDefaults
	cc.IPIPMode, cc.VXLANMode, cc.VethMTU, cc.IPv4NatOutgoing = "Never", "Always", 1400, false
	c := calicoCluster(cc)
	c.Kubernetes.NodeCidrMaskSize = 26
	objs := decode(t, c)
	data, _, _ := unstructured.NestedStringMap(find(t, objs, "ConfigMap", "calico-config").Object, "data")
	if data["calico_backend"] != "vxlan" || data["veth_mtu"] != "1400" {
		t.Fatalf("calico-config: %v", data)
	}
	ds := find(t, objs, "DaemonSet", "calico-node")
	env := nodeEnv(t, ds)
	if env["CALICO_IPV4POOL_IPIP"] != "Never" || env["CALICO_IPV4POOL_VXLAN"] != "Always" || env["CALICO_IPV4POOL_NAT_OUTGOING"] != "false" || env["CALICO_IPV4POOL_BLOCK_SIZE"] != "26" {
		t.Fatalf("calico-node env: %v", env)
	}
	// no BIRD runs with the vxlan backend: its probes must not ask for it
	if p := probe(t, ds, "livenessProbe") + " " + probe(t, ds, "readinessProbe"); strings.Contains(p, "bird") {
		t.Fatalf("vxlan probes: %s", p)
	}
	if b := CalicoBackend(config.Calico{IPIPMode: "Never", VXLANMode: "CrossSubnet"}); b != "vxlan" {
		t.Fatalf("CrossSubnet VXLAN backend %s", b)
	}
	if b := CalicoBackend(config.Calico{IPIPMode: "Never", VXLANMode: "Never"}); b != "bird" {
		t.Fatalf("plain BGP backend %s", b)
	}
}

func TestCalicoTyphaAndPlacement(t *testing.T) {
	cc := kkDefaults
	cc.Typha, cc.ReplicaCount, cc.DefaultIPPool = true, 3, false
	cc.NodeSelector = map[string]string{"node-role.kubernetes.io/worker": "", "zone": "a: b"}
	objs := decode(t, calicoCluster(cc))
	typha := find(t, objs, "Deployment", "calico-typha")
	find(t, objs, "Service", "calico-typha")
	find(t, objs, "PodDisruptionBudget", "calico-typha")
	if sp, _, _ := unstructured.NestedString(typha.Object, "spec", "template", "spec", "securityContext", "seccompProfile", "type"); sp != "RuntimeDefault" {
		t.Fatalf("typha seccompProfile %q", sp)
	}
	if n := replicas(typha); n != 3 {
		t.Fatalf("typha replicas %v", n)
	}
	if got := images(t, typha); len(got) != 1 || got[0] != "docker.io/calico/typha:v3.31.0" {
		t.Fatalf("typha image %v", got)
	}
	want := map[string]string{"kubernetes.io/os": "linux", "node-role.kubernetes.io/worker": "", "zone": "a: b"}
	for _, d := range []*unstructured.Unstructured{typha, find(t, objs, "Deployment", "calico-kube-controllers")} {
		sel, _, _ := unstructured.NestedStringMap(d.Object, "spec", "template", "spec", "nodeSelector")
		if len(sel) != len(want) {
			t.Fatalf("%s nodeSelector %v", d.GetName(), sel)
		}
		for k, v := range want {
			if sel[k] != v {
				t.Fatalf("%s nodeSelector %v, want %v", d.GetName(), sel, want)
			}
		}
	}
	if n := replicas(find(t, objs, "Deployment", "calico-kube-controllers")); n != 1 {
		t.Fatalf("kube-controllers replicas %v: it runs as one active instance", n)
	}
	data, _, _ := unstructured.NestedStringMap(find(t, objs, "ConfigMap", "calico-config").Object, "data")
	env := nodeEnv(t, find(t, objs, "DaemonSet", "calico-node"))
	if data["typha_service_name"] != "calico-typha" || env["FELIX_TYPHAK8SSERVICENAME"] != "<ref>" {
		t.Fatalf("typha not wired: %v %v", data, env)
	}
	if env["NO_DEFAULT_POOLS"] != "true" || env["CALICO_IPV4POOL_CIDR"] != "" {
		t.Fatalf("defaultIPPOOL false: %v", env)
	}
}

func TestCalicoDualStack(t *testing.T) {
	c := calicoCluster(kkDefaults)
	c.Network.KubePodsCIDR = "10.233.64.0/18,fd85:ee78:d8a6:8607::1:0000/112"
	objs := decode(t, c)
	env := nodeEnv(t, find(t, objs, "DaemonSet", "calico-node"))
	for k, v := range map[string]string{"CALICO_IPV4POOL_CIDR": "10.233.64.0/18", "CALICO_IPV6POOL_CIDR": "fd85:ee78:d8a6:8607::1:0000/112",
		"IP6": "autodetect", "FELIX_IPV6SUPPORT": "true", "CALICO_IPV6POOL_VXLAN": "Always"} {
		if env[k] != v {
			t.Errorf("calico-node %s = %q, want %q", k, env[k], v)
		}
	}
	data, _, _ := unstructured.NestedStringMap(find(t, objs, "ConfigMap", "calico-config").Object, "data")
	if !strings.Contains(data["cni_network_config"], `"assign_ipv6": "true"`) {
		t.Fatalf("dual-stack IPAM: %s", data["cni_network_config"])
	}
	single := nodeEnv(t, find(t, decode(t, calicoCluster(kkDefaults)), "DaemonSet", "calico-node"))
	if _, ok := single["IP6"]; ok || single["FELIX_IPV6SUPPORT"] != "false" {
		t.Fatalf("IPv4-only cluster runs IPv6: %v", single)
	}
}

func TestCalicoRegistry(t *testing.T) {
	c := calicoCluster(kkDefaults)
	c.Registry = config.Registry{PrivateRegistry: "reg.local:5000", NamespaceOverride: "kubesphereio"}
	got := images(t, find(t, decode(t, c), "DaemonSet", "calico-node"))
	for _, g := range got {
		if !strings.HasPrefix(g, "reg.local:5000/kubesphereio/") || !strings.HasSuffix(g, ":v3.31.0") {
			t.Fatalf("image %s does not follow the private registry", g)
		}
	}
}

func TestCalicoRejects(t *testing.T) {
	for name, c := range map[string]*config.Cluster{
		"both encapsulations": calicoCluster(config.Calico{IPIPMode: "Always", VXLANMode: "Always"}),
		"unknown mode":        calicoCluster(config.Calico{IPIPMode: "always"}),
		"IPv6 only":           func() *config.Cluster { c := calicoCluster(kkDefaults); c.Network.KubePodsCIDR = "fd00::/64"; return c }(),
	} {
		if _, err := Manifests(c, Options{}); err == nil {
			t.Errorf("%s: rendered without error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
