// Package drain cordons a node and moves its pods off it, for kk delete node and kk upgrade:
// kk's own drain on client-go (kubectl is not a dependency).
//
// What Drain does with each pod bound to the node:
//
//   - Pods of a DaemonSet and mirror (static) pods are left alone: the DaemonSet controller
//     would put the former straight back, and the latter belong to the kubelet's manifests.
//   - Pods already terminated (Succeeded or Failed) are deleted, without an eviction.
//   - Pods a controller manages (ReplicaSet, StatefulSet, Job...) are evicted through the
//     policy/v1 Eviction subresource, so PodDisruptionBudgets are respected: an eviction the
//     budget refuses (429) is retried every Poll until Timeout. Pods with emptyDir volumes are
//     evicted like the others: the data in those volumes is lost (kubectl asks for
//     --delete-emptydir-data; kk does not).
//   - Pods no controller manages are refused, naming each, unless Force: nothing would
//     recreate them. With Force they are deleted (not evicted: no budget can apply).
//   - Pods already terminating are waited for.
//
// Drain returns once every pod it removed is gone from the node (deleted, or replaced by a pod
// of the same name with another UID, as a StatefulSet does). On a node whose kubelet is down
// evicted pods stay Terminating (nothing confirms their end), so Drain times out naming them.
package drain

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Options tunes Drain.
type Options struct {
	// Timeout bounds the whole drain, cordon included (0: 5 minutes).
	Timeout time.Duration
	// Force also deletes pods no controller manages (Drain refuses them otherwise, naming
	// them). Such pods are gone for good.
	Force bool
	// GracePeriod overrides the pods' termination grace period (0: each pod's own). It is
	// rounded up to whole seconds.
	GracePeriod time.Duration
	// Poll is the interval between eviction retries and checks that pods are gone (0: 2s).
	Poll time.Duration
	// Log receives progress lines (nil: silent).
	Log func(format string, args ...any)
}

func (o *Options) defaults() {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
}

// Stuck is a pod still on the node when a drain ended, and why.
type Stuck struct {
	Pod    string // "ns/name"
	Reason string // "PodDisruptionBudget ns/pdb allows 0 disruptions, ...", "terminating", ...
}

// TimeoutError is Drain's error when the timeout (or the caller's context) ended it before
// every pod was gone. It unwraps to the context's error.
type TimeoutError struct {
	Node  string
	After time.Duration
	Pods  []Stuck
	Cause error // context.DeadlineExceeded or context.Canceled
}

func (e *TimeoutError) Error() string {
	verb := "timed out"
	if errors.Is(e.Cause, context.Canceled) {
		verb = "cancelled"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "drain node %s: %s after %s: %d %s still on it: ", e.Node, verb, e.After, len(e.Pods), plural(len(e.Pods), "pod", "pods"))
	for i, s := range e.Pods {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%s)", s.Pod, s.Reason)
	}
	return b.String()
}

func (e *TimeoutError) Unwrap() error { return e.Cause }

// Cordon marks node unschedulable (or schedulable again with unschedulable false); changed
// says whether the node was otherwise before.
func Cordon(ctx context.Context, cs kubernetes.Interface, node string, unschedulable bool) (changed bool, err error) {
	verb := "cordon"
	if !unschedulable {
		verb = "uncordon"
	}
	n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return false, fmt.Errorf("%s node %s: %w", verb, node, err)
	}
	if n.Spec.Unschedulable == unschedulable {
		return false, nil
	}
	patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, unschedulable)
	if _, err := cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return false, fmt.Errorf("%s node %s: %w", verb, node, err)
	}
	return true, nil
}

