package loadbalancer

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/versions"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/pipeline/connector/connectortest"
)

// cluster returns n control planes (cp1..) and two pure workers (w1, w2) plus a control
// plane that is also a worker when n > 1 (cp2).
func cluster(lb string, n int) *config.Cluster {
	c := &config.Cluster{
		ControlPlaneEndpoint: config.Endpoint{InternalLoadbalancer: lb, Domain: "lb.kubesphere.local", Port: 6443},
		Kubernetes:           config.Kubernetes{Version: "v1.34.4"},
	}
	for i := 1; i <= n; i++ {
		roles := []config.Role{config.RoleControlPlane, config.RoleEtcd}
		if i == 2 {
			roles = append(roles, config.RoleWorker)
		}
		name := "cp" + string(rune('0'+i))
		c.Hosts = append(c.Hosts, &config.Host{Name: name, Address: "10.0.0." + string(rune('0'+i)), InternalAddress: "10.0.0." + string(rune('0'+i)), Roles: roles})
	}
	c.Hosts = append(c.Hosts,
		&config.Host{Name: "w1", Address: "10.0.1.1", InternalAddress: "10.0.1.1", Roles: []config.Role{config.RoleWorker}},
		&config.Host{Name: "w2", Address: "10.0.1.2", InternalAddress: "10.0.1.2", Roles: []config.Role{config.RoleWorker}})
	if lb == KubeVIP {
		c.ControlPlaneEndpoint.Address = "10.0.0.100"
	}
	return c
}

func TestHAProxyConfig(t *testing.T) {
	for _, n := range []int{1, 3} {
		s := SpecFor(cluster(HAProxy, n))
		if strings.Join(s.HAProxy.Hosts, ",") != "w1,w2" {
			t.Errorf("%d control planes: haproxy hosts %v, want the pure workers w1,w2", n, s.HAProxy.Hosts)
		}
		cfg, err := RenderHAProxyConfig(s.HAProxy)
		if err != nil {
			t.Fatal(err)
		}
		text := string(cfg)
		var servers []string
		for _, l := range strings.Split(text, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == "server" {
				servers = append(servers, strings.Join(f[1:], " "))
			}
		}
		if len(servers) != 2*n {
			t.Fatalf("%d control planes: %d server lines, want %d (checked, then the same unchecked as backups):\n%s", n, len(servers), 2*n, text)
		}
		for i, sv := range servers {
			cp := "cp" + string(rune('1'+i%n)) + " 10.0.0." + string(rune('1'+i%n)) + ":6443"
			want := cp + " check check-ssl verify none"
			if i >= n {
				want = strings.Replace(cp, " ", "-unchecked ", 1) + " backup"
			}
			if sv != want {
				t.Errorf("server line %q, want %q", sv, want)
			}
		}
		for _, want := range []string{
			"bind 127.0.0.1:6443", "bind 127.0.0.1:8081", "monitor-uri /healthz", "mode tcp",
			"option httpchk GET /readyz", "http-check expect status 200", "fall 2 rise 2", "inter 2s", "option allbackups",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("%d control planes: haproxy.cfg lacks %q:\n%s", n, want, text)
			}
		}
		// a server marked down keeps its sessions: a stopping API server ends them itself
		if strings.Contains(text, "shutdown-sessions") {
			t.Errorf("%d control planes: haproxy.cfg cuts the sessions of a server marked down:\n%s", n, text)
		}
	}
}

func TestHAProxyConfigPort(t *testing.T) {
	c := cluster(HAProxy, 1)
	c.ControlPlaneEndpoint.Port = 7443
	cfg, err := RenderHAProxyConfig(SpecFor(c).HAProxy)
	if err != nil {
		t.Fatal(err)
	}
	// the frontend follows the endpoint port, the backends stay on the API server's port
	if !strings.Contains(string(cfg), "bind 127.0.0.1:7443") || !strings.Contains(string(cfg), "10.0.0.1:6443 check") {
		t.Errorf("haproxy.cfg:\n%s", cfg)
	}
	if _, err := RenderHAProxyConfig(HAProxySpec{Bind: "127.0.0.1", Port: 6443, MonitorPort: 8081}); err == nil {
		t.Error("a config without a control plane rendered")
	}
}

