package cni

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/kubeapply"
)

func cluster(plugin, pods string) *config.Cluster {
	return &config.Cluster{Name: "test", Network: config.Network{Plugin: plugin, KubePodsCIDR: pods, KubeServiceCIDR: "10.233.0.0/18",
		Calico: config.Calico{IPIPMode: "Always", VXLANMode: "Never", IPv4NatOutgoing: true, DefaultIPPool: true}}}
}

func decode(t *testing.T, c *config.Cluster) []*unstructured.Unstructured {
	t.Helper()
	docs, err := Manifests(c, Options{})
	if err != nil {
		t.Fatalf("%s: %v", c.Network.Plugin, err)
	}
	objs, err := kubeapply.Decode(docs)
	if err != nil {
		t.Fatalf("%s: decode: %v\n%s", c.Network.Plugin, err, docs)
	}
	return objs
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s among %d objects", kind, name, len(objs))
	return nil
}

// images lists every container and init container image of a workload.
func images(t *testing.T, o *unstructured.Unstructured) []string {
	t.Helper()
	var out []string
	for _, field := range []string{"initContainers", "containers"} {
		cs, _, err := unstructured.NestedSlice(o.Object, "spec", "template", "spec", field)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			out = append(out, c.(map[string]any)["image"].(string))
		}
	}
	return out
}

func TestFlannel(t *testing.T) {
	objs := decode(t, cluster(Flannel, "10.233.64.0/18"))
	find(t, objs, "Namespace", "kube-flannel")
	find(t, objs, "ClusterRole", "flannel")
	find(t, objs, "ClusterRoleBinding", "flannel")
	find(t, objs, "ServiceAccount", "flannel")
	cm := find(t, objs, "ConfigMap", "kube-flannel-cfg")
	netConf, _, _ := unstructured.NestedString(cm.Object, "data", "net-conf.json")
	var nc FlannelNetConf
	if err := json.Unmarshal([]byte(netConf), &nc); err != nil {
		t.Fatalf("net-conf.json: %v\n%s", err, netConf)
	}
	if nc.Network != "10.233.64.0/18" || nc.Backend.Type != "vxlan" || !nc.EnableIPv4 || nc.EnableIPv6 || nc.IPv6Network != "" {
		t.Fatalf("net-conf.json: %+v", nc)
	}
	cniConf, _, _ := unstructured.NestedString(cm.Object, "data", "cni-conf.json")
	var cc map[string]any
	if err := json.Unmarshal([]byte(cniConf), &cc); err != nil || cc["name"] != "cbr0" {
		t.Fatalf("cni-conf.json: %v\n%s", err, cniConf)
	}
	ds := find(t, objs, "DaemonSet", "kube-flannel-ds")
	if ds.GetNamespace() != "kube-flannel" {
		t.Fatalf("DaemonSet namespace %q", ds.GetNamespace())
	}
	got := strings.Join(images(t, ds), " ")
	want := "ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3 ghcr.io/flannel-io/flannel:v0.28.10 ghcr.io/flannel-io/flannel:v0.28.10"
	if got != want {
		t.Fatalf("images: %s, want %s", got, want)
	}
}

func TestFlannelDualStackAndBackend(t *testing.T) {
	c := cluster(Flannel, "10.244.0.0/16,fd00:10:244::/56")
	c.Network.Flannel = config.Flannel{BackendMode: "host-gw", DirectRouting: true}
	objs := decode(t, c)
	netConf, _, _ := unstructured.NestedString(find(t, objs, "ConfigMap", "kube-flannel-cfg").Object, "data", "net-conf.json")
	var nc FlannelNetConf
	if err := json.Unmarshal([]byte(netConf), &nc); err != nil {
		t.Fatal(err)
	}
	if nc.Network != "10.244.0.0/16" || nc.IPv6Network != "fd00:10:244::/56" || !nc.EnableIPv6 || nc.Backend.Type != "host-gw" || !nc.Backend.DirectRouting {
		t.Fatalf("net-conf.json: %+v", nc)
	}
}

func TestRegistryOverride(t *testing.T) {
	c := cluster(Flannel, "10.233.64.0/18")
	c.Registry = config.Registry{PrivateRegistry: "reg.local:5000"}
	got := strings.Join(images(t, find(t, decode(t, c), "DaemonSet", "kube-flannel-ds")), " ")
	if got != "reg.local:5000/flannel-io/flannel-cni-plugin:v1.9.1-flannel3 reg.local:5000/flannel-io/flannel:v0.28.10 reg.local:5000/flannel-io/flannel:v0.28.10" {
		t.Fatalf("private registry: %s", got)
	}
	c.Registry.NamespaceOverride = "kubesphereio"
	got = strings.Join(images(t, find(t, decode(t, c), "DaemonSet", "kube-flannel-ds")), " ")
	if got != "reg.local:5000/kubesphereio/flannel-cni-plugin:v1.9.1-flannel3 reg.local:5000/kubesphereio/flannel:v0.28.10 reg.local:5000/kubesphereio/flannel:v0.28.10" {
		t.Fatalf("namespace override: %s", got)
	}
}

