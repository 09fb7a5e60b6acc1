package mirror

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
)

// kubeadmJob builds kubeadm alone for Kubernetes v: the boundary minors whose kubeadm checks
// kk's rendered configuration (`kubeadm config validate`) without a whole release being built.
// It is laid out at the release's own path, like the full builds (kubernetesJob).
func (b *builder) kubeadmJob(v string) job {
	p := KubernetesPath(v, "kubeadm")
	return job{component: "kubeadm", name: "kubeadm", version: v, outputs: withChecksum(p, p+".sha256"), recipe: recipeRev,
		build: func(ctx context.Context, stage string) error {
			major, minor, _, err := semverParts(v)
			if err != nil {
				return err
			}
			mod := "k8s.io/kubernetes"
			pkg := "k8s.io/component-base/version"
			ld := []string{"-X " + pkg + ".gitVersion=" + v, fmt.Sprintf("-X %s.gitMajor=%d", pkg, major),
				fmt.Sprintf("-X %s.gitMinor=%d", pkg, minor), "-X " + pkg + ".gitTreeState=clean"}
			bins := filepath.Join(stage, "gobin")
			if err := b.goBuild(ctx, goBuild{key: "kubeadm-" + v, require: []string{mod + " " + v}, replaceFrom: []string{mod + "@" + v},
				pkgs: []string{mod + "/cmd/kubeadm"}, ldflags: ld, out: bins}); err != nil {
				return err
			}
			if err := placeBinary(filepath.Join(bins, "kubeadm"), stage, p); err != nil {
				return err
			}
			return writeHexSum(stage, p, p+".sha256")
		}}
}

// kubeadmOnly lists the versions of s.KubeadmValidate that no full Kubernetes build of s
// already covers.
func (s Spec) kubeadmOnly() []string {
	var out []string
	for _, v := range s.KubeadmValidate {
		full := false
		for _, k := range s.Kubernetes {
			full = full || k == v
		}
		if !full && strings.HasPrefix(v, "v") {
			out = append(out, v)
		}
	}
	return out
}
