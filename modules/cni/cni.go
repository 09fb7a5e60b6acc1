// Package cni installs the cluster's pod network: it renders the manifests of the configured
// plugin (templates/files/cni) from the cluster model and applies them from the machine kk runs
// on, through the API server (package kubeapply), then waits until the plugin's DaemonSet is
// ready on every node.
//
// Flannel is the plugin kk's end-to-end tests run. Calico's manifest is upstream's (calico.go);
// Cilium's is a compact one written for kk. Both render, decode and apply against a real API
// server, but no test here runs their pods.
// Plugin "none" installs nothing (the user brings a network).
package cni

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/versions"
	"github.com/kk-project/kk/modules/kubeapply"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/templates"
)

// Plugin names (config.Network.Plugin).
const (
	Flannel = "flannel"
	Calico  = "calico"
	Cilium  = "cilium"
	None    = "none"
)

// Upstream images of each plugin. Flannel's and calico's come from kk's version table
// (artifacts/versions), the list `kk create manifest` bundles too.
const (
	CiliumVersion       = "v1.17.4"
	CiliumImage         = "quay.io/cilium/cilium:v1.17.4"
	CiliumOperatorImage = "quay.io/cilium/operator-generic:v1.17.4"
)

// Options tunes Manifests. Images are upstream references (before the cluster's registry
// settings are applied); empty ones take the defaults above (Calico's: kk's version table,
// artifacts/versions).
type Options struct {
	FlannelImage           string
	FlannelCNIPluginImage  string
	CalicoCNIImage         string
	CalicoNodeImage        string
	CalicoControllersImage string
	CalicoTyphaImage       string
	CiliumImage            string
	CiliumOperatorImage    string
}

// Manifests renders the multi-document YAML of c.Network.Plugin; it returns nil for "none".
// Images follow c.Registry (see ImageRef).
func Manifests(c *config.Cluster, o Options) ([]byte, error) {
	switch c.Network.Plugin {
	case None, "":
		return nil, nil
	case Flannel:
		return flannel(c, o)
	case Calico:
		return calico(c, o)
	case Cilium:
		return cilium(c, o)
	}
	return nil, fmt.Errorf("network plugin %q: kk ships manifests for flannel, calico and cilium (or none)", c.Network.Plugin)
}

