//go:build e2e

package e2e

import (
	"regexp"
	"strconv"
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

// withKubeSphere appends ksConfiguration, metrics_server switched on or off, to the Cluster
// file s.
func withKubeSphere(s string, metrics bool) string {
	return strings.TrimRight(s, "\n") + "\n" + strings.Replace(ksConfiguration, "%s", strconv.FormatBool(metrics), 1)
}

// platformInstalled checks what the platform phase installed from a file with metrics_server
// on: the bundle's export listed the image, kk warned about the console's settings by name,
// and kubectl top answers with the usage of every node.
func platformInstalled(t *testing.T, bed *testbed.Bed, kcfg, createOut, exportOut string) {
	t.Helper()
	if !strings.Contains(exportOut, "registry.k8s.io/metrics-server/metrics-server:") {
		t.Errorf("the bundle of a file with metrics_server on has no metrics-server image:\n%s", exportOut)
	}
	if !regexp.MustCompile(`\.yaml:\d+: ClusterConfiguration spec.common: KubeSphere's core`).MatchString(createOut) {
		t.Errorf("no warning about the console's settings:\n%s", createOut)
	}
	mustKubectl(t, kcfg, "wait", "--for=condition=Available", "apiservice/v1beta1.metrics.k8s.io", "--timeout=180s")
	// metrics-server scrapes each kubelet every 15 s: a node's usage comes after a scrape or two
	var top string
	waitFor(t, 3*time.Minute, "kubectl top nodes for every node", func() bool {
		out, err := kubectl(t, kcfg, "top", "nodes", "--no-headers")
		top = out
		return err == nil && strings.Count(strings.TrimSpace(out), "\n")+1 == len(bed.Machines) && !strings.Contains(out, "<unknown>")
	})
	t.Logf("kubectl top nodes:\n%s", top)
}

// platformSwitchedOff runs kk create phase platform on the file with metrics_server off: kk
// removes what it installed for it, and only that; a second run changes nothing.
func platformSwitchedOff(t *testing.T, bin string, bed *testbed.Bed, off, bundle, kcfg string) {
	t.Helper()
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
