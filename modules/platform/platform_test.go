package platform

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/artifacts/versions"
	"github.com/kk-project/kk/modules/kubeapply"
)

func cluster(metrics bool) *config.Cluster {
	return &config.Cluster{Kubernetes: config.Kubernetes{Version: "v1.37.2"}, Platform: config.Platform{MetricsServer: metrics}}
}

// named is the component called name of comps.
func named(t *testing.T, comps []Component, name string) Component {
	t.Helper()
	for _, c := range comps {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no component %s in %v", name, comps)
	return Component{}
}

func TestComponents(t *testing.T) {
	comps, err := Components(cluster(true))
	if err != nil {
		t.Fatal(err)
	}
	if len(comps) != len(Names()) || comps[0].Name != "local-storage" || !named(t, comps, "metrics-server").Enabled {
		t.Fatalf("components %+v", comps)
	}
	set, _ := versions.For("v1.37.2")
	ms := named(t, comps, "metrics-server")
	if !slices.Equal(ms.Images, []string{set.MetricsServerImage()}) {
		t.Errorf("images %v", ms.Images)
	}
	kinds := map[string]bool{}
	for _, o := range ms.Objects {
		kinds[o.GetKind()] = true
		if o.GetLabels()[LabelComponent] != "metrics-server" {
			t.Errorf("%s %s without kk's component label", o.GetKind(), o.GetName())
		}
		if o.GetKind() == "Deployment" {
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			if len(cs) != 1 || cs[0].(map[string]any)["image"] != set.MetricsServerImage() {
				t.Errorf("deployment images %v, want the version table's %s", cs, set.MetricsServerImage())
			}
		}
	}
	for _, k := range []string{"ServiceAccount", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "Service", "Deployment", "APIService"} {
		if !kinds[k] {
			t.Errorf("no %s in metrics-server's objects", k)
		}
	}
	// off: still rendered (what to remove), not enabled
	comps, _ = Components(cluster(false))
	if off := named(t, comps, "metrics-server"); off.Enabled || len(off.Objects) != len(ms.Objects) {
		t.Errorf("switched off: %+v", off)
	}
	if _, err := Components(&config.Cluster{Kubernetes: config.Kubernetes{Version: "v1.2.3"}}); err == nil {
		t.Error("a version kk has no table for was accepted")
	}
}

// Local storage: the default class "local", binding when the pod is scheduled, volumes under
// the Cluster's OpenEBS base path, helper pods on the version table's busybox.
func TestLocalStorage(t *testing.T) {
	c := cluster(false)
	c.Platform.LocalStorage, c.Storage.OpenEBSBasePath = true, "/data/local"
	comps, err := Components(c)
	if err != nil {
		t.Fatal(err)
	}
	ls := named(t, comps, "local-storage")
	set, _ := versions.For("v1.37.2")
	if !ls.Enabled || !slices.Equal(ls.Images, []string{set.LocalPathProvisionerImage(), set.BusyboxImage()}) {
		t.Fatalf("local storage %+v", ls)
	}
	seen := map[string]bool{}
	for _, o := range ls.Objects {
		seen[o.GetKind()] = true
		switch o.GetKind() {
		case "StorageClass":
			if o.GetName() != config.LocalStorageClass || o.GetAnnotations()["storageclass.kubernetes.io/is-default-class"] != "true" ||
				o.Object["volumeBindingMode"] != "WaitForFirstConsumer" || o.Object["reclaimPolicy"] != "Delete" {
				t.Errorf("storage class %v", o.Object)
			}
		case "ConfigMap":
			cfg, _, _ := unstructured.NestedString(o.Object, "data", "config.json")
			helper, _, _ := unstructured.NestedString(o.Object, "data", "helperPod.yaml")
			if !strings.Contains(cfg, `"paths": ["/data/local"]`) || !strings.Contains(helper, "image: "+set.BusyboxImage()) {
				t.Errorf("config %q, helper pod %q", cfg, helper)
			}
		case "Deployment":
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			if len(cs) != 1 || cs[0].(map[string]any)["image"] != set.LocalPathProvisionerImage() {
				t.Errorf("deployment containers %v", cs)
			}
		}
	}
	for _, k := range []string{"Namespace", "ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ConfigMap", "Deployment", "StorageClass"} {
		if !seen[k] {
			t.Errorf("no %s in local storage's objects", k)
		}
	}
}

// The gateway: Traefik from the version table as a DaemonSet on the nodes' ports 80 and 443,
// the default IngressClass naming Traefik's controller, nothing calling home.
func TestGateway(t *testing.T) {
	c := cluster(false)
	c.Platform.Gateway = true
	comps, err := Components(c)
	if err != nil {
		t.Fatal(err)
	}
	gw := named(t, comps, "gateway")
	set, _ := versions.For("v1.37.2")
	if !gw.Enabled || !slices.Equal(gw.Images, []string{set.TraefikImage()}) || set.Addons.Traefik == "" {
		t.Fatalf("gateway %+v", gw)
	}
	seen := map[string]bool{}
	for _, o := range gw.Objects {
		seen[o.GetKind()] = true
		switch o.GetKind() {
		case "IngressClass":
			ctrl, _, _ := unstructured.NestedString(o.Object, "spec", "controller")
			if ctrl != "traefik.io/ingress-controller" || o.GetAnnotations()["ingressclass.kubernetes.io/is-default-class"] != "true" {
				t.Errorf("ingress class %v", o.Object)
			}
		case "DaemonSet":
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			if len(cs) != 1 {
				t.Fatalf("daemonset containers %v", cs)
			}
			ctr := cs[0].(map[string]any)
			args := strings.Join(toStrings(ctr["args"]), " ")
			if ctr["image"] != set.TraefikImage() || !strings.Contains(args, "--providers.kubernetesingress=true") ||
				!strings.Contains(args, "--global.checkNewVersion=false") || !strings.Contains(args, "--global.sendAnonymousUsage=false") {
				t.Errorf("traefik container %v", ctr)
			}
			hostPorts := map[string]bool{}
			for _, p := range ctr["ports"].([]any) {
				hostPorts[fmt.Sprint(p.(map[string]any)["hostPort"])] = true
			}
			if !hostPorts["80"] || !hostPorts["443"] {
				t.Errorf("host ports %v, want 80 and 443", ctr["ports"])
			}
		}
	}
	for _, k := range []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "IngressClass", "DaemonSet"} {
		if !seen[k] {
			t.Errorf("no %s in the gateway's objects", k)
		}
	}
}