// imageSet is the version table's set for the cluster's Kubernetes version (the newest for a
// version kk does not know, which validation refuses before anything runs).
func imageSet(c *config.Cluster) versions.Set {
	if s, err := versions.For(c.Kubernetes.Version); err == nil {
		return s
	}
	return versions.Latest()
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// podCIDRs splits KubePodsCIDR ("v4", "v6" or "v4,v6") into its IPv4 and IPv6 parts.
func podCIDRs(c *config.Cluster) (v4, v6 string, err error) {
	for _, s := range strings.Split(c.Network.KubePodsCIDR, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		ip, _, perr := net.ParseCIDR(s)
		if perr != nil {
			return "", "", fmt.Errorf("kubePodsCIDR %q: %w", c.Network.KubePodsCIDR, perr)
		}
		if ip.To4() != nil {
			v4 = s
		} else {
			v6 = s
		}
	}
	if v4 == "" && v6 == "" {
		return "", "", fmt.Errorf("kubePodsCIDR is empty")
	}
	return v4, v6, nil
}

func jsonIndent(v any) (string, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return string(b), err
}

// FlannelNetConf is flannel's net-conf.json.
type FlannelNetConf struct {
	Network        string         `json:"Network,omitempty"`
	IPv6Network    string         `json:"IPv6Network,omitempty"`
	EnableIPv4     bool           `json:"EnableIPv4"`
	EnableIPv6     bool           `json:"EnableIPv6"`
	EnableNFTables bool           `json:"EnableNFTables"`
	Backend        FlannelBackend `json:"Backend"`
}

// FlannelBackend is the Backend section of net-conf.json.
type FlannelBackend struct {
	Type          string `json:"Type"`
	DirectRouting bool   `json:"DirectRouting,omitempty"`
}

func flannel(c *config.Cluster, o Options) ([]byte, error) {
	v4, v6, err := podCIDRs(c)
	if err != nil {
		return nil, err
	}
	set := imageSet(c)
	backend := or(c.Network.Flannel.BackendMode, "vxlan")
	nc := FlannelNetConf{Network: v4, IPv6Network: v6, EnableIPv4: v4 != "", EnableIPv6: v6 != "",
		Backend: FlannelBackend{Type: backend, DirectRouting: c.Network.Flannel.DirectRouting}}
	netConf, err := jsonIndent(nc)
	if err != nil {
		return nil, err
	}
	// CNI spec 0.3.1: every flannel CNI plugin speaks it (the flannel-io/cni-plugin 1.x and
	// the older containernetworking one alike), and so does portmap.
	cniConf, err := jsonIndent(map[string]any{
		"name": "cbr0", "cniVersion": "0.3.1",
		"plugins": []any{
			map[string]any{"type": "flannel", "delegate": map[string]any{"hairpinMode": true, "isDefaultGateway": true}},
			map[string]any{"type": "portmap", "capabilities": map[string]any{"portMappings": true}},
		},
	})
	if err != nil {
		return nil, err
	}
	var extra []string
	return templates.Render("cni/flannel.yaml", map[string]any{
		"Version":        set.Addons.Flannel,
		"Backend":        backend,
		"NetConf":        netConf,
		"CNIConf":        cniConf,
		"Image":          ImageRef(c.Registry, or(o.FlannelImage, set.FlannelImage())),
		"CNIPluginImage": ImageRef(c.Registry, or(o.FlannelCNIPluginImage, set.FlannelCNIPluginImage())),
		"ExtraArgs":      extra,
	})
}

func cilium(c *config.Cluster, o Options) ([]byte, error) {
	v4, _, err := podCIDRs(c)
	if err != nil {
		return nil, err
	}
	if v4 == "" {
		return nil, fmt.Errorf("cilium: kk's cilium manifest needs an IPv4 pod CIDR (kubePodsCIDR %q)", c.Network.KubePodsCIDR)
	}
	mask := c.Kubernetes.NodeCidrMaskSize
	if mask == 0 {
		mask = 24
	}
	return templates.Render("cni/cilium.yaml", map[string]any{
		"Version":       CiliumVersion,
		"Accounts":      []string{"cilium", "cilium-operator"},
		"ClusterName":   or(c.Name, "default"),
		"PodCIDR":       v4,
		"MaskSize":      mask,
		"Image":         ImageRef(c.Registry, or(o.CiliumImage, CiliumImage)),
		"OperatorImage": ImageRef(c.Registry, or(o.CiliumOperatorImage, CiliumOperatorImage)),
	})
}

// ImageRef rewrites an upstream image reference for the cluster's registry settings, as
// KubeKey does. Without a PrivateRegistry the reference is returned unchanged. With one, the
// registry host is replaced by PrivateRegistry and the namespace (the path between host and
// repository name; "library" for Docker Hub images that have none) becomes:
//   - NamespaceOverride, when set;
//   - else, with NamespaceRewrite policy "changePrefix", the namespace with its first matching
//     Src prefix replaced by Dest (or Dest/namespace when no Src matches);
//   - else the namespace unchanged.
//
// ghcr.io/flannel-io/flannel:v0.28.10 with PrivateRegistry reg.local:5000 becomes
// reg.local:5000/flannel-io/flannel:v0.28.10, and reg.local:5000/kubesphereio/flannel:v0.28.10
// with NamespaceOverride kubesphereio.
func ImageRef(reg config.Registry, ref string) string {
	if reg.PrivateRegistry == "" {
		return ref
	}
	host, rest := splitHost(ref)
	ns, repo := "", rest
	if i := strings.LastIndex(rest, "/"); i >= 0 {
		ns, repo = rest[:i], rest[i+1:]
	}
	if ns == "" && host == "docker.io" {
		ns = "library"
	}
	switch {
	case reg.NamespaceOverride != "":
		ns = reg.NamespaceOverride
	case reg.NamespaceRewrite != nil && strings.EqualFold(reg.NamespaceRewrite.Policy, "changePrefix") && reg.NamespaceRewrite.Dest != "":
		rw := reg.NamespaceRewrite
		matched := false
		for _, src := range rw.Src {
			if src != "" && strings.HasPrefix(ns, src) {
				ns = rw.Dest + strings.TrimPrefix(ns, src)
				matched = true
				break
			}
		}
		if !matched {
			ns = strings.Trim(rw.Dest+"/"+ns, "/")
		}
	}
	out := strings.TrimSuffix(reg.PrivateRegistry, "/") + "/"
	if ns != "" {
		out += ns + "/"
	}
	return out + repo
}

// splitHost splits "host/path:tag" into host and "path:tag"; references without a registry
// host are Docker Hub's.
func splitHost(ref string) (host, rest string) {
	first, after, ok := strings.Cut(ref, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first, after
	}
	return "docker.io", ref
}

// Spec is what the network task applies.
type Spec struct {
	// Plugin is c.Network.Plugin.
	Plugin string
	// Objects are the decoded manifests (none for plugin "none").
	Objects []*unstructured.Unstructured
	// WaitTimeout bounds the wait for the plugin to be ready (default 10 minutes).
	WaitTimeout time.Duration
}

// NewSpec renders and decodes the manifests of c's network plugin.
func NewSpec(c *config.Cluster, o Options) (Spec, error) {
	docs, err := Manifests(c, o)
	if err != nil {
		return Spec{}, err
	}
	objs, err := kubeapply.Decode(docs)
	if err != nil {
		return Spec{}, fmt.Errorf("network plugin %s: %w", c.Network.Plugin, err)
	}
	return Spec{Plugin: c.Network.Plugin, Objects: objs, WaitTimeout: 10 * time.Minute}, nil
}

// Install applies s's manifests with server-side apply and waits until every object is ready
// (the DaemonSet available on every node). It returns what the apply did.
func Install(ctx context.Context, cfg *rest.Config, s Spec) (kubeapply.Result, error) {
	if len(s.Objects) == 0 {
		return kubeapply.Result{}, nil
	}
	c, err := kubeapply.NewClient(cfg)
	if err != nil {
		return kubeapply.Result{}, err
	}
	return c.Install(ctx, "network plugin "+s.Plugin, s.Objects, s.WaitTimeout)
}

// Converged reports whether s is applied as is (a server-side dry run changes nothing) and
// every object is ready; not-ready objects are described in the returned reason.
func Converged(ctx context.Context, cfg *rest.Config, s Spec) (bool, string, error) {
	if len(s.Objects) == 0 {
		return true, "", nil
	}
	c, err := kubeapply.NewClient(cfg)
	if err != nil {
		return false, "", err
	}
	return c.Converged(ctx, "network plugin "+s.Plugin, s.Objects)
}

// TaskName is the name of the task Task returns.
const TaskName = "network/cni"

// Task returns the pipeline task that installs the network plugin. It runs once, on the first
// control-plane host, but talks to the API server from the kk machine with the rest.Config
// that kubeconfig returns (the admin kubeconfig, fetched after kubeadm init). Check is a
// server-side dry run plus a readiness poll, so a converged cluster reports ok; Run applies
// and waits, and reports changed only when an object was created or configured.
func Task(s Spec, kubeconfig func(ctx context.Context) (*rest.Config, error), after []string) pipeline.Task {
	return pipeline.Task{
		Name: TaskName, Desc: "install the " + s.Plugin + " pod network", After: after,
		Hosts: pipeline.FirstOf(string(config.RoleControlPlane)),
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if len(s.Objects) == 0 {
				return true, nil
			}
			cfg, err := kubeconfig(ctx)
			if err != nil {
				return false, err
			}
			ok, why, err := Converged(ctx, cfg, s)
			if err == nil && !ok && t.Log != nil {
				t.Log.Info("network plugin not converged", "reason", why)
			}
			return ok, err
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			cfg, err := kubeconfig(ctx)
			if err != nil {
				return false, err
			}
			res, err := Install(ctx, cfg, s)
			if t.Log != nil && len(res.Objects) > 0 {
				t.Log.Info("network plugin applied", "plugin", s.Plugin, "result", res.String())
			}
			return res.Changed() > 0, err
		},
		Timeout: max(s.WaitTimeout, 10*time.Minute) + 2*time.Minute,
	}
}
