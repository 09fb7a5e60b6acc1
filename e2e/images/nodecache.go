package images

import (
	"fmt"

	"github.com/kk-project/kk/e2e/mirror"
)

// nodeCacheImages is registry.k8s.io/dns/k8s-dns-node-cache:<spec.NodeCache> (nodelocaldns,
// which kk deploys by default) when the spec names it: the mirror's node-cache stand-in
// (CoreDNS's coremain and the plugins node-cache links, plus node-cache's interface and
// iptables setup; see e2e/mirror/nodecache.go) at /node-cache, upstream's entrypoint, with
// iptables from Debian as in flannel's and kube-proxy's images. None when NodeCache or the
// CoreDNS it is built from is not set.
func nodeCacheImages(r *recipes, spec mirror.Spec) ([]Image, error) {
	if spec.NodeCache == "" {
		return nil, nil
	}
	if spec.CoreDNS == "" {
		return nil, fmt.Errorf("node-cache %s: the mirror builds it from CoreDNS, and the spec names no CoreDNS release", spec.NodeCache)
	}
	return []Image{{
		Repository: "registry.k8s.io/dns/k8s-dns-node-cache", Tags: []string{spec.NodeCache}, Version: spec.NodeCache,
		Note: fmt.Sprintf("kk's stand-in for node-cache %s (k8s.io/dns is not served here): CoreDNS %s with node-cache's flags, dummy interface and iptables rules",
			spec.NodeCache, spec.CoreDNS),
		layers: []*layerSpec{r.base, r.busybox, r.glibc, r.iptables, {name: "node-cache-" + spec.NodeCache + "-" + spec.CoreDNS, files: []input{
			{dst: "node-cache", mode: 0o755, src: r.mirrorFile(mirror.NodeCachePath(spec.NodeCache))}}}},
		config: imageConfig{Entrypoint: []string{"/node-cache"}, Env: []string{defaultPath},
			Ports: []string{"53/tcp", "53/udp", "9253/tcp", "9353/tcp"}},
		requires: []string{"node-cache", "usr/sbin/iptables", "usr/sbin/ip6tables", "usr/sbin/iptables-restore", "bin/sh"},
	}}, nil
}
