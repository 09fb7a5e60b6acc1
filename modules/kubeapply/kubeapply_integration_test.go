//go:build integration

package kubeapply_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"

	"github.com/kk-project/kk/e2e/apiserver"
	"github.com/kk-project/kk/modules/kubeapply"
)

const manifest = `
apiVersion: kk.test/v1
kind: Widget
metadata:
  name: w1
  namespace: kk-apply
spec:
  size: 3
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: kk-apply
data:
  color: blue
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.kk.test
spec:
  group: kk.test
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-preserve-unknown-fields: true
---
apiVersion: v1
kind: Namespace
metadata:
  name: kk-apply
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: defaulted
data:
  a: b
`

func actions(r kubeapply.Result) string {
	var s []string
	for _, o := range r.Objects {
		s = append(s, o.String())
	}
	return strings.Join(s, "\n")
}

func TestApplyAndWait(t *testing.T) {
	s := apiserver.Start(t)
	ctx := context.Background()

	// First apply: everything is created, the CRD before its custom resource.
	r, err := kubeapply.ApplyYAML(ctx, s.Config, []byte(manifest), kubeapply.Options{})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	t.Logf("first apply:\n%s", actions(r))
	if r.Count(kubeapply.Created) != 5 || len(r.Objects) != 5 {
		t.Fatalf("first apply: want 5 created, got %s:\n%s", r, actions(r))
	}
	if got := r.Objects[0].Object.GetKind() + "," + r.Objects[1].Object.GetKind(); got != "Namespace,CustomResourceDefinition" {
		t.Fatalf("order: first two applied are %s", got)
	}
	for _, o := range r.Objects {
		if o.Object.GetName() == "defaulted" && o.Object.GetNamespace() != "default" {
			t.Fatalf("ConfigMap without a namespace went to %q", o.Object.GetNamespace())
		}
	}

	// Dry run of the same: nothing would change.
	r, err = kubeapply.ApplyYAML(ctx, s.Config, []byte(manifest), kubeapply.Options{DryRun: true})
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if r.Changed() != 0 {
		t.Fatalf("dry run of the applied manifest: want 0 changed, got %s:\n%s", r, actions(r))
	}

	// Second apply: unchanged.
	r, err = kubeapply.ApplyYAML(ctx, s.Config, []byte(manifest), kubeapply.Options{})
	if err != nil {
		t.Fatalf("re-apply: %v", err)
	}
	if r.Changed() != 0 || r.Count(kubeapply.Unchanged) != 5 {
		t.Fatalf("re-apply: want 5 unchanged, got %s:\n%s", r, actions(r))
	}

	// One field changed: the dry run and the apply both see exactly one configured object.
	changed := strings.Replace(manifest, "color: blue", "color: green", 1)
	r, err = kubeapply.ApplyYAML(ctx, s.Config, []byte(changed), kubeapply.Options{DryRun: true})
	if err != nil {
		t.Fatalf("dry run of a change: %v", err)
	}
	if r.Count(kubeapply.Configured) != 1 || r.Changed() != 1 {
		t.Fatalf("dry run of a change: want 1 configured, got %s:\n%s", r, actions(r))
	}
	r, err = kubeapply.ApplyYAML(ctx, s.Config, []byte(changed), kubeapply.Options{})
	if err != nil {
		t.Fatalf("apply a change: %v", err)
	}
	if r.Count(kubeapply.Configured) != 1 || r.Changed() != 1 {
		t.Fatalf("apply a change: want 1 configured, got %s:\n%s", r, actions(r))
	}
	for _, o := range r.Objects {
		if o.Action == kubeapply.Configured && kubeapply.Ref(o.Object) != "ConfigMap kk-apply/settings" {
			t.Fatalf("configured %s, want ConfigMap kk-apply/settings", kubeapply.Ref(o.Object))
		}
	}

	// ConfigMaps, the Namespace and the CRD are Current.
	if err := kubeapply.Wait(ctx, s.Config, r.Applied(), 2*time.Minute); err != nil {
		t.Fatalf("wait: %v", err)
	}
}

func TestWaitTimesOutNamingTheObject(t *testing.T) {
	s := apiserver.Start(t)
	ctx := context.Background()
	deploy := `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.k8s.io/pause:3.10.1}]
`
	r, err := kubeapply.ApplyYAML(ctx, s.Config, []byte(deploy), kubeapply.Options{})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	// No controller manager runs: the Deployment never rolls out. A pod of it (as its
	// ReplicaSet would make) waits for a node, and an event says why.
	cs := kubernetes.NewForConfigOrDie(s.Config)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.k8s.io/pause:3.10.1"}}}}
	// (no controller manager: the namespace's default ServiceAccount is made here)
	if _, err := cs.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "web-1.1", Namespace: "default"}, Type: corev1.EventTypeWarning,
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web-1", Namespace: "default"}, Reason: "FailedScheduling",
		Message: "0/2 nodes are available: 2 node(s) had untolerated taint.", LastTimestamp: metav1.Now()}
	if _, err := cs.CoreV1().Events("default").Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	err = kubeapply.Wait(ctx, s.Config, r.Applied(), 5*time.Second)
	var te *kubeapply.TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("want a *TimeoutError, got %v", err)
	}
	t.Logf("wait error: %v", err)
	if len(te.NotReady) != 1 || te.NotReady[0].Ref != "Deployment default/web" || !strings.Contains(err.Error(), "Deployment default/web") {
		t.Fatalf("error does not name the Deployment: %v", err)
	}
	if te.NotReady[0].Message == "" {
		t.Fatalf("no kstatus message: %v", err)
	}
	if !strings.Contains(err.Error(), "\n    pod default/web-1 on no node: Pending; events: FailedScheduling: 0/2 nodes are available: 2 node(s) had untolerated taint.") {
		t.Errorf("the wait's error does not say why the pod is not ready: %v", err)
	}

	// A kind nobody serves fails quickly, naming the object.
	bad := &unstructured.Unstructured{}
	bad.SetAPIVersion("nowhere.test/v1")
	bad.SetKind("Ghost")
	bad.SetName("boo")
	_, err = kubeapply.Apply(ctx, s.Config, []*unstructured.Unstructured{bad}, kubeapply.Options{MappingTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "Ghost default/boo") && !strings.Contains(err.Error(), "Ghost boo") {
		t.Fatalf("unknown kind: want an error naming Ghost boo, got %v", err)
	}
}
