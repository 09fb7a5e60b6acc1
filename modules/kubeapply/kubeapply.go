// Package kubeapply applies Kubernetes manifests from the machine kk runs on, like
// `kubectl apply --server-side --force-conflicts`, and waits for what it applied to be ready.
//
// Objects go through the dynamic client with a RESTMapper built from discovery (cached, reset
// when a kind is unknown, so a custom resource whose CRD is applied earlier in the same list
// resolves once the CRD is served). Namespaces and CRDs are applied first, then the rest in a
// dependency-friendly order. Every object reports whether it was created, configured or left
// unchanged (its resourceVersion did not move), so a re-run reports 0 changed.
package kubeapply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// FieldManager is the server-side apply field manager kk uses.
const FieldManager = "kk"

// Action is what applying one object did.
type Action string

const (
	Created    Action = "created"
	Configured Action = "configured"
	Unchanged  Action = "unchanged"
)

// Options tunes Apply.
type Options struct {
	// FieldManager (default FieldManager, "kk").
	FieldManager string
	// Namespace is set on namespaced objects that have none (default "default").
	// Namespaced objects that name a namespace keep it.
	Namespace string
	// DryRun asks the API server what would change (server-side dry run) and changes nothing.
	// Created means the object does not exist; Configured that applying it would change it.
	DryRun bool
	// MappingTimeout bounds how long an unknown kind is retried (its CRD may just have been
	// applied and not be served yet). Default 60s.
	MappingTimeout time.Duration
}

// ObjectResult is the outcome for one object.
type ObjectResult struct {
	// Object is the object as applied (namespace defaulted); after a real apply it is the
	// server's answer.
	Object *unstructured.Unstructured
	Action Action
}

// String is "Kind namespace/name created".
func (r ObjectResult) String() string { return Ref(r.Object) + " " + string(r.Action) }

// Result lists every object in the order it was applied.
type Result struct {
	Objects []ObjectResult
}

// Count returns how many objects had action a.
func (r Result) Count(a Action) int {
	n := 0
	for _, o := range r.Objects {
		if o.Action == a {
			n++
		}
	}
	return n
}

// Changed is the number of objects created or configured.
func (r Result) Changed() int { return r.Count(Created) + r.Count(Configured) }

// Applied returns the objects as applied, for Wait.
func (r Result) Applied() []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(r.Objects))
	for i, o := range r.Objects {
		out[i] = o.Object
	}
	return out
}

// String summarises: "3 created, 1 configured, 2 unchanged".
func (r Result) String() string {
	return fmt.Sprintf("%d created, %d configured, %d unchanged", r.Count(Created), r.Count(Configured), r.Count(Unchanged))
}

// Ref names an object for messages: "Deployment kube-system/coredns", "Namespace foo".
func Ref(o *unstructured.Unstructured) string {
	if o.GetNamespace() != "" {
		return o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
	}
	return o.GetKind() + " " + o.GetName()
}

// Decode splits multi-document YAML (or JSON) into objects. Empty documents are skipped and
// `kind: List` documents are expanded into their items. Every object must have apiVersion,
// kind and metadata.name (or generateName is refused: apply needs a name).
func Decode(docs []byte) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(docs), 4096)
	var out []*unstructured.Unstructured
	for n := 1; ; n++ {
		var m map[string]any
		if err := r.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.IsList() {
			l, err := u.ToList()
			if err != nil {
				return nil, fmt.Errorf("document %d: %w", n, err)
			}
			for i := range l.Items {
				item := l.Items[i]
				if err := validate(&item); err != nil {
					return nil, fmt.Errorf("document %d, item %d: %w", n, i+1, err)
				}
				out = append(out, &item)
			}
			continue
		}
		if err := validate(u); err != nil {
			return nil, fmt.Errorf("document %d: %w", n, err)
		}
		out = append(out, u)
	}
	return out, nil
}

func validate(u *unstructured.Unstructured) error {
	switch {
	case u.GetAPIVersion() == "":
		return fmt.Errorf("object has no apiVersion")
	case u.GetKind() == "":
		return fmt.Errorf("object has no kind")
	case u.GetName() == "":
		return fmt.Errorf("%s has no metadata.name", u.GetKind())
	}
	return nil
}

