package kubeapply

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// DefaultWaitTimeout is how long Install waits for what it applied to be ready, unless told.
const DefaultWaitTimeout = 10 * time.Minute

// Install applies objs and waits up to timeout (DefaultWaitTimeout when 0) until every one is
// ready; what names what is installed in errors ("network plugin calico").
func (c *Client) Install(ctx context.Context, what string, objs []*unstructured.Unstructured, timeout time.Duration) (Result, error) {
	if len(objs) == 0 {
		return Result{}, nil
	}
	res, err := c.Apply(ctx, objs, Options{})
	if err != nil {
		return res, fmt.Errorf("%s: %w", what, err)
	}
	if timeout == 0 {
		timeout = DefaultWaitTimeout
	}
	if err := c.Wait(ctx, res.Applied(), WaitOptions{Timeout: timeout}); err != nil {
		return res, fmt.Errorf("%s not ready: %w", what, err)
	}
	return res, nil
}

// Converged reports whether objs are applied as they are (a server-side dry run changes
// nothing) and every one is ready; the reason says what is not.
func (c *Client) Converged(ctx context.Context, what string, objs []*unstructured.Unstructured) (bool, string, error) {
	if len(objs) == 0 {
		return true, "", nil
	}
	res, err := c.Apply(ctx, objs, Options{DryRun: true})
	if err != nil {
		return false, "", fmt.Errorf("%s (dry run): %w", what, err)
	}
	if n := res.Changed(); n > 0 {
		return false, fmt.Sprintf("%d object(s) would change (%s)", n, res), nil
	}
	if nr := c.NotReady(ctx, objs, ""); len(nr) > 0 {
		return false, fmt.Sprintf("%s: %s %s", nr[0].Ref, nr[0].Status, nr[0].Message), nil
	}
	return true, "", nil
}

// Labelled returns those of objs that exist in the cluster with label key set to value
// (namespaced ones without a namespace are looked for in "default"), as they are there: what
// kk may delete without touching an object of the same name that someone else made.
func (c *Client) Labelled(ctx context.Context, objs []*unstructured.Unstructured, key, value string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		o = o.DeepCopy()
		ri, err := c.resource(ctx, o, metav1.NamespaceDefault, 0)
		if meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", Ref(o), err)
		}
		got, err := ri.Get(ctx, o.GetName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", Ref(o), err)
		}
		if got.GetLabels()[key] == value && got.GetDeletionTimestamp() == nil {
			out = append(out, got)
		}
	}
	return out, nil
}

// Stale lists the objects of kinds that carry the label key=value, in any namespace, and are
// not among objs (by kind, namespace and name): what an earlier run applied and the file no
// longer makes. Objects being deleted are not listed; a kind the API server does not serve
// has none.
func (c *Client) Stale(ctx context.Context, kinds []schema.GroupVersionKind, objs []*unstructured.Unstructured, key, value string) ([]*unstructured.Unstructured, error) {
	want := map[string]bool{}
	for _, o := range objs {
		want[o.GroupVersionKind().GroupKind().String()+"/"+o.GetNamespace()+"/"+o.GetName()] = true
	}
	var out []*unstructured.Unstructured
	for _, gvk := range kinds {
		m, err := c.mapping(ctx, gvk, 0)
		if meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", gvk.Kind, err)
		}
		list, err := c.Dynamic.Resource(m.Resource).Namespace(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: key + "=" + value})
		if err != nil {
			return nil, fmt.Errorf("list %s labelled %s=%s: %w", gvk.Kind, key, value, err)
		}
		for i := range list.Items {
			o := &list.Items[i]
			if o.GetDeletionTimestamp() == nil && !want[gvk.GroupKind().String()+"/"+o.GetNamespace()+"/"+o.GetName()] {
				o.SetGroupVersionKind(gvk)
				out = append(out, o)
			}
		}
	}
	return out, nil
}