// Workspaces: per namespace the workspace label, the admin group's binding to admin and the
// quota (GPU included); no images; RoleBindings and ResourceQuotas are pruned, namespaces never.
func TestTenants(t *testing.T) {
	c := cluster(false)
	c.Platform.Workspaces = []config.Workspace{
		{Name: "ai", AdminGroup: "oidc:ai-admins", Namespaces: []string{"ai-train", "ai-serve"},
			Quota: map[string]string{"requests.cpu": "8", "requests.nvidia.com/gpu": "2"}},
		{Name: "web", Namespaces: []string{"web"}},
	}
	comps, err := Components(c)
	if err != nil {
		t.Fatal(err)
	}
	tn := named(t, comps, "tenants")
	if !tn.Enabled || len(tn.Images) != 0 || len(tn.Prune) != 2 {
		t.Fatalf("tenants %+v", tn)
	}
	for _, g := range tn.Prune {
		if g.Kind == "Namespace" {
			t.Error("namespaces are pruned")
		}
	}
	var got []string
	for _, o := range tn.Objects {
		got = append(got, o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName()+" "+o.GetLabels()["kubesphere.io/workspace"])
		switch o.GetKind() {
		case "RoleBinding":
			subj, _, _ := unstructured.NestedSlice(o.Object, "subjects")
			role, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
			if len(subj) != 1 || subj[0].(map[string]any)["name"] != "oidc:ai-admins" || subj[0].(map[string]any)["kind"] != "Group" || role != "admin" {
				t.Errorf("binding %v", o.Object)
			}
		case "ResourceQuota":
			hard, _, _ := unstructured.NestedStringMap(o.Object, "spec", "hard")
			if hard["requests.cpu"] != "8" || hard["requests.nvidia.com/gpu"] != "2" || len(hard) != 2 {
				t.Errorf("quota %v", hard)
			}
		}
	}
	want := []string{
		"Namespace /ai-train ai", "RoleBinding ai-train/ai-admin ai", "ResourceQuota ai-train/ai-quota ai",
		"Namespace /ai-serve ai", "RoleBinding ai-serve/ai-admin ai", "ResourceQuota ai-serve/ai-quota ai",
		"Namespace /web web",
	}
	if !slices.Equal(got, want) {
		t.Errorf("objects:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// none: off, nothing rendered, what an earlier file made is still found by the prune kinds
	comps, _ = Components(cluster(false))
	if off := named(t, comps, "tenants"); off.Enabled || len(off.Objects) != 0 || len(off.Prune) != 2 {
		t.Errorf("no workspaces: %+v", off)
	}
}

func toStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		out = append(out, x.(string))
	}
	return out
}

