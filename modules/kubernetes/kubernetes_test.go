package kubernetes

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/modules/binaries"
)

func loadSample(t *testing.T, name string) *config.Cluster {
	t.Helper()
	p := filepath.Join("..", "..", "api", "v1alpha2", "testdata", name)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := v1alpha2.ParseWithOptions(p, data, v1alpha2.ParseOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// docs splits a rendered multi-document YAML into maps keyed by kind.
func docs(t *testing.T, data []byte) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, d := range bytes.Split(data, []byte("\n---\n")) {
		var m map[string]any
		if err := yaml.Unmarshal(d, &m); err != nil {
			t.Fatalf("bad YAML: %v\n%s", err, d)
		}
		kind, _ := m["kind"].(string)
		if _, dup := out[kind]; dup {
			t.Fatalf("kind %s twice", kind)
		}
		out[kind] = m
	}
	return out
}

// get walks a decoded YAML document along a path of keys and list indexes.
func get(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not a map at %q", path, k)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("%v: no item %d", path, k)
			}
			v = l[k]
		}
	}
	return v
}

// args turns a kubeadm extraArgs list into a map.
func args(t *testing.T, v any) map[string]string {
	t.Helper()
	out := map[string]string{}
	l, _ := v.([]any)
	for _, a := range l {
		m := a.(map[string]any)
		out[m["name"].(string)] = m["value"].(string)
	}
	return out
}

func TestUnsupportedVersionIsAnErrorBeforeAnyHost(t *testing.T) {
	c := loadSample(t, "kubekey-calico.yaml") // v1.21.5
	_, err := SpecFor(c, t.TempDir(), binaries.Files{})
	if err == nil || !strings.Contains(err.Error(), "v1.21") || !strings.Contains(err.Error(), "v1.37") {
		t.Fatalf("want an error naming v1.21 and the supported minors, got %v", err)
	}
}

