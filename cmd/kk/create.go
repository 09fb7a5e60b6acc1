package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/modules/cluster"
)

func newCreateCommand(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "create", Short: "Create a cluster config, or a cluster"}
	c.AddCommand(newCreateConfigCommand(g), newCreateManifestCommand(g), newCreateClusterCommand(g), newCreatePhaseCommand(g))
	return c
}

func newCreateConfigCommand(g *globals) *cobra.Command {
	var name, out, kube, kubeconfig string
	var kubesphere, fromCluster bool
	c := &cobra.Command{
		Use:   "config",
		Short: "Write a commented sample Cluster file to edit, or the Cluster file of a running cluster",
		Long: `Write a commented sample Cluster file to edit (--name, --with-kubernetes), or, with
--from-cluster, the Cluster file of a running kubeadm cluster, read through --kubeconfig
(default $KUBECONFIG, ~/.kube/config): one host per node with its addresses and arch, the
roles from the node labels and taints, the Kubernetes version, runtime, CIDRs, endpoint and
etcd from kubeadm's ClusterConfiguration, the network plugin from kube-system. Each host's
password is "` + cluster.PasswordPlaceholder + `": fill in the SSH credentials. What the cluster does not
tell is written as a comment.`,
		// KubeKey takes the KubeSphere version as an argument after --with-kubesphere
		Args: func(cmd *cobra.Command, args []string) error {
			if kubesphere {
				return cobra.MaximumNArgs(1)(cmd, args)
			}
			return cobra.NoArgs(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: --with-kubesphere %s: kk installs the platform components of its own version table, not a KubeSphere release's\n", args[0])
			}
			switch {
			case fromCluster && kube != "":
				return fmt.Errorf("--with-kubernetes sets the version of a sample; --from-cluster writes the version the cluster runs: give one")
			case !fromCluster && cmd.Flags().Changed("kubeconfig"):
				return fmt.Errorf("--kubeconfig names the cluster --from-cluster reads: add --from-cluster")
			}
			if kubesphere && fromCluster {
				return fmt.Errorf("--with-kubesphere appends a ClusterConfiguration to a sample; --from-cluster reads a running cluster: give one")
			}
			if fromCluster {
				return createConfigFromCluster(cmd, g, name, out, kubeconfig)
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
			data, err := v1alpha2.Sample(v1alpha2.SampleOptions{Name: name, KubernetesVersion: kube, KubeSphere: kubesphere})
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
	f.BoolVar(&kubesphere, "with-kubesphere", false, "append KubeSphere's ClusterConfiguration: the platform components kk installs (metrics-server), the others off (KubeKey's VERSION argument is accepted and not used: kk installs the components of its own version table)")
	f.BoolVar(&fromCluster, "from-cluster", false, "write the Cluster file of a running cluster (its nodes, version, network), to complete with SSH credentials")
	f.StringVar(&kubeconfig, "kubeconfig", "", "with --from-cluster: kubeconfig of the cluster (default $KUBECONFIG, ~/.kube/config)")
	return c
}

// createConfigFromCluster writes the Cluster file of the running cluster of kubeconfig.
func createConfigFromCluster(cmd *cobra.Command, g *globals, name, out, kubeconfig string) error {
	cs, where, err := kubeClient(kubeconfig)
	if err != nil {
		return fmt.Errorf("kk create config --from-cluster needs a running cluster: %w", err)
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
	defer cancel()
	fc, err := cluster.ReadCluster(ctx, cs, name)
	if err != nil {
		return fmt.Errorf("cluster of %s: %w", where, err)
	}
	data, err := fc.YAML()
	if err != nil {
		return err
	}
	for _, w := range fc.Warnings {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: cluster of %s: %s\n", where, w)
	}
	if out == "" {
		out = "config-" + name + ".yaml"
	}
	if err := writeOutput(cmd, g, out, data, 0o600, nil); err != nil {
		return err
	}
	if out != "-" {
		s := fc.Cluster.Spec
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d hosts, Kubernetes %s, etcd %s, network %s; fill in each host's SSH credentials (password %q), then run kk precheck -f %s\n",
			out, len(s.Hosts), s.Kubernetes.Version, orUnknown(s.Etcd.Type), s.Network.Plugin, cluster.PasswordPlaceholder, out)
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown (see the file)"
	}
	return s
}

// kubeClient connects to the cluster of kubeconfig, else of $KUBECONFIG or ~/.kube/config
// (client-go's default loading rules), and says which file that was.
func kubeClient(kubeconfig string) (kubernetes.Interface, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	where := "~/.kube/config"
	if kubeconfig != "" {
		rules.ExplicitPath, where = kubeconfig, kubeconfig
	} else if len(rules.Precedence) > 0 {
		where = rules.Precedence[0]
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		err = fmt.Errorf("no kubeconfig there")
	}
	if err != nil {
		return nil, "", fmt.Errorf("%s (--kubeconfig, $KUBECONFIG, ~/.kube/config): %w", where, err)
	}
	cfg.Timeout = 30 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", where, err)
	}
	return cs, where, nil
}
