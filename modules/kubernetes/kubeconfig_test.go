package kubernetes

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

const adminConf = `apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: QUJD
    server: https://lb.kubesphere.local:6443
  name: cluster.local
contexts:
- context: {cluster: cluster.local, user: kubernetes-admin}
  name: kubernetes-admin@cluster.local
current-context: kubernetes-admin@cluster.local
users:
- name: kubernetes-admin
  user: {client-certificate-data: REVG, client-key-data: R0hJ}
`

// A kubeconfig naming every control plane keeps one context per server, and kk's own client
// goes to a server that answers when the current one does not.
func TestLocalKubeconfigPerControlPlane(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	down, _ := net.Listen("tcp", "127.0.0.1:0")
	downAddr := down.Addr().String()
	down.Close()
	servers := []APIServer{{Node: "n1", URL: "https://" + downAddr}, {Node: "n2", URL: "https://" + up.Addr().String()}}
	if i := FirstReachable(servers, time.Second); i != 1 {
		t.Errorf("FirstReachable %d, want 1 (n1 does not answer)", i)
	}
	out, err := LocalKubeconfig([]byte(adminConf), servers, 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Contexts) != 2 || cfg.CurrentContext != "kubernetes-admin@cluster.local" {
		t.Fatalf("contexts %v, current %s:\n%s", cfg.Contexts, cfg.CurrentContext, out)
	}
	n2 := cfg.Contexts["kubernetes-admin@cluster.local-n2"]
	if n2 == nil || cfg.Clusters[n2.Cluster].Server != servers[1].URL || n2.AuthInfo != "kubernetes-admin" ||
		string(cfg.Clusters[n2.Cluster].CertificateAuthorityData) != "ABC" {
		t.Errorf("n2's context: %+v\n%s", n2, out)
	}
	p := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	rc, err := RESTConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Host != servers[1].URL {
		t.Errorf("kk's client goes to %s, want the server that answers (%s)", rc.Host, servers[1].URL)
	}
	// a connection to a control plane that is down goes to one that is up
	if rc.Dial == nil || rc.TLSClientConfig.ServerName != "kubernetes" {
		t.Fatalf("no failover between the control planes: dial %v, server name %q", rc.Dial != nil, rc.TLSClientConfig.ServerName)
	}
	conn, err := rc.Dial(context.Background(), "tcp", downAddr)
	if err != nil {
		t.Fatalf("dial %s (down) with n2 up: %v", downAddr, err)
	}
	if conn.RemoteAddr().String() != up.Addr().String() {
		t.Errorf("connected to %s, want %s", conn.RemoteAddr(), up.Addr())
	}
	conn.Close()
	// one server: admin.conf with the server replaced, as before
	one, err := LocalKubeconfig([]byte(adminConf), servers[1:], 0)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := clientcmd.Load(one); len(c.Contexts) != 1 || c.Clusters["cluster.local"].Server != servers[1].URL {
		t.Errorf("one server:\n%s", one)
	}
}
