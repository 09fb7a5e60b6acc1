package cluster

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/api/v1alpha2"
)

// fcNode is a node of a fake cluster: its InternalIP, and ExternalIP when ext is set.
type fcNode struct {
	name, ip, ext, arch, runtime string
	cp, legacy, tainted          bool
}

func (n fcNode) object() *corev1.Node {
	o := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.name, Labels: map[string]string{"kubernetes.io/hostname": n.name}}}
	role := fcLabelControlPlane
	if n.legacy {
		role = fcLabelMaster
	}
	if n.cp {
		o.Labels[role] = ""
	}
	if n.tainted {
		o.Spec.Taints = []corev1.Taint{{Key: role, Effect: corev1.TaintEffectNoSchedule}}
	}
	o.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: n.name}, {Type: corev1.NodeInternalIP, Address: n.ip}}
	if n.ext != "" {
		o.Status.Addresses = append(o.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: n.ext})
	}
	o.Status.NodeInfo = corev1.NodeSystemInfo{Architecture: n.arch, ContainerRuntimeVersion: n.runtime, KubeletVersion: "v1.33.5"}
	return o
}

func fcConfigMap(ns, name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: data}
}

func fcKubeadmConfig(cc string) *corev1.ConfigMap {
	return fcConfigMap("kube-system", "kubeadm-config", map[string]string{"ClusterConfiguration": cc})
}

func fcKubeProxy(mode string) *corev1.ConfigMap {
	return fcConfigMap("kube-system", "kube-proxy", map[string]string{"config.conf": "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: \"" + mode + "\"\n"})
}

func fcDaemonSet(ns, name string, env ...corev1.EnvVar) *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	ds.Spec.Template.Spec.Containers = []corev1.Container{{Name: name, Image: "example/" + name, Env: env}}
	return ds
}

func fcStaticPod(name string, labels map[string]string, env ...corev1.EnvVar) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name, Labels: labels}}
	p.Spec.Containers = []corev1.Container{{Name: "c", Image: "example/c", Env: env}}
	return p
}

// fakeCluster is a clientset holding the nodes and objects, its API server at serverVersion.
func fcFakeCluster(serverVersion string, nodes []fcNode, objs ...runtime.Object) *fake.Clientset {
	for _, n := range nodes {
		objs = append(objs, n.object())
	}
	cs := fake.NewClientset(objs...)
	cs.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: serverVersion}
	return cs
}

// fromCluster reads cs, checks the file it writes against the document, fills in the
// passwords and loads it with kk's loader (what kk create cluster -f runs).
func fcRead(t *testing.T, cs *fake.Clientset) (string, *FromCluster, *config.Cluster, v1alpha2.Warnings) {
	t.Helper()
	f, err := ReadCluster(context.Background(), cs, "from-cluster")
	if err != nil {
		t.Fatal(err)
	}
	data, err := f.YAML()
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if again, _ := f.YAML(); string(again) != text {
		t.Errorf("YAML is not stable:\n%s\n---\n%s", text, again)
	}
	if n := strings.Count(text, `password: "`+PasswordPlaceholder+`"`); n != len(f.Cluster.Spec.Hosts) {
		t.Errorf("%d password placeholders for %d hosts:\n%s", n, len(f.Cluster.Spec.Hosts), text)
	}
	if strings.Count(text, "password:") != len(f.Cluster.Spec.Hosts) {
		t.Errorf("a password other than the placeholders:\n%s", text)
	}
	var back v1alpha2.Cluster
	if err := yaml.Unmarshal(data, new(any)); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, text)
	}
	if err := sigsyaml.UnmarshalStrict(data, &back); err != nil {
		t.Fatal(err)
	}
	if a, b := fcJSON(t, back), fcJSON(t, f.Cluster); a != b {
		t.Errorf("the file says other than the document:\n%s", text)
	}
	p := filepath.Join(t.TempDir(), "cluster.yaml")
	filled := strings.ReplaceAll(text, PasswordPlaceholder, "s3cret")
	if err := os.WriteFile(p, []byte(filled), 0o600); err != nil {
		t.Fatal(err)
	}
	c, warns, err := v1alpha2.Load(p)
	if err != nil {
		t.Fatalf("the filled-in file does not load: %v\n%s", err, text)
	}
	for _, h := range c.Hosts {
		if h.Password != "s3cret" || h.User != "root" || h.Port != 22 {
			t.Errorf("host %s: user %q port %d password %q", h.Name, h.User, h.Port, h.Password)
		}
	}
	return text, f, c, warns
}

func fcJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fcHostNames(hs []*config.Host) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Name)
	}
	return out
}

const v1beta4Stacked = `apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.33.5
clusterName: cluster.local
controlPlaneEndpoint: lb.kubesphere.local:6443
certificateValidityPeriod: 8760h0m0s
caCertificateValidityPeriod: 87600h0m0s
imageRepository: registry.k8s.io
networking:
  dnsDomain: cluster.local
  podSubnet: 10.233.64.0/18
  serviceSubnet: 10.233.0.0/18
etcd:
  local:
    dataDir: /var/lib/etcd
apiServer:
  extraArgs:
  - name: authorization-mode
    mapValue: Node,RBAC
  certSANs: [lb.kubesphere.local, 10.0.0.11]
`

func TestFromClusterStackedEtcdV1beta4(t *testing.T) {
	cs := fcFakeCluster("v1.33.5", []fcNode{
		{name: "cp1", ip: "10.0.0.11", ext: "203.0.113.11", arch: "amd64", runtime: "containerd://2.1.4", cp: true, tainted: true},
		{name: "cp2", ip: "10.0.0.12", arch: "amd64", runtime: "containerd://2.1.4", cp: true, tainted: true},
		{name: "cp3", ip: "10.0.0.13", arch: "amd64", runtime: "containerd://2.1.4", cp: true, legacy: true}, // schedulable: a worker too
		{name: "w1", ip: "10.0.0.21", arch: "arm64", runtime: "containerd://2.1.4"},
		{name: "w2", ip: "10.0.0.22", arch: "amd64", runtime: "containerd://2.1.4"},
	},
		fcKubeadmConfig(v1beta4Stacked),
		fcKubeProxy("ipvs"),
		fcDaemonSet("kube-system", "calico-node", corev1.EnvVar{Name: "CALICO_IPV4POOL_IPIP", Value: "Never"}, corev1.EnvVar{Name: "CALICO_IPV4POOL_VXLAN", Value: "Always"}),
		fcStaticPod("haproxy-w1", map[string]string{"k8s-app": "kube-haproxy"}),
		fcStaticPod("haproxy-w2", map[string]string{"k8s-app": "kube-haproxy"}),
		fcStaticPod("etcd-cp1", map[string]string{"component": "etcd"}),
		fcDaemonSet("kube-system", "nodelocaldns"),
	)
	text, f, c, warns := fcRead(t, cs)
	if len(warns) != 0 || len(f.Warnings) != 0 {
		t.Errorf("warnings: loader %v, fromClusterReader %v\n%s", warns, f.Warnings, text)
	}
	if got := fcHostNames(c.HostsWithRole(config.RoleControlPlane)); !slices.Equal(got, []string{"cp1", "cp2", "cp3"}) {
		t.Errorf("control planes %v", got)
	}
	if got := fcHostNames(c.HostsWithRole(config.RoleWorker)); !slices.Equal(got, []string{"cp3", "w1", "w2"}) {
		t.Errorf("workers %v (cp3 has no NoSchedule taint)", got)
	}
	if _, ok := f.Cluster.Spec.RoleGroups["etcd"]; ok || c.Etcd.Type != config.EtcdKubeadm {
		t.Errorf("stacked etcd: type %q, roleGroups.etcd %v", c.Etcd.Type, f.Cluster.Spec.RoleGroups["etcd"])
	}
	cp1, w1 := c.Hosts[0], c.Hosts[3]
	if cp1.Address != "203.0.113.11" || cp1.InternalAddress != "10.0.0.11" || w1.Address != "10.0.0.21" || w1.InternalAddress != "10.0.0.21" {
		t.Errorf("addresses: cp1 %s/%s, w1 %s/%s", cp1.Address, cp1.InternalAddress, w1.Address, w1.InternalAddress)
	}
	if cp1.Arch != "amd64" || w1.Arch != "arm64" {
		t.Errorf("arches %s %s", cp1.Arch, w1.Arch)
	}
	k := c.Kubernetes
	if k.Version != "v1.33.5" || k.ClusterName != "cluster.local" || k.DNSDomain != "cluster.local" || k.ContainerManager != "containerd" || k.ProxyMode != "ipvs" {
		t.Errorf("kubernetes %+v", k)
	}
	if !k.NodeLocalDNS {
		t.Error("nodelocaldns runs, the file says false")
	}
	if f.Cluster.Spec.Kubernetes.CertificateValidityPeriod != "8760h0m0s" {
		t.Errorf("certificateValidityPeriod %q", f.Cluster.Spec.Kubernetes.CertificateValidityPeriod)
	}
	e := c.ControlPlaneEndpoint
	if e.Domain != "lb.kubesphere.local" || e.Port != 6443 || e.InternalLoadbalancer != config.LoadBalancerHAProxy || e.Address != "" {
		t.Errorf("endpoint %+v", e)
	}
	n := c.Network
	if n.Plugin != "calico" || n.KubePodsCIDR != "10.233.64.0/18" || n.KubeServiceCIDR != "10.233.0.0/18" || n.Calico.IPIPMode != "Never" || n.Calico.VXLANMode != "Always" {
		t.Errorf("network %+v", n)
	}
	for _, want := range []string{
		"# Fill in the SSH credentials of each host",
		"# Stacked etcd (kubeadm's static pods on the control planes)",
		"# Not read (kk's defaults apply unless set)",
		"  hosts:\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
	if strings.Contains(text, "registry") || strings.Contains(text, "{}") {
		t.Errorf("an upstream imageRepository or an empty section written:\n%s", text)
	}
}

func TestFromClusterKubeKeyEtcdV1beta3(t *testing.T) {
	cs := fcFakeCluster("v1.30.14", []fcNode{
		{name: "master1", ip: "10.0.1.11", arch: "amd64", runtime: "docker://24.0.9", cp: true, tainted: true, legacy: true},
		{name: "master2", ip: "10.0.1.12", arch: "amd64", runtime: "docker://24.0.9", cp: true, tainted: true},
		{name: "master3", ip: "10.0.1.13", arch: "amd64", runtime: "docker://24.0.9", cp: true, tainted: true},
		{name: "node1", ip: "10.0.1.21", arch: "amd64", runtime: "docker://24.0.9"},
	},
		fcKubeadmConfig(`apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: v1.30.14
clusterName: kubekey
controlPlaneEndpoint: lb.example.internal:8443
imageRepository: dockerhub.kubekey.local/kubesphereio
networking: {dnsDomain: corp.local, podSubnet: 10.244.0.0/16, serviceSubnet: 10.96.0.0/12}
etcd:
  external:
    endpoints: [https://10.0.1.11:2379, https://10.0.1.12:2379, https://10.0.1.13:2379]
    caFile: /etc/ssl/etcd/ssl/ca.pem
    certFile: /etc/ssl/etcd/ssl/node-master1.pem
    keyFile: /etc/ssl/etcd/ssl/node-master1-key.pem
apiServer:
  extraArgs:
    authorization-mode: Node,RBAC
`),
		fcKubeProxy(""),
		fcDaemonSet("kube-system", "kube-flannel-ds"),
		fcConfigMap("kube-system", "kube-flannel-cfg", map[string]string{"net-conf.json": `{"Network": "10.244.0.0/16", "Backend": {"Type": "host-gw"}}`}),
		fcStaticPod("kube-vip-master1", nil, corev1.EnvVar{Name: "vip_arp", Value: "true"}, corev1.EnvVar{Name: "address", Value: "10.0.1.100"}),
	)
	text, f, c, warns := fcRead(t, cs)
	if len(warns) != 0 || len(f.Warnings) != 0 {
		t.Errorf("warnings: loader %v, fromClusterReader %v\n%s", warns, f.Warnings, text)
	}
	if c.Etcd.Type != config.EtcdKubeKey {
		t.Errorf("etcd type %q, want kubekey (certificates in %s)", c.Etcd.Type, KubeKeyEtcdPKIDir)
	}
	if got := fcHostNames(c.HostsWithRole(config.RoleEtcd)); !slices.Equal(got, []string{"master1", "master2", "master3"}) {
		t.Errorf("etcd hosts %v", got)
	}
	if got := fcHostNames(c.HostsWithRole(config.RoleWorker)); !slices.Equal(got, []string{"node1"}) {
		t.Errorf("workers %v", got)
	}
	if got := fcHostNames(c.HostsWithRole(config.RoleControlPlane)); !slices.Equal(got, []string{"master1", "master2", "master3"}) {
		t.Errorf("control planes %v", got)
	}
	k := c.Kubernetes
	if k.Version != "v1.30.14" || k.ClusterName != "kubekey" || k.DNSDomain != "corp.local" || k.ContainerManager != "docker" || k.ProxyMode != "iptables" {
		t.Errorf("kubernetes %+v", k)
	}
	if k.NodeLocalDNS {
		t.Error("no nodelocaldns DaemonSet, the file says true")
	}
	if f.Cluster.Spec.Kubernetes.CertificateValidityPeriod != "" {
		t.Errorf("v1beta3 has no certificateValidityPeriod, got %q", f.Cluster.Spec.Kubernetes.CertificateValidityPeriod)
	}
	e := c.ControlPlaneEndpoint
	if e.Domain != "lb.example.internal" || e.Port != 8443 || e.InternalLoadbalancer != config.LoadBalancerKubeVIP || e.Address != "10.0.1.100" || e.KubeVIPMode != "ARP" {
		t.Errorf("endpoint %+v", e)
	}
	n := c.Network
	if n.Plugin != "flannel" || n.KubePodsCIDR != "10.244.0.0/16" || n.KubeServiceCIDR != "10.96.0.0/12" || n.Flannel.BackendMode != "host-gw" {
		t.Errorf("network %+v", n)
	}
	if c.Registry.PrivateRegistry != "" || !strings.Contains(text, "# kubeadm pulls the control plane's images from dockerhub.kubekey.local/kubesphereio") {
		t.Errorf("the image repository is not a hint:\n%s", text)
	}
}

func TestFromClusterExternalEtcd(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"ca.crt", "client.crt", "client.key"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cs := fcFakeCluster("v1.34.1", []fcNode{
		{name: "cp1", ip: "172.20.0.11", arch: "amd64", runtime: "containerd://2.1.4", cp: true, tainted: true},
		{name: "etcd-and-worker", ip: "172.20.0.31", arch: "amd64", runtime: "containerd://2.1.4"},
	},
		fcKubeadmConfig(`apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.34.1
clusterName: prod
controlPlaneEndpoint: 172.20.0.100:6443
networking: {dnsDomain: cluster.local, podSubnet: 10.233.64.0/18, serviceSubnet: 10.233.0.0/18}
etcd:
  external:
    endpoints: [https://172.20.0.31:2379, https://172.20.0.32:2379]
    caFile: `+dir+`/ca.crt
    certFile: `+dir+`/client.crt
    keyFile: `+dir+`/client.key
`),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-flannel"}},
	)
	text, f, c, warns := fcRead(t, cs)
	if len(warns) != 0 {
		t.Errorf("loader warnings %v\n%s", warns, text)
	}
	x := c.Etcd.External
	if c.Etcd.Type != config.EtcdExternal || !slices.Equal(x.Endpoints, []string{"https://172.20.0.31:2379", "https://172.20.0.32:2379"}) ||
		x.CAFile != dir+"/ca.crt" || x.CertFile != dir+"/client.crt" || x.KeyFile != dir+"/client.key" {
		t.Errorf("etcd %+v", c.Etcd)
	}
	if _, ok := f.Cluster.Spec.RoleGroups["etcd"]; ok {
		t.Errorf("roleGroups.etcd with an external etcd: %v", f.Cluster.Spec.RoleGroups["etcd"])
	}
	e := c.ControlPlaneEndpoint
	if e.Address != "172.20.0.100" || e.Domain != "lb.kubesphere.local" || e.Port != 6443 || e.InternalLoadbalancer != "" {
		t.Errorf("endpoint %+v", e)
	}
	if c.Network.Plugin != "flannel" || c.Kubernetes.ClusterName != "prod" {
		t.Errorf("plugin %q, clusterName %q", c.Network.Plugin, c.Kubernetes.ClusterName)
	}
	for _, want := range []string{
		"# The etcd endpoints on nodes of the cluster: etcd-and-worker.",
		"# kubeadm's controlPlaneEndpoint is the address 172.20.0.100",
		"# No kube-proxy ConfigMap in kube-system",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
}

// Without kubeadm's configuration the version comes from the API server, and what the
// configuration would have said is left to the user, in comments.
func TestFromClusterWithoutKubeadmConfig(t *testing.T) {
	cs := fcFakeCluster("v1.32.4", []fcNode{{name: "solo", ip: "192.168.5.5", arch: "amd64", runtime: "containerd://1.7.27", cp: true}})
	f, err := ReadCluster(context.Background(), cs, "solo")
	if err != nil {
		t.Fatal(err)
	}
	data, err := f.YAML()
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	s := f.Cluster.Spec
	if s.Kubernetes.Version != "v1.32.4" || s.Network.Plugin != "none" || s.Network.KubePodsCIDR != "" || s.Etcd.Type != "" {
		t.Errorf("spec %+v", s)
	}
	if !slices.Equal(s.RoleGroups["control-plane"], []string{"solo"}) || !slices.Equal(s.RoleGroups["worker"], []string{"solo"}) {
		t.Errorf("roleGroups %v", s.RoleGroups)
	}
	if len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], "kubeadm-config") {
		t.Errorf("warnings %v", f.Warnings)
	}
	for _, want := range []string{"set kubePodsCIDR to the cluster's", "# Without kubeadm's ClusterConfiguration the etcd type is unknown", "etcd: {}"} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
	// the etcd type is the user's to say: the file does not load before
	if _, _, err := v1alpha2.Parse("c.yaml", []byte(strings.ReplaceAll(text, PasswordPlaceholder, "x"))); err == nil || !strings.Contains(err.Error(), "etcd") {
		t.Errorf("loaded without an etcd type: %v", err)
	}
}

func TestFromClusterRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		cs   *fake.Clientset
		want string
	}{
		{"no nodes", fcFakeCluster("v1.33.0", nil), "no nodes"},
		{"cri-o", fcFakeCluster("v1.33.0", []fcNode{{name: "n", ip: "10.1.1.1", arch: "amd64", runtime: "cri-o://1.33.0", cp: true}}),
			`node n runs container runtime "cri-o://1.33.0"`},
		{"k3s", fcFakeCluster("v1.33.3+k3s1", []fcNode{{name: "n", ip: "10.1.1.1", arch: "amd64", runtime: "containerd://2.0.5-k3s1", cp: true}}),
			"kubeadm clusters only"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadCluster(context.Background(), c.cs, "x")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err %v, want %q", err, c.want)
			}
		})
	}
}

func TestFromClusterMixedRuntimes(t *testing.T) {
	cs := fcFakeCluster("v1.33.0", []fcNode{
		{name: "a", ip: "10.1.1.1", arch: "amd64", runtime: "docker://27.5.1", cp: true},
		{name: "b", ip: "10.1.1.2", arch: "amd64", runtime: "containerd://2.1.4"},
		{name: "c", ip: "10.1.1.3", arch: "amd64", runtime: "containerd://2.1.4"},
	}, fcKubeadmConfig(v1beta4Stacked))
	f, err := ReadCluster(context.Background(), cs, "x")
	if err != nil {
		t.Fatal(err)
	}
	if f.Cluster.Spec.Kubernetes.ContainerManager != "containerd" || !slices.ContainsFunc(f.Warnings, func(w string) bool { return strings.Contains(w, "both containerd and docker") }) {
		t.Errorf("containerManager %q, warnings %v", f.Cluster.Spec.Kubernetes.ContainerManager, f.Warnings)
	}
}
