package images

import (
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/e2e/mirror"
)

// TestOfComponents: make demo's selection keeps the images whose mirror files its components
// build, and the images made of kk's own programs and Debian packages; it drops the others.
func TestOfComponents(t *testing.T) {
	spec := mirror.DefaultSpec()
	spec, err := spec.SelectKubernetes(spec.Kubernetes[:1])
	if err != nil {
		t.Fatal(err)
	}
	k8s := spec.Kubernetes[0]
	imgs, err := Images(spec, "/m", "/b", DebVersions{HAProxy: "2.6.12-1+deb12u4", Busybox: "1:1.35.0-4+b3"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ofComponents(imgs, spec, "/m", []string{"k8s", "etcd", "coredns"})
	if err != nil {
		t.Fatal(err)
	}
	var repos []string
	for _, im := range got {
		repos = append(repos, im.Repository)
	}
	want := []string{"registry.k8s.io/pause", ProbeRepository,
		"registry.k8s.io/kube-apiserver", "registry.k8s.io/kube-controller-manager", "registry.k8s.io/kube-scheduler", "registry.k8s.io/kube-proxy",
		"registry.k8s.io/etcd", "registry.k8s.io/coredns/coredns", "registry.k8s.io/dns/k8s-dns-node-cache",
		"docker.io/library/busybox", "docker.io/library/haproxy"} // Debian-made images stay: busybox, haproxy
	if !slices.Equal(repos, want) {
		t.Errorf("ofComponents(k8s,etcd,coredns) = %q, want %q", repos, want)
	}
	for _, im := range got {
		if strings.HasPrefix(im.Repository, "registry.k8s.io/kube-") && im.Tags[0] != k8s {
			t.Errorf("%s: another Kubernetes version than %s", im.Ref(), k8s)
		}
	}

	if _, err := ofComponents(imgs, spec, "/m", []string{"k8s", "nginx"}); err == nil || !strings.Contains(err.Error(), "nginx") {
		t.Errorf("unknown component: %v, want an error naming it", err)
	}
	// A mirror file that no artifact of the spec lists is reported, not silently kept or dropped.
	bare := spec
	bare.CoreDNS = ""
	if _, err := ofComponents(imgs, bare, "/m", []string{"k8s"}); err == nil || !strings.Contains(err.Error(), "coredns") {
		t.Errorf("image from a file outside the spec: %v, want an error naming it", err)
	}
}
