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
	return b.imageBinaryJob("metrics-server", MetricsServerModule, v, MetricsServerModule+"/cmd/metrics-server",
		MetricsServerPath(v), "-X "+MetricsServerModule+"/pkg/version.gitVersion="+v)
}

// imageBinaryJob builds the one program pkg of module at version v, static, into p with its
// checksum: a program upstream ships only in an image, made an image by e2e/images.
func (b *builder) imageBinaryJob(component, module, v, pkg, p string, ldflags ...string) job {
	return b.imageBinaryJobWith(component, module, v, pkg, p, recipeRev, goBuild{ldflags: ldflags})
}

// imageBinaryJobWith is imageBinaryJob with more of the build set in gb (cgo, link flags)
// under its own recipe (part of the cache key).
func (b *builder) imageBinaryJobWith(component, module, v, pkg, p, recipe string, gb goBuild) job {
	return job{component: component, name: component, version: v, recipe: recipe, outputs: withChecksum(p, p+".sha256"),
		build: func(ctx context.Context, stage string) error {
			bins := filepath.Join(stage, "gobin")
			gb.key, gb.require, gb.replaceFrom, gb.pkgs, gb.out = component+"-"+v, []string{module + " " + v}, []string{module + "@" + v}, []string{pkg}, bins
			if err := b.goBuild(ctx, gb); err != nil {
				return err
			}
			if err := placeBinary(filepath.Join(bins, filepath.Base(pkg)), stage, p); err != nil {
				return err
			}
			return writeHexSum(stage, p, p+".sha256")
		}}
}
