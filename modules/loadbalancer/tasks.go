package loadbalancer

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

// Task names.
const (
	TaskHAProxyConfig   = "loadbalancer/haproxy-config"
	TaskHAProxyManifest = "loadbalancer/haproxy-manifest"
	// TaskKubeVIP writes kube-vip on the first control plane before kubeadm init;
	// TaskKubeVIPAdmin switches it to admin.conf once kubeadm init is done; TaskKubeVIPJoined
	// writes it on the other control planes once they joined (KubeVIPPostTasks).
	TaskKubeVIP       = "loadbalancer/kube-vip"
	TaskKubeVIPAdmin  = "loadbalancer/kube-vip-admin"
	TaskKubeVIPJoined = "loadbalancer/kube-vip-joined"
)

// Tasks returns the tasks that write the load balancer's files, after facts are gathered
// and before any node joins: haproxy.cfg and the haproxy static pod on the haproxy
// workers, or the kube-vip static pod on the first control plane (the VIP must answer for
// kubeadm init; see KubeVIPPostTasks for the rest). Nothing for None. Each task checks the
// file's sha256 first, so a converged host reports 0 changed.
func Tasks(s Spec) []pipeline.Task {
	after := []string{facts.TaskName}
	switch s.Mode {
	case HAProxy:
		if len(s.HAProxy.Hosts) == 0 {
			return nil
		}
		h := s.HAProxy
		hosts := pipeline.Named(h.Hosts...)
		return []pipeline.Task{
			fileTask(TaskHAProxyConfig, "haproxy configuration of the local API server load balancer", hosts, after,
				path.Join(h.ConfigDir, "haproxy.cfg"), func(context.Context, *pipeline.Target) ([]byte, error) { return RenderHAProxyConfig(h) }),
			fileTask(TaskHAProxyManifest, "haproxy static pod (127.0.0.1:"+strconv.Itoa(h.Port)+" to the API servers)", hosts, []string{TaskHAProxyConfig},
				manifestPath(h.ManifestDir, "haproxy"), func(context.Context, *pipeline.Target) ([]byte, error) { return RenderHAProxyManifest(h) }),
		}
	case KubeVIP:
		if s.KubeVIP.FirstHost == "" {
			return nil
		}
		return []pipeline.Task{KubeVIPManifestTask(s, TaskKubeVIP, []string{s.KubeVIP.FirstHost}, after)}
	}
	return nil
}

// KubeVIPPostTasks are kube-vip's tasks once kubeadm ran: on the first control plane, after
// afterInit, the manifest switched from super-admin.conf to admin.conf, waiting until kubelet
// replaced the running kube-vip and the VIP answers again (nodes that join after it find the
// VIP up); on every other control plane, after afterJoin (its kubeadm join), the manifest
// with admin.conf. Writing it only after the join keeps /etc/kubernetes/manifests empty for
// kubeadm join's preflight check DirAvailable--etc-kubernetes-manifests, and out of reach
// of the kubeadm reset kk runs before a join that failed half way.
func KubeVIPPostTasks(s Spec, afterInit, afterJoin []string) []pipeline.Task {
	k := s.KubeVIP
	if s.Mode != KubeVIP || k.FirstHost == "" {
		return nil
	}
	admin := KubeVIPManifestTask(s, TaskKubeVIPAdmin, []string{k.FirstHost}, afterInit)
	admin.Desc = "kube-vip on admin.conf once kubeadm init is done (VIP " + k.Address + " answering again)"
	run := admin.Run
	admin.Run = func(ctx context.Context, t *pipeline.Target) (bool, error) {
		old, err := t.Sudo(ctx, kubeVIPContainer)
		if err != nil {
			return false, fmt.Errorf("find the running kube-vip container: %w", err)
		}
		changed, err := run(ctx, t)
		if err != nil || !changed {
			return changed, err
		}
		if _, err := t.Sudo(ctx, WaitKubeVIPRestarted(k, strings.TrimSpace(old), 90)); err != nil {
			return true, err
		}
		return true, nil
	}
	out := []pipeline.Task{admin}
	var others []string
	for _, h := range k.Hosts {
		if h.Name != k.FirstHost {
			others = append(others, h.Name)
		}
	}
	if len(others) > 0 {
		out = append(out, KubeVIPManifestTask(s, TaskKubeVIPJoined, others, afterJoin))
	}
	return out
}

// kubeVIPContainer prints the ID of the running kube-vip container ("" when none).
const kubeVIPContainer = `crictl ps -q --state running --name '^kube-vip$' 2>/dev/null | head -n1`

// VIPUp is a shell command that succeeds when something accepts TCP connections on the VIP's
// API port (bash does the connecting).
func VIPUp(k KubeVIPSpec) string {
	return `timeout 3 bash -c ` + connector.Quote(`exec 3<>/dev/tcp/`+k.Address+`/`+strconv.Itoa(k.Port)) + ` 2>/dev/null`
}

// WaitKubeVIPRestarted is a shell command that waits (tries times, 2s apart) until a kube-vip
// container other than old runs and the VIP answers, and fails saying what to look at.
func WaitKubeVIPRestarted(k KubeVIPSpec, old string, tries int) string {
	return `old=` + connector.Quote(old) + `; i=0; while :; do new=$(` + kubeVIPContainer + `); ` +
		`if [ -n "$new" ] && [ "$new" != "$old" ] && ` + VIPUp(k) + `; then exit 0; fi; i=$((i+1)); ` +
		`if [ $i -ge ` + strconv.Itoa(tries) + ` ]; then echo "kube-vip did not come back with the VIP ` + k.Address + `:` + strconv.Itoa(k.Port) +
		` after its manifest changed (running container: ${new:-none}, was ${old:-none}; crictl ps -a --name kube-vip; crictl logs)" >&2; exit 1; fi; sleep 2; done`
}

