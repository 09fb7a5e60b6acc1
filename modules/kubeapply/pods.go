package kubeapply

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Why a workload is not ready is usually in its pods: an image that is not there, a crash, a
// node that cannot take it. podProblems reports that, so that a wait that ends says more than
// "0/1 available".
const (
	maxPodsReported   = 3
	maxEventsReported = 2
	maxReasonLen      = 240
)

var (
	podsResource   = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	eventsResource = schema.GroupVersionResource{Version: "v1", Resource: "events"}
)

// workloadKinds run pods selected by spec.selector.
var workloadKinds = []string{"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job"}

// podProblems lists, for a workload obj that is not ready, each of its pods that is not Ready
// (at most maxPodsReported): its node, phase, its containers' waiting or terminated reasons and
// its latest warning events. Nothing for another kind, or when its pods cannot be read.
func (c *Client) podProblems(ctx context.Context, obj *unstructured.Unstructured, defaultNS string) []string {
	if !slices.Contains(workloadKinds, obj.GetKind()) {
		return nil
	}
	ns := obj.GetNamespace()
	if ns == "" {
		ns = defaultNS
	}
	ri, err := c.resource(ctx, obj.DeepCopy(), defaultNS, 0)
	if err != nil {
		return nil
	}
	live, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
	if err != nil {
		return nil
	}
	sel := &metav1.LabelSelector{}
	raw, ok, _ := unstructured.NestedMap(live.Object, "spec", "selector")
	if !ok || runtime.DefaultUnstructuredConverter.FromUnstructured(raw, sel) != nil {
		return nil
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || selector.Empty() {
		return nil
	}
	list, err := c.Dynamic.Resource(podsResource).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
	if err != nil {
		return []string{"its pods could not be listed: " + err.Error()}
	}
	if len(list.Items) == 0 {
		return []string{"no pod of it exists"}
	}
	var out []string
	for i := range list.Items {
		var pod corev1.Pod
		if runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &pod) != nil || podReady(&pod) {
			continue
		}
		if len(out) == maxPodsReported {
			out = append(out, fmt.Sprintf("(and more pods not ready, %d in all)", len(list.Items)))
			break
		}
		out = append(out, describePod(&pod)+c.podWarnings(ctx, &pod))
	}
	return out
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// describePod is "pod NS/NAME on NODE: PHASE; container C: REASON: MESSAGE".
func describePod(p *corev1.Pod) string {
	node := p.Spec.NodeName
	if node == "" {
		node = "no node"
	}
	s := fmt.Sprintf("pod %s/%s on %s: %s", p.Namespace, p.Name, node, p.Status.Phase)
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue && c.Message != "" {
			s += "; not scheduled: " + clip(c.Message)
		}
	}
	for _, cs := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
			s += fmt.Sprintf("; container %s: %s", cs.Name, cs.State.Waiting.Reason)
			if m := cs.State.Waiting.Message; m != "" {
				s += ": " + clip(m)
			}
		case cs.State.Terminated != nil && cs.State.Terminated.ExitCode != 0:
			s += fmt.Sprintf("; container %s exited %d (%s)", cs.Name, cs.State.Terminated.ExitCode, cs.State.Terminated.Reason)
		}
		if t := cs.LastTerminationState.Terminated; t != nil && cs.RestartCount > 0 {
			s += fmt.Sprintf("; restarted %d times, last exit %d (%s)", cs.RestartCount, t.ExitCode, t.Reason)
		}
	}
	return s
}

// podWarnings is "; events: REASON: MESSAGE | ..." of p's latest warning events, or "".
func (c *Client) podWarnings(ctx context.Context, p *corev1.Pod) string {
	list, err := c.Dynamic.Resource(eventsResource).Namespace(p.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Pod,involvedObject.name=" + p.Name + ",type=Warning"})
	if err != nil || len(list.Items) == 0 {
		return ""
	}
	var evs []corev1.Event
	for i := range list.Items {
		var e corev1.Event
		if runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &e) == nil {
			evs = append(evs, e)
		}
	}
	// newest first
	slices.SortFunc(evs, func(a, b corev1.Event) int { return eventTime(b).Compare(eventTime(a).Time) })
	var parts []string
	for _, e := range evs[:min(len(evs), maxEventsReported)] {
		parts = append(parts, e.Reason+": "+clip(e.Message))
	}
	return "; events: " + strings.Join(parts, " | ")
}

func eventTime(e corev1.Event) metav1.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp
	case !e.EventTime.IsZero():
		return metav1.Time{Time: e.EventTime.Time}
	}
	return e.CreationTimestamp
}

func clip(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxReasonLen {
		return s[:maxReasonLen] + "..."
	}
	return s
}
