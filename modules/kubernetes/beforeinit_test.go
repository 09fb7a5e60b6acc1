package kubernetes

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/pipeline/connector/connectortest"
)

// TestBeforeInitRunsAfterReset: kubeadm init's task resets what a failed run left, then
// runs BeforeInit (kk puts kube-vip's static pod back there, which kubeadm reset removed),
// then kubeadm init; a BeforeInit error stops it before kubeadm init.
func TestBeforeInitRunsAfterReset(t *testing.T) {
	for _, failHook := range []bool{false, true} {
		conn := &connectortest.Script{Fail: []string{"/readyz", "[ -f " + AdminConf + " ]"}}
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
		cmds := conn.Commands()
		order := func(sub string) int {
			for i, c := range cmds {
				if strings.Contains(c, sub) {
					return i
				}
			}
			return -1
		}
		reset, hook, init := order("kubeadm reset"), order("before-init-hook"), order("kubeadm init")
		if failHook {
			if err == nil || !strings.Contains(err.Error(), "no kube-vip manifest") || init >= 0 {
				t.Errorf("a failed BeforeInit: run error %v, kubeadm init at %d (commands %q)", err, init, cmds)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if reset < 0 || hook <= reset || init <= hook {
			t.Errorf("reset at %d, BeforeInit at %d, kubeadm init at %d; want that order (commands %q)", reset, hook, init, cmds)
		}
	}
}
