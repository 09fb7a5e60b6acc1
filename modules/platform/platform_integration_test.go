//go:build integration

package platform

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kk-project/kk/e2e/apiserver"
	"github.com/kk-project/kk/modules/kubeapply"
	"github.com/kk-project/kk/pipeline"
)

// A real API server (no nodes: metrics-server's pod never runs): a component switched on is
// not converged while its Deployment is not ready; switched off, kk removes exactly the
// objects of it that carry kk's label, and a second run has nothing to do.
func TestSwitchOnAndOff(t *testing.T) {
	s := apiserver.StartWith(t, apiserver.Options{ControllerManager: true})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	kc := func(context.Context) (*rest.Config, error) { return s.Config, nil }
	target := &pipeline.Target{Host: &pipeline.Host{Name: "n1"}}

	on, err := Components(cluster(true))
	if err != nil {
		t.Fatal(err)
	}
	ms := named(t, on, "metrics-server")
	c, err := kubeapply.NewClient(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	// what an earlier run installed; the ServiceAccount, though, is someone else's (no label)
	var objs []*unstructured.Unstructured
	for _, o := range ms.Objects {
		o = o.DeepCopy()
		if o.GetKind() == "ServiceAccount" {
			o.SetLabels(map[string]string{"owner": "someone-else"})
		}
		objs = append(objs, o)
	}
	if _, err := c.Apply(ctx, objs, kubeapply.Options{}); err != nil {
		t.Fatal(err)
	}

	onTask := Tasks([]Component{ms}, kc, nil)[0]
	if ok, err := onTask.Check(ctx, target); err != nil || ok {
		t.Errorf("switched on, no node to run metrics-server: converged %v, %v", ok, err)
	}

	off, _ := Components(cluster(false))
	offTask := Tasks([]Component{named(t, off, "metrics-server")}, kc, nil)[0]
	if !strings.HasPrefix(offTask.Desc, "remove metrics-server") {
		t.Errorf("desc %q", offTask.Desc)
	}
	if ok, err := offTask.Check(ctx, target); err != nil || ok {
		t.Fatalf("switched off with kk's objects there: converged %v, %v", ok, err)
	}
	if changed, err := offTask.Run(ctx, target); err != nil || !changed {
		t.Fatalf("remove: changed %v, %v", changed, err)
	}
	if ok, err := offTask.Check(ctx, target); err != nil || !ok {
		t.Errorf("after the removal: converged %v, %v", ok, err)
	}
	if changed, err := offTask.Run(ctx, target); err != nil || changed {
		t.Errorf("second removal: changed %v, %v", changed, err)
	}
	cs := kubernetes.NewForConfigOrDie(s.Config)
	if _, err := cs.CoreV1().ServiceAccounts("kube-system").Get(ctx, "metrics-server", metav1.GetOptions{}); err != nil {
		t.Errorf("someone else's ServiceAccount of the same name: %v", err)
	}
	if _, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "metrics-server", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("kk's Deployment after the removal: %v", err)
	}
	left, err := c.Labelled(ctx, ms.Objects, LabelComponent, "metrics-server")
	if err != nil || len(left) != 0 {
		t.Errorf("kk's objects left: %v %v", refs(left), err)
	}
}