// order ranks kinds so that what others depend on is applied first; unknown kinds (custom
// resources) come after everything built in, keeping their order in the input.
var order = map[string]int{
	"Namespace":                      0,
	"CustomResourceDefinition":       1,
	"PriorityClass":                  2,
	"NetworkPolicy":                  3,
	"ResourceQuota":                  3,
	"LimitRange":                     3,
	"PodSecurityPolicy":              3,
	"PodDisruptionBudget":            3,
	"ServiceAccount":                 4,
	"Secret":                         5,
	"ConfigMap":                      5,
	"StorageClass":                   6,
	"PersistentVolume":               6,
	"PersistentVolumeClaim":          7,
	"ClusterRole":                    8,
	"ClusterRoleBinding":             9,
	"Role":                           10,
	"RoleBinding":                    11,
	"Service":                        12,
	"DaemonSet":                      13,
	"Pod":                            13,
	"ReplicationController":          13,
	"ReplicaSet":                     13,
	"Deployment":                     13,
	"HorizontalPodAutoscaler":        14,
	"StatefulSet":                    13,
	"Job":                            13,
	"CronJob":                        13,
	"IngressClass":                   15,
	"Ingress":                        16,
	"APIService":                     17,
	"MutatingWebhookConfiguration":   18,
	"ValidatingWebhookConfiguration": 18,
}

const customRank = 100

func rank(u *unstructured.Unstructured) int {
	if r, ok := order[u.GetKind()]; ok {
		return r
	}
	return customRank
}

