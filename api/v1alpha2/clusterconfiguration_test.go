package v1alpha2

import (
	"github.com/kk-project/kk/api/config"

	"fmt"
	"strings"
	"testing"
	"time"
)

// withPlatform appends a ClusterConfiguration with spec (indented two spaces) to base; the
// document starts on line 15, its spec's first field on line 19.
func withPlatform(spec string) string {
	return base + "---\napiVersion: installer.kubesphere.io/v1alpha1\nkind: ClusterConfiguration\nmetadata: {name: ks-installer}\nspec:\n" + spec
}

func TestClusterConfigurationSwitches(t *testing.T) {
	c, w := mustParse(t, withPlatform("  metrics_server:\n    enabled: true\n  devops:\n    enabled: false\n    jenkinsMemoryReq: 4Gi\n  multicluster: {clusterRole: none}\n"))
	if !c.Platform.MetricsServer || c.Platform.Source != "test.yaml:15" {
		t.Errorf("platform %+v", c.Platform)
	}
	if len(w) != 0 {
		t.Errorf("warnings for switches alone (an off component's settings are not read):\n%s", strings.Join(w, "\n"))
	}
	c, _ = mustParse(t, withPlatform("  metrics_server: {enabled: false}\n"))
	if c.Platform.MetricsServer {
		t.Errorf("metrics_server off: %+v", c.Platform)
	}
	if c, _ := mustParse(t, base); c.Platform.Source != "" || c.Platform.MetricsServer || c.Platform.Gateway {
		t.Errorf("no ClusterConfiguration: %+v", c.Platform)
	}
	// kk's own gateway switch: on, its other settings are warned about by name
	c, w = mustParse(t, withPlatform("  gateway:\n    enabled: true\n    replicas: 2\n"))
	if !c.Platform.Gateway || c.Platform.MetricsServer {
		t.Errorf("gateway on: %+v", c.Platform)
	}
	if len(w) != 1 || !strings.Contains(w[0], "test.yaml:21: ClusterConfiguration spec.gateway.replicas: a gateway setting kk does not read") {
		t.Errorf("warnings %q", w)
	}
	if c, w := mustParse(t, withPlatform("  gateway: {enabled: false, replicas: 2}\n")); c.Platform.Gateway || len(w) != 0 {
		t.Errorf("gateway off: %+v, warnings %q", c.Platform, w)
	}
}

// spec.logging.enabled is served: on, kk reads its own retention and volumeSize (each wrong
// value an error at its line) and warns about KubeSphere's other logging settings by name;
// off, none of them is read or warned about.
func TestClusterConfigurationLogging(t *testing.T) {
	c, w := mustParse(t, withPlatform("  logging:\n    enabled: true\n    retention: 2w\n    volumeSize: 5Gi\n    logsidecar: {enabled: true, replicas: 2}\n"))
	p := c.Platform
	if !p.Logging || p.LoggingRetention != "2w" || p.LoggingVolumeSize != "5Gi" || p.MetricsServer || p.Gateway {
		t.Errorf("logging on: %+v", p)
	}
	if !hasWarning(w, "test.yaml:23: ClusterConfiguration spec.logging.logsidecar: a logging setting kk does not read") {
		t.Errorf("logsidecar not warned about:\n%s", strings.Join(w, "\n"))
	}
	if hasWarning(w, "spec.logging.retention") || hasWarning(w, "spec.logging.volumeSize") || hasWarning(w, "spec.logging.enabled") {
		t.Errorf("a setting kk reads warned about:\n%s", strings.Join(w, "\n"))
	}
	// the defaults are the platform's to fill in
	if c, w := mustParse(t, withPlatform("  logging: {enabled: true}\n")); !c.Platform.Logging || c.Platform.LoggingRetention != "" || c.Platform.LoggingVolumeSize != "" || len(w) != 0 {
		t.Errorf("logging on alone: %+v, warnings %q", c.Platform, w)
	}
	if c, w := mustParse(t, withPlatform("  logging: {enabled: false, retention: nonsense, logsidecar: {enabled: true}}\n")); c.Platform.Logging || c.Platform.LoggingRetention != "" || len(w) != 0 {
		t.Errorf("logging off: %+v, warnings %q", c.Platform, w)
	}
	_, _, errs := parse(t, withPlatform("  logging:\n    enabled: true\n    retention: 7\n    volumeSize: lots\n"))
	wantError(t, errs, 21, "spec.logging.retention", `"7" is not a retention period`)
	wantError(t, errs, 22, "spec.logging.volumeSize", `"lots" is not a quantity`)
	_, _, errs = parse(t, withPlatform("  logging:\n    enabled: true\n    retention: [7d]\n    volumeSize: 100Mi\n"))
	wantError(t, errs, 21, "spec.logging.retention", "expected a value, got a list")
	wantError(t, errs, 22, "spec.logging.volumeSize", "1Gi at least")
	for _, ok := range []string{"12h", "7d", "4w", "1y"} {
		if c, _ := mustParse(t, withPlatform("  logging: {enabled: true, retention: "+ok+"}\n")); c.Platform.LoggingRetention != ok {
			t.Errorf("retention %s read as %q", ok, c.Platform.LoggingRetention)
		}
	}
}

