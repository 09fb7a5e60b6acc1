package catalog

import (
	"strings"
	"testing"
)

type want struct {
	url, sum, entry, file string
	format                Format
}

func upstreamCases() map[Component]want {
	gh := "https://github.com"
	return map[Component]want{
		{"kubeadm", "v1.34.1", "amd64"}: {"https://dl.k8s.io/release/v1.34.1/bin/linux/amd64/kubeadm",
			"https://dl.k8s.io/release/v1.34.1/bin/linux/amd64/kubeadm.sha256", "", "kubeadm/v1.34.1/amd64/kubeadm", Raw},
		{"kubelet", "1.34.1", "arm64"}: {"https://dl.k8s.io/release/v1.34.1/bin/linux/arm64/kubelet",
			"https://dl.k8s.io/release/v1.34.1/bin/linux/arm64/kubelet.sha256", "", "kubelet/v1.34.1/arm64/kubelet", Raw},
		{"kubectl", "v1.33.5", "arm64"}: {"https://dl.k8s.io/release/v1.33.5/bin/linux/arm64/kubectl",
			"https://dl.k8s.io/release/v1.33.5/bin/linux/arm64/kubectl.sha256", "", "kubectl/v1.33.5/arm64/kubectl", Raw},
		{"kube-apiserver", "v1.34.1", "amd64"}: {"https://dl.k8s.io/release/v1.34.1/bin/linux/amd64/kube-apiserver",
			"https://dl.k8s.io/release/v1.34.1/bin/linux/amd64/kube-apiserver.sha256", "", "kube-apiserver/v1.34.1/amd64/kube-apiserver", Raw},
		{"kube-controller-manager", "v1.34.1", "arm64"}: {"https://dl.k8s.io/release/v1.34.1/bin/linux/arm64/kube-controller-manager",
			"https://dl.k8s.io/release/v1.34.1/bin/linux/arm64/kube-controller-manager.sha256", "", "kube-controller-manager/v1.34.1/arm64/kube-controller-manager", Raw},
		{"kube-scheduler", "v1.34.1", "amd64"}: {"https://dl.k8s.io/release/v1.34.1/bin/linux/amd64/kube-scheduler",
			"https://dl.k8s.io/release/v1.34.1/bin/linux/amd64/kube-scheduler.sha256", "", "kube-scheduler/v1.34.1/amd64/kube-scheduler", Raw},
		{"kube-proxy", "v1.34.1", "arm64"}: {"https://dl.k8s.io/release/v1.34.1/bin/linux/arm64/kube-proxy",
			"https://dl.k8s.io/release/v1.34.1/bin/linux/arm64/kube-proxy.sha256", "", "kube-proxy/v1.34.1/arm64/kube-proxy", Raw},
		{"etcd", "v3.5.21", "amd64"}: {gh + "/etcd-io/etcd/releases/download/v3.5.21/etcd-v3.5.21-linux-amd64.tar.gz",
			gh + "/etcd-io/etcd/releases/download/v3.5.21/SHA256SUMS", "etcd-v3.5.21-linux-amd64.tar.gz",
			"etcd/v3.5.21/amd64/etcd-v3.5.21-linux-amd64.tar.gz", TarGz},
		{"etcd", "3.6.4", "arm64"}: {gh + "/etcd-io/etcd/releases/download/v3.6.4/etcd-v3.6.4-linux-arm64.tar.gz",
			gh + "/etcd-io/etcd/releases/download/v3.6.4/SHA256SUMS", "etcd-v3.6.4-linux-arm64.tar.gz",
			"etcd/v3.6.4/arm64/etcd-v3.6.4-linux-arm64.tar.gz", TarGz},
		{"containerd", "v2.1.4", "amd64"}: {gh + "/containerd/containerd/releases/download/v2.1.4/containerd-2.1.4-linux-amd64.tar.gz",
			gh + "/containerd/containerd/releases/download/v2.1.4/containerd-2.1.4-linux-amd64.tar.gz.sha256sum",
			"containerd-2.1.4-linux-amd64.tar.gz", "containerd/v2.1.4/amd64/containerd-2.1.4-linux-amd64.tar.gz", TarGz},
		{"containerd", "1.7.28", "arm64"}: {gh + "/containerd/containerd/releases/download/v1.7.28/containerd-1.7.28-linux-arm64.tar.gz",
			gh + "/containerd/containerd/releases/download/v1.7.28/containerd-1.7.28-linux-arm64.tar.gz.sha256sum",
			"containerd-1.7.28-linux-arm64.tar.gz", "containerd/v1.7.28/arm64/containerd-1.7.28-linux-arm64.tar.gz", TarGz},
		{"runc", "v1.3.0", "amd64"}: {gh + "/opencontainers/runc/releases/download/v1.3.0/runc.amd64",
			gh + "/opencontainers/runc/releases/download/v1.3.0/runc.sha256sum", "runc.amd64", "runc/v1.3.0/amd64/runc", Raw},
		{"runc", "v1.3.0", "arm64"}: {gh + "/opencontainers/runc/releases/download/v1.3.0/runc.arm64",
			gh + "/opencontainers/runc/releases/download/v1.3.0/runc.sha256sum", "runc.arm64", "runc/v1.3.0/arm64/runc", Raw},
		{"crictl", "v1.34.0", "amd64"}: {gh + "/kubernetes-sigs/cri-tools/releases/download/v1.34.0/crictl-v1.34.0-linux-amd64.tar.gz",
			gh + "/kubernetes-sigs/cri-tools/releases/download/v1.34.0/crictl-v1.34.0-linux-amd64.tar.gz.sha256",
			"crictl-v1.34.0-linux-amd64.tar.gz", "crictl/v1.34.0/amd64/crictl-v1.34.0-linux-amd64.tar.gz", TarGz},
		{"crictl", "v1.34.0", "arm64"}: {gh + "/kubernetes-sigs/cri-tools/releases/download/v1.34.0/crictl-v1.34.0-linux-arm64.tar.gz",
			gh + "/kubernetes-sigs/cri-tools/releases/download/v1.34.0/crictl-v1.34.0-linux-arm64.tar.gz.sha256",
			"crictl-v1.34.0-linux-arm64.tar.gz", "crictl/v1.34.0/arm64/crictl-v1.34.0-linux-arm64.tar.gz", TarGz},
		{"cni-plugins", "v1.7.1", "amd64"}: {gh + "/containernetworking/plugins/releases/download/v1.7.1/cni-plugins-linux-amd64-v1.7.1.tgz",
			gh + "/containernetworking/plugins/releases/download/v1.7.1/cni-plugins-linux-amd64-v1.7.1.tgz.sha256",
			"cni-plugins-linux-amd64-v1.7.1.tgz", "cni-plugins/v1.7.1/amd64/cni-plugins-linux-amd64-v1.7.1.tgz", TarGz},
		{"kubecni", "v1.7.1", "arm64"}: {gh + "/containernetworking/plugins/releases/download/v1.7.1/cni-plugins-linux-arm64-v1.7.1.tgz",
			gh + "/containernetworking/plugins/releases/download/v1.7.1/cni-plugins-linux-arm64-v1.7.1.tgz.sha256",
			"cni-plugins-linux-arm64-v1.7.1.tgz", "cni-plugins/v1.7.1/arm64/cni-plugins-linux-arm64-v1.7.1.tgz", TarGz},
		{"registry", "3.0.0", "amd64"}: {gh + "/distribution/distribution/releases/download/v3.0.0/registry_3.0.0_linux_amd64.tar.gz",
			gh + "/distribution/distribution/releases/download/v3.0.0/registry_3.0.0_linux_amd64.tar.gz.sha256",
			"registry_3.0.0_linux_amd64.tar.gz", "registry/v3.0.0/amd64/registry_3.0.0_linux_amd64.tar.gz", TarGz},
		{"registry", "v3.0.0", "arm64"}: {gh + "/distribution/distribution/releases/download/v3.0.0/registry_3.0.0_linux_arm64.tar.gz",
			gh + "/distribution/distribution/releases/download/v3.0.0/registry_3.0.0_linux_arm64.tar.gz.sha256",
			"registry_3.0.0_linux_arm64.tar.gz", "registry/v3.0.0/arm64/registry_3.0.0_linux_arm64.tar.gz", TarGz},
		{"helm", "v3.18.4", "amd64"}: {"https://get.helm.sh/helm-v3.18.4-linux-amd64.tar.gz",
			"https://get.helm.sh/helm-v3.18.4-linux-amd64.tar.gz.sha256", "helm-v3.18.4-linux-amd64.tar.gz",
			"helm/v3.18.4/amd64/helm-v3.18.4-linux-amd64.tar.gz", TarGz},
		{"helm", "v3.18.4", "arm64"}: {"https://get.helm.sh/helm-v3.18.4-linux-arm64.tar.gz",
			"https://get.helm.sh/helm-v3.18.4-linux-arm64.tar.gz.sha256", "helm-v3.18.4-linux-arm64.tar.gz",
			"helm/v3.18.4/arm64/helm-v3.18.4-linux-arm64.tar.gz", TarGz},
		{"calicoctl", "v3.30.2", "amd64"}: {gh + "/projectcalico/calico/releases/download/v3.30.2/calicoctl-linux-amd64",
			gh + "/projectcalico/calico/releases/download/v3.30.2/SHA256SUMS", "calicoctl-linux-amd64", "calicoctl/v3.30.2/amd64/calicoctl", Raw},
		{"calicoctl", "v3.30.2", "arm64"}: {gh + "/projectcalico/calico/releases/download/v3.30.2/calicoctl-linux-arm64",
			gh + "/projectcalico/calico/releases/download/v3.30.2/SHA256SUMS", "calicoctl-linux-arm64", "calicoctl/v3.30.2/arm64/calicoctl", Raw},
		{"cri-dockerd", "0.3.18", "amd64"}: {gh + "/Mirantis/cri-dockerd/releases/download/v0.3.18/cri-dockerd-0.3.18.amd64.tgz",
			"", "", "cri-dockerd/v0.3.18/amd64/cri-dockerd-0.3.18.amd64.tgz", TarGz},
		{"cri-dockerd", "v0.3.18", "arm64"}: {gh + "/Mirantis/cri-dockerd/releases/download/v0.3.18/cri-dockerd-0.3.18.arm64.tgz",
			"", "", "cri-dockerd/v0.3.18/arm64/cri-dockerd-0.3.18.arm64.tgz", TarGz},
		{"docker", "28.3.2", "amd64"}: {"https://download.docker.com/linux/static/stable/x86_64/docker-28.3.2.tgz",
			"", "", "docker/28.3.2/amd64/docker-28.3.2.tgz", TarGz},
		{"docker", "v28.3.2", "arm64"}: {"https://download.docker.com/linux/static/stable/aarch64/docker-28.3.2.tgz",
			"", "", "docker/28.3.2/arm64/docker-28.3.2.tgz", TarGz},
		{NvidiaDriver, "570.195.03", "amd64"}: {"https://us.download.nvidia.com/XFree86/Linux-x86_64/570.195.03/NVIDIA-Linux-x86_64-570.195.03.run",
			"", "", "nvidia-driver/570.195.03/amd64/NVIDIA-Linux-x86_64-570.195.03.run", Raw},
		{NvidiaDriver, "580.95.05", "arm64"}: {"https://us.download.nvidia.com/XFree86/Linux-aarch64/580.95.05/NVIDIA-Linux-aarch64-580.95.05.run",
			"", "", "nvidia-driver/580.95.05/arm64/NVIDIA-Linux-aarch64-580.95.05.run", Raw},
		{NvidiaContainerToolkit, "v1.20.2", "amd64"}: {gh + "/NVIDIA/nvidia-container-toolkit/releases/download/v1.20.2/nvidia-container-toolkit_1.20.2_deb_amd64.tar.gz",
			"", "", "nvidia-container-toolkit/v1.20.2/amd64/nvidia-container-toolkit_1.20.2_deb_amd64.tar.gz", TarGz},
		{NvidiaContainerToolkit, "1.20.2", "arm64"}: {gh + "/NVIDIA/nvidia-container-toolkit/releases/download/v1.20.2/nvidia-container-toolkit_1.20.2_deb_arm64.tar.gz",
			"", "", "nvidia-container-toolkit/v1.20.2/arm64/nvidia-container-toolkit_1.20.2_deb_arm64.tar.gz", TarGz},
		{"k3s", "v1.33.3+k3s1", "amd64"}: {gh + "/k3s-io/k3s/releases/download/v1.33.3%2Bk3s1/k3s",
			gh + "/k3s-io/k3s/releases/download/v1.33.3%2Bk3s1/sha256sum-amd64.txt", "k3s", "k3s/v1.33.3+k3s1/amd64/k3s", Raw},
		{"k3s", "v1.33.3", "arm64"}: {gh + "/k3s-io/k3s/releases/download/v1.33.3%2Bk3s1/k3s-arm64",
			gh + "/k3s-io/k3s/releases/download/v1.33.3%2Bk3s1/sha256sum-arm64.txt", "k3s-arm64", "k3s/v1.33.3+k3s1/arm64/k3s", Raw},
	}
}

