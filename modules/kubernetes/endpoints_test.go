package kubernetes

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The API server manifest's --etcd-servers line as kubeadm writes it is recognised and replaced.
func TestEtcdServersInManifest(t *testing.T) {
	p := filepath.Join(t.TempDir(), "kube-apiserver.yaml")
	manifest := "spec:\n  containers:\n  - command:\n    - kube-apiserver\n    - --etcd-cafile=/etc/ssl/etcd/ssl/ca.pem\n" +
		"    - --etcd-servers=https://10.0.0.1:2379\n    - --secure-port=6443\n"
	if err := os.WriteFile(p, []byte(manifest), 0o600); err != nil {
		t.Fatal(err)
	}
	sh := func(cmd string) bool { return exec.Command("sh", "-c", cmd).Run() == nil }
	one, three := "https://10.0.0.1:2379", "https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379"
	if !sh(etcdServersAre(one, p)) || sh(etcdServersAre(three, p)) || sh(etcdServersAre("https://10.0.0.1", p)) {
		t.Fatalf("the test does not read the manifest's flag")
	}
	if !sh(setEtcdServers(three, p)) || !sh(etcdServersAre(three, p)) {
		t.Fatalf("the flag was not set")
	}
	got, _ := os.ReadFile(p)
	if strings.Count(string(got), "--etcd-servers=") != 1 || !strings.Contains(string(got), "    - --secure-port=6443\n") {
		t.Errorf("manifest after the change:\n%s", got)
	}
}
