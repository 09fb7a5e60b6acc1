package mirror

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// RegistryPath is the GitHub release path of the CNCF distribution registry archive (its file
// name carries the version without the leading "v"), e.g.
// /distribution/distribution/releases/download/v3.0.0/registry_3.0.0_linux_amd64.tar.gz.
// Upstream publishes its checksum at RegistryPath + ".sha256" (the hex digest only).
func RegistryPath(version string) string {
	return fmt.Sprintf("/distribution/distribution/releases/download/%s/registry_%s_linux_%s.tar.gz", version, strings.TrimPrefix(version, "v"), Arch)
}

// registryJob builds github.com/distribution/distribution/v3/cmd/registry and packs it as
// upstream's release does: registry, README.md and LICENSE at the top of the archive, and a
// .sha256 file holding only the hex digest.
func (b *builder) registryJob(v string) job {
	p := RegistryPath(v)
	return job{component: "registry", name: "registry", version: v, recipe: recipeRev + " registry,README.md,LICENSE", outputs: withChecksum(p, p+".sha256"),
		build: func(ctx context.Context, stage string) error {
			mod := "github.com/distribution/distribution/v3"
			bins := filepath.Join(stage, "gobin")
			if err := b.goBuild(ctx, goBuild{key: "registry-" + v, require: []string{mod + " " + v}, replaceFrom: []string{mod + "@" + v},
				pkgs:    []string{mod + "/cmd/registry"},
				ldflags: []string{"-X " + mod + "/version.version=" + v, "-X " + mod + "/version.mainpkg=" + mod},
				out:     bins}); err != nil {
				return err
			}
			t, err := b.moduleTime(ctx, mod, v)
			if err != nil {
				return err
			}
			entries := []tarEntry{{name: "registry", src: filepath.Join(bins, "registry")}}
			if srcDir, err := b.moduleDir(ctx, mod, v); err == nil {
				for _, doc := range []string{"README.md", "LICENSE"} {
					if _, err := os.Stat(filepath.Join(srcDir, doc)); err == nil {
						entries = append(entries, tarEntry{name: doc, src: filepath.Join(srcDir, doc), mode: 0o644})
					}
				}
			}
			if err := writeTarGz(filepath.Join(stage, rel(p)), t, entries); err != nil {
				return err
			}
			return writeHexSum(stage, p, p+".sha256")
		}}
}