func TestImageRef(t *testing.T) {
	rw := &config.NamespaceRewrite{Policy: "changePrefix", Src: []string{"flannel-io", "calico"}, Dest: "mirror"}
	for _, c := range []struct {
		reg       config.Registry
		ref, want string
	}{
		{config.Registry{}, "ghcr.io/flannel-io/flannel:v0.28.10", "ghcr.io/flannel-io/flannel:v0.28.10"},
		{config.Registry{PrivateRegistry: "r:5000"}, "ghcr.io/flannel-io/flannel:v0.28.10", "r:5000/flannel-io/flannel:v0.28.10"},
		{config.Registry{PrivateRegistry: "r:5000"}, "registry.k8s.io/pause:3.10.1", "r:5000/pause:3.10.1"},
		{config.Registry{PrivateRegistry: "r:5000"}, "registry.k8s.io/coredns/coredns:v1.12.1", "r:5000/coredns/coredns:v1.12.1"},
		{config.Registry{PrivateRegistry: "r:5000"}, "haproxy:2.6", "r:5000/library/haproxy:2.6"},
		{config.Registry{PrivateRegistry: "r:5000"}, "calico/node:v3.29.3", "r:5000/calico/node:v3.29.3"},
		{config.Registry{PrivateRegistry: "r:5000/", NamespaceOverride: "ks"}, "docker.io/calico/node:v3.29.3", "r:5000/ks/node:v3.29.3"},
		{config.Registry{PrivateRegistry: "r:5000", NamespaceRewrite: rw}, "ghcr.io/flannel-io/flannel:v1", "r:5000/mirror/flannel:v1"},
		{config.Registry{PrivateRegistry: "r:5000", NamespaceRewrite: rw}, "quay.io/cilium/cilium:v1", "r:5000/mirror/cilium/cilium:v1"},
		{config.Registry{PrivateRegistry: "r:5000", NamespaceRewrite: rw}, "docker.io/calico/node:v3", "r:5000/mirror/node:v3"},
	} {
		if got := ImageRef(c.reg, c.ref); got != c.want {
			t.Errorf("ImageRef(%+v, %s) = %s, want %s", c.reg, c.ref, got, c.want)
		}
	}
}

func TestCilium(t *testing.T) {
	objs := decode(t, cluster(Cilium, "10.233.64.0/18"))
	cm := find(t, objs, "ConfigMap", "cilium-config")
	if v, _, _ := unstructured.NestedString(cm.Object, "data", "cluster-pool-ipv4-cidr"); v != "10.233.64.0/18" {
		t.Fatalf("cluster-pool-ipv4-cidr %q", v)
	}
	if got := strings.Join(images(t, find(t, objs, "DaemonSet", "cilium")), " "); got != CiliumImage+" "+CiliumImage {
		t.Fatalf("cilium images: %s", got)
	}
	find(t, objs, "Deployment", "cilium-operator")
}

func TestNoneAndUnknown(t *testing.T) {
	docs, err := Manifests(cluster(None, "10.233.64.0/18"), Options{})
	if err != nil || docs != nil {
		t.Fatalf("none: %q, %v", docs, err)
	}
	s, err := NewSpec(cluster(None, "10.233.64.0/18"), Options{})
	if err != nil || len(s.Objects) != 0 {
		t.Fatalf("none spec: %+v, %v", s, err)
	}
	if _, err := Manifests(cluster("kubeovn", "10.233.64.0/18"), Options{}); err == nil || !strings.Contains(err.Error(), "kubeovn") {
		t.Fatalf("kubeovn: %v", err)
	}
	if _, err := Manifests(cluster(Flannel, "not-a-cidr"), Options{}); err == nil || !strings.Contains(err.Error(), "not-a-cidr") {
		t.Fatalf("bad CIDR: %v", err)
	}
}

func TestTaskNoneIsConverged(t *testing.T) {
	s, _ := NewSpec(cluster(None, "10.233.64.0/18"), Options{})
	task := Task(s, nil, nil)
	if task.Name != TaskName {
		t.Fatalf("task %+v", task)
	}
	ok, err := task.Check(context.Background(), nil)
	if !ok || err != nil {
		t.Fatalf("plugin none: Check = %v, %v", ok, err)
	}
}