// spec.persistence.storageClass: empty (or absent) and "local" mean kk's local storage, the
// default class; another name is the user's class. The Cluster's OpenEBS base path is warned
// about only while kk installs no local storage.
func TestClusterConfigurationPersistence(t *testing.T) {
	for spec, want := range map[string]bool{
		"  metrics_server: {enabled: false}\n":      true,
		"  persistence: {storageClass: \"\"}\n":     true,
		"  persistence: {storageClass: local}\n":    true,
		"  persistence: {storageClass: ceph-rbd}\n": false,
	} {
		c, w := mustParse(t, withPlatform(spec))
		if c.Platform.LocalStorage != want {
			t.Errorf("%q: local storage %v, want %v", spec, c.Platform.LocalStorage, want)
		}
		if hasWarning(w, "spec.persistence") {
			t.Errorf("%q warned:\n%s", spec, strings.Join(w, "\n"))
		}
	}
	if c, _ := mustParse(t, base); c.Platform.LocalStorage {
		t.Errorf("no ClusterConfiguration, no --with-local-storage: local storage on")
	}
	_, w := mustParse(t, withPlatform("  persistence:\n    storageClass: \"\"\n    size: 20Gi\n"))
	if !hasWarning(w, "test.yaml:21: ClusterConfiguration spec.persistence.size: not a persistence setting kk reads") {
		t.Errorf("no warning for persistence.size:\n%s", strings.Join(w, "\n"))
	}
	_, _, errs := parse(t, withPlatform("  persistence: {storageClass: [a]}\n"))
	wantError(t, errs, 19, "spec.persistence.storageClass", "expected a StorageClass name, got a list")
	withBase := strings.Replace(base, "spec:\n", "spec:\n  storage: {openebs: {basePath: /data/local}}\n", 1)
	if _, w := mustParse(t, withBase); !hasWarning(w, "spec.storage.openebs.basePath: the directory of kk's local volumes") {
		t.Errorf("basePath without local storage not warned about:\n%s", strings.Join(w, "\n"))
	}
	c, w := mustParse(t, strings.Replace(withPlatform(""), base, withBase, 1))
	if !c.Platform.LocalStorage || c.Storage.OpenEBSBasePath != "/data/local" || hasWarning(w, "basePath") {
		t.Errorf("basePath with local storage: %+v %q, warnings:\n%s", c.Platform, c.Storage.OpenEBSBasePath, strings.Join(w, "\n"))
	}
}

func TestClusterConfigurationRefusesWhatKKCannotInstall(t *testing.T) {
	_, _, errs := parse(t, withPlatform("  metrics_server: {enabled: true}\n  devops:\n    enabled: true\n  network:\n    ippool: {type: calico}\n  multicluster:\n    clusterRole: host\n"))
	wantError(t, errs, 21, "ClusterConfiguration spec.devops.enabled", "devops.enabled is on, and kk cannot install it", "Jenkins")
	wantError(t, errs, 23, "spec.network.ippool.type", "IP pool")
	wantError(t, errs, 25, "spec.multicluster.clusterRole", "multi-cluster")
	if len(errs) != 3 {
		t.Errorf("errors:\n%v", errs)
	}
	_, _, errs = parse(t, withPlatform("  metrics_server: {enabled: maybe}\n  logging: [x]\n"))
	wantError(t, errs, 19, "spec.metrics_server.enabled", `expected true or false, got "maybe"`)
	_, _, errs = parse(t, withPlatform("  openpitrix: {store: {enabled: {a: 1}}}\n"))
	wantError(t, errs, 19, "spec.openpitrix.store.enabled", "expected a value, got a mapping")
	_, _, errs = parse(t, strings.Replace(withPlatform(""), "installer.kubesphere.io/v1alpha1", "installer.kubesphere.io/v1beta1", 1))
	wantError(t, errs, 15, "ClusterConfiguration apiVersion", "installer.kubesphere.io/v1alpha1")
	_, _, errs = parse(t, withPlatform("  metrics_server: {enabled: true}\n")+"---\napiVersion: installer.kubesphere.io/v1alpha1\nkind: ClusterConfiguration\n")
	wantError(t, errs, 21, "a second kind: ClusterConfiguration document")
}

