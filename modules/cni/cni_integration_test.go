//go:build integration

package cni_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/e2e/apiserver"
	"github.com/kk-project/kk/modules/cni"
	"github.com/kk-project/kk/modules/kubeapply"
)

// TestManifestsApply applies every plugin's manifests to a real API server (no nodes: the
// DaemonSets never become ready) and re-applies them with 0 changed.
func TestManifestsApply(t *testing.T) {
	s := apiserver.Start(t)
	ctx := context.Background()
	for _, plugin := range []string{cni.Flannel, cni.Calico, cni.Cilium} {
		c := &config.Cluster{Name: "e2e", Kubernetes: config.Kubernetes{Version: "v1.34.4"}, Network: config.Network{Plugin: plugin, KubePodsCIDR: "10.233.64.0/18",
			Calico: config.Calico{IPIPMode: "Always", VXLANMode: "Never", IPv4NatOutgoing: true, DefaultIPPool: true}}}
		spec, err := cni.NewSpec(c, cni.Options{})
		if err != nil {
			t.Fatal(err)
		}
		spec.WaitTimeout = 3 * time.Second
		res, err := cni.Install(ctx, s.Config, spec)
		if res.Count(kubeapply.Created) != len(spec.Objects) {
			t.Fatalf("%s: want %d created, got %s (err %v)", plugin, len(spec.Objects), res, err)
		}
		ds := map[string]string{cni.Flannel: "DaemonSet kube-flannel/kube-flannel-ds", cni.Calico: "DaemonSet kube-system/calico-node", cni.Cilium: "DaemonSet kube-system/cilium"}[plugin]
		if err == nil || !strings.Contains(err.Error(), ds) {
			t.Fatalf("%s: without nodes the wait must time out naming %s; got %v", plugin, ds, err)
		}
		t.Logf("%s: %s; %v", plugin, res, err)

		ok, why, err := cni.Converged(ctx, s.Config, spec)
		if err != nil || ok || !strings.Contains(why, "DaemonSet") {
			t.Fatalf("%s: Converged = %v, %q, %v; want not converged because of the DaemonSet", plugin, ok, why, err)
		}
		res, err = kubeapply.Apply(ctx, s.Config, spec.Objects, kubeapply.Options{})
		if err != nil || res.Changed() != 0 {
			t.Fatalf("%s: re-apply: %s, %v; want 0 changed", plugin, res, err)
		}
	}
}
