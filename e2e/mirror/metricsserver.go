package mirror

import (
	"context"
	"path"
	"path/filepath"
	"strings"
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
	return b.imageBinariesJob(component, module, v, recipe, gb, imageBinary{pkg, p})
}

// imageBinary is one program of an image-only build: its package and where it is put.
type imageBinary struct{ pkg, path string }

// imageBinariesJob builds the programs bins of module at version v in one go build (a module
// that ships several images, such as the Prometheus Operator's), each into its path with its
// checksum.
func (b *builder) imageBinariesJob(component, module, v, recipe string, gb goBuild, bins ...imageBinary) job {
	var outs, pkgs []string
	for _, bin := range bins {
		outs = append(outs, withChecksum(bin.path, bin.path+".sha256")...)
		pkgs = append(pkgs, bin.pkg)
	}
	return job{component: component, name: component, version: v, recipe: recipe, outputs: outs,
		build: func(ctx context.Context, stage string) error {
			dir := filepath.Join(stage, "gobin")
			gb.key, gb.require, gb.replaceFrom, gb.pkgs, gb.out = component+"-"+v, []string{module + " " + v}, []string{module + "@" + v}, pkgs, dir
			if err := b.goBuild(ctx, gb); err != nil {
				return err
			}
			for _, bin := range bins {
				if err := placeBinary(filepath.Join(dir, goBinaryName(bin.pkg)), stage, bin.path); err != nil {
					return err
				}
				if err := writeHexSum(stage, bin.path, bin.path+".sha256"); err != nil {
					return err
				}
			}
			return nil
		}}
}

// goBinaryName is the file go build -o DIR/ writes for the main package pkg: its last element,
// or the one before a major version suffix ("k8s.io/kube-state-metrics/v2" is
// kube-state-metrics).
func goBinaryName(pkg string) string {
	base := path.Base(pkg)
	if len(base) > 1 && base[0] == 'v' && strings.Trim(base[1:], "0123456789") == "" && path.Dir(pkg) != "." {
		return path.Base(path.Dir(pkg))
	}
	return base
}