func TestClusterConfigurationWarnsWhatKKDoesNotRead(t *testing.T) {
	_, w := mustParse(t, withPlatform("  metrics_server:\n    enabled: true\n    resources: {}\n  monitoring:\n    thanosRuler: fast\n  zone: cn\n  telemetry: {enabled: true}\n  terminal: {}\n"))
	for _, want := range []string{
		"test.yaml:21: ClusterConfiguration spec.metrics_server.resources: a metrics-server setting kk does not read",
		"test.yaml:23: ClusterConfiguration spec.monitoring.thanosRuler: a monitoring setting kk does not read",
		"test.yaml:24: ClusterConfiguration spec.zone: ks-installer's download zone",
		"test.yaml:25: ClusterConfiguration spec.telemetry: not a field of KubeSphere 3.x's ClusterConfiguration",
	} {
		if !hasWarning(w, want) {
			t.Errorf("no warning %q in:\n%s", want, strings.Join(w, "\n"))
		}
	}
	if hasWarning(w, "spec.terminal") {
		t.Errorf("an empty section warned about:\n%s", strings.Join(w, "\n"))
	}
}

// Aliases that expand a small ClusterConfiguration into a huge tree are read within a budget.
func TestClusterConfigurationAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("  a0: &a0 {x: 1}\n")
	for i := 1; i < 40; i++ {
		fmt.Fprintf(&b, "  a%d: &a%d {l: *a%d, r: *a%d}\n", i, i, i-1, i-1)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		parse(t, withPlatform(b.String()))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a ClusterConfiguration of nested aliases was walked for more than 10 s")
	}
}

// kk's spec.workspaces: tenants with namespaces, an admin group and a quota; every wrong
// value is an error at its line, an unknown key a warning.
func TestClusterConfigurationWorkspaces(t *testing.T) {
	c, w := mustParse(t, withPlatform(`  workspaces:
  - name: ai
    adminGroup: ai-admins
    namespaces: [ai-train, ai-serve]
    quota: {requests.cpu: "8", limits.memory: 64Gi, requests.nvidia.com/gpu: 2, pods: 50}
    owner: alice
  - {name: web, namespaces: [web]}
`))
	ws := c.Platform.Workspaces
	if len(ws) != 2 || ws[0].Name != "ai" || ws[0].AdminGroup != "ai-admins" || fmt.Sprint(ws[0].Namespaces) != "[ai-train ai-serve]" ||
		fmt.Sprint(ws[0].Quota) != "map[limits.memory:64Gi pods:50 requests.cpu:8 requests.nvidia.com/gpu:2]" ||
		ws[1].Name != "web" || ws[1].Quota != nil {
		t.Errorf("workspaces %+v", ws)
	}
	if len(w) != 1 || !strings.Contains(w[0], "test.yaml:24: ClusterConfiguration spec.workspaces[0].owner: not a workspace field kk reads") {
		t.Errorf("warnings %q", w)
	}
	_, _, errs := parse(t, withPlatform(`  workspaces:
  - name: AI
    namespaces: [a, a]
    quota: {requests.cpu: lots, nvidia.com/gpu: 1}
  - name: b
  - x
`))
	wantError(t, errs, 20, "spec.workspaces[0].name", `"AI" is not a DNS label`)
	wantError(t, errs, 21, "spec.workspaces[0].namespaces", `namespace "a" is in workspace "AI" already`)
	wantError(t, errs, 22, "spec.workspaces[0].quota.requests.cpu", `"lots" is not a quantity`)
	wantError(t, errs, 22, "spec.workspaces[0].quota.nvidia.com/gpu", "an extended resource is limited through its requests: requests.nvidia.com/gpu")
	wantError(t, errs, 23, "spec.workspaces[1].namespaces", `workspace "b" has no namespaces`)
	wantError(t, errs, 24, "spec.workspaces[2]", "expected a workspace")
	if len(errs) != 6 {
		t.Errorf("errors:\n%v", errs)
	}
	_, _, errs = parse(t, withPlatform("  workspaces: {name: a}\n"))
	wantError(t, errs, 19, "spec.workspaces", "expected a list of workspaces")
}

