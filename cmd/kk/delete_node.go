package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kk-project/kk/modules/cluster"
)

func newDeleteNodeCommand(g *globals) *cobra.Command {
	var file string
	o := cluster.DeleteNodeOptions{}
	c := &cobra.Command{
		Use:   "node NAME",
		Short: "Drain a node and remove it from the cluster (etcd member included), then reset the host",
		Long: `Remove node NAME, still listed in the Cluster file, from the cluster:

  1. for a member of kk's etcd: refused unless the members that stay hold a quorum
  2. cordon and drain (PodDisruptionBudgets respected; --drain-timeout; --force for pods no
     controller manages)
  3. the etcd member removed (a stacked one by kubeadm reset)
  4. the host reset: kubeadm reset and kk's clean-up (the container runtime stays)
  5. the Node object deleted; every worker's haproxy backends and the admin kubeconfig follow

The last control plane is never deleted (kk delete cluster removes a whole cluster). Remove
the host from the Cluster file afterwards, or the next kk create cluster adds it back.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := loadCluster(file, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			o.Node, o.Workdir = args[0], g.Workdir
			tasks, err := cluster.DeleteNodeTasks(cl, o)
			if err != nil {
				return err
			}
			if !g.DryRun {
				if err := g.confirm(fmt.Sprintf("delete node %s from %s", o.Node, cl)); err != nil {
					return err
				}
			}
			if _, err := runTasks(cmd, g, cl, "delete node "+o.Node, tasks); err != nil {
				return err
			}
			if !g.DryRun {
				fmt.Fprintf(cmd.OutOrStdout(), "\nnode %s deleted: remove it from spec.hosts and spec.roleGroups of %s\n", o.Node, file)
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVarP(&file, "filename", "f", "", "Cluster file (still listing the node)")
	fl.DurationVar(&o.Drain.Timeout, "drain-timeout", 5*time.Minute, "how long the drain may take")
	fl.BoolVar(&o.Drain.Force, "force", false, "also delete pods that no controller manages")
	return c
}
