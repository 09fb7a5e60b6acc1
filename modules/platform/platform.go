// Package platform is kk's platform phase: the components of a KubeSphere-like stack that the
// ClusterConfiguration beside the Cluster switches on (config.Platform), each a manifest kk
// ships under templates/platform with its image from kk's version table, applied from the kk
// machine with server-side apply and waited for until ready.
//
// Every object kk applies carries the label LabelComponent naming its component. A component
// switched off is removed: the objects of its manifest that exist with kk's label are deleted,
// and nothing else (an object of the same name that someone else made is left alone).
package platform

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/charts"
	"github.com/kk-project/kk/artifacts/versions"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/etcd"
	"github.com/kk-project/kk/modules/kubeapply"
	"github.com/kk-project/kk/modules/runtime"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/templates"
)

// LabelComponent is set on every object of the platform phase to its component's name.
const LabelComponent = "kk.kubesphere.io/platform-component"

// AnnotationKeep ("true") on an object of a component's manifest keeps it when the component
// is switched off: a namespace the component shares with what kk does not install (the app
// store's kubesphere-system, where KubeSphere's core lives too).
const AnnotationKeep = "kk.kubesphere.io/keep-on-removal"

// Component is one platform component: its objects and whether the file switches it on.
type Component struct {
	// Name is the component ("metrics-server"); its task is platform/<Name>.
	Name string
	// Switch is the ClusterConfiguration field that turns it on.
	Switch string
	// Enabled says the file switches it on: installed when on, removed when off.
	Enabled bool
	// Objects are its manifest's objects, each labelled with LabelComponent.
	Objects []*unstructured.Unstructured
	// Images are the images its objects run (each in the bundle when Enabled).
	Images []string
	// WaitTimeout bounds the wait for its objects to be ready.
	WaitTimeout time.Duration
	// Runtime, when set, returns objects made from what is on the hosts (the etcd client
	// certificate's Secret), added to Objects by the task on the first control plane.
	Runtime func(ctx context.Context, t *pipeline.Target) ([]*unstructured.Unstructured, error)
	// Prune are the kinds whose objects with kk's label for it that Objects no longer has are
	// deleted: for a component made from a list in the file (workspaces), whose objects an
	// earlier file had and this one does not.
	Prune []schema.GroupVersionKind
	// Charts are the chart archives the app store is loaded with once it serves (each version
	// the repository lacks is uploaded; see Upload).
	Charts []charts.Archive
}

// Inputs are what the platform's components take besides the Cluster: what kk resolved on its
// own machine before any host is touched.
type Inputs struct {
	// Charts are the app store's chart archives: the bundle's, or the Cluster's
	// spec.openpitrix.store.charts packaged.
	Charts []charts.Archive
}

