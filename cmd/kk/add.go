package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kk-project/kk/modules/cluster"
	"github.com/kk-project/kk/modules/kubernetes"
)

func newAddCommand(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "add", Short: "Add nodes to a cluster"}
	c.AddCommand(newAddNodesCommand(g))
	return c
}

func newAddNodesCommand(g *globals) *cobra.Command {
	var f clusterFlags
	c := &cobra.Command{
		Use:   "nodes",
		Short: "Join the hosts added to the Cluster file: workers, control planes, etcd members",
		Long: `Add to the Cluster file's hosts and roleGroups, then run kk add nodes -f FILE [-a BUNDLE].

It runs kk create cluster's phases on the whole file: the new hosts are prepared and join
(workers; control planes with a fresh certificate key; kk's etcd members one at a time with
etcdctl member add and the cluster's health between each), and what follows the node list
changes on the existing nodes too: every worker's haproxy backends, kube-vip's set, the etcd
client endpoints of the API servers. Everything else on the existing nodes is left as it is
(their tasks report ok).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := f.cluster(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if f.file == "" {
				return fmt.Errorf("kk add nodes needs the Cluster file with the new hosts: -f FILE")
			}
			kc := kubernetes.KubeconfigPath(cl, g.Workdir)
			running, err := cluster.RunningVersions(cmd.Context(), kc)
			if err != nil {
				return err
			}
			if running.APIServer == "" {
				return fmt.Errorf("no admin kubeconfig of cluster %s at %s: kk add nodes grows a cluster kk created with this workdir (kk create cluster makes one)", cl.Name, kc)
			}
			var added []string
			for _, h := range cl.Hosts {
				if _, ok := running.Kubelets[h.Name]; !ok && (h.Has("control-plane") || h.Has("worker")) {
					added = append(added, h.Name)
				}
			}
			slices.Sort(added)
			if len(added) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "every node of %s is in the cluster already; converging the cluster\n", f.file)
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "nodes to add: %s\n", strings.Join(added, ", "))
			}
			return runCreateFor(cmd, g, cl, f, cluster.Options{}, "add nodes")
		},
	}
	f.register(c, false)
	return c
}