func TestResolveUpstream(t *testing.T) {
	seen := map[string]bool{}
	for c, w := range upstreamCases() {
		a, err := Resolver{}.Resolve(c)
		if err != nil {
			t.Errorf("%v: %v", c, err)
			continue
		}
		seen[a.Component.Name] = true
		if a.URL != w.url || a.Checksum.URL != w.sum || a.Checksum.Entry != w.entry || a.File != w.file || a.Layout.Format != w.format {
			t.Errorf("%v:\n got url=%s\n     sum=%s entry=%q file=%s format=%s\nwant url=%s\n     sum=%s entry=%q file=%s format=%s",
				c, a.URL, a.Checksum.URL, a.Checksum.Entry, a.File, a.Layout.Format, w.url, w.sum, w.entry, w.file, w.format)
		}
		if a.Checksum.Pinned != "" {
			t.Errorf("%v: a checksum was pinned by the catalogue: %q", c, a.Checksum.Pinned)
		}
		if a.Layout.Format == Raw && !a.Layout.Executable {
			t.Errorf("%v: raw binary not executable", c)
		}
		if a.Layout.Format == TarGz && len(a.Layout.Members) == 0 {
			t.Errorf("%v: archive without members", c)
		}
	}
	for _, n := range Names() {
		if !seen[n] {
			t.Errorf("component %s has no URL test", n)
		}
	}
}