// catalogue is every component kk serves, in install order: the template under
// templates/files, the ClusterConfiguration switch, and the images from the version table.
var catalogue = []struct {
	name, template, field string
	on                    func(*config.Cluster) bool
	images                func(versions.Set) []string
	version               func(versions.Set) string
	prune                 []schema.GroupVersionKind
}{
	// storage first: what comes after may claim volumes; its CRDs are the volume snapshots'
	{name: "local-storage", template: "platform/local-storage.yaml",
		field:   "spec.persistence.storageClass empty or " + config.LocalStorageClass + ", or --with-local-storage",
		on:      func(c *config.Cluster) bool { return c.Platform.LocalStorage },
		images:  func(s versions.Set) []string { return s.LocalStorageImages() },
		version: func(s versions.Set) string { return s.Addons.LocalCSI },
		// an earlier kk's local storage (rancher's local-path-provisioner in its namespace
		// local-path-storage, with its cluster role and binding) goes once the CSI driver is in;
		// its class "local" is replaced first (replaceClasses)
		prune: []schema.GroupVersionKind{{Version: "v1", Kind: "Namespace"},
			{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"},
			{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleBinding"}}},
	{name: "metrics-server", template: "platform/metrics-server.yaml", field: "spec.metrics_server.enabled",
		on:      func(c *config.Cluster) bool { return c.Platform.MetricsServer },
		images:  func(s versions.Set) []string { return []string{s.MetricsServerImage()} },
		version: func(s versions.Set) string { return s.Addons.MetricsServer }},
	// after storage: Prometheus and Alertmanager claim volumes; the CRDs are the monitoring's
	{name: "monitoring", template: "platform/monitoring.yaml", field: "spec.monitoring (kk's spec.monitoring.enabled)",
		on:      func(c *config.Cluster) bool { return c.Platform.Monitoring.Enabled },
		images:  func(s versions.Set) []string { return s.MonitoringImages() },
		version: func(s versions.Set) string { return s.Addons.PrometheusOperator }},
	{name: "alerting", template: "platform/alerting.yaml", field: "spec.alerting.enabled",
		on:      func(c *config.Cluster) bool { return c.Platform.Alerting.Enabled },
		images:  func(s versions.Set) []string { return []string{s.AlertmanagerImage()} },
		version: func(s versions.Set) string { return s.Addons.Alertmanager }},
	// after the storage: the log store claims a volume of the default class
	{name: "logging", template: "platform/logging.yaml", field: "spec.logging.enabled",
		on:      func(c *config.Cluster) bool { return c.Platform.Logging },
		images:  func(s versions.Set) []string { return s.LoggingImages() },
		version: func(s versions.Set) string { return s.Addons.VictoriaLogs }},
	{name: "gateway", template: "platform/gateway.yaml", field: "spec.gateway.enabled",
		on:      func(c *config.Cluster) bool { return c.Platform.Gateway },
		images:  func(s versions.Set) []string { return []string{s.TraefikImage()} },
		version: func(s versions.Set) string { return s.Addons.Traefik }},
	// after storage: it claims a volume of the default class
	{name: appStore, template: "platform/app-store.yaml", field: "spec.openpitrix.store.enabled",
		on:      func(c *config.Cluster) bool { return c.Platform.AppStore },
		images:  func(s versions.Set) []string { return []string{s.ChartMuseumImage()} },
		version: func(s versions.Set) string { return s.Addons.ChartMuseum }},
	// no images: namespaces, bindings and quotas; a namespace is never pruned
	{name: "tenants", template: "platform/tenants.yaml", field: "spec.workspaces",
		on:      func(c *config.Cluster) bool { return len(c.Platform.Workspaces) > 0 },
		images:  func(versions.Set) []string { return nil },
		version: func(versions.Set) string { return "" },
		prune: []schema.GroupVersionKind{{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBinding"},
			{Version: "v1", Kind: "ResourceQuota"}}},
	// the GPU nodes' device plugin: after the tenants, whose quotas count its nvidia.com/gpu
	{name: "nvidia-device-plugin", template: "gpu/device-plugin.yaml", field: "spec.gpu.devicePlugin",
		on:      func(c *config.Cluster) bool { return c.GPU.DevicePlugin },
		images:  func(s versions.Set) []string { return []string{s.NvidiaDevicePluginImage()} },
		version: func(s versions.Set) string { return s.Addons.NvidiaDevicePlugin }},
	// kk's GPU exporter runs on the hosts (modules/gpu): its dashboard, rules and scrape job
	{name: "gpu-monitoring", template: "gpu/monitoring.yaml", field: "spec.gpu.exporter",
		on:      func(c *config.Cluster) bool { return c.GPU.Exporter },
		images:  func(versions.Set) []string { return nil },
		version: func(versions.Set) string { return "" },
		// the rule and scrape job for kk's Prometheus, gone when the monitoring is switched off
		prune: []schema.GroupVersionKind{{Group: "monitoring.coreos.com", Version: "v1", Kind: "PrometheusRule"},
			{Group: "monitoring.coreos.com", Version: "v1alpha1", Kind: "ScrapeConfig"}}},
}

// SnapshotCRDsFile holds the volume snapshot CRDs (see templates/gen/snapcrds): part of the
// local storage, applied before its VolumeSnapshotClass and snapshot-controller. It is read as
// it is, not rendered.
const SnapshotCRDsFile = "platform/snapshot-crds.yaml"

// The GPU monitoring's files under templates/files.
const (
	GPUDashboardFile = "gpu/kk-gpu-dashboard.json"
	GPURulesFile     = "gpu/kk-gpu.rules.yaml"
	GPUScrapeFile    = "gpu/kk-gpu-scrape.yaml"
)

// renderData is what a component's template reads.
type renderData struct {
	Version string
	Image   string   // its first image
	Images  []string // all of them, in the catalogue's order
	// BasePath is where local volumes live on the nodes; StorageClass is their class.
	BasePath, StorageClass string
	// Workspaces are the file's tenants.
	Workspaces []config.Workspace
	// DevicePluginConfig is NVIDIA's device plugin's configuration file (gpu/device-plugin-config.yaml),
	// DevicePluginConfigSHA256 its digest.
	DevicePluginConfig, DevicePluginConfigSHA256 string
	// LoggingRetention and LoggingVolumeSize are the log store's retention period and volume
	// (the file's, else config's defaults); LoggingMaxDiskBytes is the disk the store may use
	// before it drops its oldest days, a part of the volume (see loggingMaxDisk).
	LoggingRetention, LoggingVolumeSize string
	LoggingMaxDiskBytes                 int64
	// LogHostDirs are the host directories the nodes' pod logs (/var/log/pods) link into,
	// which the collector must read too: docker's containers directory under its data root
	// (cri-dockerd links each log to docker's json file); none for containerd, which writes
	// the logs in /var/log/pods itself.
	LogHostDirs []string
	// LogCollectorDir is config.LogCollectorDir, the collector's buffer on each node.
	LogCollectorDir string
	// GPUDashboard, GPURules and GPUScrape are the GPU monitoring's files (templates/files/gpu,
	// taken as they are: Grafana's legends and Prometheus' labels use braces of their own).
	GPUDashboard, GPURules, GPUScrape string
	// Set is the version table's row (images and versions of the monitoring stack).
	Set versions.Set
	// ClusterName is the cluster's name (Prometheus' external label cluster).
	ClusterName string
	// Monitoring is the monitoring stack's settings; EtcdMembers and EtcdPort are the etcd
	// members it scrapes (with Monitoring.Etcd).
	Monitoring  config.Monitoring
	EtcdMembers []string
	EtcdPort    int
	// AlertmanagerConfig is alertmanager.yaml for the receivers of spec.alerting, base64.
	AlertmanagerConfig string
	// EtcdTLS says the etcd members are scraped over TLS with the Secret EtcdClientSecret.
	EtcdTLS bool
}

// MonitoringCRDsFile holds the Prometheus Operator's CRDs (see templates/gen/promcrds): part
// of the monitoring component, applied before the objects that use them. It is read as it
// is, not rendered.
const MonitoringCRDsFile = "platform/monitoring-crds.yaml"

// crdFiles are the CRDs that come with a component, read as they are (generated files, which
// kk's rendering must not touch).
var crdFiles = map[string]string{"local-storage": SnapshotCRDsFile, "monitoring": MonitoringCRDsFile}

// EtcdClientSecret is the Secret, in the monitoring's namespace, that holds the etcd CA and
// client certificate Prometheus scrapes the etcd members with.
const (
	MonitoringNamespace = "kubesphere-monitoring-system"
	EtcdClientSecret    = "kube-etcd-client-certs"
)

// Images lists the images of the components cluster c switches on, in install order: what its
// bundle must hold for the platform phase.
func Images(c *config.Cluster, set versions.Set) []string {
	var out []string
	for _, k := range catalogue {
		if k.on(c) {
			out = append(out, k.images(set)...)
		}
	}
	return out
}

// Names lists the components kk serves, in install order.
func Names() []string {
	var out []string
	for _, c := range catalogue {
		out = append(out, c.name)
	}
	return out
}

// Components renders every component kk serves for cluster c, switched on or off as its file
// says (those off are needed to remove what an earlier run installed).
func Components(c *config.Cluster) ([]Component, error) { return ComponentsWith(c, Inputs{}) }

// ComponentsWith is Components with in: the app store gets in.Charts.
func ComponentsWith(c *config.Cluster, in Inputs) ([]Component, error) {
	set, err := versions.For(c.Kubernetes.Version)
	if err != nil {
		return nil, err
	}
	dp, err := templates.Render("gpu/device-plugin-config.yaml", c.GPU)
	if err != nil {
		return nil, err
	}
	dpSum := sha256.Sum256(dp)
	monitoring := map[string]string{}
	for _, f := range []string{GPUDashboardFile, GPURulesFile, GPUScrapeFile} {
		b, err := fs.ReadFile(templates.FS(), f)
		if err != nil {
			return nil, err
		}
		monitoring[f] = strings.TrimRight(string(b), "\n")
	}
	amConfig, err := AlertmanagerConfig(c.Platform.Alerting)
	if err != nil {
		return nil, err
	}
	var etcdMembers []string
	var etcdPort int
	var etcdTLS bool
	var etcdCA, etcdCert, etcdKey string
	if c.Platform.Monitoring.Etcd {
		if etcdMembers, etcdPort, etcdCA, etcdCert, etcdKey, err = etcd.MonitoringClient(c); err != nil {
			return nil, err
		}
		etcdTLS = etcdCA != "" && etcdCert != ""
	}
	logging, err := loggingData(c)
	if err != nil {
		return nil, err
	}
	var out []Component
	for _, k := range catalogue {
		imgs := k.images(set)
		data := renderData{Version: k.version(set), Images: imgs, BasePath: c.Storage.LocalVolumes(),
			StorageClass: config.LocalStorageClass, Workspaces: c.Platform.Workspaces,
			DevicePluginConfig: string(dp), DevicePluginConfigSHA256: hex.EncodeToString(dpSum[:]),
			GPUDashboard: monitoring[GPUDashboardFile], GPURules: monitoring[GPURulesFile], GPUScrape: monitoring[GPUScrapeFile],
			Set: set, ClusterName: clusterName(c), Monitoring: c.Platform.Monitoring, EtcdMembers: etcdMembers, EtcdPort: etcdPort,
			EtcdTLS: etcdTLS, AlertmanagerConfig: base64.StdEncoding.EncodeToString(amConfig),
			LoggingRetention: logging.LoggingRetention, LoggingVolumeSize: logging.LoggingVolumeSize,
			LoggingMaxDiskBytes: logging.LoggingMaxDiskBytes, LogHostDirs: logging.LogHostDirs, LogCollectorDir: logging.LogCollectorDir}
		if len(imgs) > 0 {
			data.Image = imgs[0]
		}
		docs, err := templates.Render(k.template, data)
		if err != nil {
			return nil, err
		}
		if f, ok := crdFiles[k.name]; ok {
			crds, err := fs.ReadFile(templates.FS(), f)
			if err != nil {
				return nil, err
			}
			docs = append(append(crds, "\n---\n"...), docs...)
		}
		objs, err := kubeapply.Decode(docs)
		if err != nil {
			return nil, fmt.Errorf("platform component %s: %w", k.name, err)
		}
		for _, o := range objs {
			l := o.GetLabels()
			if l == nil {
				l = map[string]string{}
			}
			l[LabelComponent] = k.name
			o.SetLabels(l)
		}
		comp := Component{Name: k.name, Switch: k.field, Enabled: k.on(c), Objects: objs, Images: imgs,
			WaitTimeout: 5 * time.Minute, Prune: k.prune}
		if k.name == "monitoring" && etcdTLS {
			comp.Runtime = etcdClientSecret(etcdCA, etcdCert, etcdKey)
		}
		if k.name == appStore && comp.Enabled {
			comp.Charts = in.Charts
		}
		out = append(out, comp)
	}
	return out, nil
}

// loggingData fills in the logging's part of the render data for cluster c.
func loggingData(c *config.Cluster) (renderData, error) {
	d := renderData{LoggingRetention: c.Platform.LoggingRetention, LoggingVolumeSize: c.Platform.LoggingVolumeSize,
		LogCollectorDir: config.LogCollectorDir}
	if d.LoggingRetention == "" {
		d.LoggingRetention = config.DefaultLoggingRetention
	}
	if d.LoggingVolumeSize == "" {
		d.LoggingVolumeSize = config.DefaultLoggingVolumeSize
	}
	size, err := resource.ParseQuantity(d.LoggingVolumeSize)
	if err != nil {
		return d, fmt.Errorf("platform component logging: volume size %q: %w", d.LoggingVolumeSize, err)
	}
	d.LoggingMaxDiskBytes = loggingMaxDisk(size.Value())
	if rt := runtime.SpecFor(c, binaries.Files{}); rt.ContainerManager == runtime.Docker {
		d.LogHostDirs = []string{path.Join(rt.Root(), "containers")}
	}
	return d, nil
}

// loggingMaxDisk is the disk the log store may fill on a volume of size bytes before it drops
// its oldest days: nine tenths, since the store writes a new part before it merges the old
// ones away, and a local volume (a directory) has no size limit of its own to stop it.
func loggingMaxDisk(size int64) int64 { return size / 10 * 9 }

// TaskPrefix starts the name of every platform task: platform/<component>.
const TaskPrefix = "platform/"

// Tasks returns one task per component, each after the one before it (storage before what
// claims volumes, CRDs' owners before their users). A component on is installed (Check: a
// server-side dry run changes nothing and every object is ready); one off is removed when
// kk's objects of it are there.
func Tasks(comps []Component, kubeconfig func(ctx context.Context) (*rest.Config, error), after []string) []pipeline.Task {
	var out []pipeline.Task
	for _, comp := range comps {
		out = append(out, task(comp, kubeconfig, slices.Clone(after)))
		after = []string{TaskPrefix + comp.Name}
	}
	return out
}

func task(comp Component, kubeconfig func(ctx context.Context) (*rest.Config, error), after []string) pipeline.Task {
	what := "platform component " + comp.Name
	desc := "install " + comp.Name + " (" + comp.Switch + ")"
	if !comp.Enabled {
		desc = "remove " + comp.Name + " if kk installed it (" + comp.Switch + " is off)"
	}
	client := func(ctx context.Context) (*kubeapply.Client, error) {
		cfg, err := kubeconfig(ctx)
		if err != nil {
			return nil, err
		}
		return kubeapply.NewClient(cfg)
	}
	repo := func(ctx context.Context) (RepoAPI, error) {
		cfg, err := kubeconfig(ctx)
		if err != nil {
			return nil, err
		}
		return ProxyRepo(cfg)
	}
	return pipeline.Task{
		Name: TaskPrefix + comp.Name, Desc: desc, After: after,
		Hosts: pipeline.FirstOf(string(config.RoleControlPlane)),
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			c, err := client(ctx)
			if !comp.Enabled && errors.Is(err, fs.ErrNotExist) {
				return true, nil // no admin kubeconfig yet (a dry run before the cluster exists): nothing of it to remove
			}
			if err != nil {
				return false, err
			}
			if !comp.Enabled {
				left, err := leftover(ctx, c, comp)
				if err == nil && len(left) > 0 && t.Log != nil {
					t.Log.Info(what+" is switched off and still there", "objects", refs(left))
				}
				return len(left) == 0, err
			}
			objs, err := comp.objects(ctx, t)
			if err != nil {
				return false, err
			}
			ok, why, err := c.Converged(ctx, what, objs)
			if err == nil && ok {
				ok, why, err = available(ctx, c, objs)
			}
			if err == nil && ok {
				var stale []*unstructured.Unstructured
				if stale, err = leftover(ctx, c, comp); len(stale) > 0 {
					ok, why = false, "no longer in the file: "+refs(stale)
				}
			}
			if err == nil && ok && len(comp.Charts) > 0 {
				var api RepoAPI
				var missing []charts.Chart
				if api, err = repo(ctx); err == nil {
					if missing, err = Missing(ctx, api, comp.Charts); len(missing) > 0 {
						ok, why = false, "charts not in the app store yet: "+chartList(missing)
					}
				}
			}
			if err == nil && !ok && t.Log != nil {
				t.Log.Info(what+" not converged", "reason", why)
			}
			return ok, err
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			c, err := client(ctx)
			if err != nil {
				return false, err
			}
			if !comp.Enabled {
				left, err := leftover(ctx, c, comp)
				if err != nil || len(left) == 0 {
					return false, err
				}
				// in reverse: the APIService before the Deployment that serves it
				slices.Reverse(left)
				if t.Log != nil {
					t.Log.Info("removing "+what, "objects", refs(left))
				}
				return true, c.Delete(ctx, left, "")
			}
			objs, err := comp.objects(ctx, t)
			if err != nil {
				return false, err
			}
			replaced, err := replaceClasses(ctx, c, comp, objs, t.Log)
			if err != nil {
				return false, err
			}
			res, err := c.Install(ctx, what, objs, comp.WaitTimeout)
			if t.Log != nil && len(res.Objects) > 0 {
				t.Log.Info(what+" applied", "result", res.String())
			}
			if err != nil {
				return replaced || res.Changed() > 0, err
			}
			if err := waitAvailable(ctx, c, comp, objs); err != nil {
				return replaced || res.Changed() > 0, err
			}
			loaded := false
			if len(comp.Charts) > 0 {
				api, err := repo(ctx)
				if err != nil {
					return res.Changed() > 0, err
				}
				up, kept, err := uploadWhenServing(ctx, api, comp.Charts, os.ReadFile, comp.WaitTimeout)
				if t.Log != nil && len(up) > 0 {
					t.Log.Info("charts uploaded into the app store", "charts", chartList(up))
				}
				if t.Log != nil && len(kept) > 0 {
					t.Log.Info("the app store holds these chart versions from other archives: kept (give a chart a new version to replace it)",
						"charts", chartList(kept))
				}
				if err != nil {
					return res.Changed() > 0 || len(up) > 0, err
				}
				loaded = len(up) > 0
			}
			stale, err := leftover(ctx, c, comp)
			if err != nil || len(stale) == 0 {
				return res.Changed() > 0 || loaded, err
			}
			if t.Log != nil {
				t.Log.Info("removing what the file no longer has of "+what, "objects", refs(stale))
			}
			return true, c.Delete(ctx, stale, "")
		},
		// the objects' wait, then the APIServices' or the charts' uploads (each up to
		// WaitTimeout), and the applies
		Timeout: 2*comp.WaitTimeout + 3*time.Minute,
	}
}

// replaceClasses deletes the StorageClasses of objs that kk made earlier for comp with another
// provisioner (an earlier kk's class "local" of rancher's local-path-provisioner), so that the
// apply makes them anew: a class's provisioner cannot change. The volumes made under the old
// class stay and stay bound; their provisioner goes with the old component, so deleting one
// of their claims leaves the volume's directory on its node, which the log says.
func replaceClasses(ctx context.Context, c *kubeapply.Client, comp Component, objs []*unstructured.Unstructured, log *slog.Logger) (bool, error) {
	var classes []*unstructured.Unstructured
	want := map[string]any{}
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind() == (schema.GroupKind{Group: "storage.k8s.io", Kind: "StorageClass"}) {
			classes = append(classes, o)
			want[o.GetName()] = o.Object["provisioner"]
		}
	}
	if len(classes) == 0 {
		return false, nil
	}
	there, err := c.Labelled(ctx, classes, LabelComponent, comp.Name)
	if err != nil {
		return false, err
	}
	var old []*unstructured.Unstructured
	for _, o := range there {
		if o.Object["provisioner"] != want[o.GetName()] {
			old = append(old, o)
			if log != nil {
				log.Warn("replacing StorageClass "+o.GetName()+": its provisioner changes and cannot be changed in place; "+
					"its volumes stay, but their directories are no longer removed with their claims",
					"from", o.Object["provisioner"], "to", want[o.GetName()])
			}
		}
	}
	if len(old) == 0 {
		return false, nil
	}
	return true, c.Delete(ctx, old, "")
}

// leftover is what of comp kk removes: switched on, its objects of the Prune kinds that the
// file no longer makes; switched off, every object of it with kk's label.
func leftover(ctx context.Context, c *kubeapply.Client, comp Component) ([]*unstructured.Unstructured, error) {
	if comp.Enabled {
		return c.Stale(ctx, comp.Prune, comp.Objects, LabelComponent, comp.Name)
	}
	left, err := c.Labelled(ctx, removable(comp.Objects), LabelComponent, comp.Name)
	if err != nil {
		return nil, err
	}
	stale, err := c.Stale(ctx, comp.Prune, comp.Objects, LabelComponent, comp.Name)
	if err != nil {
		return nil, err
	}
	for _, o := range stale {
		if !slices.ContainsFunc(left, func(l *unstructured.Unstructured) bool { return kubeapply.Ref(l) == kubeapply.Ref(o) }) {
			left = append(left, o)
		}
	}
	return left, nil
}

// removable are the objects of objs a switched-off component removes: all but those annotated
// AnnotationKeep (a namespace shared with what kk does not install) and the
// CustomResourceDefinitions (deleting one deletes every object of its kind, the user's own
// too: their ServiceMonitors and rules, say).
func removable(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetAnnotations()[AnnotationKeep] != "true" && o.GetKind() != "CustomResourceDefinition" {
			out = append(out, o)
		}
	}
	return out
}

func refs(objs []*unstructured.Unstructured) string {
	var s []string
	for _, o := range objs {
		s = append(s, kubeapply.Ref(o))
	}
	return strings.Join(s, ", ")
}

// availableKinds are the kinds kstatus calls Current as soon as they exist, while what they
// stand for works only once their condition Available is True: an APIService once the API
// server reaches its backend, a Prometheus or an Alertmanager once the operator's StatefulSet
// runs every replica.
var availableKinds = map[string]bool{"APIService": true, "Prometheus": true, "Alertmanager": true}

// available checks what kstatus cannot: objs of availableKinds are Available.
func available(ctx context.Context, c *kubeapply.Client, objs []*unstructured.Unstructured) (bool, string, error) {
	for _, o := range objs {
		if !availableKinds[o.GetKind()] {
			continue
		}
		got, err := c.Labelled(ctx, []*unstructured.Unstructured{o}, LabelComponent, o.GetLabels()[LabelComponent])
		if err != nil {
			return false, "", err
		}
		if len(got) == 0 {
			return false, kubeapply.Ref(o) + " is not there", nil
		}
		if ok, msg := conditionTrue(got[0], "Available"); !ok {
			return false, kubeapply.Ref(o) + " not available: " + msg, nil
		}
	}
	return true, "", nil
}

// objects are comp's objects, and those its Runtime makes on t.
func (comp Component) objects(ctx context.Context, t *pipeline.Target) ([]*unstructured.Unstructured, error) {
	if comp.Runtime == nil {
		return comp.Objects, nil
	}
	more, err := comp.Runtime(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("platform component %s: %w", comp.Name, err)
	}
	return append(slices.Clone(comp.Objects), more...), nil
}

// waitAvailable polls available until objs (comp's) serve, up to comp's wait timeout.
func waitAvailable(ctx context.Context, c *kubeapply.Client, comp Component, objs []*unstructured.Unstructured) error {
	var why string
	err := wait.PollUntilContextTimeout(ctx, 2*time.Second, comp.WaitTimeout, true, func(ctx context.Context) (bool, error) {
		ok, w, err := available(ctx, c, objs)
		if why = w; err != nil {
			why = err.Error()
		}
		return err == nil && ok, nil
	})
	if err != nil {
		return fmt.Errorf("platform component %s not ready after %s: %s", comp.Name, comp.WaitTimeout, why)
	}
	return nil
}

// conditionTrue reports whether o's status condition typ is True, or its message.
func conditionTrue(o *unstructured.Unstructured, typ string) (bool, string) {
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			if m["status"] == "True" {
				return true, ""
			}
			return false, fmt.Sprintf("%v: %v", m["reason"], m["message"])
		}
	}
	return false, "no " + typ + " condition yet"
}

