//go:build e2e

package e2e

import (
	"fmt"
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
	localStorageWorks(t, bed, kcfg, exportOut)
}

// localVolume is a claim on the default class and a busybox pod on n2 that writes into it.
const localVolume = `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: e2e-local, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: e2e-local, namespace: default}
spec:
  nodeSelector: {kubernetes.io/hostname: n2}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %s
    imagePullPolicy: Never
    command: [sh, -c, "echo written-by-e2e > /data/f && exec sleep 3600"]
    volumeMounts: [{name: v, mountPath: /data}]
  volumes:
  - name: v
    persistentVolumeClaim: {claimName: e2e-local}
`

// localStorageWorks checks kk's local storage, which the ClusterConfiguration's empty
// persistence.storageClass turns on: "local" is the default class; a claim waits for its pod,
// binds once the pod is scheduled on n2 and holds what the pod writes in a directory under
// /var/openebs/local there; deleting the claim removes that directory.
func localStorageWorks(t *testing.T, bed *testbed.Bed, kcfg, exportOut string) {
	t.Helper()
	busybox := regexp.MustCompile(`docker\.io/library/busybox:\S+`).FindString(exportOut)
	if busybox == "" || !strings.Contains(exportOut, "docker.io/rancher/local-path-provisioner:") {
		t.Fatalf("the bundle of a file with a ClusterConfiguration lacks local storage's images:\n%s", exportOut)
	}
	if out := mustKubectl(t, kcfg, "get", "storageclass", "local", "-o",
		`jsonpath={.metadata.annotations.storageclass\.kubernetes\.io/is-default-class} {.volumeBindingMode}`); out != "true WaitForFirstConsumer" {
		t.Errorf("storage class local: %q, want the default with WaitForFirstConsumer", out)
	}
	pv := writeClusterFile(t, "local-volume.yaml", fmt.Sprintf(localVolume, busybox))
	mustKubectl(t, kcfg, "apply", "-f", pv)
	mustKubectl(t, kcfg, "wait", "--for=condition=Ready", "pod/e2e-local", "--timeout=180s")
	mustKubectl(t, kcfg, "wait", "--for=jsonpath={.status.phase}=Bound", "pvc/e2e-local", "--timeout=60s")
	n2 := bed.Machines[1]
	if out := rootSSH(t, bed, n2, "cat /var/openebs/local/*e2e-local*/f"); strings.TrimSpace(out) != "written-by-e2e" {
		t.Errorf("n2: the volume's file under /var/openebs/local: %q", out)
	}
	mustKubectl(t, kcfg, "delete", "-f", pv, "--wait=true", "--timeout=120s")
	waitFor(t, 2*time.Minute, "the volume's directory on n2 removed", func() bool {
		out, err := sshOut(bed, n2, "ls -d /var/openebs/local/*e2e-local* 2>/dev/null | wc -l")
		return err == nil && strings.TrimSpace(out) == "0"
	})
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
