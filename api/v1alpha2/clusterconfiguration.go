package v1alpha2

import (
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kk-project/kk/api/config"
)

// KubeSphere's ks-installer document, which KubeKey writes after the Cluster in the same file
// (kk create config --with-kubesphere).
const (
	ClusterConfigurationKind       = "ClusterConfiguration"
	ClusterConfigurationAPIVersion = "installer.kubesphere.io/v1alpha1"
)

// ccPrefix names the document in the paths of its findings, which share the file with the
// Cluster's own spec.* paths.
const ccPrefix = "ClusterConfiguration "

// A ccSwitch is a component switch of the ClusterConfiguration: on when the value at path is
// true (or, with off set, anything but off). kk either installs the component (set names the
// config.Platform field it turns on) or refuses the file while it is on, saying what kk would
// need (need).
type ccSwitch struct {
	path string
	off  string // the value that means off for a non-boolean switch ("none")
	set  func(p *config.Platform)
	need string
}

// ccSwitches are every component switch of KubeSphere 3.x's ClusterConfiguration.
var ccSwitches = []ccSwitch{
	{path: "spec.metrics_server.enabled", set: func(p *config.Platform) { p.MetricsServer = true }},
	// kk's own switch: KubeSphere 3.x turns its cluster gateway on in the console
	{path: "spec.gateway.enabled", set: func(p *config.Platform) { p.Gateway = true }},
	{path: "spec.logging.enabled", set: func(p *config.Platform) { p.Logging = true }},
	{path: "spec.auditing.enabled", need: "KubeSphere's auditing operator, webhook and a log store, not built yet (kubernetes.audit in the Cluster writes the API server's audit log)"},
	{path: "spec.events.enabled", need: "KubeSphere's event exporter and ruler and a log store, not built yet"},
	// the app store: a chart repository in the cluster, loaded with kk's spec.openpitrix.store.charts
	{path: "spec.openpitrix.store.enabled", set: func(p *config.Platform) { p.AppStore = true }},
	{path: "spec.devops.enabled", need: "Jenkins and KubeSphere's DevOps controllers, which cannot be built from Go modules here"},
	{path: "spec.servicemesh.enabled", need: "Istio's control plane and gateways, not built for kk's bundles"},
	{path: "spec.edgeruntime.enabled", need: "KubeEdge's cloudcore, not built for kk's bundles"},
	{path: "spec.edgeruntime.kubeedge.enabled", need: "KubeEdge's cloudcore, not built for kk's bundles"},
	{path: "spec.kubeedge.enabled", need: "KubeEdge's cloudcore, not built for kk's bundles"},
	{path: "spec.gatekeeper.enabled", need: "OPA Gatekeeper, not built for kk's bundles"},
	{path: "spec.network.networkpolicy.enabled", need: "KubeSphere's network-policy controller (the console's project isolation)"},
	{path: "spec.network.ippool.type", off: "none", need: "KubeSphere's IP pool controller over Calico"},
	{path: "spec.network.topology.type", off: "none", need: "Weave Scope, not built for kk's bundles"},
	{path: "spec.multicluster.clusterRole", off: "none", need: "KubeSphere's multi-cluster control plane (tower, ks-apiserver)"},
	{path: "spec.monitoring.gpu.nvidia_dcgm_exporter.enabled", need: "NVIDIA's DCGM exporter (issue: GPU nodes)"},
	{path: "spec.common.monitoring.GPUMonitoring.enabled", need: "NVIDIA's DCGM exporter (issue: GPU nodes)"},
	{path: "spec.common.redis.enabled", need: "Redis for KubeSphere's console sessions; kk does not install the console"},
	{path: "spec.common.openldap.enabled", need: "OpenLDAP for KubeSphere's accounts; kk does not install the console"},
}

// ccIgnored are the settings of what KubeSphere always installs and kk does not: each is
// warned about, by name, when the file has it.
var ccIgnored = map[string]string{
	"spec.authentication": "KubeSphere console's sign-in; kk does not install the console",
	"spec.local_registry": "ks-installer's image registry; kk takes images from the Cluster's spec.registry",
	"spec.dev_tag":        "ks-installer's image tag",
	"spec.common":         "KubeSphere's core (ks-apiserver, ks-console, ks-controller-manager and their stores); kk does not install the console",
	"spec.terminal":       "the console's web terminal; kk does not install the console",
	"spec.zone":           "ks-installer's download zone; kk takes KKZONE from the environment",
	"metadata.labels":     "the KubeSphere release (labels.version); kk installs the component versions of its own version table",
}

