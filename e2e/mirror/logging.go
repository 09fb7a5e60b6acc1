package mirror

// The platform's logging: VictoriaLogs (the log store, victoria-logs) and its collector vlagent,
// whose Kubernetes collector tails every container's log on its node and adds the pod's
// namespace, name and container to each line.
//
// Both programs are in one Go module (github.com/VictoriaMetrics/VictoriaLogs, Apache-2.0) and
// upstream ships them in images only (and in release archives kk never downloads), so, as for
// the monitoring stack, the mirror builds them from the module at the release, static
// (CGO_ENABLED=0: upstream's "pure" build; its images' builds add only netgo and osusergo,
// which a build without cgo has anyway), and puts them under BinPath for e2e/images. The
// module zip carries the query UI's built assets (app/vlselect/vmui), so nothing is left out.

import (
	"context"
	"path/filepath"
)

// VictoriaLogsModule is the Go module VictoriaLogs and vlagent are built from.
const VictoriaLogsModule = "github.com/VictoriaMetrics/VictoriaLogs"

// victoriaLogsBuildInfo is the variable upstream's Makefile sets the build's version in (read
// by -version, the /metrics vm_app_version series and the UI).
const victoriaLogsBuildInfo = "github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version"

// VictoriaLogsPath is where the victoria-logs binary is put: upstream ships it only in its
// image (docker.io/victoriametrics/victoria-logs), so it lives under BinPath.
func VictoriaLogsPath(version string) string {
	return BinPath("victoria-logs", version, "victoria-logs")
}

// VLAgentPath is where vlagent is put (its image is docker.io/victoriametrics/vlagent).
func VLAgentPath(version string) string {
	return BinPath("victoria-logs", version, "vlagent")
}

// victoriaLogsVersion is the version string upstream's Makefile links in: the program, the
// build's date and time, and git describe's "tags-<tag>-0-g<commit>". The module zip has no
// commit, so the date is the release's (the module's time, which the proxy records) and the
// commit is left out; buildinfo.ShortVersion still finds the tag in it.
func victoriaLogsVersion(app, v, when string) string {
	return app + "-" + when + "-tags-" + v + "-0"
}

// victoriaLogsJob builds app/victoria-logs and app/vlagent of release v. Each program is its
// own go build (upstream links each with its own name in the version); the second reuses what
// the first compiled from the go build cache, so it costs little more than a link.
func (b *builder) victoriaLogsJob(v string) job {
	progs := []struct{ app, path string }{
		{"victoria-logs", VictoriaLogsPath(v)},
		{"vlagent", VLAgentPath(v)},
	}
	var outs []string
	for _, p := range progs {
		outs = append(outs, withChecksum(p.path, p.path+".sha256")...)
	}
	return job{component: "victoria-logs", name: "victoria-logs", version: v, recipe: recipeRev, outputs: outs,
		build: func(ctx context.Context, stage string) error {
			t, err := b.moduleTime(ctx, VictoriaLogsModule, v)
			if err != nil {
				return err
			}
			when := t.UTC().Format("20060102-150405")
			for _, p := range progs {
				dir := filepath.Join(stage, "gobin-"+p.app)
				pkg := VictoriaLogsModule + "/app/" + p.app
				if err := b.goBuild(ctx, goBuild{key: p.app + "-" + v, require: []string{VictoriaLogsModule + " " + v},
					replaceFrom: []string{VictoriaLogsModule + "@" + v}, pkgs: []string{pkg},
					ldflags: []string{"-X '" + victoriaLogsBuildInfo + "=" + victoriaLogsVersion(p.app, v, when) + "'"},
					out:     dir}); err != nil {
					return err
				}
				if err := placeBinary(filepath.Join(dir, p.app), stage, p.path); err != nil {
					return err
				}
				if err := writeHexSum(stage, p.path, p.path+".sha256"); err != nil {
					return err
				}
			}
			return nil
		}}
}
