//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/e2e/testbed"
)

// ksConfiguration is the ClusterConfiguration a KubeKey user keeps after the Cluster (KubeSphere
// 3.4's layout, abridged): metrics_server is switched as %s, the rest off; the console's
// settings are there, as ks-installer's file has them.
const ksConfiguration = `---
apiVersion: installer.kubesphere.io/v1alpha1
kind: ClusterConfiguration
metadata:
  name: ks-installer
  namespace: kubesphere-system
  labels:
    version: v3.4.1
spec:
  persistence:
    storageClass: ""
  common:
    core:
      console:
        enableMultiLogin: true
        port: 30880
        type: NodePort
  alerting:
    enabled: false
  devops:
    enabled: false
  logging:
    enabled: false
  metrics_server:
    enabled: %s
  multicluster:
    clusterRole: none
  network:
    networkpolicy:
      enabled: false
    ippool:
      type: none
  openpitrix:
    store:
      enabled: false
`

// TestCreateClusterPlatform builds an all-in-one cluster whose file carries KubeSphere's
// ClusterConfiguration: kk create manifest lists the images of the components it switches on,
// the bundle carries them, the platform phase installs them from it (kubectl top answers), a
// re-run changes nothing, and switching a component off and running kk create phase platform
// removes it, and only it.
func TestCreateClusterPlatform(t *testing.T) {
	t.Parallel()
	bin := kkBinary(t)
	bed := testbed.Require(t, testbed.Options{Name: "kkplat"}, 1)
	base := strings.TrimRight(bedCluster(t, bed, nil), "\n") + "\n"
	cfg := writeClusterFile(t, "cluster-platform.yaml", base+strings.Replace(ksConfiguration, "%s", "true", 1))
	bundle, export := exportBundleOut(t, bin, "platform", "-c", cfg)
	if !strings.Contains(export, "registry.k8s.io/metrics-server/metrics-server:") {
		t.Errorf("the bundle of a file with metrics_server on has no metrics-server image:\n%s", export)
	}
	c, kcfg := createOnBed(t, bin, bundle, cfg, bed, "work-platform")
	// kk names what it does not install, with the line
	if !strings.Contains(c.out, "cluster-platform.yaml:") || !strings.Contains(c.out, "ClusterConfiguration spec.common: KubeSphere's core") {
		t.Errorf("no warning about the console's settings:\n%s", c.out)
	}
	mustKubectl(t, kcfg, "wait", "--for=condition=Ready", "node", "--all", "--timeout=300s")
	mustKubectl(t, kcfg, "wait", "--for=condition=Available", "apiservice/v1beta1.metrics.k8s.io", "--timeout=180s")
	// metrics-server scrapes each kubelet every 15 s: the node's usage comes after a scrape or two
	var top string
	waitFor(t, 3*time.Minute, "kubectl top nodes", func() bool {
		out, err := kubectl(t, kcfg, "top", "nodes", "--no-headers")
		top = out
		return err == nil && strings.HasPrefix(out, bed.Machines[0].Name+" ")
	})
	t.Logf("kubectl top nodes: %s", top)
	podImagesInBundle(t, kcfg, bundle)
	c.rerunChangesNothing(t, "all-in-one with the platform phase (metrics-server)")

	// Switched off: kk create phase platform removes what kk installed for it.
	off := writeClusterFile(t, "cluster-platform-off.yaml", base+strings.Replace(ksConfiguration, "%s", "false", 1))
	work := workdirOf(kcfg)
	out, _ := kkOn(t, bin, bed, work, "create", "phase", "platform", "-f", off, "-a", bundle)
	if n := changed(t, out); n != "1" {
		t.Errorf("switching metrics_server off changed %s tasks, want 1 (platform/metrics-server):\n%s", n, out)
	}
	if _, err := kubectl(t, kcfg, "get", "apiservice", "v1beta1.metrics.k8s.io"); err == nil {
		t.Errorf("the APIService is still there after switching metrics_server off")
	}
	if out, _ := kubectl(t, kcfg, "-n", "kube-system", "get", "deployment,service,serviceaccount", "-l", "k8s-app=metrics-server", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("metrics-server objects left:\n%s", out)
	}
	mustKubectl(t, kcfg, "-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=120s")
	again, _ := kkOn(t, bin, bed, work, "create", "phase", "platform", "-f", off, "-a", bundle)
	if n := changed(t, again); n != "0" {
		t.Errorf("kk create phase platform again changed %s tasks, want 0", n)
	}
}