// The KubeKey sample with 3 control planes, external (kubekey) etcd, docker, ipvs, feature
// gates, kubelet and kube-proxy overrides, node labels and extra SANs.
func TestKubeadmConfigForKubeKeySample(t *testing.T) {
	c := loadSample(t, "kubekey-calico.yaml")
	c.Kubernetes.Version = "v1.34.4"
	work := t.TempDir()
	s, err := SpecFor(c, work, binaries.Files{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Kubeconfig != filepath.Join(work, "config-calico") {
		t.Errorf("kubeconfig path %s", s.Kubeconfig)
	}
	if s.KubeconfigServer != "https://172.16.0.2:6443" {
		t.Errorf("kubeconfig server %s, want the first control plane's address", s.KubeconfigServer)
	}
	if len(s.KubeconfigServers) != 3 || s.KubeconfigServers[0] != (APIServer{Node: "node1", URL: s.KubeconfigServer}) || s.KubeconfigServers[2].Node != "node3" {
		t.Errorf("kubeconfig servers %v, want every control plane, the first one first", s.KubeconfigServers)
	}
	if s.FirstControlPlane != "node1" || len(s.Nodes) != 3 || len(s.Joiners()) != 2 {
		t.Errorf("first %s, nodes %v", s.FirstControlPlane, s.Nodes)
	}
	if !slices.Equal(s.InitAfter, []string{"etcd/health", "etcd/client-certs"}) {
		t.Errorf("init after %v", s.InitAfter)
	}

	out, err := RenderKubeadmConfig(s, "node1", HostEnv{Container: "systemd-nspawn", CgroupVersion: 1}, "")
	if err != nil {
		t.Fatal(err)
	}
	d := docs(t, out)
	if len(d) != 4 {
		t.Fatalf("want 4 documents, got %v", reflect.ValueOf(d).MapKeys())
	}
	init, cc, kubelet, proxy := d["InitConfiguration"], d["ClusterConfiguration"], d["KubeletConfiguration"], d["KubeProxyConfiguration"]
	for kind, m := range d {
		want := "kubeadm.k8s.io/v1beta4"
		switch kind {
		case "KubeletConfiguration":
			want = "kubelet.config.k8s.io/v1beta1"
		case "KubeProxyConfiguration":
			want = "kubeproxy.config.k8s.io/v1alpha1"
		}
		if m["apiVersion"] != want {
			t.Errorf("%s apiVersion %v", kind, m["apiVersion"])
		}
	}

	// this node's registration: name, CRI socket of docker, node-ip + the sample's kubelet flag,
	// no taint (it is a worker too)
	if get(t, init, "nodeRegistration", "name") != "node1" ||
		get(t, init, "nodeRegistration", "criSocket") != "unix:///var/run/cri-dockerd.sock" ||
		get(t, init, "localAPIEndpoint", "advertiseAddress") != "172.16.0.2" ||
		get(t, init, "localAPIEndpoint", "bindPort") != float64(6443) {
		t.Errorf("InitConfiguration:\n%s", out)
	}
	if a := args(t, get(t, init, "nodeRegistration", "kubeletExtraArgs")); a["node-ip"] != "172.16.0.2" || a["root-dir"] != "/var/lib/kubelet" {
		t.Errorf("kubeletExtraArgs %v", a)
	}
	if taints, ok := get(t, init, "nodeRegistration", "taints").([]any); !ok || len(taints) != 0 {
		t.Errorf("a control plane that is a worker must register without taints: %v", get(t, init, "nodeRegistration", "taints"))
	}
	if get(t, init, "nodeRegistration", "ignorePreflightErrors") != nil {
		t.Errorf("v1.34 on cgroup v1 ignores no preflight check")
	}
	if get(t, init, "certificateKey") != nil {
		t.Errorf("no certificate key in the kept config")
	}

	if get(t, cc, "controlPlaneEndpoint") != "lb.kubesphere.local:6443" ||
		get(t, cc, "kubernetesVersion") != "v1.34.4" ||
		get(t, cc, "clusterName") != "cluster.local" ||
		get(t, cc, "imageRepository") != "registry.k8s.io" ||
		get(t, cc, "networking", "podSubnet") != "10.233.64.0/18" ||
		get(t, cc, "networking", "serviceSubnet") != "10.233.0.0/18" ||
		get(t, cc, "networking", "dnsDomain") != "cluster.local" {
		t.Errorf("ClusterConfiguration:\n%s", out)
	}
	if get(t, cc, "etcd", "local") != nil ||
		!reflect.DeepEqual(get(t, cc, "etcd", "external", "endpoints"), []any{"https://172.16.0.2:2379"}) ||
		get(t, cc, "etcd", "external", "caFile") != "/etc/ssl/etcd/ssl/ca.pem" ||
		get(t, cc, "etcd", "external", "certFile") != "/etc/ssl/etcd/ssl/apiserver-etcd-client.pem" ||
		get(t, cc, "etcd", "external", "keyFile") != "/etc/ssl/etcd/ssl/apiserver-etcd-client-key.pem" {
		t.Errorf("external etcd:\n%s", out)
	}
	fg := "CSIStorageCapacity=true,ExpandCSIVolumes=true,RotateKubeletServerCertificate=true,TTLAfterFinished=true"
	for _, comp := range []string{"apiServer", "controllerManager", "scheduler"} {
		if a := args(t, get(t, cc, comp, "extraArgs")); a["feature-gates"] != fg {
			t.Errorf("%s feature-gates %q", comp, a["feature-gates"])
		}
	}
	if a := args(t, get(t, cc, "controllerManager", "extraArgs")); a["node-cidr-mask-size"] != "24" {
		t.Errorf("node-cidr-mask-size %q", a["node-cidr-mask-size"])
	}
	sans := get(t, cc, "apiServer", "certSANs").([]any)
	for _, want := range []string{"lb.kubesphere.local", "172.16.0.2", "172.16.0.3", "172.16.0.4", "node1", "node2", "node3",
		"node1.cluster.local", "localhost", "127.0.0.1", "kubernetes.default.svc.cluster.local", "10.233.0.1", "192.168.8.8", "lb.kubespheredev.local"} {
		if !slices.Contains(sans, any(want)) {
			t.Errorf("certSANs lack %s: %v", want, sans)
		}
	}

	// kubelet: kk's settings, the sample's overrides merged in
	for k, want := range map[string]any{"cgroupDriver": "systemd", "containerRuntimeEndpoint": "unix:///var/run/cri-dockerd.sock",
		"maxPods": float64(110), "podPidsLimit": float64(10000), "maxParallelImagePulls": float64(5), "containerLogMaxSize": "5Mi"} {
		if kubelet[k] != want {
			t.Errorf("kubelet %s = %v, want %v", k, kubelet[k], want)
		}
	}
	if get(t, kubelet, "evictionHard", "memory.available") != "5%" || get(t, kubelet, "featureGates", "TTLAfterFinished") != true {
		t.Errorf("kubelet overrides or feature gates missing:\n%s", out)
	}
	if _, ok := kubelet["failCgroupV1"]; ok {
		t.Errorf("failCgroupV1 is for v1.35+ only")
	}
	// kube-proxy: ipvs from the config, the sample's excludeCIDRs, conntrack left alone in a container
	if proxy["mode"] != "ipvs" || proxy["clusterCIDR"] != "10.233.64.0/18" ||
		!reflect.DeepEqual(get(t, proxy, "ipvs", "excludeCIDRs"), []any{"172.16.0.2/24"}) ||
		get(t, proxy, "conntrack", "maxPerCore") != float64(0) {
		t.Errorf("KubeProxyConfiguration:\n%s", out)
	}

	// on a VM kube-proxy keeps its conntrack default
	vm, err := RenderKubeadmConfig(s, "node1", HostEnv{CgroupVersion: 2}, "")
	if err != nil {
		t.Fatal(err)
	}
	if get(t, docs(t, vm)["KubeProxyConfiguration"], "conntrack") != nil {
		t.Errorf("conntrack set on a VM")
	}
	// the transient copy for upload-certs carries the key
	withKey, _ := RenderKubeadmConfig(s, "node1", HostEnv{}, strings.Repeat("ab", 32))
	if get(t, docs(t, withKey)["InitConfiguration"], "certificateKey") != strings.Repeat("ab", 32) {
		t.Errorf("certificate key not rendered")
	}
	if _, err := RenderKubeadmConfig(s, "nodeX", HostEnv{}, ""); err == nil {
		t.Errorf("unknown node rendered")
	}
}

func testbedCluster(t *testing.T, etcdType string, hosts int) *config.Cluster {
	t.Helper()
	y := `apiVersion: kubekey.kubesphere.io/v1alpha2
kind: Cluster
metadata: {name: kube}
spec:
  hosts:
  - {name: n1, address: 10.231.9.11, internalAddress: 10.231.9.11, user: kube, password: x}
  - {name: n2, address: 10.231.9.12, internalAddress: 10.231.9.12, user: kube, password: x}
  roleGroups:
    etcd: [n1]
    control-plane: [n1]
    worker: [n1, n2]
  controlPlaneEndpoint: {domain: lb.kubesphere.local, address: "", port: 6443}
  kubernetes: {version: v1.34.4, clusterName: cluster.local}
  etcd: {type: ` + etcdType + `}
  network: {plugin: flannel, kubePodsCIDR: 10.233.64.0/18, kubeServiceCIDR: 10.233.0.0/18}
  registry: {privateRegistry: reg.local:5000}
`
	if hosts == 1 {
		y = strings.Replace(y, "  - {name: n2, address: 10.231.9.12, internalAddress: 10.231.9.12, user: kube, password: x}\n", "", 1)
		y = strings.Replace(y, "[n1, n2]", "[n1]", 1)
	}
	c, _, err := v1alpha2.ParseWithOptions("test.yaml", []byte(y), v1alpha2.ParseOptions{SkipFileChecks: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStackedEtcdAndPrivateRegistry(t *testing.T) {
	c := testbedCluster(t, "kubeadm", 2)
	s, err := SpecFor(c, "/work", binaries.Files{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.InitAfter) != 0 || s.Etcd.Type != "kubeadm" {
		t.Errorf("stacked etcd: init after %v", s.InitAfter)
	}
	out, err := RenderKubeadmConfig(s, "n1", HostEnv{}, "")
	if err != nil {
		t.Fatal(err)
	}
	cc := docs(t, out)["ClusterConfiguration"]
	if get(t, cc, "etcd", "local", "dataDir") != "/var/lib/etcd" || get(t, cc, "etcd", "external") != nil {
		t.Errorf("stacked etcd:\n%s", out)
	}
	if get(t, cc, "imageRepository") != "reg.local:5000" || get(t, cc, "dns", "imageRepository") != "reg.local:5000/coredns" {
		t.Errorf("private registry:\n%s", out)
	}
	if _, err := RenderKubeadmConfig(s, "n2", HostEnv{}, ""); err == nil {
		t.Errorf("a worker got a kubeadm init config")
	}
}

func TestImageRepositories(t *testing.T) {
	for _, tc := range []struct{ reg, ns, repo, dns string }{
		{"", "", "registry.k8s.io", ""},
		{"reg.local:5000", "", "reg.local:5000", "reg.local:5000/coredns"},
		{"reg.local", "kubesphereio", "reg.local/kubesphereio", "reg.local/kubesphereio"},
	} {
		repo, dns := ImageRepositories(tc.reg, tc.ns)
		if repo != tc.repo || dns != tc.dns {
			t.Errorf("%q %q: got %q %q, want %q %q", tc.reg, tc.ns, repo, dns, tc.repo, tc.dns)
		}
	}
}

func TestCertSANs(t *testing.T) {
	c := testbedCluster(t, "kubeadm", 2)
	c.ControlPlaneEndpoint.Address = "10.231.9.100"
	c.Kubernetes.ApiserverCertExtraSans = []string{"api.example.com", "localhost"}
	got := CertSANs(c)
	want := []string{"lb.kubesphere.local", "10.231.9.100", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local", "localhost", "127.0.0.1", "10.233.0.1", "n1", "n1.cluster.local", "10.231.9.11", "api.example.com"}
	if !slices.Equal(got, want) {
		t.Errorf("SANs\n got %v\nwant %v", got, want)
	}
	if slices.Contains(got, "n2") || slices.Contains(got, "10.231.9.12") {
		t.Errorf("a worker is in the API server certificate")
	}
}

func TestJoinConfig(t *testing.T) {
	c := testbedCluster(t, "kubeadm", 2)
	s, err := SpecFor(c, "/work", binaries.Files{})
	if err != nil {
		t.Fatal(err)
	}
	creds := JoinCredentials{Token: "abcdef.0123456789abcdef", CACertHash: "sha256:00ff", CertificateKey: strings.Repeat("0", 64)}
	out, err := RenderJoinConfig(s, "n2", HostEnv{}, creds)
	if err != nil {
		t.Fatal(err)
	}
	jc := docs(t, out)["JoinConfiguration"]
	if get(t, jc, "discovery", "bootstrapToken", "apiServerEndpoint") != "lb.kubesphere.local:6443" ||
		get(t, jc, "discovery", "bootstrapToken", "token") != creds.Token ||
		get(t, jc, "discovery", "tlsBootstrapToken") != creds.Token ||
		!reflect.DeepEqual(get(t, jc, "discovery", "bootstrapToken", "caCertHashes"), []any{"sha256:00ff"}) ||
		get(t, jc, "nodeRegistration", "name") != "n2" ||
		get(t, jc, "controlPlane") != nil {
		t.Errorf("worker join:\n%s", out)
	}
	if a := args(t, get(t, jc, "nodeRegistration", "kubeletExtraArgs")); a["node-ip"] != "10.231.9.12" {
		t.Errorf("node-ip %v", a)
	}
	if _, err := RenderJoinConfig(s, "n2", HostEnv{}, JoinCredentials{}); err == nil {
		t.Errorf("joined without credentials")
	}

	// a second control plane joins with the certificate key and its own API endpoint
	c.Host("n2").Roles = []config.Role{config.RoleControlPlane, config.RoleWorker}
	s, _ = SpecFor(c, "/work", binaries.Files{})
	out, err = RenderJoinConfig(s, "n2", HostEnv{}, creds)
	if err != nil {
		t.Fatal(err)
	}
	jc = docs(t, out)["JoinConfiguration"]
	if get(t, jc, "controlPlane", "certificateKey") != creds.CertificateKey || get(t, jc, "controlPlane", "localAPIEndpoint", "advertiseAddress") != "10.231.9.12" {
		t.Errorf("control-plane join:\n%s", out)
	}
	creds.CertificateKey = ""
	if _, err := RenderJoinConfig(s, "n2", HostEnv{}, creds); err == nil {
		t.Errorf("a control plane joined without a certificate key")
	}
}

func TestValidateVersions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		target  string
		running Running
		err     string // "" = no error
		warn    bool
	}{
		{"new v1.37", "v1.37.2", Running{}, "", false},
		{"new v1.30 (v1beta3)", "v1.30.14", Running{}, "", false},
		{"oldest supported", "v1.28.15", Running{}, "", true},
		{"not proven", "v1.32.1", Running{}, "", true},
		{"not in the table", "v1.27.1", Running{}, "v1.27", false},
		{"unsupported new", "v1.38.0", Running{}, "v1.38", false},
		{"not a version", "1.34", Running{}, "not vX.Y.Z", false},
		{"empty", "", Running{}, "no Kubernetes version", false},
		{"patch upgrade", "v1.37.2", Running{APIServer: "v1.37.1", Kubelets: map[string]string{"n1": "v1.37.1"}}, "", false},
		{"minor upgrade", "v1.37.2", Running{APIServer: "v1.36.3", Kubelets: map[string]string{"n1": "v1.36.3"}}, "", true},
		{"two minors up", "v1.37.2", Running{APIServer: "v1.35.5"}, "one minor at a time", false},
		{"downgrade", "v1.30.13", Running{APIServer: "v1.30.14"}, "downgrades are not supported", false},
		{"kubelet newer", "v1.30.13", Running{APIServer: "v1.30.13", Kubelets: map[string]string{"n2": "v1.30.14"}}, "node n2 runs kubelet v1.30.14, newer", false},
		{"kubelet too old", "v1.37.2", Running{APIServer: "v1.37.1", Kubelets: map[string]string{"n3": "v1.33.0"}}, "more than 3 minors older", false},
		{"kubelet 3 minors older", "v1.37.2", Running{APIServer: "v1.37.1", Kubelets: map[string]string{"n3": "v1.34.0"}}, "", true},
		{"kubelet 4 minors older", "v1.30.1", Running{APIServer: "v1.30.1", Kubelets: map[string]string{"n3": "v1.26.0"}}, "more than 3 minors older", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			warn, err := ValidateVersions(tc.target, tc.running)
			if tc.err == "" && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("want an error containing %q, got %v", tc.err, err)
			}
			if tc.warn != (len(warn) > 0) {
				t.Errorf("warnings %v", warn)
			}
		})
	}
}

func TestPreflightIgnores(t *testing.T) {
	s := Spec{Version: "v1.34.4"}
	if got := PreflightIgnores(s, HostEnv{Container: "systemd-nspawn", CgroupVersion: 1}); got != nil {
		t.Errorf("v1.34 in nspawn with cgroup v1 ignores %v (measured: every check passes)", got)
	}
	s.Version = "v1.35.0"
	if got := PreflightIgnores(s, HostEnv{CgroupVersion: 1}); !slices.Equal(got, []string{"SystemVerification"}) {
		t.Errorf("v1.35 on cgroup v1: %v", got)
	}
	if got := PreflightIgnores(s, HostEnv{Container: "docker", CgroupVersion: 2}); got != nil {
		t.Errorf("v1.35 on cgroup v2: %v", got)
	}
}

func TestParseArgs(t *testing.T) {
	got, err := ParseArgs([]string{"--max-requests-inflight=800", "--profiling", "--max-requests-inflight=900", "--x=a=b"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Arg{{"max-requests-inflight", "900"}, {"profiling", "true"}, {"x", "a=b"}}
	if !slices.Equal(got, want) {
		t.Errorf("got %v", got)
	}
	if _, err := ParseArgs([]string{"max-pods=10"}); err == nil {
		t.Errorf("a value without -- was accepted")
	}
}

func TestRoleChanges(t *testing.T) {
	s := Spec{Nodes: []Node{
		{Name: "n1", ControlPlane: true, Worker: true},
		{Name: "n2", Worker: true, Labels: map[string]string{"disk": "ssd"}},
		{Name: "n3", ControlPlane: true},
	}}
	nodes := `{"items":[
 {"metadata":{"name":"n1","labels":{"node-role.kubernetes.io/control-plane":""}},"spec":{"taints":[{"key":"node-role.kubernetes.io/control-plane","effect":"NoSchedule"}]}},
 {"metadata":{"name":"n2","labels":{"disk":"hdd"}},"spec":{}},
 {"metadata":{"name":"n3","labels":{}},"spec":{"taints":[{"key":"node-role.kubernetes.io/control-plane","effect":"NoSchedule"}]}}]}`
	got, err := RoleChanges(s, []byte(nodes))
	if err != nil {
		t.Fatal(err)
	}
	want := []RoleChange{
		{Node: "n1", Label: "node-role.kubernetes.io/worker="},
		{Node: "n1", Untaint: "node-role.kubernetes.io/control-plane:NoSchedule"},
		{Node: "n2", Label: "disk=ssd"},
		{Node: "n2", Label: "node-role.kubernetes.io/worker="},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	converged := `{"items":[
 {"metadata":{"name":"n1","labels":{"node-role.kubernetes.io/worker":""}},"spec":{}},
 {"metadata":{"name":"n2","labels":{"disk":"ssd","node-role.kubernetes.io/worker":""}},"spec":{}},
 {"metadata":{"name":"n3","labels":{}},"spec":{"taints":[{"key":"node-role.kubernetes.io/control-plane","effect":"NoSchedule"}]}}]}`
	if got, err := RoleChanges(s, []byte(converged)); err != nil || len(got) != 0 {
		t.Errorf("converged nodes: %v %v", got, err)
	}
	if _, err := RoleChanges(s, []byte(`{"items":[]}`)); err == nil || !strings.Contains(err.Error(), "n1, n2, n3") {
		t.Errorf("missing nodes: %v", err)
	}
}

func TestRewriteServerAndLocalKubeconfig(t *testing.T) {
	admin := []byte(adminConf)
	out, err := RewriteServer(admin, "https://10.231.9.11:6443")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if get(t, m, "clusters", 0, "cluster", "server") != "https://10.231.9.11:6443" || get(t, m, "users", 0, "user", "client-key-data") != "R0hJ" {
		t.Errorf("rewritten:\n%s", out)
	}
	p := filepath.Join(t.TempDir(), "sub", "config-kube")
	if wrote, err := WriteLocalKubeconfig(p, out); err != nil || !wrote {
		t.Fatalf("first write: %v %v", wrote, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	if wrote, err := WriteLocalKubeconfig(p, out); err != nil || wrote {
		t.Errorf("second write changed: %v %v", wrote, err)
	}
	os.Chmod(p, 0o644)
	if localKubeconfigCurrent(p, out) {
		t.Errorf("a world-readable kubeconfig counts as current")
	}
	if wrote, _ := WriteLocalKubeconfig(p, out); !wrote {
		t.Errorf("mode not repaired")
	}
	if _, err := RewriteServer([]byte("kind: Config\n"), "x"); err == nil {
		t.Errorf("a kubeconfig without clusters was accepted")
	}
}

func TestCACertHash(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubernetes"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	sum := sha256.Sum256(spki)
	got, err := CACertHash(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if err != nil || got != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("hash %s %v", got, err)
	}
	if _, err := CACertHash([]byte("nope")); err == nil {
		t.Errorf("garbage hashed")
	}
}

func TestTokenShape(t *testing.T) {
	for range 20 {
		s := randomString(16)
		if len(s) != 16 || strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
			t.Fatalf("bad token part %q", s)
		}
	}
	sec := string(bootstrapTokenSecret("abcdef", "0123456789abcdef", time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)))
	for _, want := range []string{"name: bootstrap-token-abcdef", "type: bootstrap.kubernetes.io/token", "token-secret: 0123456789abcdef", "expiration: 2030-01-02T03:04:05Z"} {
		if !strings.Contains(sec, want) {
			t.Errorf("secret lacks %q:\n%s", want, sec)
		}
	}
}

func TestKubeletUnitFiles(t *testing.T) {
	unit, err := RenderKubeletUnit()
	if err != nil || !strings.Contains(string(unit), "ExecStart=/usr/local/bin/kubelet\n") {
		t.Errorf("kubelet.service: %v\n%s", err, unit)
	}
	drop, err := RenderKubeletDropIn()
	if err != nil || !strings.Contains(string(drop), "ExecStart=/usr/local/bin/kubelet $KUBELET_KUBECONFIG_ARGS") ||
		!strings.Contains(string(drop), "EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env") {
		t.Errorf("10-kubeadm.conf: %v\n%s", err, drop)
	}
}

func TestTasksWiring(t *testing.T) {
	c := testbedCluster(t, "kubeadm", 2)
	s, err := SpecFor(c, "/work", binaries.Files{})
	if err != nil {
		t.Fatal(err)
	}
	tasks := Tasks(s)
	var names []string
	for _, tk := range tasks {
		names = append(names, tk.Name)
		if tk.Check == nil || tk.Run == nil {
			t.Errorf("%s lacks Check or Run", tk.Name)
		}
	}
	want := []string{TaskInstall, TaskKubeletService, TaskKubeadmConfig, TaskInit, TaskJoinCredentials, TaskEtcdConfigMap, TaskJoinControlPlane, TaskJoinWorker, TaskKubeconfig, TaskNodeRoles}
	if !slices.Equal(names, want) {
		t.Errorf("tasks %v", names)
	}
	if !slices.Contains(tasks[3].After, "runtime/ready") {
		t.Errorf("init does not wait for the runtime: %v", tasks[3].After)
	}
	// control planes join once the ConfigMap they read lists every etcd member
	if !slices.Contains(tasks[6].After, TaskEtcdConfigMap) {
		t.Errorf("control planes join before %s: %v", TaskEtcdConfigMap, tasks[6].After)
	}
}

// TestKubeletEvictionDefaults: kk's eviction thresholds, and a Cluster file's evictionHard
// changing one of them while the others stay.
func TestKubeletEvictionDefaults(t *testing.T) {
	s := Spec{Version: "v1.34.4", CRISocket: "unix:///run/containerd/containerd.sock"}
	m, err := KubeletConfiguration(s, HostEnv{})
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := m["evictionHard"].(map[string]any)
	if ev["imagefs.available"] != "5%" || ev["memory.available"] != "5%" || ev["nodefs.available"] != "5%" {
		t.Errorf("default evictionHard: %v", ev)
	}
	s.KubeletOverrides = map[string]any{"evictionHard": map[string]any{"memory.available": "500Mi"}}
	if m, err = KubeletConfiguration(s, HostEnv{}); err != nil {
		t.Fatal(err)
	}
	ev, _ = m["evictionHard"].(map[string]any)
	if ev["memory.available"] != "500Mi" || ev["imagefs.available"] != "5%" {
		t.Errorf("evictionHard with an override: %v", ev)
	}
}

// Below v1.31 kubeadm reads v1beta3: the same settings, every flag list written as a map.
func TestKubeadmConfigV1beta3(t *testing.T) {
	c := loadSample(t, "kubekey-calico.yaml")
	for _, tc := range []struct{ version, api string }{{"v1.30.14", "kubeadm.k8s.io/v1beta3"}, {"v1.28.15", "kubeadm.k8s.io/v1beta3"}, {"v1.31.14", "kubeadm.k8s.io/v1beta4"}} {
		c.Kubernetes.Version = tc.version
		s, err := SpecFor(c, t.TempDir(), binaries.Files{})
		if err != nil {
			t.Fatal(err)
		}
		out, err := RenderKubeadmConfig(s, "node1", HostEnv{}, "")
		if err != nil {
			t.Fatal(err)
		}
		d := docs(t, out)
		for _, kind := range []string{"InitConfiguration", "ClusterConfiguration"} {
			if d[kind]["apiVersion"] != tc.api {
				t.Errorf("%s: %s apiVersion %v", tc.version, kind, d[kind]["apiVersion"])
			}
		}
		args := get(t, d["ClusterConfiguration"], "apiServer", "extraArgs")
		kubeletArgs := get(t, d["InitConfiguration"], "nodeRegistration", "kubeletExtraArgs")
		if tc.api == "kubeadm.k8s.io/v1beta3" {
			m, ok := args.(map[string]any)
			if !ok || m["feature-gates"] == nil {
				t.Errorf("%s: apiServer.extraArgs %#v, want a map with feature-gates", tc.version, args)
			}
			if km, ok := kubeletArgs.(map[string]any); !ok || km["node-ip"] != "172.16.0.2" {
				t.Errorf("%s: kubeletExtraArgs %#v", tc.version, kubeletArgs)
			}
		} else if _, ok := args.([]any); !ok {
			t.Errorf("%s: apiServer.extraArgs %#v, want a list", tc.version, args)
		}
		creds := JoinCredentials{Token: "abcdef.0123456789abcdef", CertificateKey: strings.Repeat("a", 64), CACertHash: "sha256:" + strings.Repeat("b", 64)}
		jout, err := RenderJoinConfig(s, "node2", HostEnv{}, creds)
		if err != nil {
			t.Fatal(err)
		}
		if j := docs(t, jout)["JoinConfiguration"]; j["apiVersion"] != tc.api {
			t.Errorf("%s: join apiVersion %v", tc.version, j["apiVersion"])
		}
	}
}

// kubernetes.audit: kube-apiserver gets the policy and log flags and the two host paths, in
// both configuration APIs, and the user's own flag of the same name still wins.
func TestKubeadmConfigAudit(t *testing.T) {
	c := loadSample(t, "kubekey-calico.yaml")
	c.Kubernetes.Audit = true
	c.Kubernetes.ApiserverArgs = append(c.Kubernetes.ApiserverArgs, "--audit-log-maxage=7")
	for _, v := range []string{"v1.30.14", "v1.37.2"} {
		c.Kubernetes.Version = v
		s, err := SpecFor(c, t.TempDir(), binaries.Files{})
		if err != nil {
			t.Fatal(err)
		}
		if !s.Audit {
			t.Fatalf("%s: audit off in the spec", v)
		}
		out, err := RenderKubeadmConfig(s, "node1", HostEnv{}, "")
		if err != nil {
			t.Fatal(err)
		}
		text := string(out)
		for _, want := range []string{AuditPolicy, AuditLogDir + "/audit.log", "audit-log-maxbackup", "mountPath: " + AuditLogDir, "hostPath: /etc/kubernetes/audit"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s: no %q in\n%s", v, want, text)
			}
		}
		if strings.Contains(text, `"30"`) || strings.Contains(text, "value: \"30\"") || !strings.Contains(text, "7") {
			t.Errorf("%s: the user's --audit-log-maxage=7 does not win:\n%s", v, text)
		}
	}
	if p, err := RenderAuditPolicy(); err != nil || !strings.Contains(string(p), "kind: Policy") {
		t.Errorf("audit policy: %v\n%s", err, p)
	}
}

// kube-apiserver serves on for APIServerShutdownDelay once told to stop (the load balancers
// take it out first); the user's own --shutdown-delay-duration wins.
func TestKubeadmConfigShutdownDelay(t *testing.T) {
	c := loadSample(t, "kubekey-calico.yaml")
	c.Kubernetes.Version = "v1.37.2"
	for _, tc := range []struct{ user, want string }{{"", APIServerShutdownDelay.String()}, {"--shutdown-delay-duration=20s", "20s"}} {
		c.Kubernetes.ApiserverArgs = nil
		if tc.user != "" {
			c.Kubernetes.ApiserverArgs = []string{tc.user}
		}
		s, err := SpecFor(c, t.TempDir(), binaries.Files{})
		if err != nil {
			t.Fatal(err)
		}
		out, err := RenderKubeadmConfig(s, "node1", HostEnv{}, "")
		if err != nil {
			t.Fatal(err)
		}
		if a := args(t, get(t, docs(t, out)["ClusterConfiguration"], "apiServer", "extraArgs")); a["shutdown-delay-duration"] != tc.want {
			t.Errorf("user args %q: apiServer extraArgs %v, want shutdown-delay-duration %s", tc.user, a, tc.want)
		}
	}
}

// kubernetes.certificateValidityPeriod is v1beta4's ClusterConfiguration field (kubeadm certs
// renew reads it back from kubeadm-config); v1beta3 has none, so it is an error there.
func TestKubeadmConfigCertificateValidity(t *testing.T) {
	c := loadSample(t, "kubekey-calico.yaml")
	c.Kubernetes.CertificateValidity = 3 * time.Hour
	c.Kubernetes.Version = "v1.37.2"
	s, err := SpecFor(c, t.TempDir(), binaries.Files{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := RenderKubeadmConfig(s, "node1", HostEnv{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := docs(t, out)["ClusterConfiguration"]["certificateValidityPeriod"]; got != "3h0m0s" {
		t.Errorf("certificateValidityPeriod %v, want 3h0m0s", got)
	}
	c.Kubernetes.Version = "v1.30.14"
	if s, err = SpecFor(c, t.TempDir(), binaries.Files{}); err != nil {
		t.Fatal(err)
	}
	if _, err := RenderKubeadmConfig(s, "node1", HostEnv{}, ""); err == nil || !strings.Contains(err.Error(), "v1beta4") {
		t.Errorf("v1.30 with a certificate lifetime: %v, want an error naming v1beta4", err)
	}
	c.Kubernetes.CertificateValidity = 0
	if s, err = SpecFor(c, t.TempDir(), binaries.Files{}); err != nil {
		t.Fatal(err)
	}
	out, _ = RenderKubeadmConfig(s, "node1", HostEnv{}, "")
	if _, ok := docs(t, out)["ClusterConfiguration"]["certificateValidityPeriod"]; ok {
		t.Error("certificateValidityPeriod written without a lifetime in the config")
	}
}

// An upgrade from v1.30 (kubeadm v1beta3) to v1.31 (v1beta4): the kubeadm configuration kk
// writes after the upgrade says the same as before it, flag maps become name/value lists
// holding the same flags, and everything else is equal but the version.
func TestUpgradeAcrossKubeadmAPIBoundary(t *testing.T) {
	c := loadSample(t, "kubekey-calico.yaml")
	render := func(v string) map[string]map[string]any {
		c.Kubernetes.Version = v
		s, err := SpecFor(c, t.TempDir(), binaries.Files{})
		if err != nil {
			t.Fatal(err)
		}
		out, err := RenderKubeadmConfig(s, "node1", HostEnv{}, "")
		if err != nil {
			t.Fatal(err)
		}
		return docs(t, out)
	}
	before, after := render("v1.30.14"), render("v1.31.0")
	// v1beta4's list form, back to v1beta3's map form
	var asMaps func(v any) any
	asMaps = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			out := map[string]any{}
			for k, e := range x {
				if l, ok := e.([]any); ok && argKeys[k] {
					m := map[string]any{}
					for _, a := range l {
						am := a.(map[string]any)
						m[am["name"].(string)] = am["value"]
					}
					out[k] = m
					continue
				}
				out[k] = asMaps(e)
			}
			return out
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = asMaps(e)
			}
			return out
		}
		return v
	}
	for _, kind := range []string{"InitConfiguration", "ClusterConfiguration", "KubeletConfiguration", "KubeProxyConfiguration"} {
		b, a := before[kind], asMaps(after[kind]).(map[string]any)
		if b == nil || a == nil {
			t.Fatalf("%s missing on one side of the boundary", kind)
		}
		for _, m := range []map[string]any{b, a} {
			delete(m, "apiVersion")
			delete(m, "kubernetesVersion")
		}
		bj, _ := json.Marshal(b)
		aj, _ := json.Marshal(a)
		if string(bj) != string(aj) {
			t.Errorf("%s differs across the v1beta3/v1beta4 boundary beyond the API form:\nv1.30: %s\nv1.31: %s", kind, bj, aj)
		}
	}
}