func TestTasks(t *testing.T) {
	comps, _ := Components(cluster(true))
	comps = append(comps[1:2], Component{Name: "second", Switch: "spec.x.enabled"})
	kc := func(context.Context) (*rest.Config, error) { return nil, nil }
	ts := Tasks(comps, kc, []string{"network/cni"})
	if len(ts) != 2 || ts[0].Name != "platform/metrics-server" || !slices.Equal(ts[0].After, []string{"network/cni"}) ||
		!slices.Equal(ts[1].After, []string{"platform/metrics-server"}) {
		t.Fatalf("tasks %+v", ts)
	}
	if ts[1].Desc != "remove second if kk installed it (spec.x.enabled is off)" {
		t.Errorf("desc %q", ts[1].Desc)
	}
}

// NVIDIA's device plugin: the GPU nodes only, the version table's image, its configuration file
// from spec.gpu.devicePlugin (MIG strategy, time-slicing), and the pods rolled when it changes.
func TestDevicePlugin(t *testing.T) {
	set, _ := versions.For("v1.37.2")
	render := func(g config.GPU) (Component, map[string]any, map[string]any) {
		t.Helper()
		c := cluster(false)
		c.GPU = g
		comps, err := Components(c)
		if err != nil {
			t.Fatal(err)
		}
		dp := named(t, comps, "nvidia-device-plugin")
		var file, ds map[string]any
		for _, o := range dp.Objects {
			switch o.GetKind() {
			case "ConfigMap":
				data, _, _ := unstructured.NestedString(o.Object, "data", "config.yaml")
				if err := yaml.Unmarshal([]byte(data), &file); err != nil {
					t.Fatalf("the plugin's configuration file: %v\n%s", err, data)
				}
			case "DaemonSet":
				ds = o.Object
			}
		}
		if file == nil || ds == nil {
			t.Fatalf("objects %v: want a ConfigMap and a DaemonSet", dp.Objects)
		}
		return dp, file, ds
	}
	dp, file, ds := render(config.GPU{Toolkit: true, DevicePlugin: true, MIGStrategy: config.MIGSingle, TimeSlicingReplicas: 4})
	if !dp.Enabled || !slices.Equal(dp.Images, []string{set.NvidiaDevicePluginImage()}) || set.Addons.NvidiaDevicePlugin == "" {
		t.Fatalf("device plugin %+v", dp)
	}
	if v, _, _ := unstructured.NestedString(file, "flags", "migStrategy"); v != "single" {
		t.Errorf("migStrategy %q in %v", v, file)
	}
	if v, ok, _ := unstructured.NestedBool(file, "flags", "failOnInitError"); !ok || v {
		t.Errorf("failOnInitError %v in %v: want false (a node without a driver waits)", v, file)
	}
	res, _, _ := unstructured.NestedSlice(file, "sharing", "timeSlicing", "resources")
	if len(res) != 1 || res[0].(map[string]any)["name"] != "nvidia.com/gpu" || fmt.Sprint(res[0].(map[string]any)["replicas"]) != "4" {
		t.Errorf("time-slicing %v, want nvidia.com/gpu 4 times", res)
	}
	sel, _, _ := unstructured.NestedStringMap(ds, "spec", "template", "spec", "nodeSelector")
	if len(sel) != 1 || sel[config.GPUPresentLabel] != "true" {
		t.Errorf("node selector %v, want only the GPU nodes", sel)
	}
	cs, _, _ := unstructured.NestedSlice(ds, "spec", "template", "spec", "containers")
	if len(cs) != 1 || cs[0].(map[string]any)["image"] != set.NvidiaDevicePluginImage() ||
		!slices.Contains(toStrings(cs[0].(map[string]any)["args"]), "--config-file=/etc/nvidia-device-plugin/config.yaml") {
		t.Errorf("containers %v", cs)
	}
	// not given GPUs by a default nvidia runtime (docker's): it reads NVML itself
	if env, _, _ := unstructured.NestedSlice(cs[0].(map[string]any), "env"); len(env) != 1 ||
		env[0].(map[string]any)["name"] != "NVIDIA_VISIBLE_DEVICES" || env[0].(map[string]any)["value"] != "void" {
		t.Errorf("env %v, want NVIDIA_VISIBLE_DEVICES=void", env)
	}
	sum, _, _ := unstructured.NestedString(ds, "spec", "template", "metadata", "annotations", "kk.kubesphere.io/config-sha256")

	// whole GPUs, no sharing: another file, so other pods
	_, file, ds = render(config.GPU{Toolkit: true, DevicePlugin: true, MIGStrategy: config.MIGNone})
	if _, ok, _ := unstructured.NestedMap(file, "sharing"); ok {
		t.Errorf("sharing without timeSlicing: %v", file)
	}
	if other, _, _ := unstructured.NestedString(ds, "spec", "template", "metadata", "annotations", "kk.kubesphere.io/config-sha256"); other == sum || len(other) != 64 {
		t.Errorf("the pods' annotation %q for another file, was %q: want a new digest", other, sum)
	}
	// off (no spec.gpu, or devicePlugin.enabled: false): what an earlier run installed goes
	if off, _, _ := render(config.GPU{Toolkit: true, MIGStrategy: config.MIGNone}); off.Enabled {
		t.Errorf("switched off: %+v", off)
	}
}

