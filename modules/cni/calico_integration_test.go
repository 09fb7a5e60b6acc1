//go:build integration

package cni_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/e2e/apiserver"
	"github.com/kk-project/kk/modules/cni"
	"github.com/kk-project/kk/modules/kubeapply"
)

// TestCalicoAgainstAPIServer applies kk's Calico manifest (VXLAN mode, Typha on) to a real API
// server: upstream's CRDs are accepted and established, and an IPPool written the way
// calico-node writes its default pool is validated and pruned by their schemas (a CRD with an
// open schema would keep the unknown field). Then the IPIP manifest replaces it in place.
// No node runs, so calico-node never becomes ready.
func TestCalicoAgainstAPIServer(t *testing.T) { calicoAgainst(t, apiserver.Start(t)) }

func calicoAgainst(t *testing.T, s *apiserver.Server) {
	ctx := context.Background()
	c := &config.Cluster{Name: "e2e", Kubernetes: config.Kubernetes{Version: "v1.34.4"},
		Network: config.Network{Plugin: cni.Calico, KubePodsCIDR: "10.233.64.0/18",
			Calico: config.Calico{IPIPMode: "Never", VXLANMode: "Always", IPv4NatOutgoing: true, DefaultIPPool: true,
				Typha: true, ReplicaCount: 2}}}
	spec, err := cni.NewSpec(c, cni.Options{})
	if err != nil {
		t.Fatal(err)
	}
	spec.WaitTimeout = 3 * time.Second
	res, err := cni.Install(ctx, s.Config, spec)
	if res.Count(kubeapply.Created) != len(spec.Objects) {
		t.Fatalf("want %d created, got %s (err %v)", len(spec.Objects), res, err)
	}
	if err == nil || !strings.Contains(err.Error(), "calico-node") {
		t.Fatalf("without nodes the wait must time out naming calico-node; got %v", err)
	}

	dyn, err := dynamic.NewForConfig(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	crds, err := dyn.Resource(crdGVR).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	established := 0
	for _, crd := range crds.Items {
		conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, cd := range conds {
			m := cd.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" && strings.HasSuffix(crd.GetName(), ".crd.projectcalico.org") {
				established++
			}
		}
	}
	if established != 22 {
		t.Fatalf("%d Calico CRDs established, want 22 (v3.31.0)", established)
	}

	pool := `apiVersion: crd.projectcalico.org/v1
kind: IPPool
metadata:
  name: default-ipv4-ippool
spec:
  cidr: 10.233.64.0/18
  blockSize: 24
  ipipMode: Never
  vxlanMode: Always
  natOutgoing: true
  nodeSelector: all()
`
	// upstream's structural schema knows IPPool's fields: server-side apply refuses another
	_, err = kubeapply.ApplyYAML(ctx, s.Config, []byte(pool+"  notAField: not in the schema\n"), kubeapply.Options{})
	if err == nil || !strings.Contains(err.Error(), "notAField") {
		t.Fatalf("IPPool with an unknown field: %v, want it refused by the CRD's schema", err)
	}
	if _, err := kubeapply.ApplyYAML(ctx, s.Config, []byte(pool), kubeapply.Options{}); err != nil {
		t.Fatalf("IPPool: %v", err)
	}
	got, err := dyn.Resource(schema.GroupVersionResource{Group: "crd.projectcalico.org", Version: "v1", Resource: "ippools"}).
		Get(ctx, "default-ipv4-ippool", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sp, _, _ := unstructured.NestedMap(got.Object, "spec")
	if sp["vxlanMode"] != "Always" || sp["cidr"] != "10.233.64.0/18" || sp["natOutgoing"] != true {
		t.Fatalf("IPPool spec %v", sp)
	}
	if _, ok := sp["notAField"]; ok {
		t.Fatalf("IPPool kept an unknown field: the CRD schema is not upstream's: %v", sp)
	}

	// The IPIP manifest applied over it: the ConfigMap and DaemonSet change, the CRDs do not.
	c.Network.Calico.IPIPMode, c.Network.Calico.VXLANMode = "Always", "Never"
	ipip, err := cni.NewSpec(c, cni.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err = kubeapply.Apply(ctx, s.Config, ipip.Objects, kubeapply.Options{})
	if err != nil {
		t.Fatalf("IPIP re-apply: %v", err)
	}
	var changed []string
	for _, r := range res.Objects {
		if r.Action != kubeapply.Unchanged {
			changed = append(changed, kubeapply.Ref(r.Object))
		}
	}
	slices.Sort(changed)
	t.Logf("vxlan → ipip: %s; changed %v", res, changed)
	if want := []string{"ConfigMap kube-system/calico-config", "DaemonSet kube-system/calico-node"}; strings.Join(changed, ",") != strings.Join(want, ",") {
		t.Fatalf("vxlan → ipip changed %v, want %v", changed, want)
	}
	res, err = kubeapply.Apply(ctx, s.Config, ipip.Objects, kubeapply.Options{})
	if err != nil || res.Changed() != 0 {
		t.Fatalf("re-apply: %s, %v; want 0 changed", res, err)
	}
}
