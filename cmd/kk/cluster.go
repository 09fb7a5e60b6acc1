package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/catalog"
	"github.com/kk-project/kk/modules/cluster"
	"github.com/kk-project/kk/pipeline/session"
)

// clusterFlags are the flags of kk create cluster and kk create phase.
type clusterFlags struct {
	file, bundle, mirror, zone, kube string
	skip                             []string
}

func (f *clusterFlags) register(c *cobra.Command, withSkip bool) {
	fl := c.Flags()
	fl.StringVarP(&f.file, "filename", "f", "", "Cluster file (without it: an all-in-one cluster on this machine)")
	fl.StringVarP(&f.bundle, "artifact", "a", "", "offline bundle from kk artifact export: nothing is downloaded")
	fl.StringVar(&f.mirror, "mirror", os.Getenv("KK_MIRROR"), "download components from this mirror (upstream paths under its URL)")
	fl.StringVar(&f.zone, "zone", os.Getenv("KKZONE"), `download preset: "cn" for KubeKey's China mirrors`)
	fl.StringVar(&f.kube, "with-kubernetes", "", "Kubernetes version of the all-in-one cluster (without -f)")
	if withSkip {
		fl.StringSliceVar(&f.skip, "skip-phases", nil, "phases to leave out: "+strings.Join(cluster.PhaseNames(), ", "))
	}
}

func newCreateClusterCommand(g *globals) *cobra.Command {
	var f clusterFlags
	c := &cobra.Command{
		Use:   "cluster",
		Short: "Create (or converge) a Kubernetes cluster: " + strings.Join(cluster.PhaseNames(), " → "),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCreate(cmd, g, f, cluster.Options{SkipPhases: f.skip}, "create cluster")
		},
	}
	f.register(c, true)
	return c
}

func newCreatePhaseCommand(g *globals) *cobra.Command {
	var f clusterFlags
	c := &cobra.Command{
		Use:       "phase NAME...",
		Short:     "Run only the named phases of kk create cluster: " + strings.Join(cluster.PhaseNames(), ", "),
		Args:      cobra.MinimumNArgs(1),
		ValidArgs: cluster.PhaseNames(),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCreate(cmd, g, f, cluster.Options{Only: args}, "create phase "+strings.Join(args, ","))
		},
	}
	f.register(c, false)
	return c
}

func runCreate(cmd *cobra.Command, g *globals, f clusterFlags, po cluster.Options, what string) error {
	var cl *config.Cluster
	var err error
	if f.file == "" {
		cl, err = allInOne(f.kube, cmd.ErrOrStderr())
	} else {
		if f.kube != "" {
			return fmt.Errorf("--with-kubernetes is for the all-in-one cluster; with -f the version is kubernetes.version in %s", f.file)
		}
		cl, err = loadCluster(f.file, cmd.ErrOrStderr())
	}
	if err != nil {
		return err
	}
	res := catalog.Resolver{Mirror: f.mirror, Zone: f.zone}
	if err := res.Validate(); err != nil {
		return err
	}
	po.Workdir = g.Workdir
	// Checked before anything is downloaded or touched.
	if err := cluster.Validate(cl, po); err != nil {
		return err
	}
	for _, w := range cluster.Warnings(cl) {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
	}
	if !g.DryRun {
		if err := g.confirm(fmt.Sprintf("%s: %s", what, cl)); err != nil {
			return err
		}
	}
	ctx := cmd.Context()
	arts, err := cluster.ResolveArtifacts(ctx, cl, cluster.ArtifactOptions{Workdir: g.Workdir, Bundle: f.bundle, Resolver: res, Log: cmd.ErrOrStderr()})
	if err != nil {
		return err
	}
	plan, err := cluster.NewPlan(cl, arts, po)
	if err != nil {
		return err
	}
	for _, w := range plan.Warnings {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
	}
	tasks, err := plan.Tasks(po)
	if err != nil {
		return err
	}
	o := g.Options
	o.Out = cmd.OutOrStdout()
	s, err := session.New(cl, o)
	if err != nil {
		return err
	}
	defer s.Close()
	rep, err := s.Run(ctx, what, tasks)
	if rep != nil && !g.DryRun {
		fmt.Fprintln(cmd.OutOrStdout(), "\nPHASE           TIME     CHANGED")
		for _, pt := range plan.Times(rep) {
			fmt.Fprintf(cmd.OutOrStdout(), "%-15s %-8s %d\n", pt.Phase, pt.Duration.Round(100*time.Millisecond), pt.Changed)
		}
	}
	if err != nil {
		return err
	}
	if !g.DryRun && plan.Kubeconfig != "" {
		if _, err := os.Stat(plan.Kubeconfig); err == nil {
			kc := plan.Kubeconfig
			if abs, err := filepath.Abs(kc); err == nil {
				kc = abs
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\ncluster %s is ready: export KUBECONFIG=%s\n", cl.Name, kc)
		}
	}
	return nil
}