// GPU monitoring: the dashboard (valid JSON, in the ConfigMap Grafana's sidecar loads), the
// recording rules and the scrape job, every query over what kk's GPU exporter serves.
func TestGPUMonitoring(t *testing.T) {
	c := cluster(false)
	c.GPU = config.GPU{Toolkit: true, Exporter: true, MIGStrategy: config.MIGNone}
	comps, err := Components(c)
	if err != nil {
		t.Fatal(err)
	}
	gm := named(t, comps, "gpu-monitoring")
	if !gm.Enabled || len(gm.Images) != 0 || len(gm.Objects) != 2 {
		t.Fatalf("gpu-monitoring %+v", gm)
	}
	// the exporter's metrics and the rules' records: all a query may read
	known := map[string]bool{"DCGM_FI_DEV_GPU_UTIL": true, "DCGM_FI_DEV_MEM_COPY_UTIL": true, "DCGM_FI_DEV_FB_USED": true,
		"DCGM_FI_DEV_FB_FREE": true, "DCGM_FI_DEV_GPU_TEMP": true, "DCGM_FI_DEV_POWER_USAGE": true, "DCGM_FI_DEV_SM_CLOCK": true,
		"kk_gpu_nvml_up": true, "kk_gpu_count": true}
	metricRE := regexp.MustCompile(`\b(DCGM_FI_[A-Z_]+|kk_gpu_[a-z_]+)\b`)
	reads := func(where, expr string) {
		ms := metricRE.FindAllString(expr, -1)
		if len(ms) == 0 {
			t.Errorf("%s: %q reads none of the exporter's metrics", where, expr)
		}
		for _, m := range ms {
			if !known[m] {
				t.Errorf("%s: %q reads %s, which kk's exporter does not serve", where, expr, m)
			}
		}
	}
	var dash map[string]any
	var rules struct {
		Groups []struct {
			Name     string
			Interval string
			Rules    []struct{ Record, Expr string }
		}
	}
	var scrape []map[string]any
	for _, o := range gm.Objects {
		data, _, _ := unstructured.NestedStringMap(o.Object, "data")
		switch o.GetName() {
		case "kk-gpu-dashboard":
			if o.GetLabels()["grafana_dashboard"] != "1" {
				t.Errorf("dashboard ConfigMap labels %v: want grafana_dashboard: \"1\" (Grafana's sidecar)", o.GetLabels())
			}
			if err := json.Unmarshal([]byte(data["kk-gpu.json"]), &dash); err != nil {
				t.Fatalf("dashboard JSON: %v", err)
			}
		case "kk-gpu-prometheus":
			if err := yaml.UnmarshalStrict([]byte(data["kk-gpu.rules.yaml"]), &rules); err != nil {
				t.Fatalf("rules: %v", err)
			}
			if err := yaml.Unmarshal([]byte(data["kk-gpu-scrape.yaml"]), &scrape); err != nil {
				t.Fatalf("scrape job: %v", err)
			}
		default:
			t.Errorf("unexpected object %s", o.GetName())
		}
	}
	var exprs int
	panels, _ := dash["panels"].([]any)
	titles := map[string]bool{}
	for _, p := range panels {
		pm := p.(map[string]any)
		titles[fmt.Sprint(pm["title"])] = true
		for _, tg := range toSlice(pm["targets"]) {
			reads("panel "+fmt.Sprint(pm["title"]), fmt.Sprint(tg.(map[string]any)["expr"]))
			exprs++
		}
	}
	for _, want := range []string{"GPU utilisation", "GPU memory used", "GPU temperature", "GPU power", "GPU utilisation by pod", "GPU memory used by pod"} {
		if !titles[want] {
			t.Errorf("the dashboard has no panel %q (has %v)", want, titles)
		}
	}
	if exprs < 10 || dash["uid"] != "kk-gpu" {
		t.Errorf("dashboard: %d queries, uid %v", exprs, dash["uid"])
	}
	recordRE := regexp.MustCompile(`^[a-z_]+:[a-z_]+:[a-z_]+$`)
	if len(rules.Groups) != 1 || len(rules.Groups[0].Rules) < 8 {
		t.Fatalf("rules %+v", rules)
	}
	for _, r := range rules.Groups[0].Rules {
		if !recordRE.MatchString(r.Record) {
			t.Errorf("record %q is not level:metric:operations", r.Record)
		}
		reads("rule "+r.Record, r.Expr)
	}
	if len(scrape) != 1 || scrape[0]["job_name"] != "kk-gpu-exporter" || !strings.Contains(fmt.Sprint(scrape[0]["relabel_configs"]), "9835") {
		t.Errorf("scrape job %v", scrape)
	}
	// off: removed
	c.GPU.Exporter = false
	if comps, _ := Components(c); named(t, comps, "gpu-monitoring").Enabled {
		t.Error("spec.gpu.exporter off: still enabled")
	}
}

