//go:build integration

package drain_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/kk-project/kk/e2e/apiserver"
	"github.com/kk-project/kk/modules/drain"
)

const itNS = "kk-drain"

// TestDrainAgainstAPIServer drains node-a of a real API server (with the controller manager,
// whose disruption controller keeps the PodDisruptionBudget's status). No scheduler or kubelet
// runs, so fakeKubelet plays both: it binds the Deployment's new pods to the first schedulable
// node and reports them Running and Ready.
func TestDrainAgainstAPIServer(t *testing.T) {
	s := apiserver.StartWith(t, apiserver.Options{ControllerManager: true})
	t.Cleanup(func() { // before Stop (cleanups run last first) and TempDir's removal
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(s.Dir, "kube-controller-manager.log"))
			t.Logf("kube-controller-manager.log, last 6000 bytes:\n%s", b[max(0, len(b)-6000):])
		}
	})
	cs := kubernetes.NewForConfigOrDie(s.Config)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	for _, n := range []string{"node-a", "node-b"} {
		if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create node %s: %v", n, err)
		}
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: itNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, "the namespace's default ServiceAccount", func() (bool, string) {
		_, err := cs.CoreV1().ServiceAccounts(itNS).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})

	zero := int64(0) // deleted at once when evicted: no kubelet would confirm a graceful end
	replicas := int32(2)
	labels := map[string]string{"app": "web"}
	podSpec := corev1.PodSpec{TerminationGracePeriodSeconds: &zero,
		Containers: []corev1.Container{{Name: "web", Image: "registry.k8s.io/pause:3.10.1"}}}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: itNS},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec}},
	}
	if _, err := cs.AppsV1().Deployments(itNS).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	minAvailable := intstr.FromInt32(2)
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: itNS},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &minAvailable, Selector: &metav1.LabelSelector{MatchLabels: labels}},
	}
	if _, err := cs.PolicyV1().PodDisruptionBudgets(itNS).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bare", Namespace: itNS}, Spec: *podSpec.DeepCopy()}
	bare.Spec.NodeName = "node-a"
	if _, err := cs.CoreV1().Pods(itNS).Create(ctx, bare, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	kubeletCtx, stopKubelet := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); fakeKubelet(kubeletCtx, cs) }()
	defer func() { stopKubelet(); wg.Wait() }()

	waitFor(ctx, t, "2 ready web pods on node-a and the budget computed", func() (bool, string) {
		on := webPods(ctx, t, cs)
		p, err := cs.PolicyV1().PodDisruptionBudgets(itNS).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		st := p.Status
		return len(on["node-a"]) == 2 && st.ObservedGeneration == p.Generation && st.CurrentHealthy == 2 && st.DisruptionsAllowed == 0,
			fmt.Sprintf("web pods by node %v, budget status %+v", on, st)
	})
	webA := webPods(ctx, t, cs)["node-a"]

	// Without --force the bare pod is refused, before anything changes.
	evict, blocked, err := drain.Pending(ctx, cs, "node-a", false)
	if err != nil || len(evict) != 2 || len(blocked) != 1 || !strings.HasPrefix(blocked[0], itNS+"/bare: ") {
		t.Fatalf("pending: %d to evict, blocked %q, %v", len(evict), blocked, err)
	}
	o := drain.Options{Timeout: 8 * time.Second, Poll: 500 * time.Millisecond, Log: t.Logf}
	err = drain.Drain(ctx, cs, "node-a", o)
	t.Logf("without --force: %v", err)
	if err == nil || !strings.Contains(err.Error(), itNS+"/bare") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("want a refusal naming %s/bare and --force, got %v", itNS, err)
	}
	if isCordoned(ctx, t, cs, "node-a") {
		t.Fatal("a refused drain cordoned the node")
	}

	// With force, minAvailable 2 of 2: the bare pod goes, the budget holds the web pods.
	o.Force = true
	start := time.Now()
	err = drain.Drain(ctx, cs, "node-a", o)
	t.Logf("minAvailable 2 (after %s): %v", time.Since(start).Round(time.Millisecond), err)
	var te *drain.TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a *TimeoutError, got %v", err)
	}
	if !strings.HasPrefix(err.Error(), "drain node node-a: timed out after 8s: 2 pods still on it: ") {
		t.Fatalf("error: %v", err)
	}
	for _, name := range webA {
		want := fmt.Sprintf("%s/%s (PodDisruptionBudget %s/web allows 0 disruptions", itNS, name, itNS)
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error does not name %s and its budget (%q): %v", name, want, err)
		}
	}
	if !isCordoned(ctx, t, cs, "node-a") {
		t.Fatal("node-a not cordoned")
	}
	if _, err := cs.CoreV1().Pods(itNS).Get(ctx, "bare", metav1.GetOptions{}); err == nil {
		t.Fatal("the bare pod was not deleted")
	}
	if got := webPods(ctx, t, cs)["node-a"]; strings.Join(got, ",") != strings.Join(webA, ",") {
		t.Fatalf("web pods on node-a after the refused drain: %v, want %v", got, webA)
	}

	// minAvailable 1: one pod at a time goes; each replacement lands on node-b and becomes
	// ready, which lets the next eviction through.
	patch := []byte(`{"spec":{"minAvailable":1}}`)
	if _, err := cs.PolicyV1().PodDisruptionBudgets(itNS).Patch(ctx, "web", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	o.Timeout = 60 * time.Second
	start = time.Now()
	if err := drain.Drain(ctx, cs, "node-a", o); err != nil {
		t.Fatalf("minAvailable 1: %v", err)
	}
	t.Logf("minAvailable 1: drained in %s", time.Since(start).Round(time.Millisecond))
	left, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=node-a"})
	if err != nil || len(left.Items) != 0 {
		t.Fatalf("pods left on node-a: %v %v", left, err)
	}
	waitFor(ctx, t, "2 web pods on node-b", func() (bool, string) {
		on := webPods(ctx, t, cs)
		return len(on["node-b"]) == 2, fmt.Sprint(on)
	})
}

