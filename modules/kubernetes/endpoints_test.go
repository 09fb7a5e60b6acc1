package kubernetes

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

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