func TestArchiveMembers(t *testing.T) {
	a, err := Resolver{}.Resolve(Component{"etcd", "v3.5.21", "arm64"})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, m := range a.Layout.Members {
		got = append(got, m.Path)
	}
	want := "etcd-v3.5.21-linux-arm64/etcd etcd-v3.5.21-linux-arm64/etcdctl etcd-v3.5.21-linux-arm64/etcdutl"
	if strings.Join(got, " ") != want {
		t.Errorf("etcd members = %v, want %s", got, want)
	}
	h, _ := Resolver{}.Resolve(Component{"helm", "v3.18.4", "arm64"})
	if h.Layout.Members[0].Path != "linux-arm64/helm" {
		t.Errorf("helm member = %s", h.Layout.Members[0].Path)
	}
}

func TestMirrorKeepsPaths(t *testing.T) {
	r := Resolver{Mirror: "http://127.0.0.1:8080/"}
	for c, w := range upstreamCases() {
		a, err := r.Resolve(c)
		if err != nil {
			t.Fatal(err)
		}
		if want := swapHost(t, w.url, "http://127.0.0.1:8080"); a.URL != want {
			t.Errorf("%v: url %s, want %s", c, a.URL, want)
		}
		if w.sum != "" {
			if want := swapHost(t, w.sum, "http://127.0.0.1:8080"); a.Checksum.URL != want {
				t.Errorf("%v: checksum url %s, want %s", c, a.Checksum.URL, want)
			}
		}
	}
	// A mirror with a path prefix keeps it.
	a, _ := Resolver{Mirror: "https://m.example/kk"}.Resolve(Component{"kubeadm", "v1.34.1", "amd64"})
	if a.URL != "https://m.example/kk/release/v1.34.1/bin/linux/amd64/kubeadm" {
		t.Errorf("prefixed mirror: %s", a.URL)
	}
}

