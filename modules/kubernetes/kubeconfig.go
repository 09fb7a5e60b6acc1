package kubernetes

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// APIServer is one API server the local admin kubeconfig names: a control plane (Node) or
// the load balancer's address (Node "").
type APIServer struct {
	Node string
	URL  string
}

// LocalKubeconfig is the admin kubeconfig for the machine kk runs on, from the control
// plane's admin.conf: one cluster and context per server, so that kubectl keeps a way in when
// a control plane is down (kubectl config use-context, or kk kubeconfig, which makes the
// first reachable one current). The first server's context keeps admin.conf's names; the
// others are suffixed with their node. current indexes servers.
func LocalKubeconfig(admin []byte, servers []APIServer, current int) ([]byte, error) {
	if len(servers) == 0 {
		return nil, fmt.Errorf("admin kubeconfig: no API server to name")
	}
	if len(servers) == 1 {
		return RewriteServer(admin, servers[0].URL)
	}
	in, err := clientcmd.Load(admin)
	if err != nil {
		return nil, fmt.Errorf("read admin kubeconfig: %w", err)
	}
	ctx, ok := in.Contexts[in.CurrentContext]
	if !ok || in.Clusters[ctx.Cluster] == nil || in.AuthInfos[ctx.AuthInfo] == nil {
		return nil, fmt.Errorf("admin kubeconfig: its current context %q names no cluster or user", in.CurrentContext)
	}
	out := clientcmdapi.NewConfig()
	out.AuthInfos[ctx.AuthInfo] = in.AuthInfos[ctx.AuthInfo]
	for i, s := range servers {
		cluster, context := ctx.Cluster, in.CurrentContext
		if i > 0 {
			cluster, context = ctx.Cluster+"-"+s.Node, in.CurrentContext+"-"+s.Node
		}
		c := in.Clusters[ctx.Cluster].DeepCopy()
		c.Server = s.URL
		out.Clusters[cluster] = c
		out.Contexts[context] = &clientcmdapi.Context{Cluster: cluster, AuthInfo: ctx.AuthInfo}
		if i == current {
			out.CurrentContext = context
		}
	}
	return clientcmd.Write(*out)
}

// FirstReachable is the index of the first server whose address accepts a TCP connection
// from here within timeout each (0 when none does).
func FirstReachable(servers []APIServer, timeout time.Duration) int {
	for i, s := range servers {
		if reachable(s.URL, timeout) {
			return i
		}
	}
	return 0
}

func reachable(server string, timeout time.Duration) bool {
	u, err := url.Parse(server)
	if err != nil {
		return false
	}
	c, err := net.DialTimeout("tcp", u.Host, timeout)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// RESTConfig loads the admin kubeconfig at path for kk's own calls: its current context when
// that server answers, else the first context whose server does (a kubeconfig kk wrote has
// one per control plane).
func RESTConfig(path string) (*rest.Config, error) {
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("admin kubeconfig %s: %w", path, err)
	}
	use := cfg.CurrentContext
	if c, ok := cfg.Contexts[use]; ok && cfg.Clusters[c.Cluster] != nil && !reachable(cfg.Clusters[c.Cluster].Server, 2*time.Second) {
		for name, other := range cfg.Contexts {
			if cl := cfg.Clusters[other.Cluster]; cl != nil && other.AuthInfo == c.AuthInfo && reachable(cl.Server, 2*time.Second) {
				use = name
				break
			}
		}
	}
	rc, err := clientcmd.NewNonInteractiveClientConfig(*cfg, use, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("admin kubeconfig %s: %w", path, err)
	}
	// the other control planes of the same user: a connection goes to the first that takes
	// it, so kk's calls outlive an API server restarting (an upgrade, a renewal)
	var others []string
	for _, c := range cfg.Contexts {
		if cl := cfg.Clusters[c.Cluster]; cl != nil && c.AuthInfo == cfg.Contexts[use].AuthInfo {
			if u, err := url.Parse(cl.Server); err == nil && u.Host != "" && !slices.Contains(others, u.Host) {
				others = append(others, u.Host)
			}
		}
	}
	if len(others) > 1 {
		slices.Sort(others)
		// every API server certificate kubeadm issues names "kubernetes"; the addresses of
		// control planes that joined later are not in the others' certificates
		rc.TLSClientConfig.ServerName = "kubernetes"
		rc.Dial = failoverDial(others)
	}
	return rc, nil
}

// failoverDial dials the address asked for, else each of others in turn.
func failoverDial(others []string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		first, err := dialWithin(ctx, &d, network, addr)
		if err == nil {
			return first, nil
		}
		for _, o := range others {
			if o == addr {
				continue
			}
			if c, e := dialWithin(ctx, &d, network, o); e == nil {
				return c, nil
			}
		}
		return nil, err
	}
}

func dialWithin(ctx context.Context, d *net.Dialer, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return d.DialContext(ctx, network, addr)
}
