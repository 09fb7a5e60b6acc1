package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	utilversion "k8s.io/apimachinery/pkg/util/version"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/artifacts/catalog"
	"github.com/kk-project/kk/artifacts/versions"
	"github.com/kk-project/kk/modules/cluster"
	"github.com/kk-project/kk/modules/kubernetes"
)

// clusterFlags are the flags of kk create cluster and kk create phase.
type clusterFlags struct {
	downloadFlags
	file, bundle, kube, containerManager string
	skip                                 []string
	skipPull, skipPush, localStorage     bool
	allowReboot                          bool
}

func (f *clusterFlags) register(c *cobra.Command, withSkip bool) {
	fl := c.Flags()
	fl.StringVarP(&f.file, "filename", "f", "", "Cluster file (without it: an all-in-one cluster on this machine)")
	fl.StringVarP(&f.bundle, "artifact", "a", "", "offline bundle from kk artifact export: nothing is downloaded")
	f.downloadFlags.register(fl)
	fl.StringVar(&f.kube, "with-kubernetes", "", "Kubernetes version, e.g. v1.34.1: of the all-in-one cluster, or instead of the Cluster file's")
	fl.StringVar(&f.containerManager, "container-manager", "", "containerd (default) or docker: the all-in-one cluster's runtime (with -f: spec.kubernetes.containerManager)")
	fl.BoolVar(&f.skipPull, "skip-pull-images", false, "KubeKey's: kk never pre-pulls images (kubelet pulls what it runs), so this changes nothing")
	fl.BoolVar(&f.localStorage, "with-local-storage", false, "install kk's local storage, the default StorageClass "+config.LocalStorageClass+
		" (as a ClusterConfiguration in the Cluster file does; its images must be in the bundle: kk create manifest --with-local-storage)")
	fl.BoolVar(&f.allowReboot, "allow-reboot", false, "reboot a GPU host whose NVIDIA driver needs it (nouveau or an older driver in use) and go on once it is back; without it such a host fails, asking for the reboot")
	fl.BoolVar(&f.skipPush, "skip-push-images", false, "KubeKey's: kk create cluster never pushes to a registry (kk artifact image push does), so this changes nothing")
	if withSkip {
		fl.StringSliceVar(&f.skip, "skip-phases", nil, "phases to leave out: "+strings.Join(cluster.PhaseNames(), ", "))
	}
	refuseKubeKeyFlags(c, flagDownloadCmd, flagWithKubeSphere, flagWithPackages,
		kubekeyFlag{name: "with-security-enhancement", why: "not in kk yet"},
		kubekeyFlag{name: "with-buildx", why: "kk installs docker without buildx"})
}

// cluster is the cluster the flags name: the Cluster file (its Kubernetes version replaced
// by --with-kubernetes, as KubeKey does), or the all-in-one cluster of this machine.
func (f *clusterFlags) cluster(warn io.Writer) (*config.Cluster, error) {
	kube := f.kube
	if kube != "" {
		var err error
		if kube, err = kubernetesVersion(kube); err != nil {
			return nil, err
		}
	}
	switch f.containerManager {
	case "", v1alpha2.RuntimeContainerd, v1alpha2.RuntimeDocker:
	case "crio", "isula":
		return nil, fmt.Errorf("--container-manager %s: kk runs containerd or docker", f.containerManager)
	default:
		return nil, fmt.Errorf("--container-manager %q: use containerd or docker", f.containerManager)
	}
	if f.skipPull {
		fmt.Fprintln(warn, "note: --skip-pull-images: kk does not pre-pull images; nothing to skip")
	}
	if f.skipPush {
		fmt.Fprintln(warn, "note: --skip-push-images: kk create cluster pushes no images to a registry; nothing to skip")
	}
	if f.file == "" {
		cl, err := allInOne(kube, f.containerManager, warn)
		if err == nil {
			cl.Platform.LocalStorage = f.localStorage
		}
		return cl, err
	}
	cl, err := loadCluster(f.file, warn)
	if err != nil {
		return nil, err
	}
	cl.Platform.LocalStorage = cl.Platform.LocalStorage || f.localStorage
	if f.containerManager != "" && f.containerManager != cl.Kubernetes.ContainerManager {
		return nil, fmt.Errorf("--container-manager %s: with -f the runtime is spec.kubernetes.containerManager in %s (%s)",
			f.containerManager, f.file, cl.Kubernetes.ContainerManager)
	}
	if kube != "" && kube != cl.Kubernetes.Version {
		fmt.Fprintf(warn, "--with-kubernetes %s replaces kubernetes.version %s of %s\n", kube, cl.Kubernetes.Version, f.file)
		cl.Kubernetes.Version = kube
	}
	return cl, nil
}