type pod struct {
	Metadata struct {
		Name        string
		Namespace   string
		Annotations map[string]string
	}
	Spec struct {
		HostNetwork       bool `json:"hostNetwork"`
		PriorityClassName string
		HostAliases       []struct {
			IP        string
			Hostnames []string
		} `json:"hostAliases"`
		Containers []struct {
			Name          string
			Image         string
			Args          []string
			Env           []struct{ Name, Value string }
			LivenessProbe struct {
				HTTPGet struct {
					Host string
					Path string
					Port int
				} `json:"httpGet"`
			} `json:"livenessProbe"`
			VolumeMounts []struct{ Name, MountPath string } `json:"volumeMounts"`
		}
		Volumes []struct {
			Name     string
			HostPath struct{ Path, Type string } `json:"hostPath"`
		}
	}
}

func parsePod(t *testing.T, data []byte) pod {
	t.Helper()
	var p pod
	if err := yaml.Unmarshal(data, &p); err != nil {
		t.Fatalf("manifest is not YAML: %v\n%s", err, data)
	}
	if len(p.Spec.Containers) != 1 {
		t.Fatalf("manifest has %d containers:\n%s", len(p.Spec.Containers), data)
	}
	return p
}

func TestHAProxyManifest(t *testing.T) {
	s := SpecFor(cluster(HAProxy, 3))
	data, err := RenderHAProxyManifest(s.HAProxy)
	if err != nil {
		t.Fatal(err)
	}
	p := parsePod(t, data)
	cfg, _ := RenderHAProxyConfig(s.HAProxy)
	c := p.Spec.Containers[0]
	switch {
	case p.Metadata.Name != "haproxy" || p.Metadata.Namespace != "kube-system":
		t.Errorf("pod %s/%s", p.Metadata.Namespace, p.Metadata.Name)
	case !p.Spec.HostNetwork:
		t.Error("not hostNetwork")
	case p.Spec.PriorityClassName != "system-node-critical":
		t.Errorf("priorityClassName %q", p.Spec.PriorityClassName)
	case c.Image != "docker.io/library/haproxy:2.9.6-alpine":
		t.Errorf("image %q", c.Image)
	case c.LivenessProbe.HTTPGet.Path != "/healthz" || c.LivenessProbe.HTTPGet.Port != 8081 || c.LivenessProbe.HTTPGet.Host != "127.0.0.1":
		t.Errorf("liveness probe %+v", c.LivenessProbe)
	case len(p.Spec.Volumes) != 1 || p.Spec.Volumes[0].HostPath.Path != "/etc/kubekey/haproxy":
		t.Errorf("volumes %+v", p.Spec.Volumes)
	case len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/usr/local/etc/haproxy/":
		t.Errorf("mounts %+v", c.VolumeMounts)
	case p.Metadata.Annotations["kk.io/haproxy-cfg-sha256"] != sha256hex(cfg):
		t.Errorf("the manifest does not carry the config's checksum: %v", p.Metadata.Annotations)
	}
}

func TestImageUnderPrivateRegistry(t *testing.T) {
	for _, tc := range []struct {
		reg, ns, upstream, want string
	}{
		{"", "", haproxyImage, "docker.io/library/haproxy:2.9.6-alpine"},
		{"reg.local:5000", "", haproxyImage, "reg.local:5000/library/haproxy:2.9.6-alpine"},
		{"reg.local:5000", "kubesphereio", haproxyImage, "reg.local:5000/kubesphereio/haproxy:2.9.6-alpine"},
		{"reg.local", "", kubeVIPImage, "reg.local/kube-vip/kube-vip:" + versions.DefaultAddons().KubeVIP},
		{"reg.local/", "mirror", kubeVIPImage, "reg.local/mirror/kube-vip:" + versions.DefaultAddons().KubeVIP},
	} {
		got := imageRef(config.Registry{PrivateRegistry: tc.reg, NamespaceOverride: tc.ns}, tc.upstream)
		if got != tc.want {
			t.Errorf("%s under %q/%q = %q, want %q", tc.upstream, tc.reg, tc.ns, got, tc.want)
		}
	}
	c := cluster(HAProxy, 1)
	c.Registry.PrivateRegistry = "reg.local"
	if got := SpecFor(c).HAProxy.Image; got != "reg.local/library/haproxy:2.9.6-alpine" {
		t.Errorf("SpecFor image %q", got)
	}
}

