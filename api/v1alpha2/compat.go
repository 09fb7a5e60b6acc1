package v1alpha2

import (
	"fmt"
	"maps"
	"regexp"
	"strings"

	"github.com/kk-project/kk/api/config"
)

// This file holds what kk does with the fields of KubeKey's files that are not a plain copy
// into config: fields of older KubeKey releases, fields kk reads but does not act on
// (warned), and the KubeKey 3.1 calico placement fields. doc.go has the table.

// bareVersionRE is a Kubernetes version written without its "v" (KubeKey accepts 1.30.14).
var bareVersionRE = regexp.MustCompile(`^\d+\.\d+\.\d+$`)

// upgradeLegacy runs before the defaults: it normalizes a Kubernetes version written
// without "v", and moves the fields older KubeKey releases wrote to where KubeKey 3 reads
// them, with a warning naming the replacement.
func upgradeLegacy(obj *Cluster, rep *report) {
	k, e := &obj.Spec.Kubernetes, &obj.Spec.Etcd
	if v := strings.TrimSpace(k.Version); bareVersionRE.MatchString(v) {
		k.Version = "v" + v
	}
	if k.ImageRepo != "" {
		rep.warnf("spec.kubernetes.imageRepo", "imageRepo (KubeKey 1.x) is ignored: KubeKey 2 and later, and kk, "+
			"take images from registry.privateRegistry with registry.namespaceOverride")
	}
	moveLegacy(rep, "etcdBackupDir", "backupDir", k.EtcdBackupDir != "", e.BackupDir != "", func() { e.BackupDir = k.EtcdBackupDir })
	moveLegacy(rep, "etcdBackupPeriod", "backupPeriod", k.EtcdBackupPeriod != 0, e.BackupPeriod != 0, func() { e.BackupPeriod = k.EtcdBackupPeriod })
	moveLegacy(rep, "keepBackupNumber", "keepBackupNumber", k.KeepBackupNumber != 0, e.KeepBackupNumber != 0, func() { e.KeepBackupNumber = k.KeepBackupNumber })
	moveLegacy(rep, "etcdBackupScript", "backupScript", k.EtcdBackupScriptDir != "", e.BackupScriptDir != "", func() { e.BackupScriptDir = k.EtcdBackupScriptDir })
}

// moveLegacy handles spec.kubernetes.OLD, which KubeKey 2.0 wrote and KubeKey 2.1 moved to
// spec.etcd.NEW: when only the old field is set, set copies it over.
func moveLegacy(rep *report, old, repl string, oldSet, newSet bool, set func()) {
	if !oldSet {
		return
	}
	path := "spec.kubernetes." + old
	if newSet {
		rep.warnf(path, "%s (KubeKey 2.0) is ignored: spec.etcd.%s, which replaced it, is set", old, repl)
		return
	}
	set()
	rep.warnf(path, "%s (KubeKey 2.0) moved to spec.etcd.%s: read as that; write it there", old, repl)
}

// typhaMinNodes: KubeKey runs calico-typha on clusters of more than this many nodes.
const typhaMinNodes = 50

// calicoPlacement fills c.Network.Calico's typha switch, replica count and node selector
// from KubeKey 3.1's calico.typha and calico.controller. kk places calico-kube-controllers
// and typha alike: when both sections give a value and they differ, controller wins, with a
// warning.
func calicoPlacement(in CalicoCfg, c *config.Cluster, rep *report) {
	const p = "spec.network.calico"
	nodes := 0
	for _, h := range c.Hosts {
		if h.Has(config.RoleControlPlane) || h.Has(config.RoleWorker) {
			nodes++
		}
	}
	out := &c.Network.Calico
	out.Typha = nodes > typhaMinNodes || (in.Typha.Enabled != nil && *in.Typha.Enabled)
	out.ReplicaCount = in.Controller.Replicas
	if out.ReplicaCount == 0 {
		out.ReplicaCount = in.Typha.Replicas
	} else if in.Typha.Replicas != 0 && in.Typha.Replicas != out.ReplicaCount {
		rep.warnf(p+".typha.replicas", "kk runs calico-kube-controllers and typha with one replica count: "+
			"controller.replicas %d is used for both", out.ReplicaCount)
	}
	out.NodeSelector = in.Controller.NodeSelector
	if len(out.NodeSelector) == 0 {
		out.NodeSelector = in.Typha.NodeSelector
	} else if len(in.Typha.NodeSelector) > 0 && !maps.Equal(in.Typha.NodeSelector, out.NodeSelector) {
		rep.warnf(p+".typha.nodeSelector", "kk places calico-kube-controllers and typha with one node selector: "+
			"controller.nodeSelector is used for both")
	}
	if out.ReplicaCount < 0 {
		rep.errorf(p, "replicas must not be negative")
	}
}

// notImplemented is the reason given for a field kk reads but does not act on yet.
const notImplemented = "not implemented yet, ignored"

// unsupported reports the fields kk reads but does not act on (warnings) and the values kk
// cannot install (errors), each at its line. See the table in doc.go.
func (v *validator) unsupported(obj *Cluster, c *config.Cluster) {
	s := &obj.Spec
	k := s.Kubernetes
	warn := func(path, why string) { v.rep.warnf(path, "%s", why) }
	if k.Kata.On() {
		warn("spec.kubernetes.kata.enabled", "kata: "+notImplemented)
	}
	if k.NodeFeatureDiscovery.On() {
		warn("spec.kubernetes.nodeFeatureDiscovery.enabled", "nodeFeatureDiscovery: "+notImplemented)
	}
	if k.NodeCidrMaskSizeIPv6 != 0 {
		warn("spec.kubernetes.nodeCidrMaskSizeIPv6", "nodeCidrMaskSizeIPv6: "+notImplemented)
	}
	cal := s.Network.Calico
	if cal.IPAutoDetectionMethod != "" {
		warn("spec.network.calico.ipAutoDetectionMethod", "ipAutoDetectionMethod: "+notImplemented)
	}
	if cal.Ipv6NatOutgoing != nil {
		warn("spec.network.calico.ipv6NatOutgoing", "ipv6NatOutgoing: "+notImplemented)
	}
	for _, section := range []string{"calico", "flannel", "kubeovn", "cilium", "hybridnet"} {
		if _, written := v.rep.lines["spec.network."+section]; written && section != c.Network.Plugin {
			warn("spec.network."+section, fmt.Sprintf("%s section ignored: network.plugin is %s", section, c.Network.Plugin))
		}
	}
	if c.Network.MultusCNI {
		v.rep.errorf("spec.network.multusCNI.enabled", "Multus is not implemented in kk yet: remove multusCNI or set enabled: false")
	}
	r := s.Registry
	if r.Port != 0 {
		warn("spec.registry.port", "port: "+notImplemented+" (the registry kk deploys listens on its own port)")
	}
	if r.RemoteMirrors != nil {
		warn("spec.registry.remoteMirrors", "remoteMirrors: "+notImplemented+" (registryMirrors is read)")
	}
	for i, a := range s.Addons {
		p := indexPath("spec.addons", i)
		if len(a.PreInstall) > 0 {
			warn(p+".preInstall", fmt.Sprintf("addon %q: preInstall: %s", a.Name, notImplemented))
		}
		if len(a.PostInstall) > 0 {
			warn(p+".postInstall", fmt.Sprintf("addon %q: postInstall: %s", a.Name, notImplemented))
		}
	}
	if s.KubeSphere.Enabled {
		warn("spec.kubesphere.enabled", "kk does not install KubeSphere yet: ignored (the cluster is installed without it)")
	}
}
