// Package addons installs the cluster's addons (config.Cluster.Addons) once the cluster is up,
// from the machine kk runs on, in the order they are listed:
//
//   - YAML addons: every source (a local file or directory of *.yaml/*.yml/*.json, or an
//     http(s) URL fetched with a timeout) is decoded and applied with server-side apply
//     (package kubeapply), then kk waits until every object is ready (kstatus). With
//     sources.yaml.values (KubeKey 3.1's field, "a.b=c" pairs as for charts) every manifest
//     is first rendered as a Go template with them as .Values ({{ .Values.a.b }}, the
//     spelling of a Helm chart's templates; KubeKey itself applies YAML addons as written).
//   - Chart addons: a Helm chart from a local Path, or Name at Version from the Repo URL
//     (through its index.yaml), is installed as a Helm release, or upgraded when its release
//     exists and differs; values come from ValuesFile then Values ("a.b=c", as --set). Wait
//     waits for the release's objects to be ready (kstatus). See helm.go for what of Helm's SDK
//     is used and why not its install action.
//
// Each addon is retried Retries times, Delay seconds apart. A re-run changes nothing: applied
// YAML reports unchanged, and a release whose chart, values and rendered manifest are the same
// is left alone (no new revision).
package addons

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
	"time"

	"helm.sh/helm/v3/pkg/strvals"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/kubeapply"
	"github.com/kk-project/kk/pipeline"
)

// Options tunes Install.
type Options struct {
	// WaitTimeout bounds the readiness wait of one addon (YAML objects Current; Helm --wait).
	// Default 5 minutes.
	WaitTimeout time.Duration
	// HTTPTimeout bounds one download (a YAML URL, a chart repository index or archive);
	// default 60s.
	HTTPTimeout time.Duration
	// Log receives one line per attempt and outcome (nil: silent).
	Log func(format string, args ...any)
}

func (o *Options) defaults() {
	if o.WaitTimeout == 0 {
		o.WaitTimeout = 5 * time.Minute
	}
	if o.HTTPTimeout == 0 {
		o.HTTPTimeout = 60 * time.Second
	}
	if o.Log == nil {
		o.Log = func(string, ...any) {}
	}
}

// Result is what installing one addon did.
type Result struct {
	Addon string
	// Kind is "yaml" or "chart".
	Kind string
	// Action: for YAML the kubeapply summary ("2 created, 0 configured, 1 unchanged"); for a
	// chart "installed", "upgraded" or "unchanged".
	Action string
	// Changed says whether anything in the cluster changed.
	Changed  bool
	Attempts int
}

// Kind returns "chart" or "yaml" for a; an addon with neither source is an error.
func Kind(a config.Addon) (string, error) {
	ch := a.Sources.Chart
	hasChart := ch.Path != "" || ch.Name != "" || ch.Repo != ""
	hasYAML := len(a.Sources.Yaml.Path) > 0
	switch {
	case hasChart && hasYAML:
		return "", fmt.Errorf("addon %s: sources has both a chart and yaml; set one", a.Name)
	case hasChart:
		return "chart", nil
	case hasYAML:
		return "yaml", nil
	}
	return "", fmt.Errorf("addon %s: sources has neither a chart nor yaml paths", a.Name)
}

