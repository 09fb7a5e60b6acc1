// Package upgrade is `kk upgrade`'s own phase: one minor step of a running kubeadm cluster,
// node by node, as kubeadm's upgrade guide orders it. kubeadm upgrade apply on the first
// control plane, kubeadm upgrade node on the other control planes one at a time, then every
// node's kubelet and kubectl with the node drained around the restart: control planes one at
// a time, workers MaxUnavailable at a time.
//
// Every task checks the host before it acts, so a re-run after an upgrade changes nothing and
// an interrupted one carries on where it stopped: a node kk cordoned carries the annotation
// DrainedAnnotation until kk uncordons it.
package upgrade

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	k8s "k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/drain"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/modules/kubernetes"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/retry"
)

// Task names.
const (
	TaskKubeadm       = "upgrade/kubeadm"
	TaskApply         = "upgrade/apply"
	TaskControlPlanes = "upgrade/control-planes"
	TaskWorkers       = "upgrade/workers"
)

// DrainedAnnotation marks a node kk cordoned for its upgrade (or delete); kk uncordons only
// the nodes it marked, so a node the user cordoned stays cordoned.
const DrainedAnnotation = "kk.kubesphere.io/drained"

// Spec is one upgrade step.
type Spec struct {
	// K is the cluster at the step's version (K.Version; K.Files hold its kubeadm, kubelet
	// and kubectl).
	K kubernetes.Spec
	// Client talks to the API server from the machine kk runs on (drain, node readiness).
	Client func(context.Context) (k8s.Interface, error)
	// MaxUnavailable is how many workers are drained at once (at least 1).
	MaxUnavailable int
	// Drain configures each node's drain.
	Drain drain.Options
	// NodeReadyTimeout bounds the wait for a node to be Ready on the new kubelet.
	NodeReadyTimeout time.Duration
}

// Tasks returns the step's tasks; the first ones wait for after.
func Tasks(s Spec, after []string) []pipeline.Task {
	if s.MaxUnavailable < 1 {
		s.MaxUnavailable = 1
	}
	if s.NodeReadyTimeout == 0 {
		s.NodeReadyTimeout = 5 * time.Minute
	}
	nodes := pipeline.Role(string(config.RoleControlPlane), string(config.RoleWorker))
	var cps, workers []string
	for _, n := range s.K.Nodes {
		if n.ControlPlane {
			cps = append(cps, n.Name)
		} else {
			workers = append(workers, n.Name)
		}
	}
	var cpLock sync.Mutex
	workerSlots := make(chan struct{}, s.MaxUnavailable)
	// the nodes move on only when every control plane is upgraded: a failed kubeadm upgrade
	// apply, or a control plane that failed, stops the step there (gates)
	controlPlanes := nodeTask(s, TaskControlPlanes, "kubeadm upgrade node on the other control planes, then each control plane's kubelet and kubectl (drained, one at a time)",
		pipeline.Named(cps...), []string{TaskApply}, func() func() { cpLock.Lock(); return cpLock.Unlock })
	controlPlanes.Gate = true
	return []pipeline.Task{
		binaries.Task(TaskKubeadm, "kubeadm "+s.K.Version+" in "+kubernetes.BinDir, nodes, append([]string{facts.TaskName}, after...),
			s.K.Files, binaries.To(kubernetes.BinDir, "kubeadm")),
		applyTask(s),
		controlPlanes,
		nodeTask(s, TaskWorkers, fmt.Sprintf("each worker's kubelet and kubectl (drained, %d at a time)", s.MaxUnavailable),
			pipeline.Named(workers...), []string{TaskControlPlanes},
			func() func() { workerSlots <- struct{}{}; return func() { <-workerSlots } }),
	}
}

// controlPlaneAt is a shell test that this host's control-plane static pods run version v.
func controlPlaneAt(v string) string {
	var tests []string
	for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
		tests = append(tests, "grep -q 'image: .*/"+c+":"+v+"\"\\?$' /etc/kubernetes/manifests/"+c+".yaml")
	}
	return strings.Join(tests, " && ")
}

// kubeletAt is a shell test that the installed kubelet is version v.
func kubeletAt(v string) string {
	return `[ "$(` + kubernetes.BinDir + `/kubelet --version 2>/dev/null)" = "Kubernetes ` + v + `" ]`
}

// applied is a shell test, on the first control plane, that kubeadm upgrade apply finished:
// the cluster's kubeadm configuration names v and kube-proxy (when deployed) runs v.
func applied(s Spec) string {
	v := s.K.Version
	test := controlPlaneAt(v) + ` && ` + kubernetes.Kubectl + ` -n kube-system get configmap kubeadm-config -o jsonpath='{.data.ClusterConfiguration}' | grep -q '^kubernetesVersion: ` + v + `$'`
	if !s.K.DisableKubeProxy {
		test += ` && ` + kubernetes.Kubectl + ` -n kube-system get daemonset kube-proxy -o jsonpath='{..image}' | grep -q ':` + v + `$'`
	}
	return test
}

