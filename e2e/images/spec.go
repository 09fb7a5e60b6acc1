package images

import (
	"archive/tar"
	"fmt"
	"sort"
	"strings"

	"github.com/kk-project/kk/artifacts/versions"
	"github.com/kk-project/kk/e2e/mirror"
)

// recipeRev is part of every layer's cache key: bump it whenever the way
// layers are put together changes.
const recipeRev = "1"

// Image is one image the build produces.
type Image struct {
	// Repository is the upstream repository with its registry host:
	// "registry.k8s.io/kube-apiserver", "docker.io/library/haproxy".
	Repository string
	// Tags: Tags[0] is the version of the software inside; any further
	// tag is an alias for the same image (see Note).
	Tags []string
	// Version is the upstream version of the main program inside.
	Version string
	// Note says where the content comes from when that is not obvious
	// (an alias tag, a substitute build).
	Note string

	layers   []*layerSpec
	config   imageConfig
	requires []string // paths that must resolve in the flattened image
	// partOf are the mirror components an image of kk's own programs goes with (none: every
	// build has it, as the pause image): --components keeps it when it names one of them.
	partOf []string
}

// Ref is the upstream reference of the image's first tag.
func (i Image) Ref() string { return i.Repository + ":" + i.Tags[0] }

// Refs are the upstream references of all its tags.
func (i Image) Refs() []string {
	out := make([]string, len(i.Tags))
	for n, t := range i.Tags {
		out[n] = i.Repository + ":" + t
	}
	return out
}

// imageConfig is the part of the OCI image config a recipe sets.
type imageConfig struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
	User       string
	WorkingDir string
	StopSignal string
	Ports      []string
}

// layerSpec is one cached layer: what goes in, from where.
type layerSpec struct {
	name  string   // unique within a build, e.g. "glibc", "kube-apiserver-v1.34.4"
	files []input  // binaries and other files from this machine
	debs  []string // Debian packages unpacked whole (minus debPrune)
	tars  []string // .tar.gz archives on this machine, unpacked whole
	extra []Entry  // generated files and links, applied last
}

// input is a regular file taken from this machine, or from a member of
// a .tar.gz archive on this machine.
type input struct {
	dst     string // path in the image
	mode    int64
	uid     int
	gid     int
	xattrs  map[string]string
	src     string // file, or the archive when member is set
	member  string // path inside the archive
	builtBy string // set for files kk builds itself ("pause", "install-conf")
}

// tableSets are kk's version-table sets (artifacts/versions) of the Kubernetes versions the
// mirror builds: the image tags kk deploys, and so `kk create manifest` lists, come from them
// and from nowhere else.
func tableSets(spec mirror.Spec) ([]versions.Set, error) {
	var sets []versions.Set
	for _, v := range spec.Kubernetes {
		s, err := versions.For(v)
		if err != nil {
			return nil, fmt.Errorf("e2e images: %w", err)
		}
		sets = append(sets, s)
	}
	if len(sets) == 0 {
		sets = append(sets, versions.Latest())
	}
	return sets, nil
}

// sameAs fails when the mirror builds another release than kk's version table names for a
// program whose image carries the release as its tag (a real build, not a stand-in).
func sameAs(what, built, table string) error {
	if built != table {
		return fmt.Errorf("e2e images: the mirror builds %s %s but kk's version table (artifacts/versions) names %s: pin the same release in mirror.DefaultSpec", what, built, table)
	}
	return nil
}

// tableRef splits an image reference of kk's version table ("quay.io/prometheus/prometheus:v3.16.0")
// into the Image's repository and tags: the images kk deploys are named there only.
func tableRef(ref string) (repo string, tags []string) {
	i := strings.LastIndex(ref, ":")
	return ref[:i], []string{ref[i+1:]}
}

// Environment shared by the images, as in the distroless and Debian bases.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Users of the base layer (uid:gid), as in distroless.
const (
	nonrootUID = 65532
	pauseUser  = "65535:65535"
	haproxyUID = 99
)

// capNetBindService is a version 2 security.capability xattr granting
// cap_net_bind_service in the permitted and effective sets (what
// `setcap cap_net_bind_service=+ep` writes): magic 0x02000001, then
// permitted/inheritable pairs of little-endian 32-bit words.
const capNetBindService = "\x01\x00\x00\x02" + "\x00\x04\x00\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00"

