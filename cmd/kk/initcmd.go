package main

import (
	"github.com/spf13/cobra"

	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/modules/osprep"
	"github.com/kk-project/kk/pipeline"
)

func newInitCommand(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "init", Short: "Prepare machines: the OS, or a registry"}
	c.AddCommand(newInitOSCommand(g))
	return c
}

func newInitOSCommand(g *globals) *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "os",
		Short: "Prepare every host's OS for Kubernetes (hostname, /etc/hosts, swap, modules, sysctl, packages)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := loadCluster(file, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if err := g.confirm("Prepare the OS of " + cl.String()); err != nil {
				return err
			}
			tasks := append([]pipeline.Task{facts.Task()}, osprep.Tasks(osprep.SpecFor(cl))...)
			_, err = runTasks(cmd, g, cl, "init os", tasks)
			return err
		},
	}
	c.Flags().StringVarP(&file, "filename", "f", "", "Cluster file")
	refuseKubeKeyFlags(c, kubekeyFlag{name: "artifact", shorthand: "a", takesValue: true,
		why: "kk's bundles carry no OS packages; kk init os installs them with each host's package manager"})
	return c
}
