package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/drain"
	"github.com/kk-project/kk/modules/etcd"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/modules/kubernetes"
	"github.com/kk-project/kk/modules/loadbalancer"
	"github.com/kk-project/kk/modules/osprep"
	"github.com/kk-project/kk/modules/reset"
	"github.com/kk-project/kk/modules/upgrade"
	"github.com/kk-project/kk/pipeline"
)

// Task names of kk delete node.
const (
	TaskDrain      = "node/drain"
	TaskNodeDelete = "node/delete"
)

// DeleteNodeOptions say which node kk delete node removes and how it drains it.
type DeleteNodeOptions struct {
	Node    string
	Workdir string
	Drain   drain.Options
}

// Without returns the cluster without host name (what stays after kk delete node).
func Without(c *config.Cluster, name string) *config.Cluster {
	out := *c
	out.Hosts = slices.DeleteFunc(slices.Clone(c.Hosts), func(h *config.Host) bool { return h.Name == name })
	return &out
}

// DeleteNodeTasks are the steps of kk delete node, on the cluster c still listing the node:
// for a kk etcd member, a check that the members that stay hold a quorum (nothing changes
// otherwise); the node cordoned and drained (PodDisruptionBudgets respected); the etcd member
// removed; the host reset (kubeadm reset, which also removes a stacked etcd member, and kk's
// clean-up); the Node object deleted; then, on what stays, the hosts' /etc/hosts lines, every
// worker's haproxy backends, the control planes' kubeadm file, the admin kubeconfig and the
// API servers' etcd members.
func DeleteNodeTasks(c *config.Cluster, o DeleteNodeOptions) ([]pipeline.Task, error) {
	h := c.Host(o.Node)
	if h == nil {
		return nil, fmt.Errorf("%s: host %s is not in spec.hosts (kk reaches the node through its entry there)", c.Source, o.Node)
	}
	if !h.Has(config.RoleControlPlane) && !h.Has(config.RoleWorker) && !h.Has(config.RoleEtcd) {
		return nil, fmt.Errorf("%s: host %s has no control-plane, worker or etcd role: it is no node of the cluster", c.Source, o.Node)
	}
	rest := Without(c, o.Node)
	if h.Has(config.RoleControlPlane) && len(rest.HostsWithRole(config.RoleControlPlane)) == 0 {
		return nil, fmt.Errorf("%s is the last control plane of %s: kk delete cluster removes the whole cluster", o.Node, c)
	}
	client := clientLoader(kubernetes.KubeconfigPath(c, o.Workdir), 30*time.Second)
	one := pipeline.Named(o.Node)
	tasks := []pipeline.Task{facts.Task()}
	after := []string{facts.TaskName}
	member := c.Etcd.Type == config.EtcdKubeKey && h.Has(config.RoleEtcd)
	var es etcd.Spec
	if member {
		var err error
		if es, err = etcd.MaintenanceSpec(rest); err != nil {
			return nil, err
		}
		if len(es.Members) == 0 {
			return nil, fmt.Errorf("%s is the last etcd member of %s: kk delete cluster removes the whole cluster", o.Node, c)
		}
		tasks = append(tasks, etcd.QuorumTask(es, o.Node))
		after = []string{etcd.TaskQuorum}
	}
	tasks = append(tasks, drainTask(o, client, one, after))
	after = []string{TaskDrain}
	if member {
		tasks = append(tasks, etcd.RemoveMemberTask(es, o.Node, after))
		after = []string{etcd.TaskMemberRemove}
	}
	for _, t := range reset.Tasks(reset.SpecFor(c, false), one) {
		if len(t.After) == 0 || slices.Contains(t.After, facts.TaskName) {
			t.After = append(slices.DeleteFunc(t.After, func(a string) bool { return a == facts.TaskName }), after...)
		}
		tasks = append(tasks, t)
	}
	tasks = append(tasks, nodeDeleteTask(o.Node, client, one, taskNames(tasks[len(tasks)-1:])))
	after = []string{TaskNodeDelete}
	// what follows the node list on the nodes that stay
	for _, t := range osprep.Tasks(osSpec(rest)) {
		if t.Name == osprep.TaskEtcHosts {
			t.Hosts, t.After = pipeline.Named(hostNames(rest.Hosts)...), after
			tasks = append(tasks, t)
		}
	}
	for _, t := range loadbalancer.Tasks(loadbalancer.SpecFor(rest)) {
		if t.Name == loadbalancer.TaskHAProxyConfig {
			t.After = after
		}
		if t.Name != loadbalancer.TaskKubeVIP {
			tasks = append(tasks, t)
		}
	}
	ks, err := kubernetes.SpecFor(rest, o.Workdir, binaries.Files{})
	if err != nil {
		return nil, err
	}
	cps := pipeline.Named(hostNames(rest.HostsWithRole(config.RoleControlPlane))...)
	kt := kubernetes.KubeconfigTask(ks, after)
	kt.Hosts = cps
	return append(tasks, kubernetes.KubeadmConfigTask(ks, cps, after), kt, kubernetes.EtcdEndpointsTask(ks, cps, after)), nil
}

func taskNames(ts []pipeline.Task) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}

func hostNames(hs []*config.Host) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Name)
	}
	return out
}

// drainTask cordons and drains the node through the API (from here). A node the API no
// longer knows is done.
func drainTask(o DeleteNodeOptions, client func(context.Context) (k8s.Interface, error), sel pipeline.Selector, after []string) pipeline.Task {
	return pipeline.Task{
		Name: TaskDrain, Desc: "cordon and drain " + o.Node + " (PodDisruptionBudgets respected)",
		Hosts: sel, After: after, Barrier: true, Timeout: o.Drain.Timeout + 2*time.Minute,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			cs, err := client(ctx)
			if err != nil {
				return false, err
			}
			_, err = cs.CoreV1().Nodes().Get(ctx, o.Node, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			if err != nil {
				return false, err
			}
			if t.DryRun {
				evict, blocked, err := drain.Pending(ctx, cs, o.Node, o.Drain.Force)
				if err != nil {
					return false, err
				}
				var names []string
				for _, p := range evict {
					names = append(names, p.Namespace+"/"+p.Name)
				}
				t.Log.Info("drain would evict", "pods", strings.Join(names, " "), "refused", strings.Join(blocked, "; "))
			}
			return false, nil
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			cs, err := client(ctx)
			if err != nil {
				return false, err
			}
			if err := upgrade.Cordon(ctx, cs, o.Node); err != nil {
				return false, err
			}
			d := o.Drain
			d.Log = func(format string, args ...any) { t.Log.Info(fmt.Sprintf(format, args...)) }
			return true, drain.Drain(ctx, cs, o.Node, d)
		},
	}
}

// nodeDeleteTask deletes the Node object once the host was reset (its kubelet is gone and
// cannot register it again).
func nodeDeleteTask(name string, client func(context.Context) (k8s.Interface, error), sel pipeline.Selector, after []string) pipeline.Task {
	return pipeline.Task{
		Name: TaskNodeDelete, Desc: "the Node object " + name + " deleted",
		Hosts: sel, After: after, Barrier: true,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			cs, err := client(ctx)
			if err != nil {
				return false, err
			}
			_, err = cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			return false, err
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			cs, err := client(ctx)
			if err != nil {
				return false, err
			}
			err = cs.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return err == nil, err
		},
	}
}