// busyboxApplets are linked in /bin of every image that has a shell.
func busyboxApplets() []string {
	return []string{
		"[", "awk", "basename", "cat", "chmod", "chown", "cp", "cut", "date", "dirname", "echo", "env",
		"false", "find", "grep", "head", "hostname", "id", "kill", "ln", "ls", "mkdir", "mktemp", "mv",
		"nslookup", "ping", "printf", "ps", "readlink", "rm", "rmdir", "sed", "sh", "sleep", "sort",
		"stat", "tail", "tar", "tee", "test", "touch", "tr", "true", "uname", "wc", "which", "xargs",
	}
}

// recipes holds the layer specs shared between images.
type recipes struct {
	mirrorDir string
	binDir    string // where kk's own builds (pause, install-conf) go
	base      *layerSpec
	busybox   *layerSpec
	glibc     *layerSpec
	iptables  *layerSpec
	// proxyTools: what kube-proxy runs besides iptables.
	proxyTools *layerSpec
}

func newRecipes(mirrorDir, binDir string) *recipes {
	r := &recipes{mirrorDir: mirrorDir, binDir: binDir}
	r.base = &layerSpec{name: "base", extra: baseFiles(nil)}
	busybox := []Entry{}
	for _, a := range busyboxApplets() {
		busybox = append(busybox, Symlink("bin/"+a, "busybox"))
	}
	r.busybox = &layerSpec{name: "busybox", debs: []string{"busybox-static"}, extra: busybox}
	r.glibc = &layerSpec{name: "glibc", debs: []string{"libc6", "libgcc-s1"}}
	var links []Entry
	for _, fam := range []string{"iptables", "ip6tables"} {
		for _, suf := range []string{"", "-save", "-restore"} {
			links = append(links, Symlink("usr/sbin/"+fam+suf, fam+"-nft"+suf))
		}
	}
	r.iptables = &layerSpec{name: "iptables",
		debs:  []string{"iptables", "libip4tc2", "libip6tc2", "libmnl0", "libnetfilter-conntrack3", "libnfnetlink0", "libnftnl11", "libxtables12", "netbase"},
		extra: links}
	r.proxyTools = &layerSpec{name: "kube-proxy-tools", debs: []string{"conntrack", "ipset", "libipset13",
		"nftables", "libnftables1", "libedit2", "libbsd0", "libmd0", "libtinfo6", "libgmp10", "libjansson4"}}
	return r
}

// baseFiles is a distroless-like static base: users, groups, resolver
// configuration, /tmp and home directories. extraUsers are added as
// "name:uid" with a group of the same id.
func baseFiles(extraUsers map[string]int) []Entry {
	users := map[string]int{"root": 0, "nobody": 65534, "nonroot": nonrootUID}
	for n, id := range extraUsers {
		users[n] = id
	}
	names := make([]string, 0, len(users))
	for n := range users {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return users[names[i]] < users[names[j]] })
	var passwd, group strings.Builder
	for _, n := range names {
		home := "/home/" + n
		switch n {
		case "root":
			home = "/root"
		case "nobody":
			home = "/nonexistent"
		case "haproxy":
			home = "/var/lib/haproxy"
		}
		fmt.Fprintf(&passwd, "%s:x:%d:%d:%s:%s:/sbin/nologin\n", n, users[n], users[n], n, home)
		fmt.Fprintf(&group, "%s:x:%d:\n", n, users[n])
	}
	return []Entry{
		File("etc/passwd", 0o644, []byte(passwd.String())),
		File("etc/group", 0o644, []byte(group.String())),
		File("etc/nsswitch.conf", 0o644, []byte("hosts: files dns\nnetworks: files\npasswd: files\ngroup: files\n")),
		Dir("tmp", 0o1777),
		Dir("root", 0o700),
		{Path: "home/nonroot", Type: tar.TypeDir, Mode: 0o700, UID: nonrootUID, GID: nonrootUID},
	}
}

func (r *recipes) mirrorFile(p string) string { return r.mirrorDir + p }

// haproxyEntrypoint mirrors the behaviour of the upstream image's
// docker-entrypoint.sh: options alone mean "haproxy <options>", and
// haproxy runs in master-worker mode in the foreground.
const haproxyEntrypoint = `#!/bin/sh
set -e
case "$1" in
-*) set -- haproxy "$@" ;;
esac
if [ "$1" = haproxy ]; then
	shift
	set -- haproxy -W -db "$@"
fi
exec "$@"
`