func TestEndpointAddress(t *testing.T) {
	type want struct{ cp1, cp2, w1, unknown string }
	ext := cluster(None, 3)
	ext.ControlPlaneEndpoint.Address = "10.9.9.9" // an external load balancer
	for name, tc := range map[string]struct {
		c    *config.Cluster
		want want
	}{
		"haproxy":  {cluster(HAProxy, 3), want{"10.0.0.1", "10.0.0.2", "127.0.0.1", ""}},
		"kube-vip": {cluster(KubeVIP, 3), want{"10.0.0.100", "10.0.0.100", "10.0.0.100", ""}},
		"none":     {cluster(None, 3), want{"10.0.0.1", "10.0.0.1", "10.0.0.1", ""}},
		"external": {ext, want{"10.9.9.9", "10.9.9.9", "10.9.9.9", ""}},
	} {
		got := want{EndpointAddress(tc.c, "cp1"), EndpointAddress(tc.c, "cp2"), EndpointAddress(tc.c, "w1"), EndpointAddress(tc.c, "nope")}
		if got != tc.want {
			t.Errorf("%s: EndpointAddress cp1, cp2 (also a worker), w1, unknown = %+v, want %+v", name, got, tc.want)
		}
	}
	// while joining, a haproxy-mode control plane maps the domain to the first one
	c := cluster(HAProxy, 3)
	if got := JoinEndpointAddress(c, "cp3"); got != "10.0.0.1" {
		t.Errorf("JoinEndpointAddress(cp3) = %q", got)
	}
	if got := JoinEndpointAddress(c, "w1"); got != "10.0.0.1" {
		t.Errorf("JoinEndpointAddress(w1) = %q", got)
	}
	if got := strings.Join(CertSANs(c), ","); got != "127.0.0.1,localhost" {
		t.Errorf("haproxy CertSANs %q", got)
	}
	if got := strings.Join(CertSANs(cluster(KubeVIP, 3)), ","); got != "10.0.0.100" {
		t.Errorf("kube-vip CertSANs %q", got)
	}
}

func env(p pod) map[string]string {
	m := map[string]string{}
	for _, e := range p.Spec.Containers[0].Env {
		m[e.Name] = e.Value
	}
	return m
}

