//go:build integration

package platform

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/e2e/apiserver"
	"github.com/kk-project/kk/e2e/mirror"
	"github.com/kk-project/kk/modules/kubeapply"
	"github.com/kk-project/kk/modules/platform/localcsi"
)

// nopMounter stands in for the node's bind mounts: no kubelet runs here to publish a volume.
type nopMounter struct{}

func (nopMounter) Bind(string, string, bool) error { return nil }
func (nopMounter) Unmount(string) error            { return nil }
func (nopMounter) Mounted(string) (bool, error)    { return false, nil }

// sidecar runs the mirror's binary of a local storage container with the arguments kk's
// DaemonSet or Deployment gives it, pointed at this test's API server and driver socket: the
// template's flags are what is tested.
func sidecar(t *testing.T, ctx context.Context, bin string, container map[string]any, sock, kubeconfig, node string) {
	t.Helper()
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("the mirror has no %s (go run ./e2e/cmd/mirror build --only csi-sidecars): %v", bin, err)
	}
	var args []string
	for _, a := range container["args"].([]any) {
		s := strings.ReplaceAll(a.(string), "/csi/csi.sock", sock)
		if strings.HasPrefix(s, "--leader-election") {
			continue // one of each runs here
		}
		args = append(args, s)
	}
	args = append(args, "--kubeconfig="+kubeconfig)
	name := container["name"].(string)
	logPath := filepath.Join(t.TempDir(), name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "NODE_NAME="+node)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			if len(data) > 6000 {
				data = data[len(data)-6000:]
			}
			t.Logf("%s %s:\n%s", name, strings.Join(args, " "), data)
		}
	})
}