func swapHost(t *testing.T, u, host string) string {
	t.Helper()
	i := strings.Index(u[len("https://"):], "/")
	return host + u[len("https://")+i:]
}

func TestOverridePrecedence(t *testing.T) {
	r := Resolver{
		Mirror: "http://127.0.0.1:8080",
		Zone:   ZoneCN,
		Bases: map[string]string{
			"etcd":     "http://127.0.0.1:9000/gh/",
			"github":   "http://127.0.0.1:9001",
			"kubecni":  "http://127.0.0.1:9002",
			"kubeadm":  "http://127.0.0.1:9003",
			"kubelet":  "", // empty: no override
			"docker":   "https://docker.local",
			"notthere": "", // not resolved, only Validate minds it
		},
	}
	cases := map[Component]string{
		{"etcd", "v3.5.21", "amd64"}:       "http://127.0.0.1:9000/gh/etcd-io/etcd/releases/download/v3.5.21/etcd-v3.5.21-linux-amd64.tar.gz",
		{"runc", "v1.3.0", "arm64"}:        "http://127.0.0.1:9001/opencontainers/runc/releases/download/v1.3.0/runc.arm64",
		{"cni-plugins", "v1.7.1", "amd64"}: "http://127.0.0.1:9002/containernetworking/plugins/releases/download/v1.7.1/cni-plugins-linux-amd64-v1.7.1.tgz",
		{"kubeadm", "v1.34.1", "amd64"}:    "http://127.0.0.1:9003/release/v1.34.1/bin/linux/amd64/kubeadm",
		{"kubelet", "v1.34.1", "amd64"}:    "http://127.0.0.1:8080/release/v1.34.1/bin/linux/amd64/kubelet",
		{"helm", "v3.18.4", "amd64"}:       "http://127.0.0.1:8080/helm-v3.18.4-linux-amd64.tar.gz",
		{"docker", "28.3.2", "arm64"}:      "https://docker.local/linux/static/stable/aarch64/docker-28.3.2.tgz",
	}
	for c, want := range cases {
		a, err := r.Resolve(c)
		if err != nil {
			t.Fatal(err)
		}
		if a.URL != want {
			t.Errorf("%v: %s, want %s", c, a.URL, want)
		}
		if a.Checksum.URL != "" && !strings.HasPrefix(a.Checksum.URL, want[:strings.LastIndex(want, "/")]) {
			t.Errorf("%v: checksum %s not beside %s", c, a.Checksum.URL, want)
		}
	}
}

