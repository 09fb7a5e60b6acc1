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
	TaskKubeVIP         = "loadbalancer/kube-vip"
)

// Tasks returns the tasks that write the load balancer's files, after facts are gathered
// and before any node joins: haproxy.cfg and the haproxy static pod on the haproxy
// workers, or the kube-vip static pod on the control planes. Nothing for None. Each task
// checks the file's sha256 first, so a converged host reports 0 changed.
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
		return []pipeline.Task{KubeVIPManifestTask(s, TaskKubeVIP, after)}
	}
	return nil
}

// KubeVIPManifestTask writes the kube-vip static pod on every control plane. Run it again
// under another name after kubeadm init to switch the first control plane from
// super-admin.conf to admin.conf (it reports changed once, then ok).
func KubeVIPManifestTask(s Spec, name string, after []string) pipeline.Task {
	k := s.KubeVIP
	var names []string
	for _, h := range k.Hosts {
		names = append(names, h.Name)
	}
	render := func(ctx context.Context, t *pipeline.Target) ([]byte, error) {
		iface := k.Interface
		if iface == "" {
			var err error
			if iface, err = routeInterface(ctx, t, k.Address); err != nil {
				return nil, err
			}
		}
		admin, err := t.Test(ctx, "[ -s /etc/kubernetes/admin.conf ]")
		if err != nil {
			return nil, err
		}
		return RenderKubeVIPManifest(k, t.Name, iface, KubeVIPKubeconfig(k, t.Name, admin))
	}
	return fileTask(name, "kube-vip static pod ("+k.Mode+", VIP "+k.Address+")", pipeline.Named(names...), after,
		manifestPath(k.ManifestDir, "kube-vip"), render)
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
