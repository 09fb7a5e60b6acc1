package kubeapply

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestDecode(t *testing.T) {
	docs := `
# a comment only
---
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
---
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Secret
  metadata: {name: s}
- apiVersion: v1
  kind: Namespace
  metadata: {name: ns1}
---
{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa", "namespace": "x"}}
`
	objs, err := Decode([]byte(docs))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, Ref(o))
	}
	want := "ConfigMap a|Secret s|Namespace ns1|ServiceAccount x/sa"
	if strings.Join(got, "|") != want {
		t.Fatalf("got %q, want %q", strings.Join(got, "|"), want)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{"apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "document 1: ConfigMap has no metadata.name"},
		{"kind: ConfigMap\nmetadata: {name: a}\n", "document 1: object has no apiVersion"},
		{"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nmetadata: {name: b}\n", "document 2: object has no kind"},
		{"apiVersion: v1\nkind: [\n", "document 1:"},
	} {
		_, err := Decode([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Decode(%q) = %v, want an error containing %q", c.doc, err, c.want)
		}
	}
}

func obj(kind, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind(kind)
	u.SetName(name)
	return u
}

func TestSort(t *testing.T) {
	in := []*unstructured.Unstructured{
		obj("Widget", "w1"), obj("Deployment", "d"), obj("ConfigMap", "c"),
		obj("CustomResourceDefinition", "widgets"), obj("Widget", "w2"), obj("Namespace", "n"),
		obj("ClusterRoleBinding", "crb"), obj("ClusterRole", "cr"), obj("ServiceAccount", "sa"),
	}
	var got []string
	for _, o := range Sort(in) {
		got = append(got, o.GetName())
	}
	want := "n|widgets|sa|c|cr|crb|d|w1|w2"
	if strings.Join(got, "|") != want {
		t.Fatalf("got %s, want %s", strings.Join(got, "|"), want)
	}
	if in[0].GetName() != "w1" {
		t.Fatal("Sort modified its input")
	}
}

func TestResultCounts(t *testing.T) {
	r := Result{Objects: []ObjectResult{
		{Object: obj("ConfigMap", "a"), Action: Created},
		{Object: obj("ConfigMap", "b"), Action: Unchanged},
		{Object: obj("ConfigMap", "c"), Action: Configured},
		{Object: obj("ConfigMap", "d"), Action: Unchanged},
	}}
	if r.Changed() != 2 || r.Count(Unchanged) != 2 {
		t.Fatalf("Changed %d, Unchanged %d", r.Changed(), r.Count(Unchanged))
	}
	if r.String() != "1 created, 1 configured, 2 unchanged" {
		t.Fatal(r.String())
	}
	if len(r.Applied()) != 4 || r.Applied()[2].GetName() != "c" {
		t.Fatal("Applied")
	}
}

func TestTimeoutErrorMessage(t *testing.T) {
	e := &TimeoutError{NotReady: []NotReady{{Ref: "Deployment default/web", Status: "InProgress", Message: "Available: 0/1"}}}
	if !strings.Contains(e.Error(), "Deployment default/web: InProgress: Available: 0/1") {
		t.Fatal(e.Error())
	}
}

// A pod's line says its node and phase, a waiting container's reason and message (an image
// the node lacks), and a crash-looping container's last exit.
func TestDescribePod(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "gw-x", Namespace: "kubesphere-controls-system"},
		Spec: corev1.PodSpec{NodeName: "n2"},
		Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "traefik", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull",
				Message: "Container image \"docker.io/library/traefik:v3.7.13\" is not present with pull policy of Never"}}},
			{Name: "side", RestartCount: 4, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}}},
		}}}
	want := `pod kubesphere-controls-system/gw-x on n2: Pending; container traefik: ErrImageNeverPull: Container image "docker.io/library/traefik:v3.7.13" is not present with pull policy of Never; container side: CrashLoopBackOff; restarted 4 times, last exit 2 (Error)`
	if got := describePod(p); got != want {
		t.Errorf("describePod:\n%s\nwant\n%s", got, want)
	}
	if long := clip(strings.Repeat("x", 500)); len(long) != maxReasonLen+3 {
		t.Errorf("clip: %d", len(long))
	}
}