// spec.monitoring turns the monitoring stack on (KubeSphere always installs it) with the
// settings of the file, in KubeSphere's older flat names or its newer nested ones; kk's
// enabled: false turns it off; alerting and etcd.monitoring need it.
func TestClusterConfigurationMonitoring(t *testing.T) {
	c, w := mustParse(t, withPlatform("  monitoring:\n    storageClass: fast\n    prometheus:\n      replicas: 2\n      volumeSize: 5Gi\n"+
		"      retention: 3d\n      resources: {requests: {memory: 1Gi}}\n    alertmanagerReplicas: 3\n    node_exporter: {port: 9200}\n"+
		"  etcd: {monitoring: true, endpointIps: localhost}\n"+
		"  alerting:\n    enabled: true\n    receivers:\n    - {name: ops, webhook: \"http://hook.example:8080/alerts\"}\n"))
	m := c.Platform.Monitoring
	want := config.Monitoring{Enabled: true, StorageClass: "fast", PrometheusReplicas: 2, PrometheusVolumeSize: "5Gi",
		PrometheusMemoryRequest: "1Gi", Retention: "3d", AlertmanagerReplicas: 3, NodeExporterPort: 9200, Etcd: true}
	if m != want {
		t.Errorf("monitoring %+v, want %+v", m, want)
	}
	if a := c.Platform.Alerting; !a.Enabled || len(a.Receivers) != 1 || a.Receivers[0] != (config.Receiver{Name: "ops", WebhookURL: "http://hook.example:8080/alerts"}) {
		t.Errorf("alerting %+v", a)
	}
	if !hasWarning(w, "test.yaml:28: ClusterConfiguration spec.etcd.endpointIps: kk scrapes every etcd member") || len(w) != 1 {
		t.Errorf("warnings:\n%s", strings.Join(w, "\n"))
	}
	// KubeSphere 3.0's flat names, and the defaults
	c, _ = mustParse(t, withPlatform("  monitoring:\n    prometheusReplicas: 3\n    prometheusMemoryRequest: 2Gi\n"))
	if m := c.Platform.Monitoring; !m.Enabled || m.PrometheusReplicas != 3 || m.PrometheusMemoryRequest != "2Gi" ||
		m.PrometheusVolumeSize != config.DefaultPrometheusVolumeSize || m.Retention != config.DefaultPrometheusRetention || m.AlertmanagerReplicas != 1 {
		t.Errorf("monitoring %+v", m)
	}
	c, _ = mustParse(t, withPlatform("  monitoring:\n    enabled: false\n    storageClass: \"\"\n"))
	if c.Platform.Monitoring.Enabled {
		t.Errorf("monitoring on with enabled: false")
	}
	c, _ = mustParse(t, withPlatform("  metrics_server: {enabled: true}\n"))
	if c.Platform.Monitoring.Enabled {
		t.Errorf("monitoring on without a monitoring section")
	}

	_, _, errs := parse(t, withPlatform("  monitoring:\n    prometheus: {replicas: many, volumeSize: huge, retention: 7 days}\n    node_exporter: {port: 0}\n    storageClass: Fast_SSD\n"+
		"  alerting:\n    enabled: true\n    receivers:\n    - {name: ops, webhook: \"ftp://x\"}\n    - {name: ops, webhook: \"https://y/z\"}\n"))
	wantError(t, errs, 20, "spec.monitoring.prometheus.replicas", `"many": expected a number from 1 to 10`)
	wantError(t, errs, 20, "spec.monitoring.prometheus.volumeSize", `"huge" is not a positive quantity`)
	wantError(t, errs, 20, "spec.monitoring.prometheus.retention", `"7 days" is not a Prometheus duration`)
	wantError(t, errs, 21, "spec.monitoring.node_exporter.port", "from 1 to 65535")
	wantError(t, errs, 22, "spec.monitoring.storageClass", `"Fast_SSD" is not a StorageClass name`)
	wantError(t, errs, 25, "spec.alerting.receivers", `receivers[0].webhook: "ftp://x" is not an http(s) URL`)
	wantError(t, errs, 25, "spec.alerting.receivers", `receivers[1].name: receiver "ops" is named twice`)
	_, _, errs = parse(t, withPlatform("  alerting: {enabled: true}\n  etcd: {monitoring: true}\n"))
	wantError(t, errs, 19, "spec.alerting.enabled", "alerting needs its Prometheus")
	wantError(t, errs, 20, "spec.etcd.monitoring", "the monitoring stack is not")
}

