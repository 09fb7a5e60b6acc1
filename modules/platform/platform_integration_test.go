//go:build integration

package platform

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/e2e/apiserver"
	"github.com/kk-project/kk/modules/kubeapply"
	"github.com/kk-project/kk/modules/platform/localcsi"
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

// Workspaces on a real API server: what the file makes is installed; a workspace taken out
// of the file loses its binding and quota on the next run (found by kk's label), its
// namespace stays, and a run after that has nothing to do; no workspaces left, the task is
// off and finds nothing more.
func TestWorkspacesPruned(t *testing.T) {
	s := apiserver.StartWith(t, apiserver.Options{ControllerManager: true})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	kc := func(context.Context) (*rest.Config, error) { return s.Config, nil }
	target := &pipeline.Target{Host: &pipeline.Host{Name: "n1"}, Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	taskFor := func(ws ...config.Workspace) pipeline.Task {
		c := cluster(false)
		c.Platform.Workspaces = ws
		comps, err := Components(c)
		if err != nil {
			t.Fatal(err)
		}
		return Tasks([]Component{named(t, comps, "tenants")}, kc, nil)[0]
	}
	quota := map[string]string{"requests.cpu": "1", "requests.nvidia.com/gpu": "1"}
	a := config.Workspace{Name: "a", AdminGroup: "a-admins", Namespaces: []string{"a1"}, Quota: quota}
	b := config.Workspace{Name: "b", AdminGroup: "b-admins", Namespaces: []string{"b1", "b2"}, Quota: quota}
	run := func(task pipeline.Task, wantChanged bool) {
		t.Helper()
		if ok, err := task.Check(ctx, target); err != nil || ok == wantChanged {
			t.Fatalf("%s: converged %v, %v; want %v", task.Desc, ok, err, !wantChanged)
		}
		if !wantChanged {
			return
		}
		if _, err := task.Run(ctx, target); err != nil {
			t.Fatalf("%s: %v", task.Desc, err)
		}
		if ok, err := task.Check(ctx, target); err != nil || !ok {
			t.Fatalf("%s again: converged %v, %v", task.Desc, ok, err)
		}
	}
	run(taskFor(a, b), true)
	cs := kubernetes.NewForConfigOrDie(s.Config)
	if q, err := cs.CoreV1().ResourceQuotas("b2").Get(ctx, "b-quota", metav1.GetOptions{}); err != nil || q.Spec.Hard.Name("requests.nvidia.com/gpu", "").String() != "1" {
		t.Fatalf("b2's quota: %v %v", q, err)
	}
	run(taskFor(a), true) // b goes
	for _, ns := range []string{"b1", "b2"} {
		if _, err := cs.CoreV1().ResourceQuotas(ns).Get(ctx, "b-quota", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s: quota of the workspace taken out: %v", ns, err)
		}
		if _, err := cs.RbacV1().RoleBindings(ns).Get(ctx, "b-admin", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s: binding of the workspace taken out: %v", ns, err)
		}
		if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
			t.Errorf("namespace %s of the workspace taken out: %v", ns, err)
		}
	}
	if _, err := cs.RbacV1().RoleBindings("a1").Get(ctx, "a-admin", metav1.GetOptions{}); err != nil {
		t.Errorf("a1's binding: %v", err)
	}
	run(taskFor(a), false)
	off := taskFor()
	if !strings.HasPrefix(off.Desc, "remove tenants") {
		t.Errorf("no workspaces: %q", off.Desc)
	}
	run(off, true) // a goes
	run(off, false)
	if _, err := cs.CoreV1().ResourceQuotas("a1").Get(ctx, "a-quota", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a1's quota with no workspaces: %v", err)
	}
}

