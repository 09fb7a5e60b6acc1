package drain_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kk-project/kk/modules/drain"
)

var podsGVR = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

func newNode(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// newPod is a Running pod on n1 in default, managed by the ReplicaSet web-rs unless opts change it.
func newPod(name string, opts ...func(*corev1.Pod)) *corev1.Pod {
	yes := true
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(name + "-uid"),
			Labels: map[string]string{"app": "web"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-rs",
				UID: "rs-uid", Controller: &yes}}},
		Spec:   corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "pause"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func ownedBy(kind, name string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.OwnerReferences[0].Kind, p.OwnerReferences[0].Name = kind, name }
}

func unmanaged(p *corev1.Pod) { p.OwnerReferences = nil }

func onNode(n string) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Spec.NodeName = n } }

func inPhase(ph corev1.PodPhase) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Status.Phase = ph }
}

func mirror(p *corev1.Pod) {
	p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "hash"}
	p.OwnerReferences[0].Kind, p.OwnerReferences[0].APIVersion = "Node", "v1"
}

// evictions records eviction calls; decide (nil: always succeed) answers each, and a success
// deletes the pod, as the API server does with a grace period of 0.
type evictions struct {
	mu     sync.Mutex
	calls  map[string]int
	decide func(key string, n int) error
}

func (e *evictions) count(key string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[key]
}

func onEvict(cs *fake.Clientset, decide func(key string, n int) error) *evictions {
	e := &evictions{calls: map[string]int{}, decide: decide}
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		ev := a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
		key := ev.Namespace + "/" + ev.Name
		e.mu.Lock()
		e.calls[key]++
		n := e.calls[key]
		e.mu.Unlock()
		if _, err := cs.Tracker().Get(podsGVR, ev.Namespace, ev.Name); err != nil {
			return true, nil, err
		}
		if e.decide != nil {
			if err := e.decide(key, n); err != nil {
				return true, nil, err
			}
		}
		return true, nil, cs.Tracker().Delete(podsGVR, ev.Namespace, ev.Name)
	})
	return e
}

func tooMany() error {
	return apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
}

// deleted lists the pods deleted through DELETE (not evictions).
func deleted(cs *fake.Clientset) []string {
	var out []string
	for _, a := range cs.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok && a.GetResource().Resource == "pods" {
			out = append(out, d.GetNamespace()+"/"+d.GetName())
		}
	}
	return out
}

func podNames(t *testing.T, cs *fake.Clientset) []string {
	t.Helper()
	l, err := cs.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range l.Items {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	return out
}

func cordoned(t *testing.T, cs *fake.Clientset, node string) bool {
	t.Helper()
	n, err := cs.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n.Spec.Unschedulable
}

func opts(t *testing.T) drain.Options {
	return drain.Options{Timeout: 10 * time.Second, Poll: 10 * time.Millisecond, Log: t.Logf}
}

func TestCordon(t *testing.T) {
	cs := fake.NewClientset(newNode("n1"))
	ctx := context.Background()
	for i, c := range []struct {
		unschedulable, changed bool
	}{{true, true}, {true, false}, {false, true}, {false, false}} {
		changed, err := drain.Cordon(ctx, cs, "n1", c.unschedulable)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if changed != c.changed || cordoned(t, cs, "n1") != c.unschedulable {
			t.Fatalf("step %d: Cordon(%v) changed=%v unschedulable=%v", i, c.unschedulable, changed, cordoned(t, cs, "n1"))
		}
	}
	if _, err := drain.Cordon(ctx, cs, "nope", true); err == nil || !strings.Contains(err.Error(), "cordon node nope") {
		t.Fatalf("missing node: %v", err)
	}
}

func TestDrainRetriesWhileTheBudgetRefuses(t *testing.T) {
	cs := fake.NewClientset(newNode("n1"), newPod("web-1"), newPod("other", onNode("n2")))
	ev := onEvict(cs, func(key string, n int) error {
		if n <= 3 {
			return tooMany()
		}
		return nil
	})
	if err := drain.Drain(context.Background(), cs, "n1", opts(t)); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if n := ev.count("default/web-1"); n != 4 {
		t.Fatalf("want 4 eviction calls (3 refused), got %d", n)
	}
	if !cordoned(t, cs, "n1") {
		t.Fatal("node not cordoned")
	}
	if got := strings.Join(podNames(t, cs), ","); got != "default/other" {
		t.Fatalf("pods left: %s", got)
	}
	if d := deleted(cs); len(d) != 0 {
		t.Fatalf("deleted instead of evicted: %v", d)
	}
}

func TestDrainSkipsDaemonSetAndMirrorPods(t *testing.T) {
	emptyDir := func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	}
	cs := fake.NewClientset(newNode("n1"),
		newPod("ds", ownedBy("DaemonSet", "proxy")),
		newPod("kube-apiserver-n1", mirror),
		newPod("cache", emptyDir, ownedBy("StatefulSet", "cache")),
		newPod("job-done", unmanaged, inPhase(corev1.PodSucceeded)),
		newPod("job-failed", ownedBy("Job", "j"), inPhase(corev1.PodFailed)),
	)
	ev := onEvict(cs, nil)

	evict, blocked, err := drain.Pending(context.Background(), cs, "n1", false)
	if err != nil || len(blocked) != 0 {
		t.Fatalf("pending: %v, blocked %v", err, blocked)
	}
	var names []string
	for _, p := range evict {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, ","); got != "cache,job-done,job-failed" {
		t.Fatalf("pending: %s", got)
	}

	if err := drain.Drain(context.Background(), cs, "n1", opts(t)); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if got := strings.Join(podNames(t, cs), ","); got != "default/ds,default/kube-apiserver-n1" {
		t.Fatalf("pods left: %s", got)
	}
	if ev.count("default/cache") != 1 || ev.count("default/ds") != 0 || ev.count("default/job-done") != 0 {
		t.Fatalf("evictions: %v", ev.calls)
	}
	if got := strings.Join(deleted(cs), ","); got != "default/job-done,default/job-failed" {
		t.Fatalf("terminated pods: deleted %s", got)
	}
}