// The app store: spec.openpitrix.store.enabled turns it on; kk's spec.openpitrix.store.charts
// lists local charts, each relative path taken from the Cluster file's folder, each entry's
// line kept for later messages; what is not a list of paths is an error at its line.
func TestClusterConfigurationAppStore(t *testing.T) {
	c, w := mustParse(t, withPlatform(`  openpitrix:
    store:
      enabled: true
      charts:
      - charts/nginx-1.2.3.tgz
      - /srv/charts/redis
      - ~/my-chart
`))
	p := c.Platform
	if !p.AppStore || len(w) != 0 {
		t.Fatalf("platform %+v, warnings %q", p, w)
	}
	var got []string
	for _, ch := range p.StoreCharts {
		got = append(got, ch.Path+" "+ch.Source)
	}
	want := []string{"charts/nginx-1.2.3.tgz test.yaml:23", "/srv/charts/redis test.yaml:24", "/home/u/my-chart test.yaml:25"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("charts %q, want %q", got, want)
	}
	// relative to the Cluster file's folder, wherever kk runs
	c, _, err := ParseWithOptions("/etc/kk/cluster.yaml", []byte(withPlatform("  openpitrix: {store: {enabled: true, charts: [a.tgz, ../b]}}\n")),
		ParseOptions{SkipFileChecks: true, HomeDir: "/home/u"})
	if err != nil || len(c.Platform.StoreCharts) != 2 || c.Platform.StoreCharts[0].Path != "/etc/kk/a.tgz" || c.Platform.StoreCharts[1].Path != "/etc/b" {
		t.Errorf("charts of /etc/kk/cluster.yaml: %+v, %v", c, err)
	}
	// on without charts: an empty repository
	if c, w := mustParse(t, withPlatform("  openpitrix: {store: {enabled: true}}\n")); !c.Platform.AppStore || len(c.Platform.StoreCharts) != 0 || len(w) != 0 {
		t.Errorf("store without charts: %+v, warnings %q", c.Platform, w)
	}
	// off: the charts are warned about, not kept; another openpitrix setting is ignored quietly
	c, w = mustParse(t, withPlatform("  openpitrix:\n    store: {enabled: false, charts: [a.tgz]}\n"))
	if c.Platform.AppStore || len(c.Platform.StoreCharts) != 0 ||
		!hasWarning(w, "test.yaml:20: ClusterConfiguration spec.openpitrix.store.charts: the charts of the app store, which is off") {
		t.Errorf("store off: %+v, warnings %q", c.Platform, w)
	}
	// on: a setting kk does not read is warned about by name
	_, w = mustParse(t, withPlatform("  openpitrix:\n    store: {enabled: true}\n    repo: x\n"))
	if len(w) != 1 || !strings.Contains(w[0], "test.yaml:21: ClusterConfiguration spec.openpitrix.repo: an app store setting kk does not read") {
		t.Errorf("warnings %q", w)
	}
	_, _, errs := parse(t, withPlatform(`  openpitrix:
    store:
      enabled: true
      charts:
      - a.tgz
      - {path: b}
      - ""
      - ./a.tgz
      - null
`))
	wantError(t, errs, 24, "ClusterConfiguration spec.openpitrix.store.charts[1]", "expected the path of a chart", "got a mapping")
	wantError(t, errs, 25, "spec.openpitrix.store.charts[2]", "expected the path of a chart")
	wantError(t, errs, 26, "spec.openpitrix.store.charts[3]", "chart ./a.tgz is listed twice (first at ClusterConfiguration spec.openpitrix.store.charts[0])")
	wantError(t, errs, 27, "spec.openpitrix.store.charts[4]", "expected the path of a chart")
	if len(errs) != 4 {
		t.Errorf("errors:\n%v", errs)
	}
	_, _, errs = parse(t, withPlatform("  openpitrix: {store: {enabled: true, charts: a.tgz}}\n"))
	wantError(t, errs, 19, "spec.openpitrix.store.charts", "expected a list of charts", `got "a.tgz"`)
	_, _, errs = parse(t, withPlatform("  openpitrix: {store: {enabled: true, charts: [\"a\\nb.tgz\"]}}\n"))
	wantError(t, errs, 19, "spec.openpitrix.store.charts[0]", "is not a path")
}
