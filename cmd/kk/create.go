package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kk-project/kk/api/v1alpha2"
)

func newCreateCommand(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "create", Short: "Create a cluster config, or a cluster"}
	c.AddCommand(newCreateConfigCommand(), newCreateManifestCommand(g), newCreateClusterCommand(g), newCreatePhaseCommand(g))
	return c
}

func newCreateConfigCommand() *cobra.Command {
	var name, out, kube string
	c := &cobra.Command{
		Use:   "config",
		Short: "Write a commented sample Cluster file to edit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				out = "config-" + name + ".yaml"
			}
			data, err := v1alpha2.Sample(v1alpha2.SampleOptions{Name: name, KubernetesVersion: kube})
			if err != nil {
				return err
			}
			if out == "-" {
				_, err := cmd.OutOrStdout().Write(data)
				return err
			}
			if _, err := os.Stat(out); err == nil {
				return fmt.Errorf("%s exists; remove it or choose another file with -o", out)
			}
			if err := os.WriteFile(out, data, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: edit the hosts, then run kk precheck -f %s\n", out, out)
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "sample", "cluster name")
	c.Flags().StringVarP(&out, "filename", "o", "", "output file (default config-NAME.yaml; - for stdout)")
	c.Flags().StringVar(&kube, "with-kubernetes", "", "Kubernetes version, e.g. v1.34.1 (default: kk's default)")
	return c
}