func TestKubeVIPManifest(t *testing.T) {
	s := SpecFor(cluster(KubeVIP, 3))
	k := s.KubeVIP
	if k.Mode != "ARP" || k.Image != kubeVIPImage || k.FirstHost != "cp1" || len(k.Hosts) != 3 || !k.SuperAdminOnInit {
		t.Fatalf("spec %+v", k)
	}
	data, err := RenderKubeVIPManifest(k, "cp1", "eth0", KubeVIPKubeconfig(k, "cp1", false))
	if err != nil {
		t.Fatal(err)
	}
	p := parsePod(t, data)
	e := env(p)
	for name, want := range map[string]string{
		"address": "10.0.0.100", "vip_interface": "eth0", "vip_arp": "true", "vip_leaderelection": "true",
		"cp_enable": "true", "port": "6443", "vip_subnet": "32",
	} {
		if e[name] != want {
			t.Errorf("ARP env %s = %q, want %q", name, e[name], want)
		}
	}
	if _, ok := e["bgp_enable"]; ok {
		t.Error("ARP manifest enables BGP")
	}
	if !p.Spec.HostNetwork || p.Spec.Containers[0].Image != kubeVIPImage || p.Spec.Containers[0].Args[0] != "manager" {
		t.Errorf("pod %+v", p.Spec)
	}
	if len(p.Spec.HostAliases) != 1 || p.Spec.HostAliases[0].IP != "127.0.0.1" || p.Spec.HostAliases[0].Hostnames[0] != "kubernetes" {
		t.Errorf("host aliases %+v", p.Spec.HostAliases)
	}
	if p.Spec.Volumes[0].HostPath.Path != "/etc/kubernetes/super-admin.conf" {
		t.Errorf("first control plane before init mounts %q", p.Spec.Volumes[0].HostPath.Path)
	}
	// after init, and on the other control planes: admin.conf
	for _, tc := range []struct {
		host  string
		admin bool
	}{{"cp1", true}, {"cp2", false}, {"cp3", true}} {
		if got := KubeVIPKubeconfig(k, tc.host, tc.admin); got != "/etc/kubernetes/admin.conf" {
			t.Errorf("%s (admin.conf exists: %v) mounts %s", tc.host, tc.admin, got)
		}
	}
	old := k
	old.SuperAdminOnInit = false
	if got := KubeVIPKubeconfig(old, "cp1", false); got != "/etc/kubernetes/admin.conf" {
		t.Errorf("Kubernetes < 1.29 mounts %s", got)
	}

	// BGP: every control plane announces, peers are the other control planes
	c := cluster(KubeVIP, 3)
	c.ControlPlaneEndpoint.KubeVIPMode = "BGP"
	k = SpecFor(c).KubeVIP
	data, err = RenderKubeVIPManifest(k, "cp2", "ens3", "/etc/kubernetes/admin.conf")
	if err != nil {
		t.Fatal(err)
	}
	e = env(parsePod(t, data))
	for name, want := range map[string]string{
		"bgp_enable": "true", "bgp_routerid": "10.0.0.2", "bgp_as": "65000", "bgp_peeras": "65000",
		"bgp_peers": "10.0.0.1:65000::false,10.0.0.3:65000::false", "vip_interface": "ens3",
	} {
		if e[name] != want {
			t.Errorf("BGP env %s = %q, want %q", name, e[name], want)
		}
	}
	if _, ok := e["vip_arp"]; ok {
		t.Error("BGP manifest enables ARP")
	}

	if _, err := RenderKubeVIPManifest(k, "cp1", "", "x"); err == nil {
		t.Error("no interface accepted")
	}
	k.Address = "lb.example"
	if _, err := RenderKubeVIPManifest(k, "cp1", "eth0", "x"); err == nil {
		t.Error("a VIP that is not an IP accepted")
	}
}

func TestNoneHasNoTasks(t *testing.T) {
	if ts := Tasks(SpecFor(cluster(None, 3))); len(ts) != 0 {
		t.Errorf("no load balancer: %d tasks", len(ts))
	}
}

// TestTasksConverge runs the tasks on this machine (files under a temp dir) twice: the
// first run writes every file, the second changes nothing; a changed file is rewritten.
func TestTasksConverge(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the local connector runs sudo tasks directly only as root: run the tests as root")
	}
	dir := t.TempDir()
	hc := cluster(HAProxy, 3)
	hs := SpecFor(hc)
	hs.HAProxy.ConfigDir = filepath.Join(dir, "haproxy")
	hs.HAProxy.ManifestDir = filepath.Join(dir, "manifests")
	vs := SpecFor(cluster(KubeVIP, 3))
	vs.KubeVIP.Interface = "eth0"
	vs.KubeVIP.ManifestDir = filepath.Join(dir, "vip-manifests")
	vs.KubeVIP.Hosts = vs.KubeVIP.Hosts[:1] // one control plane on this machine

	tasks := append(Tasks(hs), Tasks(vs)...)
	tasks = append([]pipeline.Task{{Name: facts.TaskName, Hosts: pipeline.AllHosts(), ReadOnly: true,
		Run: func(context.Context, *pipeline.Target) (bool, error) { return false, nil }}}, tasks...)
	run := func() *pipeline.Report {
		t.Helper()
		var hosts []*pipeline.Host
		for _, n := range []string{"cp1", "w1"} {
			hosts = append(hosts, pipeline.NewHost(n, nil, func(context.Context) (connector.Connector, error) { return connector.NewLocal(), nil }))
		}
		g, err := pipeline.NewGraph(tasks, hosts)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := pipeline.Run(context.Background(), g, pipeline.Options{Name: "lb"})
		if err != nil {
			t.Fatal(err)
		}
		if err := rep.Err(context.Background()); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	// w1 writes haproxy.cfg and haproxy.yaml, cp1 kube-vip.yaml
	if rep := run(); rep.Count(pipeline.StatusChanged) != 3 {
		t.Fatalf("first run changed %d, want 3: %s", rep.Count(pipeline.StatusChanged), rep.Totals())
	}
	cfg, _ := RenderHAProxyConfig(hs.HAProxy)
	if got, _ := os.ReadFile(filepath.Join(dir, "haproxy/haproxy.cfg")); string(got) != string(cfg) {
		t.Errorf("haproxy.cfg on disk differs from the rendered one")
	}
	for _, f := range []string{"manifests/haproxy.yaml", "vip-manifests/kube-vip.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	if rep := run(); rep.Count(pipeline.StatusChanged) != 0 {
		t.Errorf("second run changed %d: %s", rep.Count(pipeline.StatusChanged), rep.Totals())
	}
	os.WriteFile(filepath.Join(dir, "haproxy/haproxy.cfg"), []byte("edited\n"), 0o644)
	if rep := run(); rep.Count(pipeline.StatusChanged) != 1 {
		t.Errorf("after an edit, changed %d, want 1: %s", rep.Count(pipeline.StatusChanged), rep.Totals())
	}
}