func TestZoneCN(t *testing.T) {
	r := Resolver{Zone: "CN"}
	cases := map[Component]string{
		{"kubeadm", "v1.34.1", "arm64"}:    "https://kubernetes-release.pek3b.qingstor.com/release/v1.34.1/bin/linux/arm64/kubeadm",
		{"etcd", "v3.5.21", "amd64"}:       "https://kubernetes-release.pek3b.qingstor.com/etcd/release/download/v3.5.21/etcd-v3.5.21-linux-amd64.tar.gz",
		{"containerd", "v2.1.4", "amd64"}:  "https://kubernetes-release.pek3b.qingstor.com/containerd/containerd/releases/download/v2.1.4/containerd-2.1.4-linux-amd64.tar.gz",
		{"runc", "v1.3.0", "amd64"}:        "https://kubernetes-release.pek3b.qingstor.com/opencontainers/runc/releases/download/v1.3.0/runc.amd64",
		{"crictl", "v1.34.0", "amd64"}:     "https://kubernetes-release.pek3b.qingstor.com/cri-tools/releases/download/v1.34.0/crictl-v1.34.0-linux-amd64.tar.gz",
		{"cni-plugins", "v1.7.1", "amd64"}: "https://containernetworking.pek3b.qingstor.com/plugins/releases/download/v1.7.1/cni-plugins-linux-amd64-v1.7.1.tgz",
		{"docker", "28.3.2", "amd64"}:      "https://mirrors.aliyun.com/docker-ce/linux/static/stable/x86_64/docker-28.3.2.tgz",
		{"helm", "v3.18.4", "amd64"}:       "https://get.helm.sh/helm-v3.18.4-linux-amd64.tar.gz",
	}
	for c, want := range cases {
		a, err := r.Resolve(c)
		if err != nil {
			t.Fatal(err)
		}
		if a.URL != want {
			t.Errorf("%v: %s, want %s", c, a.URL, want)
		}
	}
	a, _ := r.Resolve(Component{"kubeadm", "v1.34.1", "arm64"})
	if a.Checksum.URL != "https://kubernetes-release.pek3b.qingstor.com/release/v1.34.1/bin/linux/arm64/kubeadm.sha256" {
		t.Errorf("cn checksum url %s", a.Checksum.URL)
	}
}