// ccKnownTop are the top-level spec keys KubeSphere 3.x writes, and kk's gateway and
// workspaces; anything else is warned about as unknown.
var ccKnownTop = []string{"gateway", "workspaces", "persistence", "authentication", "local_registry", "dev_tag", "etcd", "common", "alerting",
	"auditing", "devops", "events", "logging", "metrics_server", "monitoring", "multicluster", "network", "openpitrix",
	"servicemesh", "edgeruntime", "kubeedge", "gatekeeper", "terminal", "zone"}

// parseClusterConfiguration reads the ClusterConfiguration document root into p: the switches
// kk serves turn components on, a switch kk cannot serve that is on is an error at its line,
// and the settings kk does not act on are warned about by name.
func parseClusterConfiguration(root *yaml.Node, rep *report, p *config.Platform, home string) {
	p.Source = fmt.Sprintf("%s:%d", rep.file, root.Line)
	lines := lineIndex{}
	values := map[string]*yaml.Node{}
	budget := maxVisits
	indexNode(root, "", lines, values, 0, &budget)
	// the document's own paths (they share the file with the Cluster's spec.* paths)
	at := func(path string) int {
		if l := lines.lookup(path); l > 0 {
			return l
		}
		return root.Line
	}
	errorf := func(path, format string, args ...any) {
		rep.errorAt(ccPrefix+path, at(path), format, args...)
	}
	warnf := func(path, format string, args ...any) {
		rep.warns = append(rep.warns, formatLocated(rep.file, at(path), ccPrefix+path, fmt.Sprintf(format, args...)))
	}
	// warnUnread warns about every path under section that read says kk does not read
	warnUnread := func(section, msg string, read func(path string) bool) {
		for _, path := range slices.Sorted(maps.Keys(values)) {
			if strings.HasPrefix(path, section+".") && !read(path) {
				warnf(path, "%s", msg)
			}
		}
	}
	if v := scalarAt(values, "apiVersion"); v != ClusterConfigurationAPIVersion {
		errorf("apiVersion", "apiVersion %q: kk reads KubeSphere 3.x's %s", v, ClusterConfigurationAPIVersion)
		return
	}
	spec, ok := values["spec"]
	if ok && spec.Kind != yaml.MappingNode && !isNull(spec) {
		errorf("spec", "expected a mapping, got %s", describe(spec))
		return
	}
	switches := map[string]bool{}
	for _, s := range ccSwitches {
		switches[s.path] = true
		n, ok := values[s.path]
		if !ok || isNull(n) {
			continue
		}
		var on bool
		switch {
		case n.Kind != yaml.ScalarNode:
			errorf(s.path, "expected a value, got %s", describe(n))
			continue
		case s.off != "":
			on = n.Value != "" && n.Value != s.off
		case isBool(n):
			on = isTrue(n.Value)
		default:
			errorf(s.path, "expected true or false, got %s", describe(n))
			continue
		}
		if !on {
			continue
		}
		if s.set != nil {
			s.set(p)
			continue
		}
		errorf(s.path, "%s is on, and kk cannot install it: it needs %s; turn it off to install the rest", strings.TrimPrefix(s.path, "spec."), s.need)
	}
	for _, path := range slices.Sorted(maps.Keys(ccIgnored)) {
		if n, ok := values[path]; ok && !emptyNode(n) {
			warnf(path, "%s: ignored", ccIgnored[path])
		}
	}
	// spec.persistence.storageClass: the class KubeSphere's volumes claim. Empty (KubeSphere's
	// default) or "local", kk installs its local storage as the default class, as KubeKey
	// does with KubeSphere; another name is the user's own class, and kk installs none.
	persistence := "spec.persistence.storageClass"
	if n, ok := values[persistence]; ok && !isNull(n) && n.Kind != yaml.ScalarNode {
		errorf(persistence, "expected a StorageClass name, got %s", describe(n))
	} else if sc := scalarAt(values, persistence); sc == "" || sc == config.LocalStorageClass {
		p.LocalStorage = true
	}
	warnUnread("spec.persistence", "not a persistence setting kk reads (storageClass): ignored",
		func(path string) bool { return path == persistence })
	if n, ok := values["spec.workspaces"]; ok && !isNull(n) {
		p.Workspaces = parseWorkspaces(n, rep, ccPrefix+"spec.workspaces")
	}
	if n, ok := values[storeChartsPath]; ok && !isNull(n) {
		charts := parseStoreCharts(n, rep, ccPrefix+storeChartsPath, filepath.Dir(rep.file), home)
		if p.AppStore {
			p.StoreCharts = charts
		} else if len(charts) > 0 {
			warnf(storeChartsPath, "the charts of the app store, which is off (spec.openpitrix.store.enabled): ignored")
		}
	}
	if spec == nil || spec.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(spec.Content); i += 2 {
		k := spec.Content[i].Value
		if !slices.Contains(ccKnownTop, k) {
			warnf("spec."+k, "not a field of KubeSphere 3.x's ClusterConfiguration: ignored")
		}
	}
	// fields under a switch's section other than the switch are the component's settings:
	// those of a component kk installs are warned about until kk reads them
	if p.MetricsServer {
		warnUnread("spec.metrics_server", "a metrics-server setting kk does not read: ignored",
			func(path string) bool { return switches[path] })
	}
	if p.Gateway {
		warnUnread("spec.gateway", "a gateway setting kk does not read (enabled): ignored",
			func(path string) bool { return switches[path] })
	}
	parseMonitoring(values, p, errorf, warnf, warnUnread, switches)
	if p.Logging {
		parseLogging(values, errorf, p)
		// KubeSphere's logsidecar and containerruntime among them: kk's collector reads every
		// container's log on its node, whatever the runtime, without sidecars
		warnUnread("spec.logging", "a logging setting kk does not read (enabled, retention, volumeSize): ignored",
			func(path string) bool { return switches[path] || slices.Contains(loggingSettings, path) })
	}
	if p.AppStore {
		warnUnread("spec.openpitrix", "an app store setting kk does not read (store.enabled, store.charts): ignored",
			func(path string) bool {
				return switches[path] || path == "spec.openpitrix.store" || path == storeChartsPath
			})
	}
}

