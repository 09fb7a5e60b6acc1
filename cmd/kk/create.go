package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kk-project/kk/api/v1alpha2"
)

func newCreateCommand(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "create", Short: "Create a cluster config, or a cluster"}
	c.AddCommand(newCreateConfigCommand(g), newCreateManifestCommand(g), newCreateClusterCommand(g), newCreatePhaseCommand(g))
	return c
}

func newCreateConfigCommand(g *globals) *cobra.Command {
	var name, out, kube string
	var kubesphere bool
	c := &cobra.Command{
		Use:   "config",
		Short: "Write a commented sample Cluster file to edit",
		// KubeKey takes the KubeSphere version as an argument after --with-kubesphere
		Args: func(cmd *cobra.Command, args []string) error {
			if kubesphere {
				return cobra.MaximumNArgs(1)(cmd, args)
			}
			return cobra.NoArgs(cmd, args)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if kubesphere {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: --with-kubesphere: %s; the file has no KubeSphere section\n", flagWithKubeSphere.why)
			}
			if kube != "" {
				var err error
				if kube, err = kubernetesVersion(kube); err != nil {
					return err
				}
			}
			if out == "" {
				out = "config-" + name + ".yaml"
			}
			data, err := v1alpha2.Sample(v1alpha2.SampleOptions{Name: name, KubernetesVersion: kube})
			if err != nil {
				return err
			}
			if err := writeOutput(cmd, g, out, data, 0o600, nil); err != nil {
				return err
			}
			if out != "-" {
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: edit the hosts, then run kk precheck -f %s\n", out, out)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&name, "name", "sample", "cluster name")
	f.StringVarP(&out, "filename", "f", "", "output file (default config-NAME.yaml; - for stdout)")
	f.StringVarP(&out, "output", "o", "", "the same as --filename")
	f.StringVar(&kube, "with-kubernetes", "", "Kubernetes version, e.g. "+v1alpha2.DefaultKubernetesVersion+" (default: kk's default)")
	f.BoolVar(&kubesphere, "with-kubesphere", false, "KubeKey's: "+flagWithKubeSphere.why)
	_ = f.MarkHidden("with-kubesphere")
	refuseKubeKeyFlags(c,
		kubekeyFlag{name: "from-cluster", why: "not in kk yet: write the hosts of the running cluster into the sample by hand"},
		kubekeyFlag{name: "kubeconfig", takesValue: true, why: "it goes with --from-cluster, which kk does not have yet"})
	return c
}
