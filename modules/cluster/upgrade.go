package cluster

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kk-project/kk/artifacts/versions"
	"github.com/kk-project/kk/modules/drain"
	"github.com/kk-project/kk/modules/kubernetes"
	"github.com/kk-project/kk/modules/upgrade"
)

// UpgradeOptions make a plan an upgrade step (kk upgrade): the phase "upgrade" runs between
// the load balancer and the control-plane phases, after the runtime phase has loaded the new
// release's images and the etcd phase has rolled a newer etcd member by member. The phases
// after it then find every node at the new release and converge the rest (kubeadm's config
// file, the admin kubeconfig, CoreDNS's Corefile), as kk create cluster would.
type UpgradeOptions struct {
	MaxUnavailable int
	Drain          drain.Options
}

// PhaseUpgrade is the name of the upgrade phase.
const PhaseUpgrade = "upgrade"

// upgradePhase returns the upgrade step's phase for ks (the cluster at the step's version).
func upgradePhase(ks kubernetes.Spec, u *UpgradeOptions) Phase {
	s := upgrade.Spec{K: ks, Client: clientLoader(ks.Kubeconfig, 0), MaxUnavailable: u.MaxUnavailable, Drain: u.Drain}
	return Phase{Name: PhaseUpgrade, Desc: "kubeadm upgrade apply, then node by node: kubeadm upgrade node, drain, kubelet and kubectl, uncordon",
		Tasks: upgrade.Tasks(s, nil)}
}

// insertPhase puts ph after the phase named after.
func insertPhase(phases []Phase, after string, ph Phase) []Phase {
	i := slices.IndexFunc(phases, func(p Phase) bool { return p.Name == after })
	return slices.Insert(phases, i+1, ph)
}

// RunningVersions reads what the cluster behind the admin kubeconfig at path runs: the API
// server's version and every node's kubelet. A missing kubeconfig is a zero Running and no
// error (no cluster yet).
func RunningVersions(ctx context.Context, path string) (kubernetes.Running, error) {
	if _, err := os.Stat(path); err != nil {
		return kubernetes.Running{}, nil
	}
	cs, err := clientLoader(path, 20*time.Second)(ctx)
	if err != nil {
		return kubernetes.Running{}, err
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		return kubernetes.Running{}, fmt.Errorf("read the running version through %s: %w", path, err)
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return kubernetes.Running{}, fmt.Errorf("list nodes through %s: %w", path, err)
	}
	r := kubernetes.Running{APIServer: v.GitVersion, Kubelets: map[string]string{}}
	for _, n := range nodes.Items {
		r.Kubelets[n.Name] = n.Status.NodeInfo.KubeletVersion
	}
	return r, nil
}

// UpgradeSteps lists the releases an upgrade from the running cluster to target goes through,
// one minor at a time, as kubeadm requires: each minor between them at the newest release
// of it in available (the bundle's), then target. A cluster already at target's minor gets
// the one step target (a patch release, or converging an upgrade that was interrupted).
func UpgradeSteps(running kubernetes.Running, target string, available []string) ([]string, error) {
	if running.APIServer == "" {
		return nil, fmt.Errorf("no running cluster to upgrade")
	}
	from, err := versions.Parse(running.APIServer)
	if err != nil {
		return nil, fmt.Errorf("running API server: %w", err)
	}
	to, err := versions.Parse(target)
	if err != nil {
		return nil, err
	}
	if to.Less(from) {
		return nil, fmt.Errorf("Kubernetes %s is older than the running API server %s: downgrades are not supported", to, from)
	}
	var steps []string
	for m := from.Minor + 1; m < to.Minor; m++ {
		best := ""
		var bv versions.Version
		for _, a := range available {
			av, err := versions.Parse(a)
			if err == nil && av.Major == 1 && av.Minor == m && (best == "" || bv.Less(av)) {
				best, bv = a, av
			}
		}
		if best == "" {
			return nil, fmt.Errorf("upgrading from %s to %s goes through v1.%d, one minor at a time: the bundle has no v1.%d release "+
				"(list one in the manifest's spec.kubernetesDistributions, or upgrade to v1.%d first)", from, to, m, m, m)
		}
		steps = append(steps, best)
	}
	steps = append(steps, to.String())
	// each step keeps the skew policy from the one before it (the first from what runs)
	r := running
	for _, st := range steps {
		if _, err := kubernetes.ValidateVersions(st, r); err != nil {
			return nil, err
		}
		r = kubernetes.Running{APIServer: st}
	}
	return steps, nil
}

// NodesReady checks, through the admin kubeconfig at path, that every node is Ready: an
// upgrade starts only on a healthy cluster.
func NodesReady(ctx context.Context, path string) error {
	cs, err := clientLoader(path, 20*time.Second)(ctx)
	if err != nil {
		return err
	}
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes through %s: %w", path, err)
	}
	var bad []string
	for _, n := range nodes.Items {
		if !upgrade.NodeReady(&n) {
			bad = append(bad, n.Name)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("nodes not Ready: %s (kk upgrades a healthy cluster: bring them back, or delete them with kk delete node)", strings.Join(bad, ", "))
	}
	return nil
}
