package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/bundle"
	"github.com/kk-project/kk/artifacts/catalog"
	"github.com/kk-project/kk/artifacts/download"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/modules/registry"
	"github.com/kk-project/kk/pipeline"
)

// registerInitRegistry adds `kk init registry` under the init command.
func registerInitRegistry(root *cobra.Command, g *globals) {
	for _, c := range root.Commands() {
		if c.Name() == "init" {
			c.AddCommand(newInitRegistryCommand(g))
			return
		}
	}
}

func newInitRegistryCommand(g *globals) *cobra.Command {
	var file, artifact string
	var dl downloadFlags
	c := &cobra.Command{
		Use:   "registry",
		Short: "Deploy a private image registry on the host with role registry, trusted by every node",
		Long: `Install the CNCF distribution registry on the host with role registry: TLS with a
certificate from kk's registry CA (<workdir>/pki/registry), htpasswd auth when
spec.registry.auths holds credentials for it, storage in /var/lib/registry, run by systemd.
Every host then trusts the CA (containerd's /etc/containerd/certs.d/<registry>/ca.crt and the
system trust store) and resolves the registry's domain (spec.registry.privateRegistry, default
dockerhub.kubekey.local). The registry program comes from the bundle (-a) when it holds one,
else it is downloaded (through <workdir>/cache).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := loadCluster(file, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			res, err := dl.resolver()
			if err != nil {
				return err
			}
			files, err := registryProgram(cmd.Context(), cl, g.Workdir, artifact, res, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			spec, err := registry.SpecFor(cl, g.Workdir, files)
			if err != nil {
				return err
			}
			for _, what := range spec.Issued {
				fmt.Fprintf(cmd.ErrOrStderr(), "issued the %s in %s\n", what, registry.PKIDir(g.Workdir))
			}
			if err := g.confirm(fmt.Sprintf("Deploy the registry %s on %s of %s", spec.Endpoint, spec.Server, cl)); err != nil {
				return err
			}
			tasks := append([]pipeline.Task{facts.Task()}, registry.Tasks(spec)...)
			if _, err := runTasks(cmd, g, cl, "init registry", tasks); err != nil {
				return err
			}
			if !g.DryRun {
				fmt.Fprintf(cmd.OutOrStdout(), "registry https://%s/ on %s; CA %s\n", spec.Endpoint, spec.Server, filepath.Join(registry.PKIDir(g.Workdir), "ca.crt"))
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVarP(&file, "filename", "f", "", "Cluster file")
	f.StringVarP(&artifact, "artifact", "a", "", "offline bundle (kk artifact export) to take the registry program from")
	dl.register(f)
	refuseKubeKeyFlags(c, flagDownloadCmd)
	return c
}

// registryProgram finds the registry program for the registry host's arch: in the bundle when
// it holds the registry component, else downloaded into <workdir>/cache.
func registryProgram(ctx context.Context, cl *config.Cluster, workdir, artifact string, res catalog.Resolver, log io.Writer) (binaries.Files, error) {
	h, err := registry.Server(cl)
	if err != nil {
		return binaries.Files{}, err
	}
	arch := h.Arch
	if arch == "" {
		arch = "amd64"
	}
	if artifact != "" {
		imp, err := bundle.Import(ctx, artifact, bundle.ImportOptions{Workdir: workdir})
		if err != nil {
			return binaries.Files{}, err
		}
		for _, ce := range imp.Index.Components {
			if ce.Name == registry.Component && ce.Arch == arch {
				return registry.Programs(ctx, imp.Files(), ce.Version, []string{arch})
			}
		}
		fmt.Fprintf(log, "bundle %s holds no registry program for %s: downloading registry %s\n", artifact, arch, registry.DefaultVersion)
	}
	art, err := res.Resolve(catalog.Component{Name: registry.Component, Version: registry.DefaultVersion, Arch: arch})
	if err != nil {
		return binaries.Files{}, err
	}
	cache := filepath.Join(workdir, "cache")
	if _, err := (&download.Downloader{Cache: cache}).Fetch(ctx, []catalog.Artifact{art}); err != nil {
		return binaries.Files{}, err
	}
	return registry.Programs(ctx, cache, registry.DefaultVersion, []string{arch})
}