// TestManifestsAreValidPods decodes every manifest strictly into a core/v1 Pod: an
// unknown or misspelt field is an error.
func TestManifestsAreValidPods(t *testing.T) {
	h, err := RenderHAProxyManifest(SpecFor(cluster(HAProxy, 3)).HAProxy)
	if err != nil {
		t.Fatal(err)
	}
	k := SpecFor(cluster(KubeVIP, 3)).KubeVIP
	arp, err := RenderKubeVIPManifest(k, "cp1", "eth0", "/etc/kubernetes/admin.conf")
	if err != nil {
		t.Fatal(err)
	}
	k.Mode = "BGP"
	bgp, err := RenderKubeVIPManifest(k, "cp1", "eth0", "/etc/kubernetes/admin.conf")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"haproxy": h, "kube-vip ARP": arp, "kube-vip BGP": bgp} {
		var p corev1.Pod
		if err := yaml.UnmarshalStrict(data, &p); err != nil {
			t.Errorf("%s: not a valid Pod: %v\n%s", name, err, data)
			continue
		}
		if p.Kind != "Pod" || p.APIVersion != "v1" || !p.Spec.HostNetwork || p.Spec.PriorityClassName != "system-node-critical" {
			t.Errorf("%s: %s/%s hostNetwork=%v priority=%q", name, p.APIVersion, p.Kind, p.Spec.HostNetwork, p.Spec.PriorityClassName)
		}
	}
}

// TestKubeletServerCommands runs the kubelet.conf check and rewrite on a copy here.

// The images of the version table, the ones `kk create manifest` bundles.
var (
	haproxyImage = versions.Latest().HAProxyImage()
	kubeVIPImage = versions.Latest().KubeVIPImage()
)

// TestKubeVIPTasksOrder: before kubeadm, kube-vip goes on the first control plane only (a
// joining control plane's manifest directory must be empty for kubeadm join's preflight);
// after init it switches there to admin.conf, after each join it goes on that control plane.
func TestKubeVIPTasksOrder(t *testing.T) {
	s := SpecFor(cluster(KubeVIP, 3))
	hostsOf := func(task pipeline.Task) []string {
		var all []*pipeline.Host
		for _, h := range []string{"cp1", "cp2", "cp3", "w1", "w2"} {
			all = append(all, pipeline.NewHost(h, nil, nil))
		}
		var out []string
		for _, h := range task.Hosts.Select(all) {
			out = append(out, h.Name)
		}
		return out
	}
	pre := Tasks(s)
	if len(pre) != 1 || pre[0].Name != TaskKubeVIP || !slices.Equal(hostsOf(pre[0]), []string{"cp1"}) {
		t.Fatalf("before kubeadm: %d tasks, %s on %v", len(pre), pre[0].Name, hostsOf(pre[0]))
	}
	post := KubeVIPPostTasks(s, []string{"init"}, []string{"join-cp"})
	if len(post) != 2 {
		t.Fatalf("after kubeadm: %d tasks, want 2", len(post))
	}
	for i, want := range []struct {
		name  string
		hosts []string
		after []string
	}{{TaskKubeVIPAdmin, []string{"cp1"}, []string{"init"}}, {TaskKubeVIPJoined, []string{"cp2", "cp3"}, []string{"join-cp"}}} {
		if post[i].Name != want.name || !slices.Equal(hostsOf(post[i]), want.hosts) || !slices.Equal(post[i].After, want.after) {
			t.Errorf("task %d: %s on %v after %v, want %s on %v after %v", i, post[i].Name, hostsOf(post[i]), post[i].After, want.name, want.hosts, want.after)
		}
	}
	// one control plane: only the switch
	if post := KubeVIPPostTasks(SpecFor(cluster(KubeVIP, 1)), nil, nil); len(post) != 1 || post[0].Name != TaskKubeVIPAdmin {
		t.Errorf("one control plane: %d tasks", len(post))
	}
	if post := KubeVIPPostTasks(SpecFor(cluster(HAProxy, 3)), nil, nil); len(post) != 0 {
		t.Errorf("haproxy: %d kube-vip tasks", len(post))
	}
}