// monitoringFields are the spec.monitoring settings kk reads: KubeSphere 3.x's (both its
// older flat names and its newer nested ones), and kk's enabled and prometheus.retention.
var monitoringFields = map[string]bool{
	"spec.monitoring.enabled": true, "spec.monitoring.storageClass": true,
	"spec.monitoring.prometheusReplicas": true, "spec.monitoring.prometheus.replicas": true,
	"spec.monitoring.prometheusVolumeSize": true, "spec.monitoring.prometheus.volumeSize": true,
	"spec.monitoring.prometheusMemoryRequest": true, "spec.monitoring.prometheus.resources.requests.memory": true,
	"spec.monitoring.prometheus.retention": true,
	"spec.monitoring.alertmanagerReplicas": true, "spec.monitoring.alertmanager.replicas": true,
	"spec.monitoring.node_exporter.port": true,
}

// prometheusDuration is Prometheus' duration syntax (7d, 12h, 1w2d).
var prometheusDuration = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)

// parseMonitoring reads spec.monitoring, spec.etcd.monitoring and spec.alerting into p: the
// monitoring stack is on when the document has a monitoring section (KubeSphere always
// installs its monitoring) and kk's spec.monitoring.enabled is not false; alerting needs it.
func parseMonitoring(values map[string]*yaml.Node, p *config.Platform, errorf, warnf func(path, format string, args ...any),
	warnUnread func(section, msg string, read func(path string) bool), switches map[string]bool) {
	m := &p.Monitoring
	section, ok := values["spec.monitoring"]
	m.Enabled = ok && !isNull(section)
	if n, ok := values["spec.monitoring.enabled"]; ok && !isNull(n) {
		if n.Kind != yaml.ScalarNode || !isBool(n) {
			errorf("spec.monitoring.enabled", "expected true or false, got %s", describe(n))
		} else {
			m.Enabled = isTrue(n.Value)
		}
	}
	m.PrometheusReplicas, m.AlertmanagerReplicas, m.NodeExporterPort = 1, 1, config.DefaultNodeExporterPort
	m.PrometheusVolumeSize, m.PrometheusMemoryRequest, m.Retention = config.DefaultPrometheusVolumeSize,
		config.DefaultPrometheusMemoryRequest, config.DefaultPrometheusRetention
	// first of paths that the file sets: KubeSphere's older flat name or its newer nested one
	first := func(paths ...string) (string, *yaml.Node) {
		for _, path := range paths {
			if n, ok := values[path]; ok && !isNull(n) {
				return path, n
			}
		}
		return "", nil
	}
	scalar := func(path string, n *yaml.Node, what string) (string, bool) {
		if n.Kind != yaml.ScalarNode || n.Value == "" {
			errorf(path, "expected %s, got %s", what, describe(n))
			return "", false
		}
		return n.Value, true
	}
	integer := func(dst *int, lo, hi int, paths ...string) {
		path, n := first(paths...)
		if n == nil {
			return
		}
		v, ok := scalar(path, n, "a number")
		if !ok {
			return
		}
		i, err := strconv.Atoi(v)
		if err != nil || i < lo || i > hi {
			errorf(path, "%q: expected a number from %d to %d", v, lo, hi)
			return
		}
		*dst = i
	}
	quantity := func(dst *string, paths ...string) {
		path, n := first(paths...)
		if n == nil {
			return
		}
		v, ok := scalar(path, n, "a quantity (such as 20Gi)")
		if !ok {
			return
		}
		if q, err := resource.ParseQuantity(v); err != nil || q.Sign() <= 0 {
			errorf(path, "%q is not a positive quantity (such as 400Mi, 20Gi)", v)
			return
		}
		*dst = v
	}
	integer(&m.PrometheusReplicas, 1, 10, "spec.monitoring.prometheusReplicas", "spec.monitoring.prometheus.replicas")
	integer(&m.AlertmanagerReplicas, 1, 10, "spec.monitoring.alertmanagerReplicas", "spec.monitoring.alertmanager.replicas")
	integer(&m.NodeExporterPort, 1, 65535, "spec.monitoring.node_exporter.port")
	quantity(&m.PrometheusVolumeSize, "spec.monitoring.prometheusVolumeSize", "spec.monitoring.prometheus.volumeSize")
	quantity(&m.PrometheusMemoryRequest, "spec.monitoring.prometheusMemoryRequest", "spec.monitoring.prometheus.resources.requests.memory")
	if path, n := first("spec.monitoring.prometheus.retention"); n != nil {
		if v, ok := scalar(path, n, "a duration (such as 7d)"); ok {
			if !prometheusDuration.MatchString(v) {
				errorf(path, "%q is not a Prometheus duration (such as 7d, 12h, 2w)", v)
			} else {
				m.Retention = v
			}
		}
	}
	if path, n := first("spec.monitoring.storageClass"); n != nil {
		if n.Kind != yaml.ScalarNode {
			errorf(path, "expected a StorageClass name, got %s", describe(n))
		} else if v := n.Value; v != "" && len(validation.IsDNS1123Subdomain(v)) > 0 {
			errorf(path, "%q is not a StorageClass name", v)
		} else {
			m.StorageClass = v
		}
	}
	if m.Enabled {
		// a section (a mapping) is judged by its settings; an empty one says nothing
		warnUnread("spec.monitoring", "a monitoring setting kk does not read: ignored", func(path string) bool {
			return monitoringFields[path] || switches[path] || values[path].Kind == yaml.MappingNode
		})
	}
	// spec.etcd: KubeSphere's etcd scrape. kk scrapes the Cluster's own etcd members.
	if n, ok := values["spec.etcd.monitoring"]; ok && !isNull(n) {
		if n.Kind != yaml.ScalarNode || !isBool(n) {
			errorf("spec.etcd.monitoring", "expected true or false, got %s", describe(n))
		} else if m.Etcd = isTrue(n.Value); m.Etcd && !m.Enabled {
			errorf("spec.etcd.monitoring", "etcd.monitoring is on and the monitoring stack is not (no spec.monitoring, or spec.monitoring.enabled: false): turn it on or etcd.monitoring off")
		}
	}
	warnUnread("spec.etcd", "kk scrapes every etcd member of the Cluster's spec.etcd over TLS with its client certificate: ignored",
		func(path string) bool { return path == "spec.etcd.monitoring" })
	// spec.alerting
	a := &p.Alerting
	if n, ok := values["spec.alerting.enabled"]; ok && !isNull(n) {
		if n.Kind != yaml.ScalarNode || !isBool(n) {
			errorf("spec.alerting.enabled", "expected true or false, got %s", describe(n))
		} else if a.Enabled = isTrue(n.Value); a.Enabled && !m.Enabled {
			errorf("spec.alerting.enabled", "alerting is on and the monitoring stack is not (no spec.monitoring, or spec.monitoring.enabled: false): alerting needs its Prometheus")
		}
	}
	if n, ok := values["spec.alerting.receivers"]; ok && !isNull(n) {
		a.Receivers = parseReceivers(n, errorf, warnf)
	}
	warnUnread("spec.alerting", "an alerting setting kk does not read (enabled, receivers): ignored",
		func(path string) bool {
			return path == "spec.alerting.enabled" || path == "spec.alerting.receivers" || strings.HasPrefix(path, "spec.alerting.receivers.")
		})
}

