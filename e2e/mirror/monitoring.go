package mirror

// The platform's monitoring stack: Prometheus, Alertmanager, the node exporter,
// kube-state-metrics and the Prometheus Operator with its config reloader.
//
// Upstream publishes their binaries (where it does at all) in release archives kk never
// downloads: kk deploys their images. So, as for metrics-server, the mirror builds each
// program from its Go module at the pinned release, static (CGO_ENABLED=0, as upstream's
// promu and Makefiles build them), and puts it under BinPath for e2e/images to make the image
// of. Upstream's version ldflags are set to the release (the module zips carry no commit,
// branch or build date).

import (
	"context"
	"fmt"
	"strings"
)

// The Go modules the monitoring stack is built from.
const (
	PrometheusModule         = "github.com/prometheus/prometheus"
	AlertmanagerModule       = "github.com/prometheus/alertmanager"
	NodeExporterModule       = "github.com/prometheus/node_exporter"
	KubeStateMetricsModule   = "k8s.io/kube-state-metrics/v2"
	PrometheusOperatorModule = "github.com/prometheus-operator/prometheus-operator"
	// prometheusCommonVersion is the package all but the operator's ldflags set the release in.
	prometheusCommonVersion = "github.com/prometheus/common/version"
)

// prometheusOperatorSubModules are the operator's own sub-modules: its go.mod replaces them by
// their folders (which a build of the module as a dependency ignores), so the build pins them
// to the operator's exact release instead.
var prometheusOperatorSubModules = []string{PrometheusOperatorModule + "/pkg/apis/monitoring", PrometheusOperatorModule + "/pkg/client"}

// PrometheusModuleVersion is the version of github.com/prometheus/prometheus that holds the
// Prometheus release v (the image's tag): since Prometheus 3 the module is v0.MMmm.P for
// release vM.m.P (v3.16.0 is v0.316.0, v3.5.1 is v0.305.1), before it v0.m.P for v2.m.P.
func PrometheusModuleVersion(v string) (string, error) {
	major, minor, patch, err := semverParts(v)
	if err != nil {
		return "", fmt.Errorf("mirror: prometheus release %q: %w", v, err)
	}
	switch {
	case major == 2:
		return fmt.Sprintf("v0.%d.%d", minor, patch), nil
	case major >= 3 && minor < 100:
		return fmt.Sprintf("v0.%d%02d.%d", major, minor, patch), nil
	}
	return "", fmt.Errorf("mirror: prometheus release %q: no module version known for it", v)
}

// PrometheusPath and the others below are where the monitoring programs are put: upstream
// ships them only in images (or in archives kk does not fetch), so they live under BinPath.
func PrometheusPath(version string) string {
	return BinPath("prometheus", version, "prometheus")
}

// AlertmanagerPath is where the alertmanager binary is put.
func AlertmanagerPath(version string) string {
	return BinPath("alertmanager", version, "alertmanager")
}

// NodeExporterPath is where the node_exporter binary is put.
func NodeExporterPath(version string) string {
	return BinPath("node_exporter", version, "node_exporter")
}

// KubeStateMetricsPath is where the kube-state-metrics binary is put.
func KubeStateMetricsPath(version string) string {
	return BinPath("kube-state-metrics", version, "kube-state-metrics")
}

// PrometheusOperatorPath is where the operator's binary is put.
func PrometheusOperatorPath(version string) string {
	return BinPath("prometheus-operator", version, "operator")
}

// PrometheusConfigReloaderPath is where the operator's config reloader is put.
func PrometheusConfigReloaderPath(version string) string {
	return BinPath("prometheus-operator", version, "prometheus-config-reloader")
}

// promuVersion is the release as promu sets it (the VERSION file: no leading "v").
func promuVersion(v string) string {
	return "-X " + prometheusCommonVersion + ".Version=" + strings.TrimPrefix(v, "v")
}

// prometheusJob builds cmd/prometheus of release v (module PrometheusModuleVersion(v)).
// Without the builtinassets tag (upstream's release builds set it after building the React
// UI, which the module zip does not carry) Prometheus serves its API and reads UI assets
// from disk, where there are none: the UI answers not found, the API and /metrics work. The
// zip's go.work names folders it lacks; the build runs with GOWORK=off (goEnv).
func (b *builder) prometheusJob(v string) job {
	mv, err := PrometheusModuleVersion(v) // validate reports it before any job is built
	j := b.imageBinaryJob("prometheus", PrometheusModule, mv, PrometheusModule+"/cmd/prometheus", PrometheusPath(v), promuVersion(v))
	if err != nil {
		j.build = func(context.Context, string) error { return err }
	}
	j.version = v
	return j
}

// alertmanagerUI is the placeholder for Alertmanager's web UI. ui/web.go embeds app/dist
// (//go:embed app/dist), which upstream's release process builds with npm and which the
// module zip does not carry: without it the package does not compile. The build's copy of
// the module (see patchedCopies) gets these files instead, so the UI's pages answer not found
// (they serve only gzip-compressed assets, none of which is there) while the API (/api/v2) and
// /metrics work as upstream's.
var alertmanagerUI = map[string]string{
	"app/dist/elm/index.html":     "<!-- kk's e2e mirror: Alertmanager's UI is not built -->\n",
	"app/dist/mantine/index.html": "<!-- kk's e2e mirror: Alertmanager's UI is not built -->\n",
}

// alertmanagerJob builds cmd/alertmanager with the UI placeholder above.
func (b *builder) alertmanagerJob(v string) job {
	ui := packageStandIn{module: AlertmanagerModule, version: v, dir: "ui", add: true, files: alertmanagerUI}
	return b.imageBinaryJobWith("alertmanager", AlertmanagerModule, v, AlertmanagerModule+"/cmd/alertmanager", AlertmanagerPath(v),
		recipeRev+" ui-placeholder", goBuild{ldflags: []string{promuVersion(v)}, standIns: []packageStandIn{ui}})
}

// nodeExporterJob builds node_exporter (the module's root package).
func (b *builder) nodeExporterJob(v string) job {
	return b.imageBinaryJob("node-exporter", NodeExporterModule, v, NodeExporterModule, NodeExporterPath(v), promuVersion(v))
}

// kubeStateMetricsJob builds kube-state-metrics (the module's root package) as upstream's
// Makefile does, with the tag (its leading "v" kept) as the version.
func (b *builder) kubeStateMetricsJob(v string) job {
	return b.imageBinaryJob("kube-state-metrics", KubeStateMetricsModule, v, KubeStateMetricsModule, KubeStateMetricsPath(v),
		"-X "+prometheusCommonVersion+".Version="+v)
}

// prometheusOperatorJob builds cmd/operator and cmd/prometheus-config-reloader in one go build,
// with the operator's sub-modules pinned to its release (see prometheusOperatorSubModules).
func (b *builder) prometheusOperatorJob(v string) job {
	var pins []string
	for _, m := range prometheusOperatorSubModules {
		pins = append(pins, m+" => "+m+" "+v)
	}
	mod := PrometheusOperatorModule
	return b.imageBinariesJob("prometheus-operator", mod, v, recipeRev, goBuild{ldflags: []string{promuVersion(v)}, replace: pins},
		imageBinary{mod + "/cmd/operator", PrometheusOperatorPath(v)},
		imageBinary{mod + "/cmd/prometheus-config-reloader", PrometheusConfigReloaderPath(v)})
}
