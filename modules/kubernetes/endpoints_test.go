package kubernetes

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
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

// freshHost is a host before kubeadm init: no admin kubeconfig, no kubectl (exit 127), no
// API server manifest. It records the commands it is asked.
type freshHost struct {
	mu   sync.Mutex
	cmds []string
}

func (h *freshHost) Exec(_ context.Context, cmd string, _ connector.ExecOptions) (connector.Result, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cmds = append(h.cmds, cmd)
	code := 1
	if strings.HasPrefix(cmd, Kubectl+" ") {
		code = 127
	}
	return connector.Result{Cmd: cmd, ExitCode: code, Stderr: "not there"}, nil
}
func (h *freshHost) Upload(context.Context, connector.File) (bool, error) { return true, nil }
func (h *freshHost) Fetch(context.Context, string) ([]byte, error)        { return nil, nil }
func (h *freshHost) Close() error                                         { return nil }

// TestEtcdEndpointsDryRunBeforeInit: kk create cluster --dry-run on hosts without a cluster
// plans the etcd endpoints task on the first control plane rather than failing to read a
// ConfigMap that kubeadm init has not written (with a kubectl not installed yet).
func TestEtcdEndpointsDryRunBeforeInit(t *testing.T) {
	s := Spec{FirstControlPlane: "cp1", Etcd: Etcd{Type: config.EtcdKubeKey, Endpoints: []string{"https://10.0.0.1:2379"}}}
	fresh := &freshHost{}
	h := pipeline.NewHost("cp1", nil, func(context.Context) (connector.Connector, error) { return fresh, nil })
	g, err := pipeline.NewGraph([]pipeline.Task{EtcdEndpointsTask(s, pipeline.AllHosts(), nil)}, []*pipeline.Host{h})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := pipeline.Run(context.Background(), g, pipeline.Options{Name: "create cluster", DryRun: true})
	if err != nil || rep.Count(pipeline.StatusPlanned) != 1 {
		t.Fatalf("dry run before kubeadm init: %v (%s)", err, rep.Totals())
	}
	for _, c := range fresh.cmds {
		if strings.Contains(c, "configmap kubeadm-config") || strings.Contains(c, "sed -i") {
			t.Errorf("the dry run ran %q", c)
		}
	}
}