// Sort returns objs in apply order (stable): Namespaces, CRDs, then the rest (see order).
func Sort(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := append([]*unstructured.Unstructured(nil), objs...)
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

// ApplyYAML decodes multi-document YAML and applies it; see Apply.
func ApplyYAML(ctx context.Context, cfg *rest.Config, docs []byte, opts Options) (Result, error) {
	objs, err := Decode(docs)
	if err != nil {
		return Result{}, err
	}
	return Apply(ctx, cfg, objs, opts)
}

// Client is what Apply and Wait use to reach the cluster: a dynamic client and a RESTMapper
// over cached discovery. One Client can serve several calls (its discovery cache is reused).
type Client struct {
	Dynamic dynamic.Interface
	Mapper  *restmapper.DeferredDiscoveryRESTMapper
}

// NewClient builds a Client from cfg.
func NewClient(cfg *rest.Config) (*Client, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	return &Client{Dynamic: dyn, Mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}, nil
}

// Apply applies objs with server-side apply (field manager "kk", conflicts forced), in Sort
// order, and reports what happened to each. It stops at the first error, which names the
// object; the Result then holds the objects applied so far. objs are not modified.
func Apply(ctx context.Context, cfg *rest.Config, objs []*unstructured.Unstructured, opts Options) (Result, error) {
	c, err := NewClient(cfg)
	if err != nil {
		return Result{}, err
	}
	return c.Apply(ctx, objs, opts)
}

// Apply is the package-level Apply on an existing Client.
func (c *Client) Apply(ctx context.Context, objs []*unstructured.Unstructured, opts Options) (Result, error) {
	if opts.FieldManager == "" {
		opts.FieldManager = FieldManager
	}
	if opts.Namespace == "" {
		opts.Namespace = metav1.NamespaceDefault
	}
	if opts.MappingTimeout == 0 {
		opts.MappingTimeout = 60 * time.Second
	}
	var res Result
	for _, o := range Sort(objs) {
		r, err := c.applyOne(ctx, o.DeepCopy(), opts)
		if err != nil {
			return res, fmt.Errorf("apply %s: %w", Ref(o), err)
		}
		res.Objects = append(res.Objects, r)
	}
	return res, nil
}

// resource maps o to its resource, waiting up to timeout for a kind that is not served yet,
// and defaults or clears o's namespace according to the scope.
func (c *Client) resource(ctx context.Context, o *unstructured.Unstructured, defaultNS string, timeout time.Duration) (dynamic.ResourceInterface, error) {
	gvk := o.GroupVersionKind()
	m, err := c.mapping(ctx, gvk, timeout)
	if err != nil {
		return nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if o.GetNamespace() == "" {
			o.SetNamespace(defaultNS)
		}
		return c.Dynamic.Resource(m.Resource).Namespace(o.GetNamespace()), nil
	}
	o.SetNamespace("")
	return c.Dynamic.Resource(m.Resource), nil
}

func (c *Client) mapping(ctx context.Context, gvk schema.GroupVersionKind, timeout time.Duration) (*meta.RESTMapping, error) {
	m, err := c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err == nil || !meta.IsNoMatchError(err) {
		return m, err
	}
	deadline := time.Now().Add(timeout)
	for {
		// The kind may come from a CRD applied moments ago: forget discovery and ask again.
		c.Mapper.Reset()
		m, err = c.Mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err == nil || !meta.IsNoMatchError(err) {
			return m, err
		}
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("the API server does not serve %s (is its CRD installed?): %w", gvk, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (c *Client) applyOne(ctx context.Context, o *unstructured.Unstructured, opts Options) (ObjectResult, error) {
	timeout := opts.MappingTimeout
	if opts.DryRun {
		timeout = 0
	}
	ri, err := c.resource(ctx, o, opts.Namespace, timeout)
	if opts.DryRun && meta.IsNoMatchError(err) {
		// Its kind is not served (its CRD is not applied yet): the object cannot exist.
		return ObjectResult{Object: o, Action: Created}, nil
	}
	if err != nil {
		return ObjectResult{}, err
	}
	// Apply patches must not carry a resourceVersion or server-owned metadata.
	o.SetResourceVersion("")
	o.SetManagedFields(nil)
	o.SetUID("")
	o.SetCreationTimestamp(metav1.Time{})
	unstructured.RemoveNestedField(o.Object, "status")

	before, err := ri.Get(ctx, o.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		before, err = nil, nil
	}
	if err != nil {
		return ObjectResult{}, err
	}
	ao := metav1.ApplyOptions{FieldManager: opts.FieldManager, Force: true}
	if opts.DryRun {
		ao.DryRun = []string{metav1.DryRunAll}
	}
	var after *unstructured.Unstructured
	// A CRD's kind can be listed in discovery a moment before its resource accepts writes.
	for attempt := 0; ; attempt++ {
		after, err = ri.Apply(ctx, o.GetName(), o, ao)
		if err == nil || !apierrors.IsNotFound(err) || rank(o) != customRank || attempt >= 10 {
			break
		}
		select {
		case <-ctx.Done():
			return ObjectResult{}, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if err != nil && opts.DryRun && before == nil && apierrors.IsNotFound(err) {
		// Its namespace would be created by the same apply.
		return ObjectResult{Object: o, Action: Created}, nil
	}
	if err != nil {
		return ObjectResult{}, err
	}
	r := ObjectResult{Object: after, Action: Configured}
	switch {
	case before == nil:
		r.Action = Created
	case before.GetResourceVersion() == after.GetResourceVersion() && !opts.DryRun:
		r.Action = Unchanged
	case sameContent(before, after):
		// A dry run keeps the resourceVersion, so the content tells. A real apply can also
		// move the resourceVersion for bookkeeping alone: an object of which kk owns no field
		// (a Namespace with just a name) gets its managedFields written on the next apply.
		r.Action = Unchanged
	}
	if opts.DryRun {
		r.Object = o
	}
	return r, nil
}

// sameContent compares two versions of an object, ignoring what the server changes on any write.
func sameContent(a, b *unstructured.Unstructured) bool {
	strip := func(u *unstructured.Unstructured) map[string]any {
		c := u.DeepCopy()
		for _, f := range []string{"managedFields", "resourceVersion", "generation"} {
			unstructured.RemoveNestedField(c.Object, "metadata", f)
		}
		return c.Object
	}
	return reflect.DeepEqual(strip(a), strip(b))
}

// Delete deletes objs (namespaced ones without a namespace are looked for in namespace, default
// "default"); objects that are already gone, or whose kind is no longer served, are skipped.
func (c *Client) Delete(ctx context.Context, objs []*unstructured.Unstructured, namespace string) error {
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	for _, o := range objs {
		o = o.DeepCopy()
		ri, err := c.resource(ctx, o, namespace, 0)
		if meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("delete %s: %w", Ref(o), err)
		}
		if err := ri.Delete(ctx, o.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s: %w", Ref(o), err)
		}
	}
	return nil
}
