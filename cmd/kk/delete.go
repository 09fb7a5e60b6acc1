package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/modules/reset"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/session"
)

// newDeleteCommand is kk delete; each subcommand is one newDelete...Command(g).
func newDeleteCommand(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "delete", Short: "Delete a node from a cluster, or a whole cluster"}
	c.AddCommand(newDeleteClusterCommand(g), newDeleteNodeCommand(g))
	return c
}

func newDeleteClusterCommand(g *globals) *cobra.Command {
	var file, containerManager string
	var all bool
	c := &cobra.Command{
		Use:   "cluster",
		Short: "Take every host of the cluster back to its state before kk (--all: the container runtime too)",
		Long: `Resets every host of the Cluster file, all at once, with one script run as root:
  - kubelet, kk's etcd and its backup timer, the certificate renewal timer stop and go with
    their units; every Kubernetes pod is removed through the CRI (as kubeadm reset does);
  - /etc/kubernetes, /var/lib/kubelet, etcd's data dir and certificates, the CNI configuration
    and state, the CNI plugins in /opt/cni/bin, kubeadm, kubelet, kubectl and etcd's programs,
    kk's sysctl and modules-load files, kk's blocks in /etc/hosts, root's copy of admin.conf;
  - the pod network: mounts below /var/lib/kubelet, the pods' network namespaces, cni0,
    flannel.1, calico's, kube-proxy's and nodelocaldns's interfaces, kube-vip's VIP, the
    KUBE-, FLANNEL-, CNI- and cali- iptables chains (every table, legacy and nft, IPv4 and
    IPv6), kube-proxy's and calico's nft tables, their ipsets, IPVS (proxyMode ipvs).
Without --all the container runtime stays installed and running, its images cached. With
--all it goes too: services, programs, units, configuration, data (images included), and
the etcd snapshots of the periodic backup.
A host is done when a read-only residue check finds nothing kk left: a second run changes
nothing, and a host where something survives fails, naming what. Once every host is reset,
the workdir's admin kubeconfig is removed and kk's etcd PKI moved aside; downloads, bundles
and logs stay. The registry of kk init registry, the hostname, swap (left off), chrony and
the timezone stay as they are. --dry-run lists what each host holds, changing nothing.`,
		Example: `  kk delete cluster -f cluster.yaml --dry-run
  kk delete cluster -f cluster.yaml
  kk delete cluster -f cluster.yaml --all --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := deleteTarget(file, containerManager, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return runDeleteCluster(cmd, g, cl, all)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&file, "filename", "f", "", "Cluster file (without it: the all-in-one cluster of this machine)")
	fl.BoolVar(&all, "all", false, "remove the container runtime too (services, programs, configuration, images and data)")
	fl.StringVar(&containerManager, "container-manager", "", "without -f: the all-in-one cluster's runtime, containerd (default) or docker")
	return c
}

// deleteTarget is the cluster to delete: the Cluster file's, or this machine's all-in-one.
func deleteTarget(file, containerManager string, warn io.Writer) (*config.Cluster, error) {
	if file == "" {
		switch containerManager {
		case "", v1alpha2.RuntimeContainerd, v1alpha2.RuntimeDocker:
		default:
			return nil, fmt.Errorf("--container-manager %q: use containerd or docker", containerManager)
		}
		return allInOne("", containerManager, warn)
	}
	cl, err := loadCluster(file, warn)
	if err != nil {
		return nil, err
	}
	if containerManager != "" && containerManager != cl.Kubernetes.ContainerManager {
		return nil, fmt.Errorf("--container-manager %s: with -f the runtime is spec.kubernetes.containerManager in %s (%s)",
			containerManager, file, cl.Kubernetes.ContainerManager)
	}
	return cl, nil
}

func runDeleteCluster(cmd *cobra.Command, g *globals, cl *config.Cluster, all bool) error {
	out := cmd.OutOrStdout()
	s := reset.SpecFor(cl, all)
	w := reset.WorkdirFor(cl, g.Workdir, time.Now())
	o := g.Options
	o.Out, o.Err = out, cmd.ErrOrStderr()
	if g.DryRun {
		return deleteDryRun(cmd, cl, s, w, o)
	}
	what := "every host of " + cl.String() + " back to before kk: kubelet, etcd and its data, every pod, the pod network, kk's files"
	if all {
		what += "; the container runtime with its images and data too"
	}
	if err := g.confirm("delete cluster: " + what); err != nil {
		return err
	}
	sess, err := session.New(cl, o)
	if err != nil {
		return err
	}
	defer sess.Close()
	rep, err := sess.Run(cmd.Context(), "delete cluster", reset.Tasks(s, pipeline.AllHosts()))
	if err != nil {
		return fmt.Errorf("%w\n(the workdir %s is left as it is; run kk delete cluster again)", err, g.Workdir)
	}
	done, err := w.Clean()
	for _, d := range done {
		fmt.Fprintln(out, d)
	}
	if err != nil {
		return fmt.Errorf("workdir: %w", err)
	}
	fmt.Fprintf(out, "\ncluster %s deleted: %d hosts reset, %d already clean; kept in %s: downloads, bundles, logs\n",
		cl.Name, rep.Count(pipeline.StatusChanged), rep.Count(pipeline.StatusOK), g.Workdir)
	return nil
}

// deleteDryRun runs the residue check on every host and lists what the reset would remove.
func deleteDryRun(cmd *cobra.Command, cl *config.Cluster, s reset.Spec, w reset.Workdir, o session.Options) error {
	var mu sync.Mutex
	found := map[string][]string{}
	s.OnResidue = func(host string, items []string) {
		mu.Lock()
		defer mu.Unlock()
		found[host] = items
	}
	sess, err := session.New(cl, o)
	if err != nil {
		return err
	}
	defer sess.Close()
	if _, err := sess.Run(cmd.Context(), "delete cluster (dry run)", reset.Tasks(s, pipeline.AllHosts())); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	hosts := make([]string, 0, len(found))
	for h := range found {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	fmt.Fprintln(out, "kk delete cluster would remove:")
	for _, h := range hosts {
		if len(found[h]) == 0 {
			fmt.Fprintf(out, "  %s: nothing (already clean)\n", h)
			continue
		}
		fmt.Fprintf(out, "  %s (%d):\n    %s\n", h, len(found[h]), strings.Join(found[h], "\n    "))
	}
	if p := w.Present(); len(p) > 0 {
		fmt.Fprintf(out, "  workdir: %s\n", strings.Join(p, ", "))
	}
	return nil
}
