package upgrade

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/kubernetes"
)

// controlPlaneAt reads the static pod manifests as kubeadm writes them.
func TestControlPlaneAt(t *testing.T) {
	dir := t.TempDir()
	write := func(v string) {
		for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
			m := "spec:\n  containers:\n  - command:\n    - " + c + "\n    image: registry.k8s.io/" + c + ":" + v + "\n    imagePullPolicy: IfNotPresent\n"
			if err := os.WriteFile(filepath.Join(dir, c+".yaml"), []byte(m), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	test := func(v string) bool {
		cmd := strings.ReplaceAll(controlPlaneAt(v), "/etc/kubernetes/manifests", dir)
		return exec.Command("sh", "-c", cmd).Run() == nil
	}
	write("v1.36.3")
	if !test("v1.36.3") || test("v1.37.2") || test("v1.36.30") {
		t.Errorf("manifests at v1.36.3: at v1.36.3 %v, at v1.37.2 %v, at v1.36.30 %v", test("v1.36.3"), test("v1.37.2"), test("v1.36.30"))
	}
	write("v1.37.2")
	if !test("v1.37.2") {
		t.Errorf("manifests at v1.37.2 not recognised")
	}
}

func TestApplyCommand(t *testing.T) {
	s := Spec{K: kubernetes.Spec{Version: "v1.37.2", FirstControlPlane: "n1"}}
	s.K.Etcd.Type = config.EtcdKubeKey
	if !strings.Contains(applied(s), "kube-proxy") || !strings.Contains(applied(s), "kubernetesVersion: v1.37.2") {
		t.Errorf("applied test: %s", applied(s))
	}
	s.K.DisableKubeProxy = true
	if strings.Contains(applied(s), "kube-proxy") {
		t.Errorf("applied test looks for kube-proxy that is disabled: %s", applied(s))
	}
	tasks := Tasks(s, nil)
	var names []string
	for _, tk := range tasks {
		names = append(names, tk.Name)
	}
	if strings.Join(names, " ") != TaskKubeadm+" "+TaskApply+" "+TaskControlPlanes+" "+TaskWorkers {
		t.Errorf("tasks %v", names)
	}
}

// Cordon marks only a node it made unschedulable; Uncordon undoes only that.
func TestCordonKeepsTheUsersCordon(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "free"}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "users"}, Spec: corev1.NodeSpec{Unschedulable: true}},
	)
	for _, n := range []string{"free", "users"} {
		if err := Cordon(ctx, cs, n); err != nil {
			t.Fatal(err)
		}
	}
	get := func(n string) *corev1.Node {
		node, err := cs.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return node
	}
	if n := get("free"); !n.Spec.Unschedulable || n.Annotations[DrainedAnnotation] != "true" {
		t.Errorf("free node after Cordon: unschedulable %v, annotations %v", n.Spec.Unschedulable, n.Annotations)
	}
	if n := get("users"); n.Annotations[DrainedAnnotation] != "" {
		t.Errorf("the user's cordoned node got kk's mark")
	}
	for _, n := range []string{"free", "users"} {
		if err := Uncordon(ctx, cs, n); err != nil {
			t.Fatal(err)
		}
	}
	if n := get("free"); n.Spec.Unschedulable || n.Annotations[DrainedAnnotation] != "" {
		t.Errorf("free node after Uncordon: unschedulable %v, annotations %v", n.Spec.Unschedulable, n.Annotations)
	}
	if n := get("users"); !n.Spec.Unschedulable {
		t.Errorf("Uncordon made the user's cordoned node schedulable")
	}
}

// From v1.35 on cgroup v1 hosts, the cluster's kubelet configuration gets failCgroupV1: false
// (kept when the user set it).
func TestKeepCgroupV1(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kubelet-config", Namespace: "kube-system"},
		Data: map[string]string{"kubelet": "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: 110\n"}})
	s := Spec{Client: func(context.Context) (k8s.Interface, error) { return cs, nil }}
	for i := 0; i < 2; i++ {
		if err := s.keepCgroupV1(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cm, _ := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubelet-config", metav1.GetOptions{})
	if got := cm.Data["kubelet"]; !strings.Contains(got, "failCgroupV1: false") || !strings.Contains(got, "maxPods: 110") {
		t.Errorf("kubelet config:\n%s", got)
	}
}

// TestAPICallWaitsOutAFreshAPIServer: a 403 (a kube-apiserver that has just started, its
// RBAC caches not synced yet) is tried again; a NotFound is not.
func TestAPICallWaitsOutAFreshAPIServer(t *testing.T) {
	gr := schema.GroupResource{Resource: "nodes"}
	calls := 0
	err := apiCall(context.Background(), func() error {
		calls++
		if calls == 1 {
			return apierrors.NewForbidden(gr, "n4", errors.New(`User "kubernetes-admin" cannot get resource "nodes"`))
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Errorf("forbidden, then allowed: %v after %d calls, want success after 2", err, calls)
	}
	calls = 0
	err = apiCall(context.Background(), func() error { calls++; return apierrors.NewNotFound(gr, "n9") })
	if !apierrors.IsNotFound(err) || calls != 1 {
		t.Errorf("not found: %v after %d calls, want it at once", err, calls)
	}
}
