package images

import (
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/artifacts/versions"
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

// TestNvidiaDevicePluginImage: the device plugin's image is the reference kk's version table
// names, made of glibc and the mirror's binary, and --components nvidia-device-plugin builds it.
func TestNvidiaDevicePluginImage(t *testing.T) {
	spec := mirror.DefaultSpec()
	imgs, err := Images(spec, "/m", "/b", DebVersions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := ofComponents(imgs, spec, "/m", []string{"nvidia-device-plugin"})
	if err != nil {
		t.Fatal(err)
	}
	want := versions.Latest().NvidiaDevicePluginImage()
	var im *Image
	for i := range got {
		if got[i].Ref() == want {
			im = &got[i]
		}
	}
	if im == nil {
		t.Fatalf("ofComponents(nvidia-device-plugin) has no %s", want)
	}
	bin := im.layers[len(im.layers)-1].files
	if len(bin) != 1 || bin[0].dst != "usr/bin/nvidia-device-plugin" || bin[0].src != "/m"+mirror.NvidiaDevicePluginPath(spec.NvidiaDevicePlugin) {
		t.Errorf("%s: binary layer %+v", want, bin)
	}
	if !slices.ContainsFunc(im.layers, func(l *layerSpec) bool { return l.name == "glibc" }) {
		t.Errorf("%s: no glibc layer (the binary is linked dynamically)", want)
	}
	if !slices.Equal(im.config.Entrypoint, []string{"nvidia-device-plugin"}) || !slices.Contains(im.config.Env, "NVIDIA_VISIBLE_DEVICES=all") ||
		!slices.Contains(im.config.Env, "NVIDIA_DRIVER_CAPABILITIES=compute,utility") || !slices.Contains(im.config.Env, defaultPath) {
		t.Errorf("%s: config %+v", want, im.config)
	}
	spec.NvidiaDevicePlugin = "v0.17.3"
	if _, err := Images(spec, "/m", "/b", DebVersions{}); err == nil || !strings.Contains(err.Error(), "nvidia-device-plugin") {
		t.Errorf("another release than the version table's: %v", err)
	}
}
