package kubernetes

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

// scriptConn is a connector that records every command and answers "no" (exit 1) to the
// commands that contain one of fail, "yes" to the others.
type scriptConn struct {
	mu   sync.Mutex
	cmds []string
	fail []string
}

func (c *scriptConn) Exec(_ context.Context, cmd string, _ connector.ExecOptions) (connector.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cmds = append(c.cmds, cmd)
	for _, f := range c.fail {
		if strings.Contains(cmd, f) {
			return connector.Result{Cmd: cmd, ExitCode: 1}, nil
		}
	}
	return connector.Result{Cmd: cmd}, nil
}
func (c *scriptConn) Upload(context.Context, connector.File) (bool, error) { return true, nil }
func (c *scriptConn) Fetch(context.Context, string) ([]byte, error)        { return nil, nil }
func (c *scriptConn) Close() error                                         { return nil }

// TestBeforeInitRunsAfterReset: kubeadm init's task resets what a failed run left, then
// runs BeforeInit (kk puts kube-vip's static pod back there, which kubeadm reset removed),
// then kubeadm init; a BeforeInit error stops it before kubeadm init.
func TestBeforeInitRunsAfterReset(t *testing.T) {
	for _, failHook := range []bool{false, true} {
		conn := &scriptConn{fail: []string{"/readyz", "[ -f " + AdminConf + " ]"}}
		s := Spec{CRISocket: "unix:///run/containerd/containerd.sock", FirstControlPlane: "cp1"}
		s.BeforeInit = func(ctx context.Context, t *pipeline.Target) error {
			if _, err := t.Sudo(ctx, "before-init-hook"); err != nil {
				return err
			}
			if failHook {
				return errors.New("no kube-vip manifest")
			}
			return nil
		}
		g, err := pipeline.NewGraph([]pipeline.Task{initTask(s, pipeline.Named("cp1"), nil)},
			[]*pipeline.Host{pipeline.NewHost("cp1", nil, func(context.Context) (connector.Connector, error) { return conn, nil })})
		if err != nil {
			t.Fatal(err)
		}
		_, err = pipeline.Run(context.Background(), g, pipeline.Options{Name: "init"})
		order := func(sub string) int {
			for i, c := range conn.cmds {
				if strings.Contains(c, sub) {
					return i
				}
			}
			return -1
		}
		reset, hook, init := order("kubeadm reset"), order("before-init-hook"), order("kubeadm init")
		if failHook {
			if err == nil || !strings.Contains(err.Error(), "no kube-vip manifest") || init >= 0 {
				t.Errorf("a failed BeforeInit: run error %v, kubeadm init at %d (commands %q)", err, init, conn.cmds)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if reset < 0 || hook <= reset || init <= hook {
			t.Errorf("reset at %d, BeforeInit at %d, kubeadm init at %d; want that order (commands %q)", reset, hook, init, conn.cmds)
		}
	}
}