// Install installs addons in order and stops at the first that fails after its retries; the
// error names the addon (and the path or chart at fault).
func Install(ctx context.Context, cfg *rest.Config, addons []config.Addon, o Options) ([]Result, error) {
	var out []Result
	for _, a := range addons {
		r, err := InstallOne(ctx, cfg, a, o)
		out = append(out, r)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// InstallOne installs one addon with its retries.
func InstallOne(ctx context.Context, cfg *rest.Config, a config.Addon, o Options) (Result, error) {
	o.defaults()
	kind, err := Kind(a)
	r := Result{Addon: a.Name, Kind: kind}
	if err != nil {
		return r, err
	}
	attempts := 1 + max(a.Retries, 0)
	delay := time.Duration(max(a.Delay, 0)) * time.Second
	for {
		r.Attempts++
		if kind == "chart" {
			r.Action, err = installChart(ctx, cfg, a, o)
			r.Changed = r.Action == "installed" || r.Action == "upgraded"
		} else {
			var res kubeapply.Result
			res, err = installYAML(ctx, cfg, a, o)
			r.Action, r.Changed = res.String(), res.Changed() > 0
		}
		if err == nil {
			o.Log("addon %s (%s): %s", a.Name, kind, r.Action)
			return r, nil
		}
		err = fmt.Errorf("addon %s: %w", a.Name, err)
		if r.Attempts >= attempts || ctx.Err() != nil {
			if r.Attempts > 1 {
				err = fmt.Errorf("%w (after %d attempts)", err, r.Attempts)
			}
			return r, err
		}
		o.Log("%v; retrying in %s (attempt %d of %d)", err, delay, r.Attempts+1, attempts)
		select {
		case <-ctx.Done():
			return r, fmt.Errorf("%w (%v)", err, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// yamlObjects reads and decodes every source of a YAML addon, in order.
func yamlObjects(ctx context.Context, a config.Addon, o Options) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	values, err := yamlValues(a.Sources.Yaml.Values)
	if err != nil {
		return nil, err
	}
	for _, src := range a.Sources.Yaml.Path {
		docs, err := readSource(ctx, src, o.HTTPTimeout)
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			if values != nil {
				if d.data, err = renderValues(d.name, d.data, values); err != nil {
					return nil, err
				}
			}
			got, err := kubeapply.Decode(d.data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", d.name, err)
			}
			objs = append(objs, got...)
		}
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("%s: no objects", strings.Join(a.Sources.Yaml.Path, ", "))
	}
	// The addon's namespace is created when none of its objects is that Namespace.
	if ns := a.Namespace; ns != "" && ns != metav1.NamespaceDefault {
		found := false
		for _, u := range objs {
			if u.GetKind() == "Namespace" && u.GetName() == ns {
				found = true
			}
		}
		if !found {
			n := &unstructured.Unstructured{}
			n.SetAPIVersion("v1")
			n.SetKind("Namespace")
			n.SetName(ns)
			objs = append([]*unstructured.Unstructured{n}, objs...)
		}
	}
	return objs, nil
}

func installYAML(ctx context.Context, cfg *rest.Config, a config.Addon, o Options) (kubeapply.Result, error) {
	objs, err := yamlObjects(ctx, a, o)
	if err != nil {
		return kubeapply.Result{}, err
	}
	c, err := kubeapply.NewClient(cfg)
	if err != nil {
		return kubeapply.Result{}, err
	}
	res, err := c.Apply(ctx, objs, kubeapply.Options{Namespace: a.Namespace})
	if err != nil {
		return res, err
	}
	if err := c.Wait(ctx, res.Applied(), kubeapply.WaitOptions{Timeout: o.WaitTimeout, Namespace: a.Namespace}); err != nil {
		return res, err
	}
	return res, nil
}

// yamlValues parses a YAML addon's values ("a.b=c", as chart values and helm --set), nil
// when there are none.
func yamlValues(in []string) (map[string]any, error) {
	if len(in) == 0 {
		return nil, nil
	}
	vals := map[string]any{}
	for _, s := range in {
		if err := strvals.ParseInto(s, vals); err != nil {
			return nil, fmt.Errorf("sources.yaml.values %q: %w", s, err)
		}
	}
	return vals, nil
}

// renderValues renders one manifest of a YAML addon that has values as a Go template
// ({{ .Values.a.b }}, as in a Helm chart's templates; a key not among the values is an
// error). Manifests of an addon without values are applied as written, so "{{" in them is
// left alone.
func renderValues(name string, data []byte, values map[string]any) ([]byte, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(string(data))
	if err != nil {
		return nil, fmt.Errorf("%s: as a template for sources.yaml.values: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, map[string]any{"Values": values}); err != nil {
		return nil, fmt.Errorf("%s: sources.yaml.values: %w", name, err)
	}
	return b.Bytes(), nil
}

type doc struct {
	name string
	data []byte
}

// readSource reads a local file, every *.yaml/*.yml/*.json of a local directory (sorted), or an
// http(s) URL.
func readSource(ctx context.Context, src string, timeout time.Duration) ([]doc, error) {
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", src, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetch %s: %s", src, resp.Status)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", src, err)
		}
		return []doc{{src, b}}, nil
	}
	fi, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("yaml path %s: %w", src, err)
	}
	if !fi.IsDir() {
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("yaml path %s: %w", src, err)
		}
		return []doc{{src, b}}, nil
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return nil, fmt.Errorf("yaml path %s: %w", src, err)
	}
	var names []string
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if !e.IsDir() && (ext == ".yaml" || ext == ".yml" || ext == ".json") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var out []doc
	for _, n := range names {
		p := filepath.Join(src, n)
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("yaml path %s: %w", p, err)
		}
		out = append(out, doc{p, b})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("yaml path %s: a directory with no .yaml, .yml or .json file", src)
	}
	return out, nil
}