// Pending says what a drain of node would do now, changing nothing (for --dry-run): evict
// holds every pod it would remove, in namespace/name order (terminated pods, and with force
// the pods no controller manages, are deleted rather than evicted; pods already terminating
// are included, as the drain waits for them), and blocked one line per pod that makes it refuse
// (no controller manages it and force is false). DaemonSet and mirror pods are in neither.
func Pending(ctx context.Context, cs kubernetes.Interface, node string, force bool) (evict []corev1.Pod, blocked []string, err error) {
	pods, err := podsOn(ctx, cs, node)
	if err != nil {
		return nil, nil, fmt.Errorf("drain node %s: %w", node, err)
	}
	targets, unmanaged := classify(pods, force)
	for _, t := range targets {
		evict = append(evict, t.pod)
	}
	for _, p := range unmanaged {
		blocked = append(blocked, p+": no controller manages it, so nothing would recreate it (--force deletes it)")
	}
	return evict, blocked, nil
}

// Drain cordons node, then removes its pods as the package comment describes and waits until
// they are gone. It refuses, before cordoning, when pods no controller manages are on the node
// and o.Force is false, naming them. When o.Timeout passes (or ctx ends) first it returns a
// *TimeoutError naming every pod still there and why (the PodDisruptionBudget refusing its
// eviction, "terminating", ...); the node is left cordoned.
func Drain(ctx context.Context, cs kubernetes.Interface, node string, o Options) error {
	o.defaults()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	d := &drainer{cs: cs, node: node, o: o, start: start}
	pods, err := podsOn(ctx, cs, node)
	if err != nil {
		return d.failed(ctx, err)
	}
	if _, unmanaged := classify(pods, o.Force); len(unmanaged) > 0 {
		return refuse(node, unmanaged, false)
	}
	changed, err := Cordon(ctx, cs, node, true)
	if err != nil {
		if ctx.Err() != nil {
			return d.timeout(ctx)
		}
		return err
	}
	if changed {
		o.Log("node %s cordoned", node)
	}
	// List again: a pod may have been bound between the first look and the cordon.
	if pods, err = podsOn(ctx, cs, node); err != nil {
		return d.failed(ctx, err)
	}
	var unmanaged []string
	d.targets, unmanaged = classify(pods, o.Force)
	if len(unmanaged) > 0 {
		return refuse(node, unmanaged, true)
	}
	if len(d.targets) == 0 {
		o.Log("node %s drained: no pods to remove", node)
		return nil
	}
	o.Log("drain node %s: %d %s to remove", node, len(d.targets), plural(len(d.targets), "pod", "pods"))
	return d.run(ctx)
}

// how a pod leaves the node.
type how int

const (
	evict how = iota
	remove
)

// target is one pod the drain removes.
type target struct {
	pod    corev1.Pod // the latest copy seen
	how    how
	reason string // why it is still there
}

func (t *target) key() string { return t.pod.Namespace + "/" + t.pod.Name }

type drainer struct {
	cs      kubernetes.Interface
	node    string
	o       Options
	start   time.Time
	targets []*target
}

// run evicts or deletes every target, every Poll, until all are gone.
func (d *drainer) run(ctx context.Context) error {
	for {
		if err := d.act(ctx); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return d.timeout(ctx)
		}
		if err := d.prune(ctx); err != nil {
			if ctx.Err() != nil {
				return d.timeout(ctx)
			}
			d.o.Log("drain node %s: %v; checking again in %s", d.node, err, d.o.Poll)
		}
		if len(d.targets) == 0 {
			d.o.Log("node %s drained in %s", d.node, roundDuration(time.Since(d.start)))
			return nil
		}
		select {
		case <-ctx.Done():
			return d.timeout(ctx)
		case <-time.After(d.o.Poll):
		}
	}
}