func applyTask(s Spec) pipeline.Task {
	cmd := kubernetes.BinDir + "/kubeadm upgrade apply " + s.K.Version + " --yes"
	if s.K.Etcd.Type != config.EtcdKubeadm {
		cmd += " --etcd-upgrade=false"
	}
	return pipeline.Task{
		Name: TaskApply, Desc: "kubeadm upgrade apply " + s.K.Version + " on the first control plane",
		Hosts: pipeline.Named(s.K.FirstControlPlane), After: []string{TaskKubeadm}, Barrier: true, Gate: true,
		Timeout: 15 * time.Minute,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			return t.Test(ctx, applied(s))
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			env := kubernetes.EnvOf(t.Facts())
			if v, err := kubernetes.ParseVersion(s.K.Version); err == nil && v.AtLeast(1, 35) && env.CgroupVersion == 1 {
				if err := s.keepCgroupV1(ctx); err != nil {
					return false, err
				}
			}
			if _, err := t.Sudo(ctx, cmd+ignores(s, t)); err != nil {
				return true, kubernetes.KubeadmError("kubeadm upgrade apply "+s.K.Version, err)
			}
			return true, nil
		},
	}
}

// ignores is the --ignore-preflight-errors flag kubeadm needs on t's host (cgroup v1 from
// v1.35 on), or "".
func ignores(s Spec, t *pipeline.Target) string {
	if ig := kubernetes.PreflightIgnores(s.K, kubernetes.EnvOf(t.Facts())); len(ig) > 0 {
		return " --ignore-preflight-errors=" + strings.Join(ig, ",")
	}
	return ""
}

// keepCgroupV1 sets failCgroupV1: false in the cluster's kubelet configuration (the
// kubelet-config ConfigMap that kubeadm upgrade carries over and writes on every node) when it
// is not set: from v1.35 on, kubelet refuses to start on a cgroup v1 host otherwise.
func (s Spec) keepCgroupV1(ctx context.Context) error {
	cs, err := s.Client(ctx)
	if err != nil {
		return err
	}
	cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "kubelet-config", metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read the kubelet-config ConfigMap: %w", err)
	}
	var kc map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["kubelet"]), &kc); err != nil {
		return fmt.Errorf("kubelet-config ConfigMap: %w", err)
	}
	if _, set := kc["failCgroupV1"]; set {
		return nil
	}
	kc["failCgroupV1"] = false
	out, err := yaml.Marshal(kc)
	if err != nil {
		return err
	}
	cm.Data["kubelet"] = string(out)
	if _, err := cs.CoreV1().ConfigMaps("kube-system").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("set failCgroupV1: false in the kubelet-config ConfigMap: %w", err)
	}
	return nil
}

// nodeTask upgrades each node of sel: kubeadm upgrade node (the other control planes'
// static pods, every node's kubelet configuration), then, drained, kubelet and kubectl.
// acquire bounds how many nodes are at it at once.
func nodeTask(s Spec, name, desc string, sel pipeline.Selector, after []string, acquire func() (release func())) pipeline.Task {
	v := s.K.Version
	return pipeline.Task{
		Name: name, Desc: desc, Hosts: sel, After: after, Barrier: true,
		Timeout: 60 * time.Minute,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			ok, err := t.Test(ctx, s.upgraded(t.Name))
			if err != nil || !ok {
				return false, err
			}
			marked, err := s.marked(ctx, t.Name)
			return !marked, err
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			release := acquire()
			defer release()
			cs, err := s.Client(ctx)
			if err != nil {
				return false, err
			}
			n, _ := s.K.Node(t.Name)
			if !n.ControlPlane || t.Name != s.K.FirstControlPlane {
				ok, err := t.Test(ctx, s.nodeConfigured(t.Name))
				if err != nil {
					return false, err
				}
				if !ok {
					t.Log.Info("kubeadm upgrade node")
					if _, err := t.Sudo(ctx, kubernetes.BinDir+"/kubeadm upgrade node"+ignores(s, t)); err != nil {
						return true, kubernetes.KubeadmError("kubeadm upgrade node", err)
					}
					if n.ControlPlane {
						// its new kube-apiserver before the drain's API calls, which may reach it
						if err := s.waitLocalAPI(ctx, t); err != nil {
							return true, err
						}
					}
				}
			}
			if ok, err := t.Test(ctx, kubeletAt(v)); err != nil {
				return true, err
			} else if !ok {
				if err := s.replaceKubelet(ctx, t, cs); err != nil {
					return true, err
				}
			}
			if n.ControlPlane {
				// its kube-apiserver restarted (kubeadm upgrade node, the new kubelet): the
				// next API calls, this node's and the next steps', may reach it
				if err := s.waitLocalAPI(ctx, t); err != nil {
					return true, err
				}
			}
			if err := s.waitNode(ctx, cs, t.Name); err != nil {
				return true, err
			}
			return true, apiCall(ctx, func() error { return Uncordon(ctx, cs, t.Name) })
		},
	}
}

