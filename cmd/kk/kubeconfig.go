package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/modules/kubernetes"
	"github.com/kk-project/kk/pipeline"
)

func newKubeconfigCommand(g *globals) *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Fetch a fresh admin kubeconfig of the cluster into the workdir",
		Long: `Copy admin.conf from the first control plane to root's kubeconfig on every control plane and
write the admin kubeconfig of the cluster here (<workdir>/config-<name>, mode 0600), as kk
create cluster does. Without a load-balancer address it names every control plane, one
context each, and the first one that answers from here is current: run it again when a
control plane is down to switch.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := loadCluster(file, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			ks, err := kubernetes.SpecFor(cl, g.Workdir, binaries.Files{})
			if err != nil {
				return err
			}
			tasks := []pipeline.Task{facts.Task(), kubernetes.KubeconfigTask(ks, []string{facts.TaskName})}
			if _, err := runTasks(cmd, g, cl, "kubeconfig", tasks); err != nil {
				return err
			}
			if !g.DryRun {
				fmt.Fprintf(cmd.OutOrStdout(), "\nexport KUBECONFIG=%s\n", ks.Kubeconfig)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&file, "filename", "f", "", "Cluster file")
	return c
}