// kubernetesVersion checks a Kubernetes version given on the command line: vX.Y.Z (or X.Y.Z)
// of a minor kk's table knows. It returns it as vX.Y.Z.
func kubernetesVersion(v string) (string, error) {
	sv, err := utilversion.ParseSemantic(v)
	if err != nil || sv.PreRelease() != "" || sv.BuildMetadata() != "" {
		return "", fmt.Errorf("--with-kubernetes %q: want a release like %s (kk version --show-supported-k8s lists the minors)", v, v1alpha2.DefaultKubernetesVersion)
	}
	out := "v" + sv.String()
	if _, err := versions.For(out); err != nil {
		return "", fmt.Errorf("--with-kubernetes: %w", err)
	}
	return out, nil
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
	cl, err := f.cluster(cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	return runCreateFor(cmd, g, cl, f, po, what)
}

// runCreateFor is runCreate for the cluster the flags named, loaded already.
func runCreateFor(cmd *cobra.Command, g *globals, cl *config.Cluster, f clusterFlags, po cluster.Options, what string) error {
	res, err := f.resolver()
	if err != nil {
		return err
	}
	po.Workdir = g.Workdir
	po.Warn = cmd.ErrOrStderr()
	po.AllowReboot = f.allowReboot
	// Checked before anything is downloaded or touched.
	if err := cluster.Validate(cl, po); err != nil {
		return err
	}
	for _, w := range cluster.Warnings(cl) {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
	}
	if err := sameVersion(cmd, g, cl); err != nil {
		return err
	}
	if !g.DryRun {
		if err := g.confirm(fmt.Sprintf("%s: %s", what, cl)); err != nil {
			return err
		}
	}
	_, err = runPlan(cmd, g, cl, f.bundle, res, po, what)
	return err
}

// sameVersion refuses to change the Kubernetes version of a running cluster: kk create
// cluster would replace every kubelet at once, kk upgrade does it node by node.
func sameVersion(cmd *cobra.Command, g *globals, cl *config.Cluster) error {
	kc := kubernetes.KubeconfigPath(cl, g.Workdir)
	running, err := cluster.RunningVersions(cmd.Context(), kc)
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: the running version could not be read (%v); going on as for a new cluster\n", err)
		return nil
	}
	if running.APIServer != "" && running.APIServer != cl.Kubernetes.Version {
		return fmt.Errorf("%s: cluster %s runs Kubernetes %s and kubernetes.version is %s: kk upgrade -f %s changes the version node by node (kk create cluster never does)",
			cl.Source, cl.Name, running.APIServer, cl.Kubernetes.Version, cl.Source)
	}
	return nil
}

// runPlan resolves the artifacts, builds the plan and runs it, printing each phase's time.
func runPlan(cmd *cobra.Command, g *globals, cl *config.Cluster, bundle string, res catalog.Resolver, po cluster.Options, what string) (*cluster.Plan, error) {
	ctx := cmd.Context()
	arts, err := cluster.ResolveArtifacts(ctx, cl, cluster.ArtifactOptions{Workdir: g.Workdir, Bundle: bundle, Resolver: res, Log: cmd.ErrOrStderr()})
	if err != nil {
		return nil, err
	}
	plan, err := cluster.NewPlan(cl, arts, po)
	if err != nil {
		return nil, err
	}
	for _, w := range plan.Warnings {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", w)
	}
	tasks, err := plan.Tasks(po)
	if err != nil {
		return nil, err
	}
	rep, err := runTasks(cmd, g, cl, what, tasks)
	if rep != nil && !g.DryRun {
		fmt.Fprintln(cmd.OutOrStdout(), "\nPHASE           TIME     CHANGED")
		for _, pt := range plan.Times(rep) {
			fmt.Fprintf(cmd.OutOrStdout(), "%-15s %-8s %d\n", pt.Phase, pt.Duration.Round(100*time.Millisecond), pt.Changed)
		}
	}
	if err != nil {
		return plan, err
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
	return plan, nil
}
