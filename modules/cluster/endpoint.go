package cluster

import (
	"context"
	"fmt"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/loadbalancer"
	"github.com/kk-project/kk/modules/osprep"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

// With internalLoadbalancer haproxy, the API server's domain means different things over a
// node's life: before it joins, the first control plane (the only API server that answers
// for it: its own haproxy or API server does not run yet); once joined, its own API server
// (control planes) or the haproxy on 127.0.0.1 (workers), as KubeKey sets it up. kubelet
// and kube-proxy keep using the domain, so nothing but this line of /etc/hosts changes.
// Two tasks keep it: one before kubeadm runs, one after the node joined (and its haproxy
// answers); both compute the same answer on a converged cluster, so re-runs change nothing.
const (
	endpointBegin = "# BEGIN kk API server endpoint"
	endpointEnd   = "# END kk API server endpoint"

	// TaskEndpointJoin and TaskEndpoint are the two tasks that keep the domain's line.
	TaskEndpointJoin = "loadbalancer/endpoint-join"
	TaskEndpoint     = "loadbalancer/endpoint"
)

// endpointManaged reports whether h's line for the API domain is kept by the endpoint tasks
// (rather than by the os phase's static entries).
func endpointManaged(c *config.Cluster, h *config.Host) bool {
	return c.ControlPlaneEndpoint.InternalLoadbalancer == config.LoadBalancerHAProxy && !c.ControlPlaneEndpoint.ExternalDNS &&
		c.ControlPlaneEndpoint.Domain != "" && (h.Has(config.RoleControlPlane) || h.Has(config.RoleWorker))
}

func endpointHosts(c *config.Cluster) []string {
	var out []string
	for _, h := range c.Hosts {
		if endpointManaged(c, h) {
			out = append(out, h.Name)
		}
	}
	return out
}

// osSpec is the OS spec with the API domain mapped per host: statically by the os phase, or
// by the endpoint tasks (haproxy mode).
func osSpec(c *config.Cluster) osprep.Spec {
	s := osprep.SpecFor(c)
	domain := c.ControlPlaneEndpoint.Domain
	if domain == "" || c.ControlPlaneEndpoint.ExternalDNS {
		return s
	}
	var common []osprep.HostEntry
	for _, e := range s.Hosts {
		if len(e.Names) == 1 && e.Names[0] == domain {
			continue
		}
		common = append(common, e)
	}
	s.Hosts = common
	s.PerHost = map[string][]osprep.HostEntry{}
	for _, h := range c.Hosts {
		if endpointManaged(c, h) {
			continue
		}
		if addr := loadbalancer.EndpointAddress(c, h.Name); addr != "" {
			s.PerHost[h.Name] = []osprep.HostEntry{{Address: addr, Names: []string{domain}}}
		}
	}
	return s
}

// joined is true once kubeadm has made the host a node.
const joinedTest = `[ -s /etc/kubernetes/kubelet.conf ]`

// endpointTask keeps the domain's line. Before the join (post false): the first control
// plane until the node has joined, then left alone. After the join (post true): the final
// address, written once the local haproxy answers (workers).
func endpointTask(c *config.Cluster, name string, after []string, post bool) pipeline.Task {
	domain := c.ControlPlaneEndpoint.Domain
	haproxy := loadbalancer.SpecFor(c).HAProxy
	render := func(ctx context.Context, t *pipeline.Target, addr string) (cur, want string, err error) {
		data, err := t.Fetch(ctx, "/etc/hosts")
		if err != nil {
			return "", "", fmt.Errorf("read /etc/hosts: %w", err)
		}
		return string(data), osprep.RenderBlock(string(data), endpointBegin, endpointEnd,
			[]osprep.HostEntry{{Address: addr, Names: []string{domain}}}), nil
	}
	desc := "map " + domain + " to the first control plane until the node joined"
	if post {
		desc = "map " + domain + " to the node's own API server or local haproxy"
	}
	return pipeline.Task{
		Name: name, Desc: desc, Hosts: pipeline.Named(endpointHosts(c)...), After: after,
		Retries: 1,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			addr := loadbalancer.EndpointAddress(c, t.Name)
			if !post {
				joined, err := t.Test(ctx, joinedTest)
				if err != nil || joined {
					return joined, err // a joined node's line is the post-join task's
				}
				addr = loadbalancer.JoinEndpointAddress(c, t.Name)
			} else if !c.Host(t.Name).Has(config.RoleControlPlane) {
				if up, err := t.Test(ctx, "timeout 3 "+loadbalancer.HAProxyUp(haproxy)); err != nil || !up {
					return false, err // Run waits for it, or says why not
				}
			}
			cur, want, err := render(ctx, t, addr)
			return cur == want, err
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			addr := loadbalancer.JoinEndpointAddress(c, t.Name)
			if post {
				addr = loadbalancer.EndpointAddress(c, t.Name)
				if !c.Host(t.Name).Has(config.RoleControlPlane) {
					// kubelet starts the haproxy static pod within seconds of its manifest
					if _, err := t.Sudo(ctx, loadbalancer.WaitHAProxy(haproxy, 90)); err != nil {
						return false, err
					}
				}
			}
			if addr == "" {
				return false, fmt.Errorf("no address for %s", domain)
			}
			_, want, err := render(ctx, t, addr)
			if err != nil {
				return false, err
			}
			return t.Upload(ctx, connector.File{Path: "/etc/hosts", Data: []byte(want), Mode: 0o644})
		},
	}
}
