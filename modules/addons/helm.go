package addons

// Helm charts are installed with Helm's own packages for everything but the install/upgrade
// action: chart loading (pkg/chart/loader), values (pkg/chartutil, pkg/strvals), rendering with
// lookup (pkg/engine), manifest ordering and hooks split (pkg/releaseutil) and release records
// in Secrets (pkg/storage, driver "secret", so `helm list` / `helm upgrade` see kk's releases).
// The objects are applied with kubeapply (server-side apply) carrying Helm's ownership labels
// and annotations.
//
// Why not pkg/action: with client-go on the v0.34 line the only Helm is v3.19.x, whose
// pkg/action imports pkg/provenance, which imports golang.org/x/crypto/openpgp — removed from
// golang.org/x/crypto v0.59.0 that this module requires. Helm v3.20+ needs k8s.io v0.35+, and
// Helm v4 (which moved to ProtonMail/go-crypto) needs client-go v0.36+.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	"helm.sh/helm/v3/pkg/strvals"
	helmtime "helm.sh/helm/v3/pkg/time"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/kubeapply"
)

// chartFor loads the chart of a: a local Path (directory or .tgz), or Name at Version from the
// Repo URL's index.yaml (the newest version when Version is empty).
func chartFor(ctx context.Context, a config.Addon, o Options) (*chart.Chart, error) {
	ch := a.Sources.Chart
	switch {
	case ch.Path != "":
		if _, err := os.Stat(ch.Path); err != nil {
			return nil, fmt.Errorf("chart path %s: %w", ch.Path, err)
		}
		c, err := loader.Load(ch.Path)
		if err != nil {
			return nil, fmt.Errorf("load chart %s: %w", ch.Path, err)
		}
		return c, nil
	case ch.Repo != "" && ch.Name != "":
		u, err := chartURL(ctx, ch, o.HTTPTimeout)
		if err != nil {
			return nil, fmt.Errorf("chart %s %s from %s: %w", ch.Name, ch.Version, ch.Repo, err)
		}
		b, err := fetch(ctx, u, o.HTTPTimeout)
		if err != nil {
			return nil, fmt.Errorf("chart %s %s: %w", ch.Name, ch.Version, err)
		}
		c, err := loader.LoadArchive(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("load chart %s: %w", u, err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("chart: set path, or repo and name")
}

type repoIndex struct {
	Entries map[string][]struct {
		Version string   `json:"version"`
		URLs    []string `json:"urls"`
	} `json:"entries"`
}

func chartURL(ctx context.Context, ch config.Chart, timeout time.Duration) (string, error) {
	base := strings.TrimSuffix(ch.Repo, "/") + "/"
	b, err := fetch(ctx, base+"index.yaml", timeout)
	if err != nil {
		return "", err
	}
	var idx repoIndex
	if err := yaml.Unmarshal(b, &idx); err != nil {
		return "", fmt.Errorf("%sindex.yaml: %w", base, err)
	}
	entries := idx.Entries[ch.Name]
	if len(entries) == 0 {
		return "", fmt.Errorf("no chart %q in %sindex.yaml", ch.Name, base)
	}
	best, bestV := -1, (*semver.Version)(nil)
	for i, e := range entries {
		if ch.Version != "" {
			if strings.TrimPrefix(e.Version, "v") == strings.TrimPrefix(ch.Version, "v") {
				best = i
				break
			}
			continue
		}
		v, err := semver.NewVersion(e.Version)
		if err == nil && v.Prerelease() == "" && (bestV == nil || v.GreaterThan(bestV)) {
			best, bestV = i, v
		}
	}
	if best < 0 || len(entries[best].URLs) == 0 {
		return "", fmt.Errorf("no version %q of chart %q in %sindex.yaml", ch.Version, ch.Name, base)
	}
	ref, err := url.Parse(entries[best].URLs[0])
	if err != nil {
		return "", err
	}
	bu, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	return bu.ResolveReference(ref).String(), nil
}

func fetch(ctx context.Context, u string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", u, err)
	}
	return b, nil
}

// chartValues merges the values file, then each --set style value.
func chartValues(a config.Addon) (map[string]any, error) {
	vals := map[string]any{}
	if f := a.Sources.Chart.ValuesFile; f != "" {
		v, err := chartutil.ReadValuesFile(f)
		if err != nil {
			return nil, fmt.Errorf("values file %s: %w", f, err)
		}
		vals = v
	}
	for _, s := range a.Sources.Chart.Values {
		if err := strvals.ParseInto(s, vals); err != nil {
			return nil, fmt.Errorf("value %q: %w", s, err)
		}
	}
	return vals, nil
}

func releaseName(a config.Addon) string {
	if a.Name != "" {
		return a.Name
	}
	return a.Sources.Chart.Name
}

func namespaceOf(a config.Addon) string {
	if a.Namespace != "" {
		return a.Namespace
	}
	return "default"
}

func releaseStore(cfg *rest.Config, ns string) (*storage.Storage, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	d := driver.NewSecrets(cs.CoreV1().Secrets(ns))
	d.Log = func(string, ...any) {}
	return storage.Init(d), nil
}

// rendered is a chart rendered for one release revision.
type rendered struct {
	chart    *chart.Chart
	values   map[string]any // user-supplied values (the release's Config)
	manifest string         // the release manifest, as Helm writes it
	hooks    []*release.Hook
	crds     []*unstructured.Unstructured
	objects  []*unstructured.Unstructured
}

func render(ctx context.Context, cfg *rest.Config, a config.Addon, o Options, revision int, upgrade bool) (*rendered, error) {
	ch, err := chartFor(ctx, a, o)
	if err != nil {
		return nil, err
	}
	vals, err := chartValues(a)
	if err != nil {
		return nil, err
	}
	caps := chartutil.DefaultCapabilities.Copy()
	if dc, err := discovery.NewDiscoveryClientForConfig(cfg); err == nil {
		if sv, err := dc.ServerVersion(); err == nil {
			caps.KubeVersion = chartutil.KubeVersion{Version: sv.GitVersion, Major: sv.Major, Minor: sv.Minor}
		}
	}
	ns, name := namespaceOf(a), releaseName(a)
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: name, Namespace: ns,
		Revision: revision, IsInstall: !upgrade, IsUpgrade: upgrade}, caps)
	if err != nil {
		return nil, fmt.Errorf("chart %s values: %w", ch.Name(), err)
	}
	files, err := engine.RenderWithClient(ch, rv, cfg)
	if err != nil {
		return nil, fmt.Errorf("render chart %s: %w", ch.Name(), err)
	}
	for k := range files {
		if strings.HasSuffix(k, "NOTES.txt") {
			delete(files, k)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, caps.APIVersions, releaseutil.InstallOrder)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", ch.Name(), err)
	}
	r := &rendered{chart: ch, values: vals, hooks: hooks}
	var b strings.Builder
	for _, m := range manifests {
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", m.Name, m.Content)
		objs, err := kubeapply.Decode([]byte(m.Content))
		if err != nil {
			return nil, fmt.Errorf("chart %s: %s: %w", ch.Name(), m.Name, err)
		}
		for _, u := range objs {
			markOwned(u, name, ns)
		}
		r.objects = append(r.objects, objs...)
	}
	r.manifest = b.String()
	for _, crd := range ch.CRDObjects() {
		objs, err := kubeapply.Decode(crd.File.Data)
		if err != nil {
			return nil, fmt.Errorf("chart %s: %s: %w", ch.Name(), crd.Filename, err)
		}
		r.crds = append(r.crds, objs...)
	}
	return r, nil
}