// parseReceivers reads kk's spec.alerting.receivers, a list of
//
//   - name: NAME       # a DNS label
//     webhook: URL     # http(s): Alertmanager posts each group of alerts there
func parseReceivers(n *yaml.Node, errorf, warnf func(path, format string, args ...any)) []config.Receiver {
	const path = "spec.alerting.receivers"
	if n.Kind != yaml.SequenceNode {
		errorf(path, "expected a list of receivers (name, webhook), got %s", describe(n))
		return nil
	}
	var out []config.Receiver
	names := map[string]bool{}
	for i, item := range n.Content {
		at := fmt.Sprintf("%s[%d]", path, i)
		if item.Kind != yaml.MappingNode {
			errorf(path, "%s: expected a receiver (name, webhook), got %s", at, describe(item))
			continue
		}
		var r config.Receiver
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], item.Content[j+1]
			switch k.Value {
			case "name":
				r.Name = v.Value
			case "webhook":
				r.WebhookURL = v.Value
			default:
				warnf(path, "%s.%s: not a receiver field kk reads (name, webhook): ignored", at, k.Value)
			}
		}
		switch {
		case len(validation.IsDNS1123Label(r.Name)) > 0:
			errorf(path, "%s.name: %q is not a DNS label (lower-case letters, digits and '-')", at, r.Name)
		case names[r.Name] || r.Name == config.AlertNullReceiver:
			errorf(path, "%s.name: receiver %q is named twice (or is kk's own %q)", at, r.Name, config.AlertNullReceiver)
		}
		names[r.Name] = true
		if u, err := url.Parse(r.WebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errorf(path, "%s.webhook: %q is not an http(s) URL", at, r.WebhookURL)
		}
		out = append(out, r)
	}
	return out
}

