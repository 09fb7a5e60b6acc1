package mirror

// ChartMuseum: the Helm chart repository of the platform's app store
// (spec.openpitrix.store.enabled), which kk loads with the charts the bundle carries.
//
// Upstream ships it in release archives kk never downloads and in its image
// (ghcr.io/helm/chartmuseum): so, as for metrics-server, the mirror builds the program from its
// Go module at the pinned release, static (upstream's Makefile builds linux with
// CGO_ENABLED=0), and puts it under BinPath for e2e/images to make the image of.
//
// The module declares itself helm.sh/chartmuseum, a path the module proxy here refuses; the
// proxy serves the same release under the repository's path, github.com/helm/chartmuseum. The
// build requires the declared path and replaces it by the served one (Go accepts a replacement
// whose go.mod names the path it replaces), so the program's packages keep their import paths.

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
)

// ChartMuseum's module: the path its go.mod declares, and the path the module proxy serves it
// under.
const (
	ChartMuseumModule       = "helm.sh/chartmuseum"
	ChartMuseumServedModule = "github.com/helm/chartmuseum"
)

// ChartMuseumPath is where the chartmuseum binary is put.
func ChartMuseumPath(version string) string {
	return BinPath("chartmuseum", version, "chartmuseum")
}

// chartMuseumLdflags are upstream's version ldflags: main.Version is the release without its
// "v" (the Makefile's VERSION), main.Revision the short commit, which the module proxy's
// .info records (Origin.Hash) though the zip does not carry it; "" when the proxy says none.
func chartMuseumLdflags(v, commit string) []string {
	ld := []string{"-X main.Version=" + strings.TrimPrefix(v, "v")}
	if len(commit) >= 7 {
		ld = append(ld, "-X main.Revision="+commit[:7])
	}
	return ld
}

// chartMuseumJob builds cmd/chartmuseum of release v from the served module path.
func (b *builder) chartMuseumJob(v string) job {
	p := ChartMuseumPath(v)
	pkg := ChartMuseumModule + "/cmd/chartmuseum"
	return job{component: "chartmuseum", name: "chartmuseum", version: v, recipe: recipeRev + " served-as " + ChartMuseumServedModule,
		outputs: withChecksum(p, p+".sha256"),
		build: func(ctx context.Context, stage string) error {
			commit, err := b.moduleCommit(ctx, ChartMuseumServedModule, v)
			if err != nil {
				return err
			}
			dir := filepath.Join(stage, "gobin")
			if err := b.goBuild(ctx, goBuild{key: "chartmuseum-" + v,
				require: []string{ChartMuseumModule + " " + v},
				// its own replace directives (none in v0.16.3) come from the served copy
				replaceFrom: []string{ChartMuseumServedModule + "@" + v},
				replace:     []string{ChartMuseumModule + " => " + ChartMuseumServedModule + " " + v},
				pkgs:        []string{pkg}, ldflags: chartMuseumLdflags(v, commit), out: dir}); err != nil {
				return err
			}
			if err := placeBinary(filepath.Join(dir, goBinaryName(pkg)), stage, p); err != nil {
				return err
			}
			return writeHexSum(stage, p, p+".sha256")
		}}
}

// moduleCommit is the commit the module proxy records for mod@v (its .info's Origin.Hash), or
// "" when it records none.
func (b *builder) moduleCommit(ctx context.Context, mod, v string) (string, error) {
	var dl struct {
		Error  string
		Origin struct{ Hash string }
	}
	if err := b.goJSON(ctx, &dl, "mod", "download", "-json", mod+"@"+v); err != nil {
		return "", err
	}
	if dl.Error != "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", mod, v, dl.Error)
	}
	return dl.Origin.Hash, nil
}