// The local storage on a real API server (no nodes: its pods never run): every object of it
// applies as the template makes it, the snapshot CRDs first and established (the CSIDriver, the classes, the RBAC, the workloads), the default
// VolumeSnapshotClass included; a VolumeSnapshot of a claim is accepted by its CRD's schema, and
// a second apply changes nothing.
func TestLocalStorageApplies(t *testing.T) {
	s := apiserver.StartWith(t, apiserver.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ls, c := localStorage(t, s, "/data/local")
	var crds []*unstructured.Unstructured
	for _, o := range ls.Objects {
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o)
		}
	}
	// all at once, as the platform's task applies them: the CRDs first, then what uses them
	res, err := c.Apply(ctx, ls.Objects, kubeapply.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Objects) != len(ls.Objects) || len(crds) != 6 {
		t.Errorf("applied %d of %d objects, %d CRDs", len(res.Objects), len(ls.Objects), len(crds))
	}
	if err := c.Wait(ctx, crds, kubeapply.WaitOptions{Timeout: 2 * time.Minute}); err != nil {
		t.Errorf("the snapshot CRDs: %v", err)
	}
	if again, err := c.Apply(ctx, ls.Objects, kubeapply.Options{DryRun: true}); err != nil || again.Changed() > 0 {
		t.Errorf("a second apply: %v, %v", again, err)
	}
	cs := kubernetes.NewForConfigOrDie(s.Config)
	sc, err := cs.StorageV1().StorageClasses().Get(ctx, config.LocalStorageClass, metav1.GetOptions{})
	if err != nil || sc.Provisioner != localcsi.DriverName || sc.AllowVolumeExpansion == nil || !*sc.AllowVolumeExpansion ||
		sc.VolumeBindingMode == nil || *sc.VolumeBindingMode != "WaitForFirstConsumer" {
		t.Errorf("storage class: %+v, %v", sc, err)
	}
	if d, err := cs.StorageV1().CSIDrivers().Get(ctx, localcsi.DriverName, metav1.GetOptions{}); err != nil || d.Spec.AttachRequired == nil || *d.Spec.AttachRequired {
		t.Errorf("CSI driver: %+v, %v", d, err)
	}
	snap, err := kubeapply.Decode([]byte(`apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata: {name: e2e-local, namespace: default}
spec:
  volumeSnapshotClassName: local
  source: {persistentVolumeClaimName: e2e-local}
`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, snap, kubeapply.Options{}); err != nil {
		t.Errorf("a VolumeSnapshot of a claim: %v", err)
	}
	bad, _ := kubeapply.Decode([]byte(`apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata: {name: no-source, namespace: default}
spec: {volumeSnapshotClassName: local}
`))
	if _, err := c.Apply(ctx, bad, kubeapply.Options{}); err == nil {
		t.Error("a VolumeSnapshot without a source was accepted: the CRD's schema is not in force")
	}
}

// An earlier kk's local storage (rancher's local-path-provisioner: its namespace, its cluster
// role and its class "local") on a real API server: the CSI driver's component replaces the
// class "local" (its provisioner cannot change in place) and lists the rest as left over;
// a class of the same provisioner, or one without kk's label, is left alone.
func TestLocalStorageReplacesLocalPath(t *testing.T) {
	s := apiserver.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ls, c := localStorage(t, s, "")
	kk := map[string]string{LabelComponent: "local-storage"}
	earlier, err := kubeapply.Decode([]byte(`apiVersion: v1
kind: Namespace
metadata: {name: local-path-storage}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "kk:local-path-provisioner"}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: local}
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: someone-elses}
provisioner: example.com/nfs
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range earlier {
		if o.GetName() != "someone-elses" {
			o.SetLabels(kk)
		}
	}
	if _, err := c.Apply(ctx, earlier, kubeapply.Options{}); err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	log := slog.New(slog.NewTextHandler(&buf, nil))
	replaced, err := replaceClasses(ctx, c, ls, ls.Objects, log)
	if err != nil || !replaced {
		t.Fatalf("replaceClasses: %v, %v", replaced, err)
	}
	if !strings.Contains(buf.String(), "rancher.io/local-path") || !strings.Contains(buf.String(), localcsi.DriverName) {
		t.Errorf("the log does not say what the class changes from and to: %s", buf.String())
	}
	cs := kubernetes.NewForConfigOrDie(s.Config)
	if _, err := cs.StorageV1().StorageClasses().Get(ctx, "local", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the earlier class local is still there: %v", err)
	}
	if _, err := cs.StorageV1().StorageClasses().Get(ctx, "someone-elses", metav1.GetOptions{}); err != nil {
		t.Errorf("someone else's class: %v", err)
	}
	var classes []*unstructured.Unstructured
	for _, o := range ls.Objects {
		if o.GetKind() == "StorageClass" {
			classes = append(classes, o)
		}
	}
	if _, err := c.Apply(ctx, classes, kubeapply.Options{}); err != nil {
		t.Fatalf("apply the CSI driver's class after the replacement: %v", err)
	}
	if sc, err := cs.StorageV1().StorageClasses().Get(ctx, "local", metav1.GetOptions{}); err != nil || sc.Provisioner != localcsi.DriverName {
		t.Errorf("class local after the apply: %v, %v", sc, err)
	}
	if replaced, err := replaceClasses(ctx, c, ls, ls.Objects, log); err != nil || replaced {
		t.Errorf("second replaceClasses: %v, %v", replaced, err)
	}
	left, err := leftover(ctx, c, ls)
	if err != nil {
		t.Fatal(err)
	}
	if got := refs(left); !strings.Contains(got, "local-path-storage") || !strings.Contains(got, "kk:local-path-provisioner") || strings.Contains(got, "StorageClass") {
		t.Errorf("left over of the earlier local storage: %s", got)
	}
}

// localStorage is the local storage component of a cluster with the OpenEBS base path
// basePath (empty: the default), and a client of the API server s.
func localStorage(t *testing.T, s *apiserver.Server, basePath string) (Component, *kubeapply.Client) {
	t.Helper()
	cl := cluster(false)
	cl.Platform.LocalStorage = true
	if basePath != "" {
		cl.Storage.OpenEBSBasePath = basePath
	}
	comps, err := Components(cl)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubeapply.NewClient(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	return named(t, comps, "local-storage"), c
}