// storeChartsPath is kk's list of the charts the app store is loaded with.
const storeChartsPath = "spec.openpitrix.store.charts"

// parseStoreCharts reads kk's spec.openpitrix.store.charts, a list of local charts:
//
//	charts:
//	- charts/nginx-15.14.0.tgz   # an archive made by helm package
//	- ./my-chart                 # or a chart directory (kk packages it)
//
// each relative path taken from dir (the Cluster file's folder), "~" from home. A value that is
// no path, or a chart listed twice, is an error at its line. Whether the charts are there and
// load is checked where they are read (kk create manifest, kk create cluster without a
// bundle): with a bundle, its packages of them are what the app store gets.
func parseStoreCharts(n *yaml.Node, rep *report, path, dir, home string) []config.LocalChart {
	if n.Kind != yaml.SequenceNode {
		rep.errorAt(path, n.Line, "expected a list of charts (paths of .tgz archives made by helm package, or of chart directories), got %s", describe(n))
		return nil
	}
	var out []config.LocalChart
	first := map[string]int{}
	for i, item := range n.Content {
		at := indexPath(path, i)
		if item.Kind != yaml.ScalarNode || isNull(item) || strings.TrimSpace(item.Value) == "" {
			rep.errorAt(at, item.Line, "expected the path of a chart (a .tgz archive or a chart directory), got %s", describe(item))
			continue
		}
		if strings.ContainsAny(item.Value, "\x00\n\r") {
			rep.errorAt(at, item.Line, "%q is not a path", item.Value)
			continue
		}
		p := expandHome(strings.TrimSpace(item.Value), home)
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		p = filepath.Clean(p)
		if j, dup := first[p]; dup {
			rep.errorAt(at, item.Line, "chart %s is listed twice (first at %s)", item.Value, indexPath(path, j))
			continue
		}
		first[p] = i
		out = append(out, config.LocalChart{Path: p, Source: fmt.Sprintf("%s:%d", rep.file, item.Line)})
	}
	return out
}

