package certs

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/etcd"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/modules/kubernetes"
	"github.com/kk-project/kk/pipeline"
)

// TaskRenewControlPlane renews kubeadm's certificates on the control planes.
const TaskRenewControlPlane = "certs/renew-control-plane"

// RenewPlan is what kk certs renew runs: kk's etcd PKI re-issued on this machine (etcd type
// kubekey) and its tasks, then the control planes one at a time, then the admin kubeconfig.
type RenewPlan struct {
	Tasks []pipeline.Task
	// EtcdIssued names the etcd certificates re-issued here (empty for other etcd types).
	EtcdIssued []string
	// Kubeconfig is the admin kubeconfig kk rewrites on this machine.
	Kubeconfig string
}

// NewRenewPlan builds kk certs renew for cluster c whose kk workdir is workdir; kk's etcd
// certificates are re-issued there now (a dry run does not build the plan: it lists).
func NewRenewPlan(c *config.Cluster, workdir string) (*RenewPlan, error) {
	ks, err := kubernetes.SpecFor(c, workdir, binaries.Files{})
	if err != nil {
		return nil, err
	}
	p := &RenewPlan{Kubeconfig: ks.Kubeconfig}
	cpAfter := []string{facts.TaskName}
	if c.Etcd.Type == config.EtcdKubeKey {
		es, err := etcd.RenewSpecFor(c, workdir, binaries.Files{})
		if err != nil {
			return nil, fmt.Errorf("etcd certificates: %w", err)
		}
		p.EtcdIssued = es.Issued
		p.Tasks = append(p.Tasks, etcd.RenewTasks(es)...)
		cpAfter = append(cpAfter, etcd.TaskHealth, etcd.TaskClientCerts)
	}
	urls := map[string]string{}
	for _, n := range ks.Nodes {
		if n.ControlPlane {
			urls[n.Name] = APIServerURL(n.Address, ks.BindPort)
		}
	}
	p.Tasks = append(p.Tasks,
		RenewControlPlaneTask(urls, cpAfter),
		kubernetes.KubeconfigTask(ks, []string{TaskRenewControlPlane}))
	return p, nil
}

// RenewControlPlaneTask renews kubeadm's certificates on each control plane (urls: its API
// server's URL by host name), one control plane at a time: kubeadm certs renew all, then its
// static pods restarted and waited for (RestartScript). The other control planes serve
// meanwhile, so the API behind the load balancer never goes away.
func RenewControlPlaneTask(urls map[string]string, after []string) pipeline.Task {
	var one sync.Mutex
	return pipeline.Task{
		Name: TaskRenewControlPlane, Desc: "kubeadm certs renew all, then the static pods restarted and ready (one control plane at a time)",
		Hosts: pipeline.Role(string(config.RoleControlPlane)), After: after,
		Timeout: 15 * time.Minute,
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			url, ok := urls[t.Name]
			if !ok {
				return false, fmt.Errorf("%s is not a control plane of the cluster", t.Name)
			}
			one.Lock()
			defer one.Unlock()
			t.Log.Info("renewing kubeadm's certificates and restarting the control plane", "apiServer", url)
			if _, err := t.Sudo(ctx, KubeadmRenewScript(url)); err != nil {
				return true, fmt.Errorf("renew the certificates of control plane %s: %w", t.Name, err)
			}
			return true, nil
		},
	}
}