// ProbeRepository and ProbeTag name the e2e probe image (see e2e/images/probe).
const (
	ProbeRepository = "docker.io/kksphere/e2e-probe"
	ProbeTag        = "v1"
)

// BusyboxRepository and BusyboxTag name the busybox image of the e2e tests' own pods: Debian
// 12's busybox-static, tagged with its upstream release (the build checks the package's).
const (
	BusyboxRepository = "docker.io/library/busybox"
	BusyboxTag        = "1.35.0"
)

// DebVersions are the versions of the Debian packages that stand in for upstream images:
// haproxy (e.g. "2.6.12-1+deb12u4") and busybox-static ("1:1.35.0-4+b3"). An empty one
// leaves its image out.
type DebVersions struct {
	HAProxy, Busybox string
}

// debUpstream is the upstream release of a Debian package version: without the epoch and the
// Debian revision ("1:1.35.0-4+b3" is 1.35.0).
func debUpstream(v string) string {
	if i := strings.IndexAny(v, "-+~"); i > 0 {
		v = v[:i]
	}
	if i := strings.Index(v, ":"); i >= 0 {
		v = v[i+1:]
	}
	return v
}

// Images lists every image built for spec, in build order. mirrorDir is
// the mirror the binaries come from; binDir is where kk's own small
// builds (pause, flannel's install-conf) are put; debs are the Debian
// packages' versions.
func Images(spec mirror.Spec, mirrorDir, binDir string, debs DebVersions) ([]Image, error) {
	r := newRecipes(mirrorDir, binDir)
	var imgs []Image

	// the tags kk's version table gives pause, coredns and etcd, over all k8s versions.
	sets, err := tableSets(spec)
	if err != nil {
		return nil, err
	}
	var pauseTags, corednsTags, etcdTags []string
	add := func(list []string, t string) []string {
		for _, x := range list {
			if x == t {
				return list
			}
		}
		return append(list, t)
	}
	for _, set := range sets {
		pauseTags = add(pauseTags, set.Pause)
		corednsTags = add(corednsTags, set.CoreDNS)
		etcdTags = add(etcdTags, set.EtcdImage)
	}
	addons := sets[0].Addons

	if len(pauseTags) > 0 {
		imgs = append(imgs, Image{
			Repository: "registry.k8s.io/pause", Tags: pauseTags, Version: pauseTags[0],
			Note:     "kk's own pause (e2e/images/pause, static Go): sleeps, reaps children, exits on SIGINT/SIGTERM",
			layers:   []*layerSpec{{name: "pause", files: []input{{dst: "pause", mode: 0o755, src: binDir + "/pause", builtBy: "pause"}}}},
			config:   imageConfig{Entrypoint: []string{"/pause"}, User: pauseUser},
			requires: []string{"pause"},
		})
	}

	imgs = append(imgs, Image{
		Repository: ProbeRepository, Tags: []string{ProbeTag}, Version: ProbeTag,
		Note:     "kk's e2e probe (e2e/images/probe, static Go): DNS and API checks from inside a pod",
		layers:   []*layerSpec{{name: "probe", files: []input{{dst: "probe", mode: 0o755, src: binDir + "/probe", builtBy: "probe"}}}},
		config:   imageConfig{Entrypoint: []string{"/probe"}},
		requires: []string{"probe"},
	})

	for _, v := range spec.Kubernetes {
		for _, name := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"} {
			bin := &layerSpec{name: name + "-" + v, files: []input{{
				dst: "usr/local/bin/" + name, mode: 0o755, src: r.mirrorFile(mirror.KubernetesPath(v, name))}}}
			img := Image{
				Repository: "registry.k8s.io/" + name, Tags: []string{v}, Version: v,
				config:   imageConfig{Entrypoint: []string{"/usr/local/bin/" + name}, Env: []string{defaultPath}},
				requires: []string{"usr/local/bin/" + name},
			}
			if name == "kube-proxy" {
				img.layers = []*layerSpec{r.base, r.busybox, r.glibc, r.iptables, r.proxyTools, bin}
				img.requires = append(img.requires, "bin/sh", "usr/sbin/iptables", "usr/sbin/ip6tables", "usr/sbin/iptables-save",
					"usr/sbin/iptables-restore", "usr/sbin/ip6tables-save", "usr/sbin/ip6tables-restore",
					"usr/sbin/conntrack", "usr/sbin/ipset", "usr/sbin/nft", "etc/protocols")
			} else {
				img.layers = []*layerSpec{r.base, bin}
			}
			imgs = append(imgs, img)
		}
	}

	if spec.Etcd != "" {
		tag := strings.TrimPrefix(spec.Etcd, "v") + "-0"
		tags := []string{tag}
		for _, t := range etcdTags {
			tags = add(tags, t)
		}
		img := Image{Repository: "registry.k8s.io/etcd", Tags: tags, Version: spec.Etcd,
			config:   imageConfig{Cmd: []string{"/usr/local/bin/etcd"}, Env: []string{defaultPath}, Ports: []string{"2379/tcp", "2380/tcp"}},
			requires: []string{"usr/local/bin/etcd", "usr/local/bin/etcdctl", "usr/local/bin/etcdutl", "bin/sh"},
		}
		if len(tags) > 1 {
			img.Note = fmt.Sprintf("etcd %s; tags %s are aliases so that every kubeadm version finds its etcd image", spec.Etcd, strings.Join(tags[1:], ", "))
		}
		archive := r.mirrorFile(mirror.EtcdPath(spec.Etcd))
		top := fmt.Sprintf("etcd-%s-linux-%s/", spec.Etcd, mirror.Arch)
		var files []input
		for _, b := range []string{"etcd", "etcdctl", "etcdutl"} {
			files = append(files, input{dst: "usr/local/bin/" + b, mode: 0o755, src: archive, member: top + b})
		}
		img.layers = []*layerSpec{r.base, r.busybox, {name: "etcd-" + spec.Etcd, files: files}}
		imgs = append(imgs, img)
	}

	if spec.CoreDNS != "" {
		tags := []string{spec.CoreDNS}
		for _, t := range corednsTags {
			tags = add(tags, t)
		}
		img := Image{Repository: "registry.k8s.io/coredns/coredns", Tags: tags, Version: spec.CoreDNS,
			layers: []*layerSpec{r.base, {name: "coredns-" + spec.CoreDNS, files: []input{{
				dst: "coredns", mode: 0o755, src: r.mirrorFile(mirror.BinPath("coredns", spec.CoreDNS, "coredns")),
				xattrs: map[string]string{"security.capability": capNetBindService}}}}},
			config: imageConfig{Entrypoint: []string{"/coredns"}, User: fmt.Sprintf("%d:%d", nonrootUID, nonrootUID),
				WorkingDir: "/", Env: []string{defaultPath}, Ports: []string{"53/tcp", "53/udp"}},
			requires: []string{"coredns"},
		}
		if len(tags) > 1 {
			img.Note = fmt.Sprintf("coredns %s; tags %s are aliases so that every kubeadm version finds its coredns image", spec.CoreDNS, strings.Join(tags[1:], ", "))
		}
		imgs = append(imgs, img)
	}

	if spec.Flannel != "" {
		if err := sameAs("flannel", spec.Flannel, addons.Flannel); err != nil {
			return nil, err
		}
		imgs = append(imgs, Image{Repository: "ghcr.io/flannel-io/flannel", Tags: []string{spec.Flannel}, Version: spec.Flannel,
			layers: []*layerSpec{r.base, r.busybox, r.glibc, r.iptables, {name: "flannel-" + spec.Flannel, files: []input{
				{dst: "opt/bin/flanneld", mode: 0o755, src: r.mirrorFile(mirror.BinPath("flannel", spec.Flannel, "flanneld"))},
				{dst: "opt/bin/install-conf", mode: 0o755, src: binDir + "/install-conf-" + spec.Flannel, builtBy: "install-conf"},
			}}},
			config:   imageConfig{Entrypoint: []string{"/opt/bin/flanneld"}, Env: []string{defaultPath}},
			requires: []string{"opt/bin/flanneld", "opt/bin/install-conf", "usr/sbin/iptables", "usr/sbin/ip6tables", "usr/sbin/iptables-restore", "bin/sh"},
		})
	}

	if spec.FlannelCNI != "" && spec.Flannel != "" {
		tag := addons.FlannelCNIPlugin
		imgs = append(imgs, Image{Repository: "ghcr.io/flannel-io/flannel-cni-plugin", Tags: []string{tag}, Version: tag,
			Note: fmt.Sprintf("the flannel CNI plugin is built from %s %s (plugins/meta/flannel), tagged as kube-flannel.yml of flannel %s expects",
				spec.FlannelCNIModule, spec.FlannelCNI, spec.Flannel),
			layers: []*layerSpec{r.base, r.busybox, {name: "flannel-cni-plugin-" + spec.FlannelCNI, files: []input{
				{dst: "flannel", mode: 0o755, src: r.mirrorFile(mirror.BinPath("flannel-cni-plugin", spec.FlannelCNI, "flannel"))}}}},
			config:   imageConfig{Env: []string{defaultPath}, Cmd: []string{"/bin/sh"}},
			requires: []string{"flannel", "bin/cp"},
		})
	}

	if spec.KubeVIP != "" {
		if err := sameAs("kube-vip", spec.KubeVIP, addons.KubeVIP); err != nil {
			return nil, err
		}
		// upstream's image is FROM scratch with the binary at /kube-vip (and CA certificates
		// kube-vip needs only for outside APIs); kk's static pod runs `/kube-vip manager`.
		imgs = append(imgs, Image{Repository: "ghcr.io/kube-vip/kube-vip", Tags: []string{spec.KubeVIP}, Version: spec.KubeVIP,
			layers: []*layerSpec{r.base, {name: "kube-vip-" + spec.KubeVIP, files: []input{
				{dst: "kube-vip", mode: 0o755, src: r.mirrorFile(mirror.KubeVIPPath(spec.KubeVIP))}}}},
			config:   imageConfig{Entrypoint: []string{"/kube-vip"}},
			requires: []string{"kube-vip"},
		})
	}

	if spec.MetricsServer != "" {
		if err := sameAs("metrics-server", spec.MetricsServer, addons.MetricsServer); err != nil {
			return nil, err
		}
		// upstream's image is distroless/static with the binary at /metrics-server, run as a
		// non-root user (kk's Deployment sets runAsUser and mounts /tmp for its certificate).
		imgs = append(imgs, Image{Repository: "registry.k8s.io/metrics-server/metrics-server", Tags: []string{spec.MetricsServer}, Version: spec.MetricsServer,
			layers: []*layerSpec{r.base, {name: "metrics-server-" + spec.MetricsServer, files: []input{
				{dst: "metrics-server", mode: 0o755, src: r.mirrorFile(mirror.MetricsServerPath(spec.MetricsServer))}}}},
			config:   imageConfig{Entrypoint: []string{"/metrics-server"}, User: "65534"},
			requires: []string{"metrics-server"},
		})
	}

	for _, extra := range []func(*recipes, mirror.Spec) ([]Image, error){nodeCacheImages, calicoImages, monitoringImages, loggingImages, chartMuseumImages, csiImages} {
		more, err := extra(r, spec)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, more...)
	}

	if debs.Busybox != "" {
		// the e2e tests' own pods (sh, sleep, httpd, a file written into a volume): Debian's
		// static busybox, loaded onto the test machines by hand as the probe is (no component of
		// kk runs it, so no bundle holds it)
		upstream := debUpstream(debs.Busybox)
		if err := sameAs("busybox (Debian's busybox-static)", upstream, BusyboxTag); err != nil {
			return nil, err
		}
		imgs = append(imgs, Image{Repository: BusyboxRepository, Tags: []string{BusyboxTag}, Version: upstream,
			Note:     "busybox " + upstream + " from Debian 12 (" + debs.Busybox + "): the e2e tests' own workload",
			layers:   []*layerSpec{r.base, r.busybox},
			config:   imageConfig{Env: []string{defaultPath}, Cmd: []string{"sh"}},
			requires: []string{"bin/sh", "bin/mkdir", "bin/rm"},
		})
	}

	if spec.Traefik != "" {
		if err := sameAs("traefik", spec.Traefik, addons.Traefik); err != nil {
			return nil, err
		}
		// upstream's image is Alpine with the binary at /usr/local/bin/traefik and an entrypoint
		// that runs it when the arguments are flags; kk's DaemonSet passes flags only
		imgs = append(imgs, Image{Repository: "docker.io/library/traefik", Tags: []string{spec.Traefik}, Version: spec.Traefik,
			layers: []*layerSpec{r.base, {name: "traefik-" + spec.Traefik, files: []input{
				{dst: "usr/local/bin/traefik", mode: 0o755, src: r.mirrorFile(mirror.TraefikPath(spec.Traefik))}}}},
			config:   imageConfig{Env: []string{defaultPath}, Entrypoint: []string{"/usr/local/bin/traefik"}},
			requires: []string{"usr/local/bin/traefik"},
		})
	}

	if spec.NvidiaDevicePlugin != "" {
		if err := sameAs("nvidia-device-plugin", spec.NvidiaDevicePlugin, addons.NvidiaDevicePlugin); err != nil {
			return nil, err
		}
		// upstream's image is CUDA's UBI 9 base with the binary in /usr/bin, run by name, and
		// the environment of its deployments/container/Dockerfile (NVIDIA's container runtime
		// reads the NVIDIA_* variables). The binary is linked dynamically against glibc
		// (go-nvml binds libnvidia-ml's symbols once it has dlopen'ed it, see
		// e2e/mirror/deviceplugin.go); the library itself comes from the host's driver.
		imgs = append(imgs, Image{Repository: "nvcr.io/nvidia/k8s-device-plugin", Tags: []string{spec.NvidiaDevicePlugin}, Version: spec.NvidiaDevicePlugin,
			layers: []*layerSpec{r.base, r.glibc, {name: "nvidia-device-plugin-" + spec.NvidiaDevicePlugin, files: []input{
				{dst: "usr/bin/nvidia-device-plugin", mode: 0o755, src: r.mirrorFile(mirror.NvidiaDevicePluginPath(spec.NvidiaDevicePlugin))}}}},
			config: imageConfig{Entrypoint: []string{"nvidia-device-plugin"},
				Env: []string{defaultPath, "NVIDIA_DISABLE_REQUIRE=true", "NVIDIA_VISIBLE_DEVICES=all", "NVIDIA_DRIVER_CAPABILITIES=compute,utility"}},
			requires: []string{"usr/bin/nvidia-device-plugin", "lib64/ld-linux-x86-64.so.2"},
		})
	}

	if debs.HAProxy != "" {
		haproxyVersion := debs.HAProxy
		upstream := debUpstream(haproxyVersion)
		// tagged as kk's version table names haproxy (2.9.6-alpine): Debian's haproxy
		// stands in for it, with the same entrypoint and configuration path.
		tags := []string{addons.HAProxy}
		hp := &layerSpec{name: "haproxy",
			debs: []string{"haproxy", "libcrypt1", "liblua5.3-0", "libopentracing-c-wrapper0", "libopentracing1", "libstdc++6",
				"libpcre2-8-0", "libssl3", "libsystemd0", "libcap2", "libgcrypt20", "libgpg-error0", "liblz4-1", "liblzma5", "libzstd1"},
			extra: append(baseFiles(map[string]int{"haproxy": haproxyUID})[:2],
				Symlink("usr/local/sbin/haproxy", "/usr/sbin/haproxy"),
				File("usr/local/bin/docker-entrypoint.sh", 0o755, []byte(haproxyEntrypoint)),
				Dir("usr/local/etc/haproxy", 0o755),
				Entry{Path: "var/lib/haproxy", Type: tar.TypeDir, Mode: 0o755, UID: haproxyUID, GID: haproxyUID},
			)}
		imgs = append(imgs, Image{Repository: "docker.io/library/haproxy", Tags: tags, Version: upstream,
			Note:   "haproxy " + upstream + " from Debian 12 (" + haproxyVersion + "), standing in for the tag kk deploys",
			layers: []*layerSpec{r.base, r.busybox, r.glibc, hp},
			config: imageConfig{Entrypoint: []string{"docker-entrypoint.sh"}, Cmd: []string{"haproxy", "-f", "/usr/local/etc/haproxy/haproxy.cfg"},
				User: "haproxy", WorkingDir: "/var/lib/haproxy", StopSignal: "SIGUSR1", Env: []string{defaultPath}},
			requires: []string{"usr/local/sbin/haproxy", "usr/local/bin/docker-entrypoint.sh", "bin/sh"},
		})
	}
	return imgs, nil
}
