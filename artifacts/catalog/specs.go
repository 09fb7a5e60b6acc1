package catalog

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Groups are Resolver.Bases keys that set the base of every component hosted alike.
const (
	GroupKubernetes = "kubernetes" // dl.k8s.io: kubeadm, kubelet, kubectl, kube-*
	GroupGitHub     = "github"     // github.com releases: etcd, containerd, runc, crictl, cni, calicoctl, cri-dockerd, k3s
	GroupHelm       = "helm"       // get.helm.sh
	GroupDocker     = "docker"     // download.docker.com static binaries
	GroupNvidia     = "nvidia"     // us.download.nvidia.com: the NVIDIA driver's .run installer
)

// NvidiaDriver is the catalogue name of NVIDIA's driver installer (NVIDIA-Linux-ARCH-VER.run).
const NvidiaDriver = "nvidia-driver"

// NvidiaContainerToolkit is the catalogue name of NVIDIA's container toolkit release: its
// Debian packages' tarball, of which kk takes the base package (nvidia-ctk,
// nvidia-container-runtime, nvidia-cdi-hook: all that CDI needs).
const NvidiaContainerToolkit = "nvidia-container-toolkit"

// spec is how one component is laid out upstream. A URL is base + repo + rest: base is what
// Resolver.Bases and Mirror replace, base+repo ("root") is what a Zone preset replaces.
type spec struct {
	group   string
	base    string
	repo    string
	arches  []string
	version func(string) string
	// valid refuses a version upstream cannot have (nil: any the common check lets through).
	valid func(string) error
	build func(v, arch string) entry
}

// entry is a spec applied to one version and arch.
type entry struct {
	rest     string // path after the root, from "/"
	file     string // cache file name
	sumRest  string // checksum file path after the root; "" when upstream publishes none
	sumEntry string // line to pick in a multi-file checksum file
	layout   Layout
}

const github = "https://github.com"

// kubeBinaries are published by Kubernetes at dl.k8s.io/release/<ver>/bin/linux/<arch>/<name>.
func kubeBinaries() []string {
	return []string{
		"kubeadm", "kubelet", "kubectl",
		"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy",
	}
}

