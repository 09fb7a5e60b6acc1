package platform

import (
	"context"
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/versions"
)

func cluster(metrics bool) *config.Cluster {
	return &config.Cluster{Kubernetes: config.Kubernetes{Version: "v1.37.2"}, Platform: config.Platform{MetricsServer: metrics}}
}

func TestComponents(t *testing.T) {
	comps, err := Components(cluster(true))
	if err != nil {
		t.Fatal(err)
	}
	if len(comps) != len(Names()) || comps[0].Name != "metrics-server" || !comps[0].Enabled {
		t.Fatalf("components %+v", comps)
	}
	set, _ := versions.For("v1.37.2")
	ms := comps[0]
	if !slices.Equal(ms.Images, []string{set.MetricsServerImage()}) {
		t.Errorf("images %v", ms.Images)
	}
	kinds := map[string]bool{}
	for _, o := range ms.Objects {
		kinds[o.GetKind()] = true
		if o.GetLabels()[LabelComponent] != "metrics-server" {
			t.Errorf("%s %s without kk's component label", o.GetKind(), o.GetName())
		}
		if o.GetKind() == "Deployment" {
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			if len(cs) != 1 || cs[0].(map[string]any)["image"] != set.MetricsServerImage() {
				t.Errorf("deployment images %v, want the version table's %s", cs, set.MetricsServerImage())
			}
		}
	}
	for _, k := range []string{"ServiceAccount", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "Service", "Deployment", "APIService"} {
		if !kinds[k] {
			t.Errorf("no %s in metrics-server's objects", k)
		}
	}
	// off: still rendered (what to remove), not enabled
	comps, _ = Components(cluster(false))
	if comps[0].Enabled || len(comps[0].Objects) != len(ms.Objects) {
		t.Errorf("switched off: %+v", comps[0])
	}
	if _, err := Components(&config.Cluster{Kubernetes: config.Kubernetes{Version: "v1.2.3"}}); err == nil {
		t.Error("a version kk has no table for was accepted")
	}
}

func TestTasks(t *testing.T) {
	comps, _ := Components(cluster(true))
	comps = append(comps, Component{Name: "second", Switch: "spec.x.enabled"})
	kc := func(context.Context) (*rest.Config, error) { return nil, nil }
	ts := Tasks(comps, kc, []string{"network/cni"})
	if len(ts) != 2 || ts[0].Name != "platform/metrics-server" || !slices.Equal(ts[0].After, []string{"network/cni"}) ||
		!slices.Equal(ts[1].After, []string{"platform/metrics-server"}) {
		t.Fatalf("tasks %+v", ts)
	}
	if ts[1].Desc != "remove second if kk installed it (spec.x.enabled is off)" {
		t.Errorf("desc %q", ts[1].Desc)
	}
}
