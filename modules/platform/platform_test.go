package platform

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
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
	"github.com/kk-project/kk/modules/platform/localcsi"
	"github.com/kk-project/kk/templates"
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

// containers returns the containers of a workload's pod template, by name.
func containers(t *testing.T, o *unstructured.Unstructured) map[string]map[string]any {
	t.Helper()
	cs, _, err := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, c := range cs {
		m := c.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

// args is a container's arguments as one string, for looking up flags.
func args(c map[string]any) string {
	var out []string
	for _, a := range c["args"].([]any) {
		out = append(out, a.(string))
	}
	return strings.Join(out, " ")
}

// Local storage: the default class "local" of kk's CSI driver, binding when the pod is
// scheduled, expandable, its volumes under the Cluster's OpenEBS base path; a default
// VolumeSnapshotClass of the same driver; one DaemonSet pod per node runs the driver, which
// registers itself with the kubelet, with the sidecars acting for that node only; the snapshot-controller snapshots distributed; every
// image from the version table, in the order LocalStorageImages gives.
func TestLocalStorage(t *testing.T) {
	c := cluster(false)
	c.Platform.LocalStorage, c.Storage.OpenEBSBasePath = true, "/data/local"
	comps, err := Components(c)
	if err != nil {
		t.Fatal(err)
	}
	ls := named(t, comps, "local-storage")
	set, _ := versions.For("v1.37.2")
	if !ls.Enabled || !slices.Equal(ls.Images, set.LocalStorageImages()) {
		t.Fatalf("local storage %+v", ls)
	}
	const driver = localcsi.DriverName
	seen := map[string]int{}
	var images []string
	for _, o := range ls.Objects {
		seen[o.GetKind()]++
		switch o.GetKind() {
		case "StorageClass":
			if o.GetName() != config.LocalStorageClass || o.GetAnnotations()["storageclass.kubernetes.io/is-default-class"] != "true" ||
				o.Object["provisioner"] != driver || o.Object["volumeBindingMode"] != "WaitForFirstConsumer" ||
				o.Object["allowVolumeExpansion"] != true || o.Object["reclaimPolicy"] != "Delete" {
				t.Errorf("storage class %v", o.Object)
			}
		case "VolumeSnapshotClass":
			if o.GetAPIVersion() != "snapshot.storage.k8s.io/v1" || o.GetName() != config.LocalStorageClass || o.Object["driver"] != driver ||
				o.GetAnnotations()["snapshot.storage.kubernetes.io/is-default-class"] != "true" || o.Object["deletionPolicy"] != "Delete" {
				t.Errorf("snapshot class %v", o.Object)
			}
		case "CSIDriver":
			if o.GetName() != driver || o.Object["spec"].(map[string]any)["attachRequired"] != false {
				t.Errorf("CSI driver %v", o.Object)
			}
		case "DaemonSet":
			cs := containers(t, o)
			for _, name := range []string{"kk-local-csi", "csi-provisioner", "csi-snapshotter", "csi-resizer"} {
				if cs[name] == nil {
					t.Fatalf("the DaemonSet has no %s container: %v", name, cs)
				}
				images = append(images, cs[name]["image"].(string))
			}
			hp := args(cs["kk-local-csi"])
			for _, want := range []string{"--statedir=/csi-data-dir", "--nodeid=$(KUBE_NODE_NAME)",
				"--kubelet-registration-path=/var/lib/kubelet/plugins/" + driver + "/csi.sock", "--plugin-registration-path=/registration"} {
				if !strings.Contains(hp, want) {
					t.Errorf("kk-local-csi args %q lack %s", hp, want)
				}
			}
			if !strings.Contains(args(cs["csi-provisioner"]), "--node-deployment=true") || !strings.Contains(args(cs["csi-snapshotter"]), "--node-deployment=true") {
				t.Errorf("provisioner %q, snapshotter %q: want --node-deployment=true", args(cs["csi-provisioner"]), args(cs["csi-snapshotter"]))
			}
			vols, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "volumes")
			hostPaths := map[string]string{}
			for _, v := range vols {
				m := v.(map[string]any)
				hostPaths[m["name"].(string)] = m["hostPath"].(map[string]any)["path"].(string)
			}
			if hostPaths["csi-data-dir"] != "/data/local" || hostPaths["socket-dir"] != "/var/lib/kubelet/plugins/"+driver {
				t.Errorf("host paths %v: want the volumes under /data/local", hostPaths)
			}
			mounts := cs["kk-local-csi"]["volumeMounts"].([]any)
			if !slices.ContainsFunc(mounts, func(m any) bool {
				mm := m.(map[string]any)
				return mm["mountPath"] == "/var/lib/kubelet/pods" && mm["mountPropagation"] == "Bidirectional"
			}) {
				t.Errorf("kk-local-csi mounts %v: want /var/lib/kubelet/pods bidirectional", mounts)
			}
		case "Deployment":
			cs := containers(t, o)
			sc := cs["snapshot-controller"]
			if len(cs) != 1 || sc == nil || !strings.Contains(args(sc), "--enable-distributed-snapshotting=true") {
				t.Errorf("snapshot-controller containers %v", cs)
			} else {
				images = append(images, sc["image"].(string))
			}
		}
	}
	if !slices.Equal(images, set.LocalStorageImages()) {
		t.Errorf("the objects run %q, want %q", images, set.LocalStorageImages())
	}
	for k, n := range map[string]int{"CustomResourceDefinition": 6, "ServiceAccount": 2, "ClusterRole": 2, "ClusterRoleBinding": 2, "Role": 2, "RoleBinding": 2,
		"CSIDriver": 1, "DaemonSet": 1, "Deployment": 1, "StorageClass": 1, "VolumeSnapshotClass": 1} {
		if seen[k] != n {
			t.Errorf("%d %s in local storage's objects, want %d", seen[k], k, n)
		}
	}
	// a base path is a YAML string whatever it holds
	c.Storage.OpenEBSBasePath = "/data/a: b"
	if _, err := Components(c); err != nil {
		t.Errorf("base path with a colon: %v", err)
	}
}

// The snapshot CRDs come with the local storage, before the objects that use them: the v1
// VolumeSnapshot, VolumeSnapshotContent and VolumeSnapshotClass of snapshot.storage.k8s.io,
// serving and storing v1, and the group snapshot kinds; they are the release the version table
// pins (bumping versions.Addons.CSISnapshotter without go generate ./templates fails here).
func TestSnapshotCRDs(t *testing.T) {
	c := cluster(false)
	c.Platform.LocalStorage = true
	comps, err := Components(c)
	if err != nil {
		t.Fatal(err)
	}
	ls := named(t, comps, "local-storage")
	kinds := map[string]bool{}
	firstOther := -1
	for i, o := range kubeapply.Sort(ls.Objects) {
		if o.GetKind() != "CustomResourceDefinition" {
			if firstOther < 0 {
				firstOther = i
			}
			continue
		}
		if firstOther >= 0 || o.GetAPIVersion() != "apiextensions.k8s.io/v1" {
			t.Errorf("CRD %s (%s) applied after other objects", o.GetName(), o.GetAPIVersion())
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		vs, _, _ := unstructured.NestedSlice(o.Object, "spec", "versions")
		// the snapshot kinds store v1; the group snapshot kinds serve it (they store v1beta2)
		v1 := false
		for _, v := range vs {
			m := v.(map[string]any)
			v1 = v1 || m["name"] == "v1" && m["served"] == true && (m["storage"] == true || group != "snapshot.storage.k8s.io")
		}
		if !v1 {
			t.Errorf("%s: v1 is not served (and stored)", o.GetName())
		}
		kinds[group+"/"+kind] = true
	}
	for _, k := range []string{"snapshot.storage.k8s.io/VolumeSnapshot", "snapshot.storage.k8s.io/VolumeSnapshotContent",
		"snapshot.storage.k8s.io/VolumeSnapshotClass", "groupsnapshot.storage.k8s.io/VolumeGroupSnapshot"} {
		if !kinds[k] {
			t.Errorf("no CRD of %s (have %v)", k, kinds)
		}
	}
	if len(kinds) != 6 {
		t.Errorf("%d snapshot CRDs, want 6: %v", len(kinds), kinds)
	}
	b, err := fs.ReadFile(templates.FS(), SnapshotCRDsFile)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if want := "external-snapshotter " + versions.DefaultAddons().CSISnapshotter + " "; !strings.Contains(first, want) {
		t.Errorf("%s was generated from another release: %q, want %q (run go generate ./templates)", SnapshotCRDsFile, first, want)
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

// Logging: VictoriaLogs as a StatefulSet on a volume of the default class (size and retention
// from the file, else kk's defaults) behind its Service, vlagent as a DaemonSet on every node
// reading the nodes' pod logs and sending them to that Service; docker's containers directory
// is read too where cri-dockerd links the logs into it.
func TestLogging(t *testing.T) {
	set, _ := versions.For("v1.37.2")
	render := func(p config.Platform, k config.Kubernetes, r config.Registry) (Component, map[string]*unstructured.Unstructured) {
		t.Helper()
		c := cluster(false)
		p.MetricsServer = false
		c.Platform, c.Registry = p, r
		k.Version = c.Kubernetes.Version
		c.Kubernetes = k
		comps, err := Components(c)
		if err != nil {
			t.Fatal(err)
		}
		lg := named(t, comps, "logging")
		objs := map[string]*unstructured.Unstructured{}
		for _, o := range lg.Objects {
			if o.GetLabels()[LabelComponent] != "logging" {
				t.Errorf("%s %s without kk's component label", o.GetKind(), o.GetName())
			}
			if o.GetKind() != "Namespace" && o.GetKind() != "ClusterRole" && o.GetKind() != "ClusterRoleBinding" && o.GetNamespace() != "kubesphere-logging-system" {
				t.Errorf("%s %s in namespace %q", o.GetKind(), o.GetName(), o.GetNamespace())
			}
			objs[o.GetKind()] = o
		}
		return lg, objs
	}
	lg, objs := render(config.Platform{Logging: true, LoggingRetention: "2w", LoggingVolumeSize: "5Gi"}, config.Kubernetes{}, config.Registry{})
	if !lg.Enabled || !slices.Equal(lg.Images, set.LoggingImages()) || len(lg.Images) != 2 {
		t.Fatalf("logging %+v", lg)
	}
	for _, k := range []string{"Namespace", "Service", "StatefulSet", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "DaemonSet"} {
		if objs[k] == nil {
			t.Errorf("no %s in the logging's objects", k)
		}
	}
	// the store: its image, the file's retention, a limit below the volume, its volume claim
	// on the default class, probes, and the Service on its port
	sts := objs["StatefulSet"].Object
	cs, _, _ := unstructured.NestedSlice(sts, "spec", "template", "spec", "containers")
	if len(cs) != 1 {
		t.Fatalf("statefulset containers %v", cs)
	}
	store := cs[0].(map[string]any)
	args := toStrings(store["args"])
	if store["image"] != set.VictoriaLogsImage() || !slices.Contains(args, "-retentionPeriod=2w") || !slices.Contains(args, "-storageDataPath=/storage") {
		t.Errorf("store container %v", store)
	}
	if want := fmt.Sprintf("-retention.maxDiskSpaceUsageBytes=%d", int64(5)<<30/10*9); !slices.Contains(args, want) {
		t.Errorf("store args %q, want %s", args, want)
	}
	for _, probe := range []string{"readinessProbe", "livenessProbe"} {
		if p, _, _ := unstructured.NestedString(store, probe, "httpGet", "path"); p != "/health" {
			t.Errorf("store %s %v", probe, store[probe])
		}
	}
	claims, _, _ := unstructured.NestedSlice(sts, "spec", "volumeClaimTemplates")
	if len(claims) != 1 {
		t.Fatalf("claims %v", claims)
	}
	claim := claims[0].(map[string]any)
	if size, _, _ := unstructured.NestedString(claim, "spec", "resources", "requests", "storage"); size != "5Gi" {
		t.Errorf("claim size %q", size)
	}
	if _, named, _ := unstructured.NestedString(claim, "spec", "storageClassName"); named {
		t.Errorf("claim names a class: %v (want the cluster's default)", claim)
	}
	mounts, _, _ := unstructured.NestedSlice(store, "volumeMounts")
	if len(mounts) != 1 || mounts[0].(map[string]any)["name"] != claim["metadata"].(map[string]any)["name"] || mounts[0].(map[string]any)["mountPath"] != "/storage" {
		t.Errorf("store mounts %v", mounts)
	}
	svc := objs["Service"]
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	if svc.GetName() != "victoria-logs" || len(ports) != 1 || fmt.Sprint(ports[0].(map[string]any)["port"]) != "9428" {
		t.Errorf("service %v", svc.Object)
	}
	if name, _, _ := unstructured.NestedString(sts, "spec", "serviceName"); name != svc.GetName() {
		t.Errorf("statefulset's service %q", name)
	}

	// the collector: on every node, its image, sending to the Service, reading /var/log
	ds := objs["DaemonSet"].Object
	tol, _, _ := unstructured.NestedSlice(ds, "spec", "template", "spec", "tolerations")
	if len(tol) != 1 || tol[0].(map[string]any)["operator"] != "Exists" || tol[0].(map[string]any)["key"] != nil {
		t.Errorf("tolerations %v: want every taint tolerated (control planes included)", tol)
	}
	cs, _, _ = unstructured.NestedSlice(ds, "spec", "template", "spec", "containers")
	agent := cs[0].(map[string]any)
	args = toStrings(agent["args"])
	if agent["image"] != set.VLAgentImage() || !slices.Contains(args, "-kubernetesCollector") ||
		!slices.Contains(args, "-remoteWrite.url=http://victoria-logs.kubesphere-logging-system.svc:9428/insert/native") {
		t.Errorf("collector container %v", agent)
	}
	// its own lines left out: one argument, both conditions (LogsQL's "and" is a space)
	if !slices.Contains(args, "-kubernetesCollector.excludeFilter=kubernetes.pod_namespace:=kubesphere-logging-system kubernetes.container_name:=vlagent") {
		t.Errorf("collector args %q: no filter leaving out its own lines", args)
	}
	if sa, _, _ := unstructured.NestedString(ds, "spec", "template", "spec", "serviceAccountName"); sa != objs["ServiceAccount"].GetName() {
		t.Errorf("collector's service account %q", sa)
	}
	if p, _, _ := unstructured.NestedString(agent, "readinessProbe", "httpGet", "path"); p != "/health" {
		t.Errorf("collector readiness %v", agent["readinessProbe"])
	}
	rules, _, _ := unstructured.NestedSlice(objs["ClusterRole"].Object, "rules")
	if got := fmt.Sprint(rules); !strings.Contains(got, "[pods] verbs:[get list watch]") || !strings.Contains(got, "[nodes] verbs:[get]") || !strings.Contains(got, "[namespaces] verbs:[list]") {
		t.Errorf("collector's rules %s", got)
	}
	hostPaths := func(ds map[string]any) map[string]string {
		vols, _, _ := unstructured.NestedSlice(ds, "spec", "template", "spec", "volumes")
		cs, _, _ := unstructured.NestedSlice(ds, "spec", "template", "spec", "containers")
		mounts, _, _ := unstructured.NestedSlice(cs[0].(map[string]any), "volumeMounts")
		out := map[string]string{}
		for _, v := range vols {
			hp, ok, _ := unstructured.NestedString(v.(map[string]any), "hostPath", "path")
			if !ok {
				continue
			}
			for _, m := range mounts {
				if m.(map[string]any)["name"] == v.(map[string]any)["name"] {
					out[hp] = fmt.Sprint(m.(map[string]any)["mountPath"], " ro=", m.(map[string]any)["readOnly"])
				}
			}
		}
		return out
	}
	if hp := hostPaths(ds); hp["/var/log"] != "/var/log ro=true" || hp[config.LogCollectorDir] != config.LogCollectorDir+" ro=<nil>" || len(hp) != 2 {
		t.Errorf("containerd: collector's host paths %v: want /var/log read-only and its own data in %s", hp, config.LogCollectorDir)
	}
	if !slices.Contains(args, "-tmpDataPath="+config.LogCollectorDir) {
		t.Errorf("collector args %q: its buffer is not %s", args, config.LogCollectorDir)
	}

	// the defaults, and docker's containers directory under its data root
	_, objs = render(config.Platform{Logging: true}, config.Kubernetes{ContainerManager: "docker"}, config.Registry{DataRoot: "/data/docker"})
	cs, _, _ = unstructured.NestedSlice(objs["StatefulSet"].Object, "spec", "template", "spec", "containers")
	if args := toStrings(cs[0].(map[string]any)["args"]); !slices.Contains(args, "-retentionPeriod="+config.DefaultLoggingRetention) {
		t.Errorf("default retention: %q", args)
	}
	claims, _, _ = unstructured.NestedSlice(objs["StatefulSet"].Object, "spec", "volumeClaimTemplates")
	if size, _, _ := unstructured.NestedString(claims[0].(map[string]any), "spec", "resources", "requests", "storage"); size != config.DefaultLoggingVolumeSize {
		t.Errorf("default claim size %q", size)
	}
	if hp := hostPaths(objs["DaemonSet"].Object); hp["/data/docker/containers"] != "/data/docker/containers ro=true" || len(hp) != 3 {
		t.Errorf("docker: collector's host paths %v: want docker's containers directory read-only", hp)
	}
	if hp := func() map[string]string {
		_, objs := render(config.Platform{Logging: true}, config.Kubernetes{ContainerManager: "docker"}, config.Registry{})
		return hostPaths(objs["DaemonSet"].Object)
	}(); hp["/var/lib/docker/containers"] == "" {
		t.Errorf("docker, default data root: collector's host paths %v", hp)
	}

	// off: still rendered (what to remove), not enabled, no images bundled
	off, objs := render(config.Platform{}, config.Kubernetes{}, config.Registry{})
	if off.Enabled || len(off.Objects) != len(lg.Objects) || objs["DaemonSet"] == nil {
		t.Errorf("switched off: %+v", off)
	}
	if imgs := Images(cluster(false), set); slices.ContainsFunc(imgs, func(i string) bool { return slices.Contains(set.LoggingImages(), i) }) {
		t.Errorf("images while off: %v", imgs)
	}
	c := cluster(false)
	c.Platform.Logging = true
	if imgs := Images(c, set); !slices.Equal(imgs, set.LoggingImages()) {
		t.Errorf("images while on: %v, want %v", imgs, set.LoggingImages())
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
	comps = append([]Component{named(t, comps, "metrics-server")}, Component{Name: "second", Switch: "spec.x.enabled"})
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
		func(c *config.Cluster) { c.Platform.Monitoring.Enabled, c.Platform.Alerting.Enabled = true, true },
		func(c *config.Cluster) { c.Platform.Logging = true },
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

// monitoringCluster is a cluster with the monitoring stack (etcd scraped) and alerting on:
// etcd of type kubekey on n1 and n2.
func monitoringCluster() *config.Cluster {
	c := cluster(false)
	c.Name = "lab"
	c.Etcd.Type = config.EtcdKubeKey
	for i, n := range []string{"n1", "n2", "n3"} {
		roles := []config.Role{config.RoleWorker}
		if i < 2 {
			roles = append(roles, config.RoleEtcd, config.RoleControlPlane)
		}
		c.Hosts = append(c.Hosts, &config.Host{Name: n, Address: fmt.Sprintf("10.0.0.%d", i+1), InternalAddress: fmt.Sprintf("10.0.0.%d", i+1), Roles: roles})
	}
	c.Platform.Monitoring = config.Monitoring{Enabled: true, PrometheusReplicas: 2, PrometheusVolumeSize: "5Gi",
		PrometheusMemoryRequest: "1Gi", Retention: "3d", AlertmanagerReplicas: 1, NodeExporterPort: 9200, Etcd: true}
	c.Platform.Alerting = config.Alerting{Enabled: true, Receivers: []config.Receiver{{Name: "ops", WebhookURL: "http://hook:8080/a"}}}
	return c
}

// The monitoring component: the operator's CRDs first, then the stack with the file's
// settings, the etcd members scraped over TLS with the Secret its Runtime makes, every image
// the version table's.
func TestMonitoring(t *testing.T) {
	c := monitoringCluster()
	comps, err := Components(c)
	if err != nil {
		t.Fatal(err)
	}
	mon := named(t, comps, "monitoring")
	set, _ := versions.For("v1.37.2")
	if !mon.Enabled || !slices.Equal(mon.Images, set.MonitoringImages()) || mon.Runtime == nil {
		t.Fatalf("monitoring %v images %v runtime %v", mon.Enabled, mon.Images, mon.Runtime != nil)
	}
	if slices.Index(Names(), "monitoring") < slices.Index(Names(), "local-storage") || slices.Index(Names(), "alerting") != slices.Index(Names(), "monitoring")+1 {
		t.Errorf("order %v: storage, then monitoring, then alerting", Names())
	}
	var crds int
	byName := map[string]*unstructured.Unstructured{}
	for i, o := range mon.Objects {
		if o.GetKind() == "CustomResourceDefinition" {
			crds++
			if i != crds-1 {
				t.Errorf("CRD %s after other objects", o.GetName())
			}
		}
		byName[o.GetKind()+"/"+o.GetName()] = o
	}
	if crds < 8 || byName["CustomResourceDefinition/prometheuses.monitoring.coreos.com"] == nil {
		t.Errorf("%d CRDs", crds)
	}
	p := byName["Prometheus/k8s"]
	if p == nil {
		t.Fatalf("no Prometheus k8s in %v", len(byName))
	}
	spec := p.Object["spec"].(map[string]any)
	if spec["image"] != set.PrometheusImage() || fmt.Sprint(spec["replicas"]) != "2" || spec["retention"] != "3d" ||
		spec["serviceDiscoveryRole"] != "EndpointSlice" {
		t.Errorf("prometheus spec %v", spec)
	}
	if size, _, _ := unstructured.NestedString(spec, "storage", "volumeClaimTemplate", "spec", "resources", "requests", "storage"); size != "5Gi" {
		t.Errorf("volume %q", size)
	}
	if mem, _, _ := unstructured.NestedString(spec, "resources", "requests", "memory"); mem != "1Gi" {
		t.Errorf("memory %q", mem)
	}
	if l, _, _ := unstructured.NestedString(spec, "externalLabels", "cluster"); l != "lab" {
		t.Errorf("external label cluster %q", l)
	}
	ep := byName["EndpointSlice/kube-etcd"]
	if ep == nil {
		t.Fatal("no etcd EndpointSlice")
	}
	var addrs []string
	for _, e := range toSlice(ep.Object["endpoints"]) {
		addrs = append(addrs, toStrings(e.(map[string]any)["addresses"])...)
	}
	if !slices.Equal(addrs, []string{"10.0.0.1", "10.0.0.2"}) {
		t.Errorf("etcd members %v", addrs)
	}
	sm := byName["ServiceMonitor/etcd"]
	if scheme, _, _ := unstructured.NestedString(toSlice(sm.Object["spec"].(map[string]any)["endpoints"])[0].(map[string]any), "scheme"); scheme != "https" {
		t.Errorf("etcd scraped over %q", scheme)
	}
	ds := byName["DaemonSet/node-exporter"]
	if b, _ := json.Marshal(ds.Object); !strings.Contains(string(b), "--web.listen-address=:9200") || !strings.Contains(string(b), set.NodeExporterImage()) {
		t.Errorf("node-exporter %s", b)
	}
	for _, img := range []string{set.PrometheusOperatorImage(), set.KubeStateMetricsImage()} {
		if b, _ := json.Marshal(mon.Objects); !strings.Contains(string(b), img) {
			t.Errorf("no %s", img)
		}
	}
	if b, _ := json.Marshal(byName["Deployment/prometheus-operator"].Object); !strings.Contains(string(b), "--prometheus-config-reloader="+set.PrometheusConfigReloaderImage()) {
		t.Errorf("operator without the config reloader image: %s", b)
	}

	// etcd not scraped: no etcd objects and no Runtime
	c.Platform.Monitoring.Etcd = false
	comps, _ = Components(c)
	mon = named(t, comps, "monitoring")
	for _, o := range mon.Objects {
		if o.GetLabels()["app.kubernetes.io/name"] == "etcd" {
			t.Errorf("%s %s without etcd.monitoring", o.GetKind(), o.GetName())
		}
	}
	if mon.Runtime != nil {
		t.Errorf("a Runtime without etcd.monitoring")
	}
	// an external etcd named by a host name cannot be listed in an EndpointSlice
	c.Platform.Monitoring.Etcd = true
	c.Etcd = config.Etcd{Type: config.EtcdExternal, External: config.ExternalEtcd{Endpoints: []string{"https://etcd.lab:2379"}}}
	if _, err := Components(c); err == nil || !strings.Contains(err.Error(), "must be an IPv4 address") {
		t.Errorf("external etcd by name: %v", err)
	}
}

// Alerting: Alertmanager with the receivers of the file, every alert to each; kk's rules.
func TestAlerting(t *testing.T) {
	comps, err := Components(monitoringCluster())
	if err != nil {
		t.Fatal(err)
	}
	al := named(t, comps, "alerting")
	set, _ := versions.For("v1.37.2")
	if !al.Enabled || !slices.Equal(al.Images, []string{set.AlertmanagerImage()}) {
		t.Fatalf("alerting %v %v", al.Enabled, al.Images)
	}
	var cfg string
	var rules []string
	for _, o := range al.Objects {
		switch o.GetKind() {
		case "Secret":
			b64, _, _ := unstructured.NestedString(o.Object, "data", "alertmanager.yaml")
			raw, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				t.Fatal(err)
			}
			cfg = string(raw)
		case "PrometheusRule":
			for _, g := range toSlice(o.Object["spec"].(map[string]any)["groups"]) {
				for _, r := range toSlice(g.(map[string]any)["rules"]) {
					rules = append(rules, fmt.Sprint(r.(map[string]any)["alert"]))
				}
			}
		}
	}
	var am alertmanagerConfig
	if err := yaml.Unmarshal([]byte(cfg), &am); err != nil {
		t.Fatal(err)
	}
	if am.Route.Receiver != config.AlertNullReceiver || len(am.Route.Routes) != 1 || am.Route.Routes[0].Receiver != "ops" || !am.Route.Routes[0].Continue ||
		len(am.Receivers) != 2 || am.Receivers[1].WebhookConfigs[0].URL != "http://hook:8080/a" {
		t.Errorf("alertmanager.yaml:\n%s", cfg)
	}
	for _, want := range []string{"NodeExporterDown", "EtcdNoLeader", "EtcdMemberDown", "KubeAPIDown", "KubeClientCertificateExpiration",
		"KubeletServerCertificateExpiration", "KubePodCrashLooping"} {
		if !slices.Contains(rules, want) {
			t.Errorf("no alert %s in %v", want, rules)
		}
	}
	// Prometheus' templates in the annotations survive kk's own rendering
	if b, _ := json.Marshal(al.Objects); !strings.Contains(string(b), "{{ $labels.node }}") {
		t.Errorf("annotations lost their Prometheus templates")
	}
}

// The operator's CRDs kk ships are those of the release the version table pins: bumping
// versions.Addons.PrometheusOperator without go generate ./templates fails here.
func TestMonitoringCRDsMatchTheOperator(t *testing.T) {
	b, err := fs.ReadFile(templates.FS(), MonitoringCRDsFile)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	want := "prometheus-operator " + versions.DefaultAddons().PrometheusOperator + " "
	if !strings.Contains(first, want) {
		t.Errorf("%s was generated from another release: %q, want %q (run go generate ./templates)", MonitoringCRDsFile, first, want)
	}
}

// With kk's monitoring stack, the GPU monitoring adds its rules and scrape job for kk's
// Prometheus; without it, only the ConfigMaps for the user's own Prometheus.
func TestGPUMonitoringWithKKsPrometheus(t *testing.T) {
	for _, mon := range []bool{true, false} {
		c := monitoringCluster()
		c.GPU.Exporter = true
		c.Platform.Monitoring.Enabled = mon
		c.Platform.Monitoring.Etcd, c.Platform.Alerting.Enabled = false, false
		comps, err := Components(c)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]bool{}
		for _, o := range named(t, comps, "gpu-monitoring").Objects {
			kinds[o.GetKind()] = true
			if o.GetKind() == "ScrapeConfig" {
				if b, _ := json.Marshal(o.Object); !strings.Contains(string(b), `"replacement":"${1}:9835"`) {
					t.Errorf("scrape job %s", b)
				}
			}
		}
		if kinds["PrometheusRule"] != mon || kinds["ScrapeConfig"] != mon || !kinds["ConfigMap"] {
			t.Errorf("monitoring %v: kinds %v", mon, kinds)
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