// fakeKubelet binds unscheduled web pods to the first schedulable node (by name) and marks
// bound ones Running and Ready, until ctx ends.
func fakeKubelet(ctx context.Context, cs kubernetes.Interface) {
	for ctx.Err() == nil {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		pods, perr := cs.CoreV1().Pods(itNS).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err == nil && perr == nil {
			target := ""
			sort.Slice(nodes.Items, func(i, j int) bool { return nodes.Items[i].Name < nodes.Items[j].Name })
			for _, n := range nodes.Items {
				if !n.Spec.Unschedulable {
					target = n.Name
					break
				}
			}
			for _, p := range pods.Items {
				switch {
				case p.DeletionTimestamp != nil:
				case p.Spec.NodeName == "" && target != "":
					_ = cs.CoreV1().Pods(itNS).Bind(ctx, &corev1.Binding{
						ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: itNS, UID: p.UID},
						Target:     corev1.ObjectReference{Kind: "Node", Name: target},
					}, metav1.CreateOptions{})
				case p.Spec.NodeName != "" && !ready(p):
					now := metav1.Now()
					p.Status.Phase = corev1.PodRunning
					p.Status.StartTime = &now
					p.Status.Conditions = []corev1.PodCondition{
						{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
						{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
						{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
					}
					_, _ = cs.CoreV1().Pods(itNS).UpdateStatus(ctx, &p, metav1.UpdateOptions{})
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func ready(p corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// webPods maps node name to the names of the ready, not terminating web pods on it.
func webPods(ctx context.Context, t *testing.T, cs kubernetes.Interface) map[string][]string {
	t.Helper()
	l, err := cs.CoreV1().Pods(itNS).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatalf("list web pods: %v", err)
	}
	out := map[string][]string{}
	for _, p := range l.Items {
		if p.Spec.NodeName != "" && p.DeletionTimestamp == nil && ready(p) {
			out[p.Spec.NodeName] = append(out[p.Spec.NodeName], p.Name)
		}
	}
	for _, names := range out {
		sort.Strings(names)
	}
	return out
}

func isCordoned(ctx context.Context, t *testing.T, cs kubernetes.Interface, node string) bool {
	t.Helper()
	n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node %s: %v", node, err)
	}
	return n.Spec.Unschedulable
}

// waitFor polls cond every 200ms for up to 60s; the test fails with cond's last word.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("waiting for %s: %s", what, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
