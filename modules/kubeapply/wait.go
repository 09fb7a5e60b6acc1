package kubeapply

import (
	"context"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// WaitOptions tunes Client.Wait.
type WaitOptions struct {
	// Timeout bounds the whole wait (0: until ctx is done).
	Timeout time.Duration
	// Interval between polls (default 2s).
	Interval time.Duration
	// Namespace for namespaced objects that have none (default "default"), as in Apply.
	Namespace string
}

// NotReady is one object that did not become Current.
type NotReady struct {
	Ref     string        // "Deployment default/web"
	Status  status.Status // kstatus status (InProgress, Failed, NotFound, ...)
	Message string        // kstatus message, or the error reading the object
	// Pods says why a workload's pods are not ready: each such pod's node, phase, container
	// reasons and latest warning events.
	Pods []string
}

// TimeoutError says which objects were not ready when the wait ended.
type TimeoutError struct {
	Waited   time.Duration
	NotReady []NotReady
	Cause    error // ctx.Err() or context.DeadlineExceeded
}

func (e *TimeoutError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d object(s) not ready after %s:", len(e.NotReady), e.Waited.Round(time.Second))
	for _, n := range e.NotReady {
		fmt.Fprintf(&b, "\n  %s: %s", n.Ref, n.Status)
		if n.Message != "" {
			fmt.Fprintf(&b, ": %s", n.Message)
		}
		for _, p := range n.Pods {
			fmt.Fprintf(&b, "\n    %s", p)
		}
	}
	return b.String()
}

func (e *TimeoutError) Unwrap() error { return e.Cause }

// Wait polls objs until kstatus computes every one Current (Deployments rolled out, DaemonSets
// scheduled and available everywhere, CRDs established, ConfigMaps as soon as they exist...).
// On timeout it returns a *TimeoutError listing each object that is not ready and why.
func Wait(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured, timeout time.Duration) error {
	c, err := NewClient(cfg)
	if err != nil {
		return err
	}
	return c.Wait(ctx, objs, WaitOptions{Timeout: timeout})
}

// Wait is the package-level Wait on an existing Client.
func (c *Client) Wait(ctx context.Context, objs []*unstructured.Unstructured, o WaitOptions) error {
	if o.Interval == 0 {
		o.Interval = 2 * time.Second
	}
	if o.Namespace == "" {
		o.Namespace = metav1.NamespaceDefault
	}
	start := time.Now()
	parent := ctx
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	pending := make([]*unstructured.Unstructured, 0, len(objs))
	for _, obj := range objs {
		pending = append(pending, obj.DeepCopy())
	}
	var notReady []NotReady
	for {
		var still []*unstructured.Unstructured
		notReady = notReady[:0]
		for _, obj := range pending {
			nr, ok := c.check(ctx, obj, o.Namespace)
			if ctx.Err() != nil {
				break
			}
			if !ok {
				still = append(still, obj)
				notReady = append(notReady, nr)
			}
		}
		if ctx.Err() != nil {
			break
		}
		pending = still
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(o.Interval):
		}
		if ctx.Err() != nil {
			break
		}
	}
	if len(notReady) == 0 {
		// Cancelled before the first poll finished: everything pending is not known to be ready.
		for _, obj := range pending {
			notReady = append(notReady, NotReady{Ref: Ref(obj), Status: status.UnknownStatus, Message: "not checked before the wait ended"})
		}
	}
	// what the pods of each workload say, read within a few seconds of the wait's end (unless
	// the caller's own context is done)
	if parent.Err() == nil {
		dctx, cancel := context.WithTimeout(parent, 15*time.Second)
		defer cancel()
		for i := range notReady {
			for _, obj := range pending {
				if Ref(obj) == notReady[i].Ref {
					notReady[i].Pods = c.podProblems(dctx, obj, o.Namespace)
				}
			}
		}
	}
	return &TimeoutError{Waited: time.Since(start), NotReady: notReady, Cause: ctx.Err()}
}

// NotReady polls objs once and returns those that are not Current (nil when all are).
func (c *Client) NotReady(ctx context.Context, objs []*unstructured.Unstructured, namespace string) []NotReady {
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	var out []NotReady
	for _, obj := range objs {
		if nr, ok := c.check(ctx, obj.DeepCopy(), namespace); !ok {
			out = append(out, nr)
		}
	}
	return out
}

// check reads obj and computes its kstatus; ok means Current.
func (c *Client) check(ctx context.Context, obj *unstructured.Unstructured, defaultNS string) (NotReady, bool) {
	ri, err := c.resource(ctx, obj, defaultNS, 0)
	if err != nil {
		return NotReady{Ref: Ref(obj), Status: status.UnknownStatus, Message: err.Error()}, false
	}
	live, err := ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return NotReady{Ref: Ref(obj), Status: status.NotFoundStatus, Message: "not found"}, false
	}
	if err != nil {
		return NotReady{Ref: Ref(obj), Status: status.UnknownStatus, Message: err.Error()}, false
	}
	res, err := status.Compute(live)
	if err != nil {
		return NotReady{Ref: Ref(obj), Status: status.UnknownStatus, Message: err.Error()}, false
	}
	if res.Status == status.CurrentStatus {
		return NotReady{}, true
	}
	return NotReady{Ref: Ref(obj), Status: res.Status, Message: res.Message}, false
}