// specs returns the catalogue. It is built on each call: kk keeps no mutable globals.
func specs() map[string]spec {
	commonArches := []string{"amd64", "arm64", "ppc64le", "s390x"}
	rawExec := Layout{Format: Raw, Executable: true}
	m := map[string]spec{
		"etcd": {
			group: GroupGitHub, base: github, repo: "/etcd-io/etcd/releases/download",
			arches: commonArches, version: withV,
			build: func(v, arch string) entry {
				dir := fmt.Sprintf("etcd-%s-linux-%s", v, arch)
				file := dir + ".tar.gz"
				return entry{
					rest: "/" + v + "/" + file, file: file,
					sumRest: "/" + v + "/SHA256SUMS", sumEntry: file,
					layout: Layout{Format: TarGz, Members: []Member{
						{Path: dir + "/etcd"}, {Path: dir + "/etcdctl"},
						{Path: dir + "/etcdutl", Optional: true},
					}},
				}
			},
		},
		"containerd": {
			group: GroupGitHub, base: github, repo: "/containerd/containerd/releases/download",
			arches: commonArches, version: withV,
			build: func(v, arch string) entry {
				file := fmt.Sprintf("containerd-%s-linux-%s.tar.gz", withoutV(v), arch)
				return entry{
					rest: "/" + v + "/" + file, file: file,
					sumRest: "/" + v + "/" + file + ".sha256sum", sumEntry: file,
					layout: Layout{Format: TarGz, Members: []Member{{Path: "bin/*"}}},
				}
			},
		},
		"runc": {
			group: GroupGitHub, base: github, repo: "/opencontainers/runc/releases/download",
			arches: commonArches, version: withV,
			build: func(v, arch string) entry {
				up := "runc." + arch
				return entry{
					rest: "/" + v + "/" + up, file: "runc",
					sumRest: "/" + v + "/runc.sha256sum", sumEntry: up,
					layout: rawExec,
				}
			},
		},
		"crictl": {
			group: GroupGitHub, base: github, repo: "/kubernetes-sigs/cri-tools/releases/download",
			arches: commonArches, version: withV,
			build: func(v, arch string) entry {
				file := fmt.Sprintf("crictl-%s-linux-%s.tar.gz", v, arch)
				return entry{
					rest: "/" + v + "/" + file, file: file,
					sumRest: "/" + v + "/" + file + ".sha256", sumEntry: file,
					layout: Layout{Format: TarGz, Members: []Member{{Path: "crictl"}}},
				}
			},
		},
		"cni-plugins": {
			group: GroupGitHub, base: github, repo: "/containernetworking/plugins/releases/download",
			arches: commonArches, version: withV,
			build: func(v, arch string) entry {
				file := fmt.Sprintf("cni-plugins-linux-%s-%s.tgz", arch, v)
				return entry{
					rest: "/" + v + "/" + file, file: file,
					sumRest: "/" + v + "/" + file + ".sha256", sumEntry: file,
					layout: Layout{Format: TarGz, Members: []Member{{Path: "*"}}},
				}
			},
		},
		"registry": {
			// The CNCF distribution registry kk deploys on hosts with role registry.
			group: GroupGitHub, base: github, repo: "/distribution/distribution/releases/download",
			arches: commonArches, version: withV,
			build: func(v, arch string) entry {
				file := fmt.Sprintf("registry_%s_linux_%s.tar.gz", withoutV(v), arch)
				return entry{
					rest: "/" + v + "/" + file, file: file,
					sumRest: "/" + v + "/" + file + ".sha256", sumEntry: file,
					layout: Layout{Format: TarGz, Members: []Member{{Path: "registry"}}},
				}
			},
		},
		"helm": {
			group: GroupHelm, base: "https://get.helm.sh", repo: "",
			arches: commonArches, version: withV,
			build: func(v, arch string) entry {
				file := fmt.Sprintf("helm-%s-linux-%s.tar.gz", v, arch)
				return entry{
					rest: "/" + file, file: file,
					sumRest: "/" + file + ".sha256", sumEntry: file,
					layout: Layout{Format: TarGz, Members: []Member{{Path: "linux-" + arch + "/helm"}}},
				}
			},
		},
		"calicoctl": {
			group: GroupGitHub, base: github, repo: "/projectcalico/calico/releases/download",
			arches: commonArches, version: withV,
			build: func(v, arch string) entry {
				up := "calicoctl-linux-" + arch
				return entry{
					rest: "/" + v + "/" + up, file: "calicoctl",
					sumRest: "/" + v + "/SHA256SUMS", sumEntry: up,
					layout: rawExec,
				}
			},
		},
		"cri-dockerd": {
			group: GroupGitHub, base: github, repo: "/Mirantis/cri-dockerd/releases/download",
			arches: []string{"amd64", "arm64"}, version: withV,
			build: func(v, arch string) entry {
				file := fmt.Sprintf("cri-dockerd-%s.%s.tgz", withoutV(v), arch)
				// Upstream publishes no checksum file: the user pins one.
				return entry{
					rest: "/" + v + "/" + file, file: file,
					layout: Layout{Format: TarGz, Members: []Member{{Path: "cri-dockerd/cri-dockerd"}}},
				}
			},
		},
		"docker": {
			group: GroupDocker, base: "https://download.docker.com", repo: "/linux/static/stable",
			arches: commonArches, version: withoutV,
			build: func(v, arch string) entry {
				file := fmt.Sprintf("docker-%s.tgz", v)
				// download.docker.com publishes no checksum file: the user pins one.
				return entry{
					rest: "/" + dockerArch(arch) + "/" + file, file: file,
					layout: Layout{Format: TarGz, Members: []Member{{Path: "docker/*"}}},
				}
			},
		},
		NvidiaDriver: {
			group: GroupNvidia, base: "https://us.download.nvidia.com", repo: "/XFree86",
			arches: []string{"amd64", "arm64"}, version: withoutV,
			valid: func(v string) error {
				if !nvidiaDriverRE.MatchString(v) {
					return fmt.Errorf("%q is not an NVIDIA driver version (of the form 570.195.03)", v)
				}
				return nil
			},
			build: func(v, arch string) entry {
				dir := "Linux-" + dockerArch(arch)
				file := "NVIDIA-" + dir + "-" + v + ".run"
				// NVIDIA publishes no checksum file beside it: the user pins one.
				return entry{rest: "/" + dir + "/" + v + "/" + file, file: file, layout: rawExec}
			},
		},
		NvidiaContainerToolkit: {
			group: GroupGitHub, base: github, repo: "/NVIDIA/nvidia-container-toolkit/releases/download",
			arches: []string{"amd64", "arm64"}, version: withV,
			valid: func(v string) error {
				if !releaseRE.MatchString(v) {
					return fmt.Errorf("%q is not a release of NVIDIA's container toolkit (of the form v1.20.2)", v)
				}
				return nil
			},
			build: func(v, arch string) entry {
				file := fmt.Sprintf("nvidia-container-toolkit_%s_deb_%s.tar.gz", withoutV(v), arch)
				// NVIDIA publishes no checksum file beside it: the user pins one.
				return entry{
					rest: "/" + v + "/" + file, file: file,
					layout: Layout{Format: TarGz, Members: []Member{{Path: "release-*/packages/*/*/nvidia-container-toolkit-base_*.deb"}}},
				}
			},
		},
		"k3s": {
			group: GroupGitHub, base: github, repo: "/k3s-io/k3s/releases/download",
			arches: []string{"amd64", "arm64", "s390x"}, version: k3sVersion,
			build: func(v, arch string) entry {
				up := "k3s"
				if arch != "amd64" {
					up += "-" + arch
				}
				tag := strings.ReplaceAll(v, "+", "%2B")
				return entry{
					rest: "/" + tag + "/" + up, file: "k3s",
					sumRest: "/" + tag + "/sha256sum-" + arch + ".txt", sumEntry: up,
					layout: rawExec,
				}
			},
		},
	}
	for _, name := range kubeBinaries() {
		m[name] = spec{
			group: GroupKubernetes, base: "https://dl.k8s.io", repo: "/release",
			arches: commonArches, version: withV,
			build: func(v, arch string) entry {
				rest := fmt.Sprintf("/%s/bin/linux/%s/%s", v, arch, name)
				return entry{rest: rest, file: name, sumRest: rest + ".sha256", layout: rawExec}
			},
		}
	}
	return m
}

// Names lists the catalogue's component names, sorted.
func Names() []string {
	var names []string
	for n := range specs() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// nvidiaDriverRE is the form of NVIDIA's driver versions: 570.195.03, 535.247.01, 470.82.
var nvidiaDriverRE = regexp.MustCompile(`^[0-9]{3}\.[0-9]{1,3}(\.[0-9]{1,3})?$`)

// releaseRE is a plain release version, v1.20.2 (no pre-release).
var releaseRE = regexp.MustCompile(`^v?[0-9]+\.[0-9]+\.[0-9]+$`)

func withV(v string) string {
	if strings.HasPrefix(v, "v") {
		return v
	}
	return "v" + v
}

func withoutV(v string) string { return strings.TrimPrefix(v, "v") }

// k3sVersion completes "v1.33.3" to the first k3s build of it, "v1.33.3+k3s1".
func k3sVersion(v string) string {
	v = withV(v)
	if !strings.Contains(v, "+") {
		v += "+k3s1"
	}
	return v
}

// dockerArch is the directory name download.docker.com uses for an arch.
func dockerArch(arch string) string {
	switch arch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return arch
}
