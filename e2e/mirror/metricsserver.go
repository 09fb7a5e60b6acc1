package mirror

import (
	"context"
	"path/filepath"
)

// MetricsServerModule is the Go module metrics-server is built from.
const MetricsServerModule = "sigs.k8s.io/metrics-server"

// MetricsServerPath is where the metrics-server binary is put: upstream ships it only in its
// image (registry.k8s.io/metrics-server/metrics-server), so it lives under BinPath.
func MetricsServerPath(version string) string {
	return BinPath("metrics-server", version, "metrics-server")
}

// metricsServerJob builds cmd/metrics-server as upstream's Makefile does: static, with the
// release in its version package (upstream's commit and date are not in the module zip).
func (b *builder) metricsServerJob(v string) job {
	p := MetricsServerPath(v)
	return job{component: "metrics-server", name: "metrics-server", version: v, recipe: recipeRev, outputs: withChecksum(p, p+".sha256"),
		build: func(ctx context.Context, stage string) error {
			bins := filepath.Join(stage, "gobin")
			if err := b.goBuild(ctx, goBuild{key: "metrics-server-" + v, require: []string{MetricsServerModule + " " + v},
				replaceFrom: []string{MetricsServerModule + "@" + v}, pkgs: []string{MetricsServerModule + "/cmd/metrics-server"},
				ldflags: []string{"-X " + MetricsServerModule + "/pkg/version.gitVersion=" + v}, out: bins}); err != nil {
				return err
			}
			if err := placeBinary(filepath.Join(bins, "metrics-server"), stage, p); err != nil {
				return err
			}
			return writeHexSum(stage, p, p+".sha256")
		}}
}