// KubeVIPManifestTask writes the kube-vip static pod on hosts (control planes). The
// kubeconfig it mounts follows KubeVIPKubeconfig, so the same task run again after kubeadm
// init (under another name) switches the first control plane from super-admin.conf to
// admin.conf (it reports changed once, then ok).
func KubeVIPManifestTask(s Spec, name string, hosts, after []string) pipeline.Task {
	k := s.KubeVIP
	return fileTask(name, "kube-vip static pod ("+k.Mode+", VIP "+k.Address+")", pipeline.Named(hosts...), after,
		manifestPath(k.ManifestDir, "kube-vip"), func(ctx context.Context, t *pipeline.Target) ([]byte, error) { return renderKubeVIP(ctx, t, k, false) })
}

// WriteKubeVIPManifest writes the kube-vip static pod that kubeadm init needs on t (the first
// control plane) unless t holds it already: kubeadm init calls it right before it runs, after
// kubeadm reset emptied the manifest directory or over what an interrupted init left. It
// mounts super-admin.conf (Kubernetes >= v1.29) even where admin.conf exists: until kubeadm
// init has finished, admin.conf may lack its rights.
func WriteKubeVIPManifest(ctx context.Context, t *pipeline.Target, s Spec) (bool, error) {
	data, err := renderKubeVIP(ctx, t, s.KubeVIP, true)
	if err != nil {
		return false, err
	}
	// Upload leaves a file that already has this content and mode as it is
	return t.Upload(ctx, connector.File{Path: manifestPath(s.KubeVIP.ManifestDir, "kube-vip"), Data: data, Mode: 0o644})
}

// renderKubeVIP renders t's kube-vip manifest: the VIP on the configured interface (or the
// one t routes it through), the kubeconfig KubeVIPKubeconfig picks (as if admin.conf did not
// exist yet when beforeInit).
func renderKubeVIP(ctx context.Context, t *pipeline.Target, k KubeVIPSpec, beforeInit bool) ([]byte, error) {
	iface := k.Interface
	if iface == "" {
		var err error
		if iface, err = routeInterface(ctx, t, k.Address); err != nil {
			return nil, err
		}
	}
	admin := false
	if !beforeInit {
		var err error
		if admin, err = t.Test(ctx, "[ -s /etc/kubernetes/admin.conf ]"); err != nil {
			return nil, err
		}
	}
	return RenderKubeVIPManifest(k, t.Name, iface, KubeVIPKubeconfig(k, t.Name, admin))
}

// routeInterface is the interface the host routes addr through (or holds it on, when it is
// one of its own addresses: kube-vip already announces it there).
func routeInterface(ctx context.Context, t *pipeline.Target, addr string) (string, error) {
	q := connector.Quote(addr)
	out, err := t.Run(ctx, `r=$(ip -o route get `+q+`) || exit 1
case "$r" in
local*) ip -o addr show to `+q+` | awk '{print $2; exit}' ;;
*) printf '%s\n' "$r" | sed -n 's/.* dev \([^ ]*\).*/\1/p' ;;
esac`)
	if err != nil {
		return "", fmt.Errorf("find the interface for the VIP %s (set the kube-vip interface to skip this): %w", addr, err)
	}
	iface := strings.TrimSpace(out)
	if iface == "" || iface == "lo" {
		return "", fmt.Errorf("no interface routes the VIP %s (got %q): set the kube-vip interface", addr, iface)
	}
	return iface, nil
}

// fileTask keeps one root-owned file on the hosts identical to render's output.
func fileTask(name, desc string, hosts pipeline.Selector, after []string, p string,
	render func(context.Context, *pipeline.Target) ([]byte, error)) pipeline.Task {
	return pipeline.Task{
		Name: name, Desc: desc, Hosts: hosts, After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			data, err := render(ctx, t)
			if err != nil {
				return false, err
			}
			return t.Test(ctx, fileIs(p, data))
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			data, err := render(ctx, t)
			if err != nil {
				return false, err
			}
			return t.Upload(ctx, connector.File{Path: p, Data: data, Mode: 0o644})
		},
	}
}

// fileIs is a shell test that path holds exactly content.
func fileIs(p string, content []byte) string {
	return fmt.Sprintf(`[ -f %[1]s ] && [ "$(sha256sum < %[1]s | cut -d' ' -f1)" = %[2]s ]`, connector.Quote(p), sha256hex(content))
}

// HAProxyUp is a shell command that succeeds when haproxy answers 200 on its monitor
// endpoint and accepts connections on its API port; bash does the HTTP (no curl needed).
func HAProxyUp(h HAProxySpec) string {
	probe := fmt.Sprintf(`exec 3<>/dev/tcp/%[1]s/%[2]d && printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3 && head -n1 <&3 | grep -q ' 200' && exec 4<>/dev/tcp/%[1]s/%[3]d`,
		h.Bind, h.MonitorPort, h.Port)
	return `bash -c ` + connector.Quote(probe) + ` 2>/dev/null`
}

// WaitHAProxy is a shell command that waits (tries times, 2s apart) until HAProxyUp succeeds,
// and fails saying what to look at.
func WaitHAProxy(h HAProxySpec, tries int) string {
	return `i=0; until ` + HAProxyUp(h) + `; do i=$((i+1)); ` +
		`if [ $i -ge ` + strconv.Itoa(tries) + ` ]; then echo "haproxy does not answer on ` + h.Bind + `:` + strconv.Itoa(h.MonitorPort) + `/healthz and :` + strconv.Itoa(h.Port) +
		` (is the haproxy static pod running? crictl ps -a --name haproxy)" >&2; exit 1; fi; sleep 2; done`
}