// The local storage's flow with upstream's sidecars and snapshot-controller (the mirror's
// builds) and kk's driver (localcsi), on a real API server and controller manager, no kubelet:
// a claim of the default class stays unprovisioned until the scheduler's choice of node (the
// selected-node annotation) reaches it, then the node's provisioner makes its volume there and
// the claim binds; a snapshot of it (default class) becomes ready, its content managed by that
// node; the claim's expansion is left to the node (FileSystemResizePending) with the volume's
// new size recorded; deleting the snapshot and the claim removes the archive and the directory.
func TestLocalStorageSidecars(t *testing.T) {
	spec := mirror.DefaultSpec()
	mdir := os.Getenv("KK_MIRROR_DIR")
	if mdir == "" {
		mdir = apiserver.DefaultMirrorDir
	}
	s := apiserver.StartWith(t, apiserver.Options{ControllerManager: true})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	const node = "n1"
	ls, c := localStorage(t, s, "")
	// the CRDs, the classes and the driver object; the sidecars run here as the admin, not in pods
	var objs []*unstructured.Unstructured
	workload := map[string]map[string]any{}
	for _, o := range ls.Objects {
		switch o.GetKind() {
		case "CustomResourceDefinition", "StorageClass", "VolumeSnapshotClass", "CSIDriver":
			objs = append(objs, o)
		case "DaemonSet", "Deployment":
			for n, ct := range containers(t, o) {
				workload[n] = ct
			}
		}
	}
	if _, err := c.Apply(ctx, objs, kubeapply.Options{}); err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(s.Config)
	// the node, labelled with its topology segment as its kubelet does once the driver registers
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node,
		Labels: map[string]string{localcsi.TopologyKey: node, "kubernetes.io/hostname": node}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	state := t.TempDir()
	d, err := localcsi.New(localcsi.Config{Name: localcsi.DriverName, Version: "test", NodeID: node, StateDir: state,
		MaxVolumeSize: 1 << 40}, nopMounter{})
	if err != nil {
		t.Fatal(err)
	}
	sockDir, err := os.MkdirTemp("", "csi")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "csi.sock")
	go localcsi.Serve(ctx, d, "unix://"+sock)
	for n, bin := range map[string]string{"csi-provisioner": mirror.CSIProvisionerPath(spec.CSIProvisioner),
		"csi-snapshotter": mirror.CSISnapshotterPath(spec.CSISnapshotter), "csi-resizer": mirror.CSIResizerPath(spec.CSIResizer),
		"snapshot-controller": mirror.SnapshotControllerPath(spec.CSISnapshotter)} {
		if workload[n] == nil {
			t.Fatalf("the local storage has no %s container", n)
		}
		sidecar(t, ctx, filepath.Join(mdir, bin), workload[n], sock, s.Kubeconfig, node)
	}

	pvcs := cs.CoreV1().PersistentVolumeClaims("default")
	claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "e2e-local"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("64Mi")}}}}
	if _, err := pvcs.Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	if pvs, _ := cs.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{}); len(pvs.Items) != 0 {
		t.Fatalf("a volume was made before the claim's pod had a node: %v", pvs.Items)
	}
	got, _ := pvcs.Get(ctx, "e2e-local", metav1.GetOptions{})
	if got.Spec.StorageClassName == nil || *got.Spec.StorageClassName != config.LocalStorageClass || got.Status.Phase != corev1.ClaimPending {
		t.Errorf("the claim before scheduling: class %v, phase %s; want local, Pending", got.Spec.StorageClassName, got.Status.Phase)
	}
	// what the scheduler does for the claim's pod on n1
	if _, err := pvcs.Patch(ctx, "e2e-local", types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"volume.kubernetes.io/selected-node":"`+node+`"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	poll := func(what string, timeout time.Duration, ok func() (bool, error)) {
		t.Helper()
		var last error
		if err := wait.PollUntilContextTimeout(ctx, time.Second, timeout, true, func(context.Context) (bool, error) {
			done, err := ok()
			last = err
			return done, nil
		}); err != nil {
			t.Fatalf("%s: %v (last: %v)", what, err, last)
		}
	}
	var pv *corev1.PersistentVolume
	poll("the claim bound", 2*time.Minute, func() (bool, error) {
		got, err := pvcs.Get(ctx, "e2e-local", metav1.GetOptions{})
		if err != nil || got.Status.Phase != corev1.ClaimBound {
			return false, err
		}
		pv, err = cs.CoreV1().PersistentVolumes().Get(ctx, got.Spec.VolumeName, metav1.GetOptions{})
		return err == nil, err
	})
	handle := pv.Spec.CSI.VolumeHandle
	terms := pv.Spec.NodeAffinity.Required.NodeSelectorTerms
	if len(terms) != 1 || terms[0].MatchExpressions[0].Key != localcsi.TopologyKey || terms[0].MatchExpressions[0].Values[0] != node {
		t.Errorf("the volume's node affinity %v, want %s=%s", terms, localcsi.TopologyKey, node)
	}
	if fi, err := os.Stat(filepath.Join(state, handle)); err != nil || !fi.IsDir() {
		t.Errorf("the volume's directory %s: %v", handle, err)
	}
	if err := os.WriteFile(filepath.Join(state, handle, "f"), []byte("written"), 0o644); err != nil {
		t.Fatal(err)
	}

	dyn := dynamic.NewForConfigOrDie(s.Config)
	snaps := dyn.Resource(schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshots"}).Namespace("default")
	contents := dyn.Resource(schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshotcontents"})
	snap := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
		"metadata": map[string]any{"name": "e2e-local"}, "spec": map[string]any{"source": map[string]any{"persistentVolumeClaimName": "e2e-local"}}}}
	if _, err := snaps.Create(ctx, snap, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var snapHandle string
	poll("the snapshot ready", 2*time.Minute, func() (bool, error) {
		got, err := snaps.Get(ctx, "e2e-local", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ready, _, _ := unstructured.NestedBool(got.Object, "status", "readyToUse")
		name, _, _ := unstructured.NestedString(got.Object, "status", "boundVolumeSnapshotContentName")
		if !ready || name == "" {
			return false, fmt.Errorf("status %v", got.Object["status"])
		}
		content, err := contents.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if by := content.GetLabels()["snapshot.storage.kubernetes.io/managed-by"]; by != node {
			t.Errorf("the snapshot's content is managed by %q, want %s", by, node)
		}
		snapHandle, _, _ = unstructured.NestedString(content.Object, "status", "snapshotHandle")
		return true, nil
	})
	if _, err := os.Stat(d.SnapshotPath(snapHandle)); err != nil {
		t.Errorf("the snapshot's archive: %v", err)
	}

	if _, err := pvcs.Patch(ctx, "e2e-local", types.MergePatchType, []byte(`{"spec":{"resources":{"requests":{"storage":"128Mi"}}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	poll("the volume grown and the claim's expansion left to the node", 2*time.Minute, func() (bool, error) {
		got, err := cs.CoreV1().PersistentVolumes().Get(ctx, pv.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		claim, err := pvcs.Get(ctx, "e2e-local", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pending := false
		for _, cond := range claim.Status.Conditions {
			pending = pending || cond.Type == corev1.PersistentVolumeClaimFileSystemResizePending
		}
		size := got.Spec.Capacity[corev1.ResourceStorage]
		return size.Cmp(resource.MustParse("128Mi")) == 0 && pending, fmt.Errorf("PV capacity %s, claim conditions %v", size.String(), claim.Status.Conditions)
	})

	if err := snaps.Delete(ctx, "e2e-local", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll("the snapshot's archive removed", 2*time.Minute, func() (bool, error) {
		_, err := os.Stat(d.SnapshotPath(snapHandle))
		return os.IsNotExist(err), err
	})
	if err := pvcs.Delete(ctx, "e2e-local", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll("the volume's directory removed", 2*time.Minute, func() (bool, error) {
		_, err := os.Stat(filepath.Join(state, handle))
		return os.IsNotExist(err), err
	})
}
