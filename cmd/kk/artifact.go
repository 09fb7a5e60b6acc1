package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/artifacts/bundle"
	"github.com/kk-project/kk/pipeline/progress"
)

func newArtifactCommand(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "artifact", Short: "Build, check and unpack offline bundles (artifacts)"}
	c.AddCommand(newArtifactExportCommand(g), newArtifactInspectCommand(), newArtifactVerifyCommand(), newArtifactImportCommand(g),
		newArtifactImageCommand(g))
	return c
}

func newArtifactExportCommand(g *globals) *cobra.Command {
	var manifest, out string
	var dl downloadFlags
	var regMirrors map[string]string
	c := &cobra.Command{
		Use:   "export",
		Short: "Download what a Manifest lists and pack it into one bundle",
		Long: `Download the components and images a Manifest lists (through the cache in <workdir>/cache)
and pack them, with the manifest and a checksum index, into one tar.gz bundle.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if manifest == "" {
				return fmt.Errorf("no manifest: pass -m FILE (kk create manifest writes one)")
			}
			m, warns, err := v1alpha2.LoadManifest(manifest)
			for _, w := range warns {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			if err != nil {
				return err
			}
			if out == "" {
				out = "kubekey-artifact.tar.gz"
			}
			res, err := dl.resolver()
			if err != nil {
				return err
			}
			rep, err := bundle.Export(cmd.Context(), bundle.Options{
				Manifest:        m,
				Output:          out,
				Workdir:         g.Workdir,
				Resolver:        res,
				RegistryMirrors: regMirrors,
				KKVersion:       version,
				Log:             cmd.ErrOrStderr(),
			})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			charts := ""
			if n := len(rep.Charts); n > 0 {
				charts = chartCount(n)
			}
			fmt.Fprintf(w, "wrote %s (%s, sha256 %s): %d components, %d images%s\n",
				rep.Path, progress.HumanBytes(rep.Size), rep.SHA256, len(rep.Components), len(rep.Images), charts)
			fmt.Fprintf(w, "downloaded %s, reused %s from the cache (%s)\n", progress.HumanBytes(rep.Downloaded), progress.HumanBytes(rep.Reused), g.Workdir+"/cache")
			return nil
		},
	}
	f := c.Flags()
	f.StringVarP(&manifest, "manifest", "m", "", "Manifest file")
	f.StringVarP(&out, "output", "o", "", "bundle file to write (default kubekey-artifact.tar.gz)")
	dl.register(f)
	f.StringToStringVar(&regMirrors, "registry-mirror", nil, "pull images of a registry from a mirror: registry.k8s.io=http://127.0.0.1:5055,docker.io=https://...")
	refuseKubeKeyFlags(c, flagDownloadCmd)
	return c
}

func newArtifactInspectCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect BUNDLE",
		Short: "List a bundle's components and images (reads its index only)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := bundle.Open(args[0])
			if err != nil {
				return err
			}
			writeInspect(cmd.OutOrStdout(), b)
			return nil
		},
	}
}

func writeInspect(out io.Writer, b *bundle.Bundle) {
	ix := b.Index
	fmt.Fprintf(out, "bundle %s: %s, kk %s, created %s, arches %s, %d files, %s unpacked\n\n",
		b.Path, ix.Name, ix.KKVersion, ix.Created.Format("2006-01-02 15:04:05 MST"), strings.Join(ix.Arches, ","), len(ix.Files), progress.HumanBytes(ix.Size()))
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "COMPONENT\tVERSION\tARCH\tSIZE\tSHA256")
	comps := append([]bundle.ComponentEntry(nil), ix.Components...)
	sort.SliceStable(comps, func(i, j int) bool { return comps[i].Name < comps[j].Name })
	for _, c := range comps {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", c.Name, c.Version, c.Arch, progress.HumanBytes(c.Size), c.SHA256[:min(12, len(c.SHA256))])
	}
	w.Flush()
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "IMAGE\tARCH\tSIZE\tDIGEST")
	for _, i := range ix.Images {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", i.Ref, i.Arch, progress.HumanBytes(i.Size), shortDigest(i.Digest))
	}
	w.Flush()
	if len(ix.Charts) == 0 {
		return
	}
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CHART\tVERSION\tSIZE\tSHA256")
	for _, c := range ix.Charts {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", c.Name, c.Version, progress.HumanBytes(c.Size), c.SHA256[:min(12, len(c.SHA256))])
	}
	w.Flush()
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

func newArtifactVerifyCommand() *cobra.Command {
	var arch string
	c := &cobra.Command{
		Use:   "verify BUNDLE",
		Short: "Check every file of a bundle against its index",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ix, err := bundle.Verify(cmd.Context(), args[0], bundle.VerifyOptions{Arch: arch})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK (%d files, %d components, %d images, arches %s)\n",
				args[0], len(ix.Files), len(ix.Components), len(ix.Images), strings.Join(ix.Arches, ","))
			return nil
		},
	}
	c.Flags().StringVar(&arch, "arch", "", "fail unless the bundle carries this arch (amd64, arm64)")
	return c
}

func newArtifactImportCommand(g *globals) *cobra.Command {
	var arch, artifact string
	c := &cobra.Command{
		Use:   "import BUNDLE | -a BUNDLE",
		Short: "Verify a bundle and unpack it into <workdir>/artifact/<sha256>/ (once)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := bundleArg(artifact, args)
			if err != nil {
				return err
			}
			imp, err := bundle.Import(cmd.Context(), path, bundle.ImportOptions{Workdir: g.Workdir, Arch: arch})
			if err != nil {
				return err
			}
			if imp.Skipped {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s is already unpacked and unchanged: skipped\n", path)
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "verified and unpacked %s (%d files)\n", path, len(imp.Index.Files))
			}
			fmt.Fprintln(cmd.OutOrStdout(), imp.Dir)
			return nil
		},
	}
	c.Flags().StringVarP(&artifact, "artifact", "a", "", "the bundle (KubeKey's form; or give it as the argument)")
	c.Flags().StringVar(&arch, "arch", "", "fail unless the bundle carries this arch (amd64, arm64)")
	return c
}

// bundleArg is the bundle named by -a or by the one argument.
func bundleArg(flag string, args []string) (string, error) {
	switch {
	case len(args) == 1 && flag != "" && args[0] != flag:
		return "", fmt.Errorf("two bundles named: %s and -a %s; give one", args[0], flag)
	case len(args) == 1:
		return args[0], nil
	case flag != "":
		return flag, nil
	}
	return "", fmt.Errorf("no bundle: pass BUNDLE or -a BUNDLE (kk artifact export writes one)")
}