// parseWorkspaces reads kk's spec.workspaces, a list of
//
//   - name: NAME              # a DNS label; the namespaces' kubesphere.io/workspace label
//     adminGroup: GROUP       # bound to the ClusterRole admin in each namespace
//     namespaces: [NS, ...]   # DNS labels, each in one workspace only
//     quota: {RESOURCE: QUANTITY, ...}  # each namespace's ResourceQuota
//
// reporting each wrong value at its line and warning about keys it does not know.
func parseWorkspaces(n *yaml.Node, rep *report, path string) []config.Workspace {
	if n.Kind != yaml.SequenceNode {
		rep.errorAt(path, n.Line, "expected a list of workspaces, got %s", describe(n))
		return nil
	}
	var out []config.Workspace
	names, owner := map[string]bool{}, map[string]string{}
	for i, item := range n.Content {
		at := fmt.Sprintf("%s[%d]", path, i)
		if item.Kind != yaml.MappingNode {
			rep.errorAt(at, item.Line, "expected a workspace (name, adminGroup, namespaces, quota), got %s", describe(item))
			continue
		}
		var ws config.Workspace
		fields := map[string]*yaml.Node{}
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], item.Content[j+1]
			fields[k.Value] = v
			switch k.Value {
			case "name", "adminGroup", "namespaces", "quota":
			default:
				rep.warns = append(rep.warns, formatLocated(rep.file, k.Line, at+"."+k.Value, "not a workspace field kk reads (name, adminGroup, namespaces, quota): ignored"))
			}
		}
		scalar := func(key string) string {
			v, ok := fields[key]
			if !ok || isNull(v) {
				return ""
			}
			if v.Kind != yaml.ScalarNode {
				rep.errorAt(at+"."+key, v.Line, "expected a value, got %s", describe(v))
				return ""
			}
			return v.Value
		}
		ws.Name, ws.AdminGroup = scalar("name"), scalar("adminGroup")
		switch {
		case ws.Name == "":
			rep.errorAt(at+".name", item.Line, "a workspace needs a name")
		case len(validation.IsDNS1123Label(ws.Name)) > 0:
			rep.errorAt(at+".name", fields["name"].Line, "%q is not a DNS label (lower-case letters, digits and '-', at most 63)", ws.Name)
		case names[ws.Name]:
			rep.errorAt(at+".name", fields["name"].Line, "workspace %q is named twice", ws.Name)
		}
		names[ws.Name] = true
		if v, ok := fields["namespaces"]; ok && !isNull(v) {
			if v.Kind != yaml.SequenceNode {
				rep.errorAt(at+".namespaces", v.Line, "expected a list of namespaces, got %s", describe(v))
			}
			for _, ns := range v.Content {
				switch {
				case ns.Kind != yaml.ScalarNode || len(validation.IsDNS1123Label(ns.Value)) > 0:
					rep.errorAt(at+".namespaces", ns.Line, "%s is not a namespace name (a DNS label)", describe(ns))
				case owner[ns.Value] != "":
					rep.errorAt(at+".namespaces", ns.Line, "namespace %q is in workspace %q already", ns.Value, owner[ns.Value])
				default:
					owner[ns.Value] = ws.Name
					ws.Namespaces = append(ws.Namespaces, ns.Value)
				}
			}
		}
		if len(ws.Namespaces) == 0 {
			rep.errorAt(at+".namespaces", item.Line, "workspace %q has no namespaces", ws.Name)
		}
		if v, ok := fields["quota"]; ok && !isNull(v) {
			if v.Kind != yaml.MappingNode {
				rep.errorAt(at+".quota", v.Line, "expected resource: quantity pairs, got %s", describe(v))
			} else {
				ws.Quota = map[string]string{}
				for j := 0; j+1 < len(v.Content); j += 2 {
					k, q := v.Content[j], v.Content[j+1]
					if msg := quotaKeyProblem(k.Value); msg != "" {
						rep.errorAt(at+".quota."+k.Value, k.Line, "%s", msg)
						continue
					}
					if _, err := resource.ParseQuantity(q.Value); err != nil || q.Kind != yaml.ScalarNode {
						rep.errorAt(at+".quota."+k.Value, q.Line, "%s is not a quantity (such as 500m, 4, 16Gi)", describe(q))
						continue
					}
					ws.Quota[k.Value] = q.Value
				}
			}
		}
		out = append(out, ws)
	}
	return out
}

