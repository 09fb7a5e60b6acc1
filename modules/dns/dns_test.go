package dns

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/versions"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/pipeline/connector/connectortest"
)

func cluster() *config.Cluster {
	return &config.Cluster{Name: "test",
		Kubernetes: config.Kubernetes{Version: versions.Latest().Kubernetes, DNSDomain: "cluster.local", NodeLocalDNS: true},
		Network:    config.Network{Plugin: "flannel", KubePodsCIDR: "10.233.64.0/18", KubeServiceCIDR: "10.233.0.0/18"}}
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

func str(t *testing.T, o *unstructured.Unstructured, path ...string) string {
	t.Helper()
	v, ok, err := unstructured.NestedString(o.Object, path...)
	if err != nil || !ok {
		t.Fatalf("%s %s: %s: %v (found %v)", o.GetKind(), o.GetName(), strings.Join(path, "."), err, ok)
	}
	return v
}

func TestClusterDNSIP(t *testing.T) {
	for cidr, want := range map[string]string{
		"10.233.0.0/18":            "10.233.0.10",
		"10.96.0.0/12":             "10.96.0.10",
		"10.0.0.240/28,fd00::/108": "10.0.0.250",
		"fd00:10::/108":            "fd00:10::a",
	} {
		c := cluster()
		c.Network.KubeServiceCIDR = cidr
		got, err := ClusterDNSIP(c)
		if err != nil || got != want {
			t.Errorf("%s: got %q, %v; want %s", cidr, got, err, want)
		}
	}
	c := cluster()
	c.Network.KubeServiceCIDR = "10.0.0.0/29"
	if _, err := ClusterDNSIP(c); err == nil {
		t.Error("a /29 has no tenth address, want an error")
	}
}

// TestNodeLocalDNSDefault: nodelocaldns is KubeKey's: a hostNetwork DaemonSet of the version
// table's node-cache image on 169.254.25.10, its Corefile forwarding the cluster domain and the
// reverse zones to CoreDNS's service address and the rest to the node's resolvers; kubelet's
// clusterDNS is the local address.
func TestNodeLocalDNSDefault(t *testing.T) {
	c := cluster()
	s, err := NewSpec(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := KubeletClusterDNS(c); len(got) != 1 || got[0] != LocalIP {
		t.Errorf("kubelet clusterDNS %v, want [%s]", got, LocalIP)
	}
	ds := find(t, s.NodeLocalDNSObjects, "DaemonSet", "nodelocaldns")
	find(t, s.NodeLocalDNSObjects, "ServiceAccount", "nodelocaldns")
	if ds.GetNamespace() != "kube-system" {
		t.Errorf("namespace %q", ds.GetNamespace())
	}
	if hn, _, _ := unstructured.NestedBool(ds.Object, "spec", "template", "spec", "hostNetwork"); !hn {
		t.Error("the DaemonSet does not run on the host network")
	}
	cs, _, _ := unstructured.NestedSlice(ds.Object, "spec", "template", "spec", "containers")
	if len(cs) != 1 {
		t.Fatalf("%d containers", len(cs))
	}
	ctr := cs[0].(map[string]any)
	if want := versions.Latest().NodeLocalDNSImage(); ctr["image"] != want {
		t.Errorf("image %v, want %s (artifacts/versions)", ctr["image"], want)
	}
	args := []string{}
	for _, a := range ctr["args"].([]any) {
		args = append(args, a.(string))
	}
	if got := strings.Join(args, " "); got != "-localip 169.254.25.10 -conf /etc/coredns/Corefile -upstreamsvc kube-dns" {
		t.Errorf("args %q", got)
	}
	if got := str(t, ds, "spec", "template", "metadata", "annotations", "kk.io/corefile-sha256"); got != sha256hex(s.NodeLocalCorefile) {
		t.Errorf("pod template digest %s, want the Corefile's", got)
	}

	cm := find(t, s.NodeLocalDNSObjects, "ConfigMap", "nodelocaldns")
	corefile := str(t, cm, "data", "Corefile")
	if corefile != s.NodeLocalCorefile {
		t.Errorf("ConfigMap Corefile differs from the rendered one:\n%s", corefile)
	}
	for _, want := range []string{
		"cluster.local:53 {", "in-addr.arpa:53 {", "ip6.arpa:53 {", ".:53 {",
		"forward . 10.233.0.10 {\n        force_tcp", "bind 169.254.25.10", "health 169.254.25.10:9254",
		"forward . /etc/resolv.conf",
	} {
		if !strings.Contains(corefile, want) {
			t.Errorf("nodelocaldns Corefile lacks %q:\n%s", want, corefile)
		}
	}
	if strings.Count(corefile, "forward . 10.233.0.10") != 3 {
		t.Errorf("the cluster domain and both reverse zones must go to CoreDNS:\n%s", corefile)
	}
	if strings.Contains(corefile, "hosts ") {
		t.Errorf("no dnsEtcHosts, yet a hosts plugin:\n%s", corefile)
	}

	// CoreDNS by default: kubeadm's Corefile shape, forwarding to the node's resolvers
	core := find(t, s.CoreDNSObjects, "ConfigMap", "coredns")
	if got := str(t, core, "data", "Corefile"); got != s.CoreDNSCorefile ||
		!strings.Contains(got, "kubernetes cluster.local in-addr.arpa ip6.arpa {") || !strings.Contains(got, "forward . /etc/resolv.conf {") {
		t.Errorf("default CoreDNS Corefile:\n%s", got)
	}
	dep := find(t, s.CoreDNSObjects, "Deployment", "coredns")
	if got := str(t, dep, "spec", "template", "metadata", "annotations", "kk.io/corefile-sha256"); got != sha256hex(s.CoreDNSCorefile) {
		t.Errorf("coredns pod template digest %s", got)
	}

	tasks := Tasks(s, nil, []string{"network/cni"})
	if len(tasks) != 2 || tasks[0].Name != TaskCoreDNS || tasks[1].Name != TaskNodeLocalDNS || tasks[0].After[0] != "network/cni" {
		t.Errorf("tasks %+v", tasks)
	}
}

func TestNodeLocalDNSOff(t *testing.T) {
	c := cluster()
	c.Kubernetes.NodeLocalDNS = false
	s, err := NewSpec(c)
	if err != nil {
		t.Fatal(err)
	}
	if KubeletClusterDNS(c) != nil || len(s.NodeLocalDNSObjects) != 0 {
		t.Errorf("nodelocaldns off: clusterDNS %v, %d objects", KubeletClusterDNS(c), len(s.NodeLocalDNSObjects))
	}
	if tasks := Tasks(s, nil, nil); len(tasks) != 1 || tasks[0].Name != TaskCoreDNS {
		t.Errorf("tasks %+v", tasks)
	}
	// an IPv6-only service network cannot be served on 169.254.25.10
	c = cluster()
	c.Network.KubeServiceCIDR = "fd00:10::/108"
	if _, err := NewSpec(c); err == nil || !strings.Contains(err.Error(), "nodelocaldns") {
		t.Errorf("IPv6 service CIDR with nodelocaldns: %v", err)
	}
}

// TestDNSSection: every field of spec.dns lands in its Corefile.
func TestDNSSection(t *testing.T) {
	c := cluster()
	c.Network.Plugin = "none"
	c.Registry.PrivateRegistry = "reg.local:5000"
	c.DNS = config.DNS{
		DNSEtcHosts:  "10.0.0.5 git.corp registry.corp\n# a comment\n\n10.0.0.6 wiki.corp",
		NodeEtcHosts: "10.0.0.7 ntp.corp",
		CoreDNS: config.CoreDNS{
			AdditionalConfigs:  "log\nwhoami",
			RewriteBlock:       "rewrite stop {\n    name regex (.*)\\.svc\\.corp {1}.svc.cluster.local\n}",
			UpstreamDNSServers: []string{"1.1.1.1", "8.8.8.8"},
			ExternalZones: []config.ExternalZone{{Zones: []string{"corp.example", "corp2.example"}, Nameservers: []string{"10.0.0.53"},
				Cache: 300, Rewrite: []string{"name substring a.corp.example b.corp.example"}}},
		},
		NodeLocalDNS: config.NodeLocalDNS{ExternalZones: []config.ExternalZone{{Zones: []string{"lab.example:53"}, Nameservers: []string{"10.1.0.53", "10.1.0.54"}}}},
	}
	s, err := NewSpec(c)
	if err != nil {
		t.Fatal(err)
	}
	if s.WaitCoreDNS {
		t.Error("no pod network by kk: CoreDNS cannot be ready, do not wait for it")
	}
	core := s.CoreDNSCorefile
	for _, want := range []string{
		"corp.example corp2.example {\n    log\n    errors\n    rewrite name substring a.corp.example b.corp.example\n    forward . 10.0.0.53\n    loadbalance\n    cache 300\n    reload\n    hosts /dev/null {\n        10.0.0.5 git.corp registry.corp\n        10.0.0.6 wiki.corp\n        fallthrough\n    }\n}",
		".:53 {\n    log\n    whoami\n    errors",
		"    rewrite stop {\n        name regex (.*)\\.svc\\.corp {1}.svc.cluster.local\n    }\n    ready",
		"forward . 1.1.1.1 8.8.8.8 {",
		"    hosts /dev/null {\n        10.0.0.5 git.corp registry.corp\n        10.0.0.6 wiki.corp\n        fallthrough\n    }\n    prometheus :9153",
	} {
		if !strings.Contains(core, want) {
			t.Errorf("CoreDNS Corefile lacks\n%s\n---\n%s", want, core)
		}
	}
	local := s.NodeLocalCorefile
	for _, want := range []string{
		"lab.example:53 {\n    errors\n    cache\n    reload\n    loop\n    bind 169.254.25.10\n    forward . 10.1.0.53 10.1.0.54\n    prometheus :9253\n}",
		"bind 169.254.25.10\n    hosts /dev/null {\n        10.0.0.5 git.corp registry.corp\n        10.0.0.6 wiki.corp\n        fallthrough\n    }\n    forward . /etc/resolv.conf",
	} {
		if !strings.Contains(local, want) {
			t.Errorf("nodelocaldns Corefile lacks\n%s\n---\n%s", want, local)
		}
	}
	if s.Image != "reg.local:5000/dns/k8s-dns-node-cache:"+versions.Latest().Addons.NodeLocalDNS {
		t.Errorf("image under the private registry: %s", s.Image)
	}
	if len(s.NodeHosts) != 1 || s.NodeHosts[0].Address != "10.0.0.7" {
		t.Errorf("node hosts %+v", s.NodeHosts)
	}

	for _, bad := range []config.DNS{
		{DNSEtcHosts: "git.corp 10.0.0.5"},
		{NodeEtcHosts: "10.0.0.7"},
		{CoreDNS: config.CoreDNS{ExternalZones: []config.ExternalZone{{Zones: []string{"a"}}}}},
		{NodeLocalDNS: config.NodeLocalDNS{ExternalZones: []config.ExternalZone{{Zones: []string{"a"}, Nameservers: []string{"1.1.1.1"}, Cache: -1}}}},
	} {
		c := cluster()
		c.DNS = bad
		if _, err := NewSpec(c); err == nil || !strings.Contains(err.Error(), "spec.dns.") {
			t.Errorf("%+v: want an error naming the field, got %v", bad, err)
		}
	}
}

func runTask(t *testing.T, task pipeline.Task, conn *connectortest.Script) *pipeline.Report {
	t.Helper()
	g, err := pipeline.NewGraph([]pipeline.Task{task},
		[]*pipeline.Host{pipeline.NewHost("node1", nil, func(context.Context) (connector.Connector, error) { return conn, nil })})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := pipeline.Run(context.Background(), g, pipeline.Options{Name: "dns"})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestNodeHostsTask: nodeEtcHosts goes into a block of its own, other lines stay; a second run
// changes nothing; emptied, the block is removed; with no entries and no block nothing is written.
func TestNodeHostsTask(t *testing.T) {
	c := cluster()
	c.DNS.NodeEtcHosts = "10.0.0.7 ntp.corp time.corp\n10.0.0.8 mirror.corp"
	s, err := NewSpec(c)
	if err != nil {
		t.Fatal(err)
	}
	conn := &connectortest.Script{}
	orig := "127.0.0.1 localhost\n# BEGIN kk managed hosts\n10.0.0.1 node1\n# END kk managed hosts\n"
	if _, err := conn.Upload(context.Background(), connector.File{Path: "/etc/hosts", Data: []byte(orig)}); err != nil {
		t.Fatal(err)
	}
	runTask(t, NodeHostsTask(s, nil), conn)
	want := orig + "# BEGIN kk dns.nodeEtcHosts\n10.0.0.7 ntp.corp time.corp\n10.0.0.8 mirror.corp\n# END kk dns.nodeEtcHosts\n"
	if got := string(conn.Files()["/etc/hosts"]); got != want {
		t.Fatalf("/etc/hosts:\n%s\nwant:\n%s", got, want)
	}
	if rep := runTask(t, NodeHostsTask(s, nil), conn); rep.Count(pipeline.StatusOK) != 1 {
		t.Errorf("second run: %s; want ok, nothing changed", rep.Totals())
	}

	s.NodeHosts = nil
	runTask(t, NodeHostsTask(s, nil), conn)
	if got := string(conn.Files()["/etc/hosts"]); got != orig {
		t.Errorf("emptied nodeEtcHosts: /etc/hosts\n%s", got)
	}
	if rep := runTask(t, NodeHostsTask(s, nil), conn); rep.Count(pipeline.StatusOK) != 1 {
		t.Errorf("no entries and no block: %s; want ok", rep.Totals())
	}

	s.SkipNodeHosts = true
	if NodeHostsTask(s, nil).Skip == "" {
		t.Error("skipConfigureOS: the task must be skipped")
	}
}
