package versions

import (
	"slices"
	"strings"
	"testing"
)

func TestForKnownMinors(t *testing.T) {
	for _, minor := range Supported() {
		s, err := For(minor + ".3")
		if err != nil {
			t.Fatal(err)
		}
		if s.Kubernetes != minor+".3" || s.Crictl != minor+".0" {
			t.Errorf("%s: %+v", minor, s)
		}
		for name, v := range map[string]string{"etcd": s.Etcd, "etcd image": s.EtcdImage, "coredns": s.CoreDNS, "pause": s.Pause,
			"cni": s.CNI, "containerd": s.Containerd, "runc": s.Runc, "docker": s.Docker, "cri-dockerd": s.CriDockerd, "helm": s.Helm} {
			if v == "" {
				t.Errorf("%s: no %s version", minor, name)
			}
		}
		// The stacked etcd image and the binary release are the same etcd.
		if !strings.HasPrefix(s.EtcdImage, strings.TrimPrefix(s.Etcd, "v")+"-") {
			t.Errorf("%s: etcd %s vs image %s", minor, s.Etcd, s.EtcdImage)
		}
	}
}

func TestForRejects(t *testing.T) {
	for _, v := range []string{"v1.20.1", "v2.0.0", "latest", ""} {
		if _, err := For(v); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
	_, err := For("v1.99.0")
	if err == nil || !strings.Contains(err.Error(), "v1.34") {
		t.Errorf("error does not list the supported minors: %v", err)
	}
}

func TestImages(t *testing.T) {
	s, err := For("1.34.1")
	if err != nil {
		t.Fatal(err)
	}
	imgs := s.KubeImages(true)
	for _, want := range []string{"registry.k8s.io/kube-apiserver:v1.34.1", "registry.k8s.io/kube-proxy:v1.34.1",
		"registry.k8s.io/pause:3.10.1", "registry.k8s.io/coredns/coredns:v1.12.1"} {
		if !slices.Contains(imgs, want) {
			t.Errorf("missing %s in %v", want, imgs)
		}
	}
	if slices.ContainsFunc(s.KubeImages(false), func(i string) bool { return strings.Contains(i, "kube-proxy") }) {
		t.Error("kube-proxy listed without proxy")
	}
	for _, p := range []string{"calico", "flannel", "cilium", "kubeovn", "hybridnet"} {
		if imgs, err := s.CNIImages(p); err != nil || len(imgs) == 0 {
			t.Errorf("%s: %v %v", p, imgs, err)
		}
	}
	if imgs, err := s.CNIImages("none"); err != nil || imgs != nil {
		t.Errorf("none: %v %v", imgs, err)
	}
	if _, err := s.CNIImages("weave"); err == nil {
		t.Error("unknown plugin accepted")
	}
	if Latest().Kubernetes != "v1.34.0" {
		t.Errorf("latest %s", Latest().Kubernetes)
	}
}
