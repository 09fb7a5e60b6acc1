package images

import (
	"archive/tar"
	"fmt"
	"strings"

	"github.com/kk-project/kk/e2e/mirror"
)

// calicoUID is the user calico/kube-controllers runs as (upstream's USER 999).
const calicoUID = 999

// typhaConfig is what upstream's typha image holds at /etc/calico/typha.cfg: no metadata
// port and no log file (typha logs to stderr).
const typhaConfig = "[global]\nMetadataAddr = None\nLogFilePath = None\nLogSeverityFile = None\n"

// calicoImages lists Calico's images (calico/node, cni, kube-controllers, typha) when the spec
// names a Calico release: the programs the mirror builds from the calico module (see
// e2e/mirror/calico.go), laid out as upstream's images lay them out, with Debian's iptables,
// ipset, conntrack and runit in calico/node. BIRD is not there: calico-node's BGP daemon is
// Calico's own fork of BIRD 1.6 (C, github.com/projectcalico/bird), which cannot be built here,
// and Debian's bird 1.6.8 does not know the krt_tunnel attribute confd's templates write, so
// the test machines run Calico's VXLAN backend (calico_backend: vxlan) and policy-only
// (none); BGP and IPIP need the real image. Felix is built without cgo, so without its eBPF
// dataplane (libbpf), and the image sets FELIX_DebugSkipCTLBCleanup=true: the iptables
// dataplane's start-up clean-up of eBPF state is the one place it would call libbpf.
func calicoImages(r *recipes, spec mirror.Spec) ([]Image, error) {
	if spec.Calico == "" {
		return nil, nil
	}
	sets, err := tableSets(spec)
	if err != nil {
		return nil, err
	}
	set := sets[0]
	if err := sameAs("calico", spec.Calico, set.Addons.Calico); err != nil {
		return nil, err
	}
	bin := func(name string) string { return r.mirrorFile(mirror.CalicoPath(spec.Calico, name)) }
	note := fmt.Sprintf("built from github.com/projectcalico/calico@%s (Calico %s)", spec.CalicoModule, spec.Calico)
	v := spec.Calico

	cniRepo, cniTags := tableRef(set.CalicoCNIImage())
	cni := Image{Repository: cniRepo, Tags: cniTags, Version: v, Note: note,
		layers: []*layerSpec{r.base, {name: "calico-cni-" + v, files: []input{
			{dst: "opt/cni/bin/install", mode: 0o755, src: bin("install")},
			{dst: "opt/cni/bin/calico", mode: 0o755, src: bin("calico")},
			{dst: "opt/cni/bin/calico-ipam", mode: 0o755, src: bin("calico")},
		}}},
		config:   imageConfig{Cmd: []string{"/opt/cni/bin/install"}, Env: []string{"PATH=/opt/cni/bin:" + strings.TrimPrefix(defaultPath, "PATH=")}},
		requires: []string{"opt/cni/bin/install", "opt/cni/bin/calico", "opt/cni/bin/calico-ipam"},
	}

	nodeRepo, nodeTags := tableRef(set.CalicoNodeImage())
	// start_runit runs /usr/bin/which (debianutils' path upstream).
	runit := &layerSpec{name: "runit", debs: []string{"runit", "bash", "libtinfo6"}, extra: []Entry{Symlink("usr/bin/which", "/bin/busybox")}}
	node := Image{Repository: nodeRepo, Tags: nodeTags, Version: v,
		Note: note + "; no BIRD (VXLAN and policy-only backends)",
		layers: []*layerSpec{r.base, r.busybox, r.glibc, r.iptables, r.proxyTools, runit,
			{name: "calico-node-" + v, tars: []string{bin(mirror.CalicoNodeFiles)}, files: []input{
				{dst: "bin/calico-node", mode: 0o755, src: bin("calico-node")}}}},
		// Felix's eBPF code needs cgo and Calico's libbpf v1.4 (not built: see calicoJob); in the
		// iptables dataplane it only calls it to clean up a connect-time load balancer an eBPF
		// run would have left, which its own debug switch skips.
		config: imageConfig{Cmd: []string{"start_runit"}, Env: []string{defaultPath, "SVDIR=/etc/service/enabled", "FELIX_DebugSkipCTLBCleanup=true"}},
		requires: []string{"bin/calico-node", "usr/sbin/start_runit", "etc/rc.local", "usr/bin/runsvdir", "bin/sh", "usr/bin/which",
			"etc/service/available/felix/run", "etc/calico/confd/templates/bird.cfg.template",
			"usr/sbin/iptables", "usr/sbin/iptables-legacy-save", "usr/sbin/iptables-nft-save", "usr/sbin/ipset", "usr/sbin/conntrack"},
	}

	ctrlRepo, ctrlTags := tableRef(set.CalicoControllersImage())
	uid := fmt.Sprintf("%d", calicoUID)
	ctrl := Image{Repository: ctrlRepo, Tags: ctrlTags, Version: v, Note: note,
		layers: []*layerSpec{r.base, {name: "calico-kube-controllers-" + v, files: []input{
			{dst: "usr/bin/kube-controllers", mode: 0o755, src: bin("kube-controllers")},
			{dst: "usr/bin/check-status", mode: 0o755, src: bin("check-status")},
			{dst: "usr/bin/wrapper", mode: 0o755, src: bin("wrapper")},
		}, extra: []Entry{
			{Path: "status", Type: tar.TypeDir, Mode: 0o755, UID: calicoUID, GID: 0},
			{Path: "profiles", Type: tar.TypeDir, Mode: 0o755, UID: calicoUID, GID: 0},
		}}},
		config:   imageConfig{Entrypoint: []string{"/usr/bin/wrapper", "/usr/bin/kube-controllers"}, User: uid, Env: []string{defaultPath}},
		requires: []string{"usr/bin/kube-controllers", "usr/bin/check-status", "usr/bin/wrapper"},
	}

	typhaRepo, typhaTags := tableRef(set.CalicoTyphaImage())
	typha := Image{Repository: typhaRepo, Tags: typhaTags, Version: v, Note: note,
		layers: []*layerSpec{r.base, {name: "calico-typha-" + v, files: []input{
			{dst: "usr/bin/calico-typha", mode: 0o755, src: bin("calico-typha")},
		}, extra: []Entry{File("etc/calico/typha.cfg", 0o644, []byte(typhaConfig))}}},
		config:   imageConfig{Cmd: []string{"/usr/bin/calico-typha"}, User: uid, Env: []string{defaultPath}},
		requires: []string{"usr/bin/calico-typha", "etc/calico/typha.cfg"},
	}
	return []Image{cni, node, ctrl, typha}, nil
}
