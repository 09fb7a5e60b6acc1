package kubernetes

import (
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/dns"
)

// TestClusterDNSFollowsNodeLocalDNS: kubelet resolves through nodelocaldns (169.254.25.10)
// while kubernetes.nodelocaldns is on (the default) and leaves clusterDNS to kubeadm when off.
func TestClusterDNSFollowsNodeLocalDNS(t *testing.T) {
	c := testbedCluster(t, "kubekey", 1)
	if !c.Kubernetes.NodeLocalDNS {
		t.Fatal("nodelocaldns is not on by default")
	}
	s, err := SpecFor(c, "/work", binaries.Files{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := KubeletConfiguration(s, HostEnv{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := m["clusterDNS"].([]string); !slices.Equal(got, []string{dns.LocalIP}) {
		t.Errorf("clusterDNS %v, want [%s]", m["clusterDNS"], dns.LocalIP)
	}
	c.Kubernetes.NodeLocalDNS = false
	if s, err = SpecFor(c, "/work", binaries.Files{}); err != nil {
		t.Fatal(err)
	}
	if m, err = KubeletConfiguration(s, HostEnv{}); err != nil {
		t.Fatal(err)
	}
	if _, set := m["clusterDNS"]; set {
		t.Errorf("nodelocaldns off: clusterDNS %v, want kubeadm's (unset)", m["clusterDNS"])
	}
}

// TestStackedEtcdExtraArgs: etcd.extraArgs reach the stacked member as etcd.local.extraArgs.
func TestStackedEtcdExtraArgs(t *testing.T) {
	c := testbedCluster(t, "kubeadm", 1)
	c.Etcd.ExtraArgs = map[string]string{"--quota-backend-bytes": "8589934592", "auto-compaction-mode": "revision"}
	s, err := SpecFor(c, "/work", binaries.Files{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := RenderKubeadmConfig(s, "n1", HostEnv{}, "")
	if err != nil {
		t.Fatal(err)
	}
	got := args(t, get(t, docs(t, out)["ClusterConfiguration"], "etcd", "local", "extraArgs"))
	if got["quota-backend-bytes"] != "8589934592" || got["auto-compaction-mode"] != "revision" || len(got) != 2 {
		t.Errorf("etcd.local.extraArgs %v:\n%s", got, out)
	}
	c.Etcd.ExtraArgs = map[string]string{"bad flag": "x"}
	if _, err := SpecFor(c, "/work", binaries.Files{}); err == nil || !strings.Contains(err.Error(), "etcd.extraArgs") {
		t.Errorf("bad extra arg: %v", err)
	}
}