func toSlice(v any) []any { s, _ := v.([]any); return s }

// kk create manifest lists the images of every component a Cluster switches on: its list
// (api/v1alpha2, which cannot import this package) is held to the catalogue's.
func TestManifestListsComponentImages(t *testing.T) {
	set, _ := versions.For("v1.37.2")
	for _, on := range []func(c *config.Cluster){
		func(c *config.Cluster) { c.Platform.LocalStorage = true },
		func(c *config.Cluster) { c.Platform.MetricsServer = true },
		func(c *config.Cluster) { c.Platform.Gateway = true },
		func(c *config.Cluster) { c.Platform.AppStore = true },
		func(c *config.Cluster) { c.GPU = config.GPU{Toolkit: true, DevicePlugin: true, Exporter: true} },
	} {
		c := cluster(false)
		c.Network.Plugin = "flannel"
		on(c)
		m, err := v1alpha2.NewManifest(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, img := range Images(c, set) {
			if !slices.Contains(m.Spec.Images, img) {
				t.Errorf("the manifest of a cluster with %s on lacks %s", Names(), img)
			}
		}
	}
}

// The app store: ChartMuseum from the version table as one replica on a claim of the default
// class, local storage, its API on, a readiness probe on /health, small requests, a Service on
// port 8080; switched off, everything goes but the namespace it shares with KubeSphere.
func TestAppStore(t *testing.T) {
	c := cluster(false)
	c.Platform.AppStore = true
	comps, err := Components(c)
	if err != nil {
		t.Fatal(err)
	}
	as := named(t, comps, "app-store")
	set, _ := versions.For("v1.37.2")
	if !as.Enabled || as.Switch != "spec.openpitrix.store.enabled" || !slices.Equal(as.Images, []string{set.ChartMuseumImage()}) || set.Addons.ChartMuseum == "" {
		t.Fatalf("app store %+v", as)
	}
	if i, j := slices.Index(Names(), "local-storage"), slices.Index(Names(), "app-store"); i < 0 || j < i {
		t.Errorf("install order %v: the app store claims a volume, after local storage", Names())
	}
	seen := map[string]bool{}
	var claim string
	for _, o := range as.Objects {
		seen[o.GetKind()] = true
		if o.GetKind() != "Namespace" && o.GetNamespace() != AppStoreNamespace {
			t.Errorf("%s in namespace %q, want %s", kubeapply.Ref(o), o.GetNamespace(), AppStoreNamespace)
		}
		switch o.GetKind() {
		case "Namespace":
			if o.GetName() != AppStoreNamespace || o.GetAnnotations()[AnnotationKeep] != "true" {
				t.Errorf("namespace %v: want %s, kept on removal", o.Object, AppStoreNamespace)
			}
		case "PersistentVolumeClaim":
			claim = o.GetName()
			if sc, found, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "storageClassName"); found {
				t.Errorf("claim names class %v: want the default class", sc)
			}
		case "Deployment":
			if r, _, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "replicas"); fmt.Sprint(r) != "1" {
				t.Errorf("replicas %v", r)
			}
			if s, _, _ := unstructured.NestedString(o.Object, "spec", "strategy", "type"); s != "Recreate" {
				t.Errorf("strategy %q: one pod at a time writes the index", s)
			}
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			if len(cs) != 1 {
				t.Fatalf("containers %v", cs)
			}
			ctr := cs[0].(map[string]any)
			args := toStrings(ctr["args"])
			if ctr["image"] != set.ChartMuseumImage() || !slices.Contains(args, "--storage=local") || !slices.Contains(args, "--storage-local-rootdir=/storage") ||
				!slices.Contains(args, fmt.Sprintf("--port=%d", AppStorePort)) || slices.Contains(args, "--disable-api") {
				t.Errorf("chartmuseum container %v", ctr)
			}
			if p, _, _ := unstructured.NestedString(ctr, "readinessProbe", "httpGet", "path"); p != "/health" {
				t.Errorf("readiness probe %v", ctr["readinessProbe"])
			}
			if cpu, _, _ := unstructured.NestedString(ctr, "resources", "requests", "cpu"); cpu == "" {
				t.Errorf("no CPU request: %v", ctr["resources"])
			}
			vols, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "volumes")
			mounted := false
			for _, v := range vols {
				if n, _, _ := unstructured.NestedString(v.(map[string]any), "persistentVolumeClaim", "claimName"); n != "" {
					mounted = n == claim || claim == ""
				}
			}
			if !mounted {
				t.Errorf("volumes %v do not mount the claim %q", vols, claim)
			}
		case "Service":
			ports, _, _ := unstructured.NestedSlice(o.Object, "spec", "ports")
			if o.GetName() != AppStoreService || len(ports) != 1 || fmt.Sprint(ports[0].(map[string]any)["port"]) != fmt.Sprint(AppStorePort) ||
				ports[0].(map[string]any)["name"] != AppStorePortName {
				t.Errorf("service %s ports %v", o.GetName(), ports)
			}
		}
	}
	for _, k := range []string{"Namespace", "PersistentVolumeClaim", "Deployment", "Service"} {
		if !seen[k] {
			t.Errorf("no %s in the app store's objects", k)
		}
	}
	// off: removed, but for the namespace
	comps, _ = Components(cluster(false))
	off := named(t, comps, "app-store")
	if off.Enabled {
		t.Errorf("switched off: %+v", off)
	}
	rm := removable(off.Objects)
	if len(rm) != len(off.Objects)-1 || slices.ContainsFunc(rm, func(o *unstructured.Unstructured) bool { return o.GetKind() == "Namespace" }) {
		t.Errorf("removed when off: %d of %d objects", len(rm), len(off.Objects))
	}
}