// upgraded is a shell test that node name is done: its kubelet runs v and, on a control
// plane, its static pods do.
func (s Spec) upgraded(name string) string {
	test := kubeletAt(s.K.Version) + ` && [ "$(systemctl show -p ActiveState --value kubelet)" = active ]`
	if n, _ := s.K.Node(name); n.ControlPlane {
		test += " && " + controlPlaneAt(s.K.Version)
	}
	return test
}

// nodeConfigured is a shell test that kubeadm upgrade node has run for s's version: the
// static pods (control planes) or, on a worker, a kubelet that already is the new one.
func (s Spec) nodeConfigured(name string) string {
	if n, _ := s.K.Node(name); n.ControlPlane {
		return controlPlaneAt(s.K.Version)
	}
	return kubeletAt(s.K.Version)
}

// replaceKubelet drains the node, installs the new kubelet and kubectl and restarts kubelet.
func (s Spec) replaceKubelet(ctx context.Context, t *pipeline.Target, cs k8s.Interface) error {
	if err := apiCall(ctx, func() error { return Cordon(ctx, cs, t.Name) }); err != nil {
		return err
	}
	o := s.Drain
	o.Log = func(format string, args ...any) { t.Log.Info(fmt.Sprintf(format, args...)) }
	t.Log.Info("drain")
	if err := drain.Drain(ctx, cs, t.Name, o); err != nil {
		return err
	}
	t.Log.Info("kubelet and kubectl " + s.K.Version)
	if _, err := binaries.Upload(ctx, t, s.K.Files, binaries.To(kubernetes.BinDir, "kubelet", "kubectl")); err != nil {
		return err
	}
	if _, err := t.Sudo(ctx, "systemctl daemon-reload && systemctl restart kubelet"); err != nil {
		return fmt.Errorf("restart kubelet: %w", err)
	}
	return nil
}

// waitLocalAPI waits until the kube-apiserver of t's control plane answers /readyz.
func (s Spec) waitLocalAPI(ctx context.Context, t *pipeline.Target) error {
	secs := int(s.NodeReadyTimeout / time.Second)
	_, err := t.Sudo(ctx, `for i in $(seq `+strconv.Itoa(max(secs/2, 1))+`); do if `+kubernetes.LocalAPIReady(s.K.BindPort)+`; then exit 0; fi; sleep 2; done; `+
		`echo "kube-apiserver does not answer /readyz on 127.0.0.1:`+strconv.Itoa(s.K.BindPort)+` after `+s.NodeReadyTimeout.String()+`" >&2; exit 1`)
	return err
}

// waitNode waits until the node is Ready and reports the step's kubelet version.
func (s Spec) waitNode(ctx context.Context, cs k8s.Interface, name string) error {
	deadline := time.Now().Add(s.NodeReadyTimeout)
	var last string
	for {
		n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		switch {
		case err != nil:
			last = err.Error()
		case n.Status.NodeInfo.KubeletVersion != s.K.Version:
			last = "kubelet reports " + n.Status.NodeInfo.KubeletVersion
		case !NodeReady(n):
			last = "not Ready"
		default:
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s is not Ready on kubelet %s after %s: %s", name, s.K.Version, s.NodeReadyTimeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// NodeReady reports whether the node's Ready condition is true.
func NodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// marked reports whether kk cordoned the node and has not uncordoned it yet.
func (s Spec) marked(ctx context.Context, name string) (bool, error) {
	cs, err := s.Client(ctx)
	if err != nil {
		return false, err
	}
	var n *corev1.Node
	err = apiCall(ctx, func() (err error) {
		n, err = cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		return err
	})
	if err != nil {
		return false, fmt.Errorf("node %s: %w", name, err)
	}
	_, ok := n.Annotations[DrainedAnnotation]
	return ok, nil
}

// apiCall makes an API call through pipeline/retry: an API server restarting during the
// upgrade (kk's client then fails over to another control plane) is waited out, and so is
// one that has just started, which refuses with 403 what RBAC allows until its caches are
// synced (a real refusal fails a minute later).
func apiCall(ctx context.Context, call func() error) error {
	_, err := retry.Do(ctx, retry.Policy{Attempts: 8, Initial: 2 * time.Second, Cap: 10 * time.Second},
		func(err error) bool { return !apierrors.IsNotFound(err) },
		func(context.Context, int) error { return call() }, nil)
	return err
}

// Cordon marks the node unschedulable and, when it was schedulable, records that kk did it.
func Cordon(ctx context.Context, cs k8s.Interface, name string) error {
	n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("node %s: %w", name, err)
	}
	if n.Spec.Unschedulable {
		return nil // the user's cordon (or kk's, already marked): kept as it is
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"true"}},"spec":{"unschedulable":true}}`, DrainedAnnotation)
	if _, err := cs.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("cordon node %s: %w", name, err)
	}
	return nil
}

// Uncordon makes a node kk cordoned schedulable again.
func Uncordon(ctx context.Context, cs k8s.Interface, name string) error {
	n, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("node %s: %w", name, err)
	}
	if _, ok := n.Annotations[DrainedAnnotation]; !ok {
		return nil
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:null}},"spec":{"unschedulable":false}}`, DrainedAnnotation)
	if _, err := cs.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("uncordon node %s: %w", name, err)
	}
	return nil
}