// quotaKeyProblem says why key cannot be a ResourceQuota's hard limit, or "". An extended
// resource (a name with a domain, such as nvidia.com/gpu) is quota'd by its requests only.
func quotaKeyProblem(key string) string {
	name := strings.TrimPrefix(strings.TrimPrefix(key, "requests."), "limits.")
	if strings.HasPrefix(key, "count/") {
		name = strings.TrimPrefix(key, "count/")
	}
	if len(validation.IsQualifiedName(name)) > 0 {
		return fmt.Sprintf("%q is not a resource name", key)
	}
	if strings.Contains(name, "/") && !strings.HasPrefix(key, "requests.") && !strings.HasPrefix(key, "count/") {
		return fmt.Sprintf("%q: an extended resource is limited through its requests: requests.%s", key, name)
	}
	return ""
}

// indexNode records the line and node of every mapping path under n (keys only: lists are
// leaves), within a budget of visits (aliases can make a small file a huge tree).
func indexNode(n *yaml.Node, path string, lines lineIndex, values map[string]*yaml.Node, depth int, budget *int) {
	if depth > maxDepth || *budget <= 0 {
		return
	}
	*budget--
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := childPath(path, k.Value)
		if _, seen := lines[p]; seen {
			continue
		}
		lines[p] = k.Line
		values[p] = v
		indexNode(v, p, lines, values, depth+1, budget)
	}
}

func scalarAt(values map[string]*yaml.Node, path string) string {
	if n, ok := values[path]; ok && n.Kind == yaml.ScalarNode && !isNull(n) {
		return n.Value
	}
	return ""
}

// emptyNode is null, "", an empty list, or a mapping of such values only (KubeSphere's
// `persistence: {storageClass: ""}` says nothing).
func emptyNode(n *yaml.Node) bool {
	switch n.Kind {
	case yaml.ScalarNode:
		return isNull(n) || n.Value == ""
	case yaml.SequenceNode:
		return len(n.Content) == 0
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			if !emptyNode(n.Content[i]) {
				return false
			}
		}
		return true
	}
	return false
}

func isTrue(v string) bool {
	switch v {
	case "true", "True", "TRUE", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON":
		return true
	}
	return false
}

// loggingSettings are kk's own settings of its logging (read while spec.logging.enabled is on).
var loggingSettings = []string{"spec.logging.retention", "spec.logging.volumeSize"}

// loggingRetention is VictoriaLogs' -retentionPeriod as kk takes it: a whole number of hours,
// days, weeks or years (VictoriaLogs reads a bare number as months; kk asks for the unit).
var loggingRetention = regexp.MustCompile(`^[1-9][0-9]{0,5}[hdwy]$`)

// parseLogging reads spec.logging.retention and spec.logging.volumeSize into p, each error at
// its line.
func parseLogging(values map[string]*yaml.Node, errorf func(path, format string, args ...any), p *config.Platform) {
	scalar := func(path string) (string, bool) {
		n, ok := values[path]
		if !ok || isNull(n) {
			return "", false
		}
		if n.Kind != yaml.ScalarNode {
			errorf(path, "expected a value, got %s", describe(n))
			return "", false
		}
		return n.Value, true
	}
	if v, ok := scalar("spec.logging.retention"); ok {
		if !loggingRetention.MatchString(v) {
			errorf("spec.logging.retention", "%q is not a retention period: a whole number and h, d, w or y (such as 7d, 4w, 1y)", v)
		} else {
			p.LoggingRetention = v
		}
	}
	if v, ok := scalar("spec.logging.volumeSize"); ok {
		q, err := resource.ParseQuantity(v)
		switch {
		case err != nil:
			errorf("spec.logging.volumeSize", "%q is not a quantity (such as 20Gi)", v)
		case q.Cmp(resource.MustParse("1Gi")) < 0:
			// the store keeps a day's partition at least, and its buffers
			errorf("spec.logging.volumeSize", "%s is too small for the log store: 1Gi at least", v)
		default:
			p.LoggingVolumeSize = v
		}
	}
}
