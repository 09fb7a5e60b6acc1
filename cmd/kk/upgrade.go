package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kk-project/kk/artifacts/bundle"
	"github.com/kk-project/kk/modules/cluster"
	"github.com/kk-project/kk/modules/kubernetes"
)

func newUpgradeCommand(g *globals) *cobra.Command {
	var f clusterFlags
	var u cluster.UpgradeOptions
	c := &cobra.Command{
		Use:   "upgrade",
		Short: "Upgrade a running cluster to the Cluster file's kubernetes.version, one minor at a time, node by node",
		Long: `Upgrade the cluster to kubernetes.version of the Cluster file (or --with-kubernetes), from the
bundle (-a) or downloads. Several minors up, it walks one minor at a time through the newest
release of each that the bundle carries. Each step:

  1. the new release's images are loaded on every node; a newer etcd is rolled member by member
  2. kubeadm upgrade apply on the first control plane
  3. control planes one at a time: kubeadm upgrade node, drain, kubelet and kubectl, uncordon
  4. workers --max-unavailable at a time: kubeadm upgrade node, drain, kubelet, uncordon
  5. the rest converges as kk create cluster would (kubeadm's config file, admin kubeconfig, DNS)

Before anything changes: no downgrade, every node Ready, the version skew policy kept. A drain
that cannot finish in --drain-timeout stops the run naming the pods that block it. An
interrupted upgrade carries on when run again; a finished one changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUpgrade(cmd, g, f, u)
		},
	}
	f.register(c, false)
	fl := c.Flags()
	fl.IntVar(&u.MaxUnavailable, "max-unavailable", 1, "workers drained and upgraded at once")
	fl.DurationVar(&u.Drain.Timeout, "drain-timeout", 5*time.Minute, "how long one node's drain may take")
	fl.BoolVar(&u.Drain.Force, "force", false, "also delete pods that no controller manages when draining")
	return c
}

func runUpgrade(cmd *cobra.Command, g *globals, f clusterFlags, u cluster.UpgradeOptions) error {
	cl, err := f.cluster(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	res, err := f.resolver()
	if err != nil {
		return err
	}
	if u.MaxUnavailable < 1 {
		return fmt.Errorf("--max-unavailable %d: at least 1", u.MaxUnavailable)
	}
	po := cluster.Options{Workdir: g.Workdir, Warn: cmd.ErrOrStderr(), Upgrade: &u}
	if err := cluster.Validate(cl, po); err != nil {
		return err
	}
	ctx := cmd.Context()
	kc := kubernetes.KubeconfigPath(cl, g.Workdir)
	if _, err := os.Stat(kc); err != nil {
		return fmt.Errorf("no admin kubeconfig of cluster %s at %s: kk upgrades a cluster kk created with this workdir (kk create cluster writes it)", cl.Name, kc)
	}
	running, err := cluster.RunningVersions(ctx, kc)
	if err != nil {
		return err
	}
	var available []string
	if f.bundle != "" {
		imp, err := bundle.Import(ctx, f.bundle, bundle.ImportOptions{Workdir: g.Workdir})
		if err != nil {
			return fmt.Errorf("bundle %s: %w", f.bundle, err)
		}
		available = cluster.KubernetesVersions(imp.Index)
	}
	steps, err := cluster.UpgradeSteps(running, cl.Kubernetes.Version, available)
	if err != nil {
		return fmt.Errorf("%s: %w", cl.Source, err)
	}
	if err := cluster.NodesReady(ctx, kc); err != nil {
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "cluster %s runs Kubernetes %s; upgrade: %s\n", cl.Name, running.APIServer, strings.Join(steps, " → "))
	if !g.DryRun {
		if err := g.confirm(fmt.Sprintf("upgrade %s to %s", cl, cl.Kubernetes.Version)); err != nil {
			return err
		}
	}
	for _, st := range steps {
		step := *cl
		step.Kubernetes.Version = st
		if _, err := runPlan(cmd, g, &step, f.bundle, res, po, "upgrade to "+st); err != nil {
			return err
		}
	}
	return nil
}