// act asks once for the removal of every target not yet terminating. An eviction the API
// refuses for now (a PodDisruptionBudget's 429, a conflict, a server timeout) is left for the
// next round with the reason; any other error ends the drain.
func (d *drainer) act(ctx context.Context) error {
	budgets := map[string][]policyv1.PodDisruptionBudget{} // by namespace, listed once per round
	for _, t := range d.targets {
		if t.pod.DeletionTimestamp != nil {
			t.reason = "terminating"
			continue
		}
		var err error
		if t.how == evict {
			err = d.cs.PolicyV1().Evictions(t.pod.Namespace).Evict(ctx, &policyv1.Eviction{
				ObjectMeta:    metav1.ObjectMeta{Name: t.pod.Name, Namespace: t.pod.Namespace},
				DeleteOptions: d.deleteOptions(t.pod),
			})
		} else {
			err = d.cs.CoreV1().Pods(t.pod.Namespace).Delete(ctx, t.pod.Name, *d.deleteOptions(t.pod))
		}
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case err == nil:
			t.reason = "terminating"
			d.o.Log("drain node %s: %s %s", d.node, verb(t.how), t.key())
		case apierrors.IsNotFound(err):
			t.reason = "gone"
		case retryable(err):
			reason := d.refusal(ctx, t.pod, err, budgets)
			if reason != t.reason {
				d.o.Log("drain node %s: cannot evict %s yet: %s; retrying every %s", d.node, t.key(), reason, d.o.Poll)
			}
			t.reason = reason
		default:
			return fmt.Errorf("drain node %s: %s %s: %w (the node stays cordoned)", d.node, verb(t.how), t.key(), err)
		}
	}
	return nil
}

// prune lists the node's pods and drops the targets that are gone (or replaced by a pod of the
// same name and another UID), keeping the latest copy of the others.
func (d *drainer) prune(ctx context.Context) error {
	pods, err := podsOn(ctx, d.cs, d.node)
	if err != nil {
		return err
	}
	live := make(map[string]corev1.Pod, len(pods))
	for _, p := range pods {
		live[p.Namespace+"/"+p.Name] = p
	}
	kept := d.targets[:0]
	for _, t := range d.targets {
		p, ok := live[t.key()]
		if !ok || p.UID != t.pod.UID {
			d.o.Log("drain node %s: %s gone", d.node, t.key())
			continue
		}
		t.pod = p
		if p.DeletionTimestamp != nil {
			t.reason = "terminating"
		}
		kept = append(kept, t)
	}
	d.targets = kept
	return nil
}

// refusal explains why an eviction was refused: the PodDisruptionBudgets selecting the pod
// when there are any, else the server's message.
func (d *drainer) refusal(ctx context.Context, pod corev1.Pod, err error, cache map[string][]policyv1.PodDisruptionBudget) string {
	if !apierrors.IsTooManyRequests(err) {
		return "refused for now: " + errMessage(err)
	}
	list, ok := cache[pod.Namespace]
	if !ok {
		l, lerr := d.cs.PolicyV1().PodDisruptionBudgets(pod.Namespace).List(ctx, metav1.ListOptions{})
		if lerr != nil {
			return "eviction refused: " + errMessage(err)
		}
		list = l.Items
		cache[pod.Namespace] = list
	}
	var why []string
	for _, pdb := range list {
		sel, serr := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if serr != nil || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		why = append(why, budgetState(pdb))
	}
	if len(why) == 0 {
		return "eviction refused: " + errMessage(err)
	}
	return strings.Join(why, "; ")
}

// budgetState is "PodDisruptionBudget ns/name allows N disruptions, ...".
func budgetState(pdb policyv1.PodDisruptionBudget) string {
	ref := "PodDisruptionBudget " + pdb.Namespace + "/" + pdb.Name
	if pdb.Status.ObservedGeneration < pdb.Generation {
		return ref + " is not yet processed by the disruption controller"
	}
	return fmt.Sprintf("%s allows %d %s, needs %d healthy %s and has %d", ref,
		pdb.Status.DisruptionsAllowed, plural(int(pdb.Status.DisruptionsAllowed), "disruption", "disruptions"),
		pdb.Status.DesiredHealthy, plural(int(pdb.Status.DesiredHealthy), "pod", "pods"), pdb.Status.CurrentHealthy)
}

func (d *drainer) deleteOptions(pod corev1.Pod) *metav1.DeleteOptions {
	opts := &metav1.DeleteOptions{}
	if pod.UID != "" {
		// Never remove a replacement that took the name in the meantime.
		uid := pod.UID
		opts.Preconditions = &metav1.Preconditions{UID: &uid}
	}
	if d.o.GracePeriod > 0 {
		secs := int64((d.o.GracePeriod + time.Second - 1) / time.Second)
		opts.GracePeriodSeconds = &secs
	}
	return opts
}