// Converged reports whether every addon is installed as configured and ready: YAML addons
// apply with 0 changes in a server-side dry run and their objects are Current; chart addons
// have a deployed release with the same chart, values and rendered manifest. reason says
// which addon is not converged.
func Converged(ctx context.Context, cfg *rest.Config, addons []config.Addon, o Options) (ok bool, reason string, err error) {
	o.defaults()
	for _, a := range addons {
		kind, err := Kind(a)
		if err != nil {
			return false, "", err
		}
		if kind == "chart" {
			plan, _, err := helmPlan(ctx, cfg, a, o)
			if err != nil {
				return false, "", fmt.Errorf("addon %s: %w", a.Name, err)
			}
			if plan != "" {
				return false, fmt.Sprintf("addon %s: would %s", a.Name, plan), nil
			}
			continue
		}
		objs, err := yamlObjects(ctx, a, o)
		if err != nil {
			return false, "", fmt.Errorf("addon %s: %w", a.Name, err)
		}
		c, err := kubeapply.NewClient(cfg)
		if err != nil {
			return false, "", err
		}
		res, err := c.Apply(ctx, objs, kubeapply.Options{Namespace: a.Namespace, DryRun: true})
		if err != nil {
			return false, "", fmt.Errorf("addon %s (dry run): %w", a.Name, err)
		}
		if res.Changed() > 0 {
			return false, fmt.Sprintf("addon %s: %s", a.Name, res), nil
		}
		if nr := c.NotReady(ctx, objs, a.Namespace); len(nr) > 0 {
			return false, fmt.Sprintf("addon %s: %s: %s %s", a.Name, nr[0].Ref, nr[0].Status, nr[0].Message), nil
		}
	}
	return true, "", nil
}

// TaskName is the name of the task Task returns.
const TaskName = "addons"

// Task returns the pipeline task that installs c.Addons. Like the network task it runs once,
// on the first control-plane host, and talks to the API server from the kk machine through
// the rest.Config kubeconfig returns. Check is Converged; Run is Install and reports changed
// when any addon changed. With no addons the task is always ok.
func Task(c *config.Cluster, kubeconfig func(ctx context.Context) (*rest.Config, error), o Options, after []string) pipeline.Task {
	addons := c.Addons
	o.defaults()
	timeout := time.Duration(0)
	for _, a := range addons {
		per := o.WaitTimeout + 5*time.Minute + time.Duration(max(a.Delay, 0))*time.Second
		timeout += per * time.Duration(1+max(a.Retries, 0))
	}
	return pipeline.Task{
		Name: TaskName, Desc: "install the addons", After: after,
		Hosts: pipeline.FirstOf(string(config.RoleControlPlane)),
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if len(addons) == 0 {
				return true, nil
			}
			cfg, err := kubeconfig(ctx)
			if err != nil {
				return false, err
			}
			ok, why, err := Converged(ctx, cfg, addons, o)
			if err == nil && !ok && t.Log != nil {
				t.Log.Info("addons not converged", "reason", why)
			}
			return ok, err
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			cfg, err := kubeconfig(ctx)
			if err != nil {
				return false, err
			}
			oo := o
			if t.Log != nil {
				oo.Log = func(f string, args ...any) { t.Log.Info(fmt.Sprintf(f, args...)) }
			}
			res, err := Install(ctx, cfg, addons, oo)
			changed := false
			for _, r := range res {
				changed = changed || r.Changed
			}
			return changed, err
		},
		Timeout: timeout,
	}
}
