package mirror

import (
	"context"
	"path/filepath"
)

// KubeVIPModule is the Go module kube-vip is built from.
const KubeVIPModule = "github.com/kube-vip/kube-vip"

// KubeVIPPath is where the kube-vip binary is put: upstream ships it only in its image
// (ghcr.io/kube-vip/kube-vip), so it lives under BinPath.
func KubeVIPPath(version string) string { return BinPath("kube-vip", version, "kube-vip") }

// kubeVIPJob builds the module's main package (the repository root) as upstream's Makefile
// does: static, with main.Version and main.Build set (upstream's Build is the git commit;
// here it is the version, as the module proxy has no commit).
func (b *builder) kubeVIPJob(v string) job {
	p := KubeVIPPath(v)
	return job{component: "kube-vip", name: "kube-vip", version: v, recipe: recipeRev, outputs: withChecksum(p, p+".sha256"),
		build: func(ctx context.Context, stage string) error {
			bins := filepath.Join(stage, "gobin")
			if err := b.goBuild(ctx, goBuild{key: "kube-vip-" + v, require: []string{KubeVIPModule + " " + v}, replaceFrom: []string{KubeVIPModule + "@" + v},
				pkgs: []string{KubeVIPModule}, ldflags: []string{"-X main.Version=" + v, "-X main.Build=" + v}, out: bins}); err != nil {
				return err
			}
			if err := placeBinary(filepath.Join(bins, "kube-vip"), stage, p); err != nil {
				return err
			}
			return writeHexSum(stage, p, p+".sha256")
		}}
}