// timeout is the *TimeoutError for ctx's end, naming every target left.
func (d *drainer) timeout(ctx context.Context) error {
	cause := ctx.Err()
	if cause == nil {
		cause = context.DeadlineExceeded
	}
	after := roundDuration(time.Since(d.start))
	if errors.Is(cause, context.DeadlineExceeded) && after >= d.o.Timeout {
		after = d.o.Timeout
	}
	e := &TimeoutError{Node: d.node, After: after, Cause: cause}
	for _, t := range d.targets {
		reason := t.reason
		if reason == "" {
			reason = "not " + verb(t.how) + " yet"
		}
		e.Pods = append(e.Pods, Stuck{Pod: t.key(), Reason: reason})
	}
	return e
}

// failed wraps an error of the drain's first steps, as a *TimeoutError when ctx ended.
func (d *drainer) failed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return d.timeout(ctx)
	}
	return fmt.Errorf("drain node %s: %w", d.node, err)
}

// podsOn lists the pods bound to node, in namespace/name order.
func podsOn(ctx context.Context, cs kubernetes.Interface, node string) ([]corev1.Pod, error) {
	l, err := cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String(),
	})
	if err != nil {
		return nil, fmt.Errorf("list pods on node %s: %w", node, err)
	}
	var pods []corev1.Pod
	for _, p := range l.Items {
		if p.Spec.NodeName == node { // the field selector, again: not every client honours it
			pods = append(pods, p)
		}
	}
	sort.Slice(pods, func(i, j int) bool {
		if pods[i].Namespace != pods[j].Namespace {
			return pods[i].Namespace < pods[j].Namespace
		}
		return pods[i].Name < pods[j].Name
	})
	return pods, nil
}

// classify sorts pods into the ones the drain removes and, without force, the names ("ns/name")
// of those it refuses because no controller manages them.
func classify(pods []corev1.Pod, force bool) (targets []*target, unmanaged []string) {
	for _, p := range pods {
		ctrl := metav1.GetControllerOf(&p)
		switch {
		case isMirror(p), ctrl != nil && ctrl.Kind == "DaemonSet":
			continue
		case p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed:
			targets = append(targets, &target{pod: p, how: remove})
		case ctrl == nil && p.DeletionTimestamp == nil:
			if !force {
				unmanaged = append(unmanaged, p.Namespace+"/"+p.Name)
				continue
			}
			targets = append(targets, &target{pod: p, how: remove})
		default:
			targets = append(targets, &target{pod: p, how: evict})
		}
	}
	return targets, unmanaged
}

func isMirror(p corev1.Pod) bool {
	_, ok := p.Annotations[corev1.MirrorPodAnnotationKey]
	return ok
}

func refuse(node string, unmanaged []string, cordoned bool) error {
	state := "nothing changed"
	if cordoned {
		state = "the node stays cordoned"
	}
	return fmt.Errorf("drain node %s: refusing to delete %d %s no controller manages (nothing would recreate %s): %s; use --force to delete %s (%s)",
		node, len(unmanaged), plural(len(unmanaged), "pod", "pods"), plural(len(unmanaged), "it", "them"),
		strings.Join(unmanaged, ", "), plural(len(unmanaged), "it", "them"), state)
}

// retryable says whether an eviction or deletion error may pass: a PodDisruptionBudget
// refusing for now (429), a conflict, or an overloaded server.
func retryable(err error) bool {
	return apierrors.IsTooManyRequests(err) || apierrors.IsConflict(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsTimeout(err) || apierrors.IsServiceUnavailable(err)
}

func errMessage(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) && se.Status().Message != "" {
		return strings.TrimSuffix(se.Status().Message, ".")
	}
	return err.Error()
}

func verb(h how) string {
	if h == evict {
		return "evicted"
	}
	return "deleted"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// roundDuration keeps durations readable: whole seconds from 10s, milliseconds below.
func roundDuration(d time.Duration) time.Duration {
	if d >= 10*time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