// markOwned adds the labels and annotations by which Helm recognises a release's objects.
func markOwned(u *unstructured.Unstructured, name, ns string) {
	l := u.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	l["app.kubernetes.io/managed-by"] = "Helm"
	u.SetLabels(l)
	an := u.GetAnnotations()
	if an == nil {
		an = map[string]string{}
	}
	an["meta.helm.sh/release-name"] = name
	an["meta.helm.sh/release-namespace"] = ns
	u.SetAnnotations(an)
}

// helmPlan says what installing a would do: "install" (no release), "upgrade" (the last
// release is not deployed, or its chart, values or rendered manifest differ) or "" (nothing).
func helmPlan(ctx context.Context, cfg *rest.Config, a config.Addon, o Options) (plan string, cur *release.Release, err error) {
	ns, name := namespaceOf(a), releaseName(a)
	store, err := releaseStore(cfg, ns)
	if err != nil {
		return "", nil, err
	}
	cur, err = store.Last(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		// Still load the chart, so that a bad path or repo shows in a plan.
		if _, err := chartFor(ctx, a, o); err != nil {
			return "", nil, err
		}
		return "install", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("helm release %s/%s: %w", ns, name, err)
	}
	r, err := render(ctx, cfg, a, o, cur.Version, true)
	if err != nil {
		return "", nil, err
	}
	if cur.Info == nil || cur.Info.Status != release.StatusDeployed || cur.Chart == nil || cur.Chart.Metadata == nil ||
		cur.Chart.Metadata.Name != r.chart.Metadata.Name || cur.Chart.Metadata.Version != r.chart.Metadata.Version ||
		!sameValues(cur.Config, r.values) || cur.Manifest != r.manifest {
		return "upgrade", cur, nil
	}
	return "", cur, nil
}

func sameValues(a, b map[string]any) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