// TestWaitKubeVIPRestarted runs the wait with a stand-in crictl and a TCP listener as the
// VIP: it succeeds once a kube-vip container other than the old one runs and the VIP
// accepts connections, and fails saying why while the old one still runs.
func TestWaitKubeVIPRestarted(t *testing.T) {
	dir := t.TempDir()
	// crictl prints the ID in $dir/id (the "running kube-vip container")
	if err := os.WriteFile(filepath.Join(dir, "crictl"), []byte("#!/bin/sh\ncat "+filepath.Join(dir, "id")+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	k := KubeVIPSpec{Address: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port}
	run := func(id, old string) (string, error) {
		if err := os.WriteFile(filepath.Join(dir, "id"), []byte(id), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("bash", "-c", WaitKubeVIPRestarted(k, old, 1))
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("bbb\n", "aaa"); err != nil {
		t.Errorf("new container, VIP up: %v: %s", err, out)
	}
	if out, err := run("", ""); err == nil || !strings.Contains(out, "running container: none") {
		t.Errorf("no container: %v: %s", err, out)
	}
	if out, err := run("aaa\n", "aaa"); err == nil || !strings.Contains(out, "did not come back") {
		t.Errorf("old container still running: %v: %s", err, out)
	}
	l.Close()
	if out, err := run("bbb\n", "aaa"); err == nil {
		t.Errorf("VIP down accepted: %s", out)
	}
}

// TestKubeVIPKubeconfigBeforeAndAfterInit: on a first control plane where admin.conf exists
// (after kubeadm init, or left by an init that was interrupted), the manifest task mounts
// admin.conf, while the manifest written right before kubeadm init mounts super-admin.conf.
func TestKubeVIPKubeconfigBeforeAndAfterInit(t *testing.T) {
	s := SpecFor(cluster(KubeVIP, 3))
	s.KubeVIP.Interface = "eth0"
	mounted := func(task pipeline.Task) string {
		t.Helper()
		// admin.conf exists ([ -s ... ] answers 0); the manifest is not there yet (sha256sum)
		conn := &connectortest.Script{Fail: []string{"sha256sum"}}
		g, err := pipeline.NewGraph([]pipeline.Task{task},
			[]*pipeline.Host{pipeline.NewHost("cp1", nil, func(context.Context) (connector.Connector, error) { return conn, nil })})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pipeline.Run(context.Background(), g, pipeline.Options{Name: "vip"}); err != nil {
			t.Fatal(err)
		}
		data, ok := conn.Files()["/etc/kubernetes/manifests/kube-vip.yaml"]
		if !ok {
			t.Fatalf("%s wrote no manifest (files %v)", task.Name, conn.Files())
		}
		return parsePod(t, data).Spec.Volumes[0].HostPath.Path
	}
	if got := mounted(KubeVIPManifestTask(s, TaskKubeVIPAdmin, []string{"cp1"}, nil)); got != "/etc/kubernetes/admin.conf" {
		t.Errorf("after init: %s", got)
	}
	before := pipeline.Task{Name: "before-init", Hosts: pipeline.Named("cp1"),
		Run: func(ctx context.Context, tg *pipeline.Target) (bool, error) { return WriteKubeVIPManifest(ctx, tg, s) }}
	if got := mounted(before); got != "/etc/kubernetes/super-admin.conf" {
		t.Errorf("right before kubeadm init: %s", got)
	}
}