func TestDrainRefusesUnmanagedPodsWithoutForce(t *testing.T) {
	cs := fake.NewClientset(newNode("n1"), newPod("web-1"), newPod("bare", unmanaged),
		newPod("debug", unmanaged, func(p *corev1.Pod) { p.Namespace = "tools" }))
	ev := onEvict(cs, nil)
	ctx := context.Background()

	_, blocked, err := drain.Pending(ctx, cs, "n1", false)
	if err != nil || len(blocked) != 2 || !strings.HasPrefix(blocked[0], "default/bare: ") || !strings.HasPrefix(blocked[1], "tools/debug: ") {
		t.Fatalf("pending: %v, blocked %q", err, blocked)
	}
	err = drain.Drain(ctx, cs, "n1", opts(t))
	t.Logf("refusal: %v", err)
	if err == nil || !strings.Contains(err.Error(), "default/bare, tools/debug") || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("want a refusal naming default/bare, tools/debug and --force, got %v", err)
	}
	if cordoned(t, cs, "n1") || len(podNames(t, cs)) != 3 || ev.count("default/web-1") != 0 {
		t.Fatalf("refused drain changed something: cordoned %v, pods %v", cordoned(t, cs, "n1"), podNames(t, cs))
	}

	// With force: the unmanaged pods are deleted, the managed one evicted.
	evict, blocked, err := drain.Pending(ctx, cs, "n1", true)
	if err != nil || len(blocked) != 0 || len(evict) != 3 {
		t.Fatalf("pending with force: %d to evict, blocked %v, %v", len(evict), blocked, err)
	}
	o := opts(t)
	o.Force = true
	o.GracePeriod = 1500 * time.Millisecond
	if err := drain.Drain(ctx, cs, "n1", o); err != nil {
		t.Fatalf("forced drain: %v", err)
	}
	if left := podNames(t, cs); len(left) != 0 {
		t.Fatalf("pods left: %v", left)
	}
	if got := strings.Join(deleted(cs), ","); got != "default/bare,tools/debug" || ev.count("default/web-1") != 1 {
		t.Fatalf("deleted %s, evictions %v", got, ev.calls)
	}
	for _, a := range cs.Actions() {
		if d, ok := a.(k8stesting.DeleteActionImpl); ok {
			g := d.DeleteOptions.GracePeriodSeconds
			if g == nil || *g != 2 || d.DeleteOptions.Preconditions == nil || *d.DeleteOptions.Preconditions.UID != types.UID(d.Name+"-uid") {
				t.Fatalf("delete options of %s: %+v", d.Name, d.DeleteOptions)
			}
		}
	}
}

// An evicted pod that lingers (terminating) holds the drain until it is gone; one replaced by
// a pod of the same name (a StatefulSet's) counts as gone.
func TestDrainWaitsUntilPodsAreGone(t *testing.T) {
	cs := fake.NewClientset(newNode("n1"), newPod("slow"), newPod("sts-0", ownedBy("StatefulSet", "sts")))
	var gone sync.WaitGroup
	gone.Add(1)
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		ev := a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
		obj, err := cs.Tracker().Get(podsGVR, ev.Namespace, ev.Name)
		if err != nil {
			return true, nil, err
		}
		p := obj.(*corev1.Pod).DeepCopy()
		if ev.Name == "sts-0" { // replaced at once: same name, new UID, same node
			p.UID = "sts-0-second"
			p.ResourceVersion = ""
			if err := cs.Tracker().Delete(podsGVR, p.Namespace, p.Name); err != nil {
				return true, nil, err
			}
			return true, nil, cs.Tracker().Create(podsGVR, p, p.Namespace)
		}
		now := metav1.Now()
		p.DeletionTimestamp = &now
		go func() { // the kubelet confirms the end a little later
			defer gone.Done()
			time.Sleep(300 * time.Millisecond)
			_ = cs.Tracker().Delete(podsGVR, p.Namespace, p.Name)
		}()
		return true, nil, cs.Tracker().Update(podsGVR, p, p.Namespace)
	})
	start := time.Now()
	if err := drain.Drain(context.Background(), cs, "n1", opts(t)); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("drain returned after %s, before the evicted pod was gone", took)
	}
	if got := strings.Join(podNames(t, cs), ","); got != "default/sts-0" {
		t.Fatalf("pods left: %s", got)
	}
	gone.Wait()
}