func TestResolveErrors(t *testing.T) {
	cases := []struct {
		r    Resolver
		c    Component
		want string
	}{
		{Resolver{}, Component{"kubeadmm", "v1.34.1", "amd64"}, `unknown component "kubeadmm"`},
		{Resolver{}, Component{"kubeadm", "", "amd64"}, "no version"},
		{Resolver{}, Component{"kubeadm", "v1.34.1/../../x", "amd64"}, "only letters"},
		{Resolver{}, Component{"kubeadm", "v1..2", "amd64"}, `".."`},
		{Resolver{}, Component{"kubeadm", "v1.34.1", "x86_64"}, `arch "x86_64" is not published`},
		{Resolver{}, Component{"cri-dockerd", "v0.3.18", "s390x"}, `arch "s390x"`},
		{Resolver{Zone: "mars"}, Component{"kubeadm", "v1.34.1", "amd64"}, `unknown zone "mars"`},
		{Resolver{Mirror: "127.0.0.1:8080"}, Component{"kubeadm", "v1.34.1", "amd64"}, "http:// or https://"},
		{Resolver{Bases: map[string]string{"etcd": "ftp://x"}}, Component{"etcd", "v3.5.21", "amd64"}, "http:// or https://"},
	}
	for _, tc := range cases {
		_, err := tc.r.Resolve(tc.c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v %v: err %v, want %q", tc.r, tc.c, err, tc.want)
		}
	}
	if _, err := (Resolver{}).Resolve(Component{NvidiaDriver, "latest", "amd64"}); err == nil || !strings.Contains(err.Error(), `"latest" is not an NVIDIA driver version`) {
		t.Errorf("nvidia-driver latest: %v", err)
	}
	_, err := Resolver{}.ResolveAll([]Component{{"kubeadm", "v1.34.1", "amd64"}, {"nope", "1", "amd64"}, {"etcd", "", "amd64"}})
	if err == nil || !strings.Contains(err.Error(), "nope") || !strings.Contains(err.Error(), "etcd") {
		t.Errorf("ResolveAll: %v", err)
	}
}

func TestValidate(t *testing.T) {
	ok := Resolver{Mirror: "http://127.0.0.1:8080", Zone: "cn", Bases: map[string]string{"github": "https://gh.local", "kubecni": "https://cni.local", "kube-proxy": "http://x"}}
	if err := ok.Validate(); err != nil {
		t.Errorf("valid resolver: %v", err)
	}
	bad := Resolver{Mirror: "ftp://m", Zone: "eu", Bases: map[string]string{"kubeadmm": "http://x", "etcd": "http://?q"}}
	err := bad.Validate()
	for _, s := range []string{"mirror", `"kubeadmm"`, `zone "eu"`, `base for "etcd"`} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("Validate: %v, want %q", err, s)
		}
	}
}

func TestComponentString(t *testing.T) {
	if s := (Component{"kubeadm", "v1.34.9", "amd64"}).String(); s != "kubeadm v1.34.9 linux/amd64" {
		t.Error(s)
	}
}
