package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kk-project/kk/api/v1alpha2"
)

func newCreateManifestCommand(g *globals) *cobra.Command {
	var file, out string
	c := &cobra.Command{
		Use:   "manifest",
		Short: "Write the Manifest (what an offline bundle holds) a Cluster file needs",
		Long: `Write the kind: Manifest that lists what installing the cluster of a Cluster file takes:
the binaries of its Kubernetes version, etcd, the container runtime, crictl, the CNI plugins,
helm, and the images. Versions that go with the Kubernetes version come from kk's table.
Then run kk artifact export -m MANIFEST -o BUNDLE.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := loadCluster(file, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			m, err := v1alpha2.NewManifest(cl)
			if err != nil {
				return err
			}
			data, err := m.Marshal()
			if err != nil {
				return err
			}
			if out == "" {
				out = "manifest-" + cl.Name + ".yaml"
			}
			if out == "-" {
				_, err := cmd.OutOrStdout().Write(data)
				return err
			}
			if _, err := os.Stat(out); err == nil {
				return fmt.Errorf("%s exists; remove it or choose another file with -o", out)
			}
			if err := os.WriteFile(out, data, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d components, %d images; next: kk artifact export -m %s -o kubekey-artifact.tar.gz\n",
				out, len(m.Components()), len(m.Images()), out)
			return nil
		},
	}
	c.Flags().StringVarP(&file, "filename", "f", "", "Cluster file")
	c.Flags().StringVarP(&out, "output", "o", "", "output file (default manifest-NAME.yaml; - for stdout)")
	return c
}