func TestDrainTimeoutNamesPodsAndBudget(t *testing.T) {
	min := intstr.FromInt32(1)
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web-pdb", Namespace: "default", Generation: 1},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &min, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		Status:     policyv1.PodDisruptionBudgetStatus{ObservedGeneration: 1, DisruptionsAllowed: 0, DesiredHealthy: 1, CurrentHealthy: 1},
	}
	other := pdb.DeepCopy()
	other.Name, other.Spec.Selector = "db-pdb", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}
	now := metav1.Now()
	cs := fake.NewClientset(newNode("n1"), pdb, other,
		newPod("web-1"),
		newPod("stuck", func(p *corev1.Pod) { p.DeletionTimestamp = &now; p.Finalizers = []string{"kk.test/hold"} }),
	)
	ev := onEvict(cs, func(string, int) error { return tooMany() })
	o := opts(t)
	o.Timeout = 300 * time.Millisecond
	start := time.Now()
	err := drain.Drain(context.Background(), cs, "n1", o)
	t.Logf("error: %v", err)
	var te *drain.TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a *TimeoutError wrapping DeadlineExceeded, got %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %s", took)
	}
	want := "drain node n1: timed out after 300ms: 2 pods still on it: " +
		"default/stuck (terminating), " +
		"default/web-1 (PodDisruptionBudget default/web-pdb allows 0 disruptions, needs 1 healthy pod and has 1)"
	if err.Error() != want {
		t.Fatalf("error:\n got %s\nwant %s", err, want)
	}
	if ev.count("default/stuck") != 0 || ev.count("default/web-1") < 2 {
		t.Fatalf("evictions: %v", ev.calls)
	}
	if !cordoned(t, cs, "n1") {
		t.Fatal("node not left cordoned")
	}
}

func TestDrainRefusalWithoutBudgetQuotesTheServer(t *testing.T) {
	cs := fake.NewClientset(newNode("n1"), newPod("web-1"))
	onEvict(cs, func(string, int) error { return apierrors.NewTooManyRequests("slow down", 1) })
	o := opts(t)
	o.Timeout = 100 * time.Millisecond
	err := drain.Drain(context.Background(), cs, "n1", o)
	if err == nil || !strings.Contains(err.Error(), "default/web-1 (eviction refused: slow down)") {
		t.Fatalf("got %v", err)
	}
}

func TestDrainStopsOnOtherErrors(t *testing.T) {
	cs := fake.NewClientset(newNode("n1"), newPod("web-1"))
	onEvict(cs, func(string, int) error {
		return apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "web-1", fmt.Errorf("no"))
	})
	err := drain.Drain(context.Background(), cs, "n1", opts(t))
	if err == nil || !strings.Contains(err.Error(), "default/web-1") || !apierrors.IsForbidden(err) {
		t.Fatalf("got %v", err)
	}
}

func TestDrainStopsPromptlyWhenCancelled(t *testing.T) {
	cs := fake.NewClientset(newNode("n1"), newPod("web-1"))
	onEvict(cs, func(string, int) error { return tooMany() })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	o := opts(t)
	o.Timeout, o.Poll = time.Minute, 5*time.Second
	start := time.Now()
	err := drain.Drain(ctx, cs, "n1", o)
	if took := time.Since(start); took > time.Second {
		t.Fatalf("cancelled drain returned after %s", took)
	}
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "cancelled after") || !strings.Contains(err.Error(), "default/web-1") {
		t.Fatalf("got %v", err)
	}
}

func TestDrainNodeWithNothingToDo(t *testing.T) {
	cs := fake.NewClientset(newNode("n1"), newPod("ds", ownedBy("DaemonSet", "proxy")))
	if err := drain.Drain(context.Background(), cs, "n1", opts(t)); err != nil {
		t.Fatal(err)
	}
	if !cordoned(t, cs, "n1") {
		t.Fatal("not cordoned")
	}
	if err := drain.Drain(context.Background(), cs, "missing", opts(t)); err == nil || !strings.Contains(err.Error(), "node missing") {
		t.Fatalf("missing node: %v", err)
	}
}