// installChart installs or upgrades the release of a; it reports "installed", "upgraded" or
// "unchanged".
func installChart(ctx context.Context, cfg *rest.Config, a config.Addon, o Options) (string, error) {
	plan, cur, err := helmPlan(ctx, cfg, a, o)
	if err != nil {
		return "", err
	}
	if plan == "" {
		return "unchanged", nil
	}
	ns, name := namespaceOf(a), releaseName(a)
	revision, upgrade := 1, false
	if cur != nil {
		revision, upgrade = cur.Version+1, true
	}
	r, err := render(ctx, cfg, a, o, revision, upgrade)
	if err != nil {
		return "", err
	}
	if len(r.hooks) > 0 {
		o.Log("addon %s: chart %s has %d hook(s); kk does not run chart hooks", a.Name, r.chart.Name(), len(r.hooks))
	}
	c, err := kubeapply.NewClient(cfg)
	if err != nil {
		return "", err
	}
	store, err := releaseStore(cfg, ns)
	if err != nil {
		return "", err
	}
	// Like helm --create-namespace, then the chart's CRDs (crds/), then its objects.
	nsObj := &unstructured.Unstructured{}
	nsObj.SetAPIVersion("v1")
	nsObj.SetKind("Namespace")
	nsObj.SetName(ns)
	if _, err := c.Apply(ctx, append([]*unstructured.Unstructured{nsObj}, r.crds...), kubeapply.Options{}); err != nil {
		return "", err
	}
	now := helmtime.Now()
	rel := &release.Release{Name: name, Namespace: ns, Chart: r.chart, Config: r.values, Manifest: r.manifest,
		Hooks: r.hooks, Version: revision,
		Info: &release.Info{FirstDeployed: now, LastDeployed: now, Status: release.StatusPendingInstall, Description: "kk: installing"}}
	if upgrade {
		rel.Info.Status, rel.Info.Description = release.StatusPendingUpgrade, "kk: upgrading"
		if cur.Info != nil {
			rel.Info.FirstDeployed = cur.Info.FirstDeployed
		}
	}
	if err := store.Create(rel); err != nil {
		return "", fmt.Errorf("helm release %s/%s: %w", ns, name, err)
	}
	fail := func(err error) (string, error) {
		rel.Info.Status, rel.Info.Description = release.StatusFailed, err.Error()
		_ = store.Update(rel)
		return "", err
	}
	res, err := c.Apply(ctx, r.objects, kubeapply.Options{Namespace: ns})
	if err != nil {
		return fail(err)
	}
	if upgrade {
		// Objects the previous revision had and this one has not are deleted, as helm upgrade does.
		if old, err := kubeapply.Decode([]byte(cur.Manifest)); err == nil {
			keep := map[string]bool{}
			for _, u := range res.Applied() {
				keep[objKey(u, ns)] = true
			}
			var gone []*unstructured.Unstructured
			for _, u := range old {
				if !keep[objKey(u, ns)] {
					gone = append(gone, u)
				}
			}
			if err := c.Delete(ctx, gone, ns); err != nil {
				return fail(err)
			}
		}
	}
	if a.Sources.Chart.Wait {
		if err := c.Wait(ctx, res.Applied(), kubeapply.WaitOptions{Timeout: o.WaitTimeout, Namespace: ns}); err != nil {
			return fail(err)
		}
	}
	rel.Info.Status, rel.Info.LastDeployed = release.StatusDeployed, helmtime.Now()
	rel.Info.Description = "Install complete"
	if upgrade {
		rel.Info.Description = "Upgrade complete"
		cur.Info.Status = release.StatusSuperseded
		if err := store.Update(cur); err != nil {
			return "", fmt.Errorf("helm release %s/%s revision %d: %w", ns, name, cur.Version, err)
		}
	}
	if err := store.Update(rel); err != nil {
		return "", fmt.Errorf("helm release %s/%s: %w", ns, name, err)
	}
	if upgrade {
		return "upgraded", nil
	}
	return "installed", nil
}

func objKey(u *unstructured.Unstructured, ns string) string {
	n := u.GetNamespace()
	if n == "" {
		n = ns
	}
	return u.GroupVersionKind().GroupKind().String() + "/" + n + "/" + u.GetName()
}

// ReleaseRevisions returns the revisions of the release of chart addon a, oldest first, with
// their status ("deployed", "superseded", ...); empty when it was never installed.
func ReleaseRevisions(cfg *rest.Config, a config.Addon) ([]string, error) {
	store, err := releaseStore(cfg, namespaceOf(a))
	if err != nil {
		return nil, err
	}
	hist, err := store.History(releaseName(a))
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sort.Slice(hist, func(i, j int) bool { return hist[i].Version < hist[j].Version })
	var out []string
	for _, r := range hist {
		out = append(out, fmt.Sprintf("%d:%s", r.Version, r.Info.Status))
	}
	return out, nil
}