// clusterName is the cluster's name for Prometheus' external label: the file's
// metadata.name, or kubeadm's cluster name.
func clusterName(c *config.Cluster) string {
	if c.Name != "" {
		return c.Name
	}
	return c.Kubernetes.ClusterName
}

// alertmanagerConfig is Alertmanager's configuration file as kk writes it.
type alertmanagerConfig struct {
	Route     amRoute      `json:"route"`
	Receivers []amReceiver `json:"receivers"`
}

type amRoute struct {
	Receiver       string    `json:"receiver"`
	GroupBy        []string  `json:"group_by,omitempty"`
	GroupWait      string    `json:"group_wait,omitempty"`
	GroupInterval  string    `json:"group_interval,omitempty"`
	RepeatInterval string    `json:"repeat_interval,omitempty"`
	Continue       bool      `json:"continue,omitempty"`
	Routes         []amRoute `json:"routes,omitempty"`
}

type amReceiver struct {
	Name           string      `json:"name"`
	WebhookConfigs []amWebhook `json:"webhook_configs,omitempty"`
}

type amWebhook struct {
	URL          string `json:"url"`
	SendResolved bool   `json:"send_resolved"`
}

// AlertmanagerConfig renders alertmanager.yaml for a: every alert, grouped by alert name and
// namespace, goes to each receiver of the file (a route each, continuing to the next); with
// none, to config.AlertNullReceiver, which sends nowhere (the alerts stay listed in
// Alertmanager's API).
func AlertmanagerConfig(a config.Alerting) ([]byte, error) {
	cfg := alertmanagerConfig{
		Route: amRoute{Receiver: config.AlertNullReceiver, GroupBy: []string{"alertname", "namespace"},
			GroupWait: "30s", GroupInterval: "5m", RepeatInterval: "4h"},
		Receivers: []amReceiver{{Name: config.AlertNullReceiver}},
	}
	for _, r := range a.Receivers {
		cfg.Route.Routes = append(cfg.Route.Routes, amRoute{Receiver: r.Name, Continue: true})
		cfg.Receivers = append(cfg.Receivers, amReceiver{Name: r.Name, WebhookConfigs: []amWebhook{{URL: r.WebhookURL, SendResolved: true}}})
	}
	return yaml.Marshal(cfg)
}

// etcdClientSecret returns the Runtime of the monitoring with etcd over TLS: the Secret
// EtcdClientSecret of the etcd CA and client certificate and key that the first control
// plane's API server (or, for kubeadm's etcd, its health check) uses.
// ca, cert and key are their paths there, as etcd.MonitoringClient gives them.
func etcdClientSecret(ca, cert, key string) func(ctx context.Context, t *pipeline.Target) ([]*unstructured.Unstructured, error) {
	return func(ctx context.Context, t *pipeline.Target) ([]*unstructured.Unstructured, error) {
		data := map[string]any{}
		for name, path := range map[string]string{"ca.crt": ca, "client.crt": cert, "client.key": key} {
			b, err := t.Fetch(ctx, path)
			if err != nil {
				return nil, pipeline.NotYet(fmt.Errorf("etcd client certificate for Prometheus: %w", err))
			}
			data[name] = base64.StdEncoding.EncodeToString(b)
		}
		s := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": data,
			"metadata": map[string]any{"name": EtcdClientSecret, "namespace": MonitoringNamespace,
				"labels": map[string]any{LabelComponent: "monitoring", "app.kubernetes.io/name": "etcd"}},
		}}
		return []*unstructured.Unstructured{s}, nil
	}
}
