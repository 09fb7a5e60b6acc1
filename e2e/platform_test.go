//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/e2e/images"
	"github.com/kk-project/kk/e2e/testbed"
	"github.com/kk-project/kk/modules/platform/localcsi"
)

// ksConfiguration is the ClusterConfiguration a KubeKey user keeps after the Cluster (KubeSphere
// 3.4's layout, abridged): metrics_server, kk's gateway, the monitoring stack (with etcd and a
// small Prometheus) and alerting (with a webhook receiver, the test's e2e-hook) are switched
// as %s, the rest off; the console's settings are there, as ks-installer's file has them.
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
    enabled: %s
    receivers:
    - {name: e2e-hook, webhook: "http://e2e-hook.default.svc:8080/cgi-bin/hook"}
  monitoring:
    enabled: %s
    storageClass: ""
    prometheus:
      replicas: 1
      volumeSize: 1Gi
      retention: 1d
      resources: {requests: {memory: 200Mi}}
    node_exporter:
      port: 9100
  etcd:
    monitoring: %s
    endpointIps: localhost
    port: 2379
    tlsEnable: true
  devops:
    enabled: false
  logging:
    enabled: %s
    retention: 1d
    volumeSize: 1Gi
  metrics_server:
    enabled: %s
  gateway:
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
      enabled: %s
      charts: [CHARTS]
`

// e2eWorkspace is kk's spec.workspaces with one tenant: a namespace, an admin group and a
// quota of 2 GPUs, 600m CPU and 4 pods.
const e2eWorkspace = `  workspaces:
  - name: e2e-team
    adminGroup: e2e-admins
    namespaces: [e2e-team-dev]
    quota: {requests.cpu: 600m, requests.memory: 512Mi, requests.nvidia.com/gpu: "2", pods: "4"}
`

// withKubeSphere appends ksConfiguration, metrics_server, the gateway and the workspace
// switched on or off, to the Cluster file s.
func withKubeSphere(s string, on bool) string {
	cc := strings.ReplaceAll(ksConfiguration, "%s", strconv.FormatBool(on))
	out := strings.TrimRight(s, "\n") + "\n" + strings.ReplaceAll(cc, "CHARTS", strconv.Quote(exampleChart))
	if on {
		out += e2eWorkspace
	}
	return out
}

// platformInstalled checks what the platform phase installed from a file with metrics_server
// and the gateway on: the bundle's export listed the image, kk warned about the console's
// settings by name, kubectl top answers with the usage of every node, local storage and the
// gateway work.
func platformInstalled(t *testing.T, bed *testbed.Bed, kcfg, createOut, exportOut string) {
	t.Helper()
	if !strings.Contains(exportOut, "registry.k8s.io/metrics-server/metrics-server:") {
		t.Errorf("the bundle of a file with metrics_server on has no metrics-server image:\n%s", exportOut)
	}
	if !regexp.MustCompile(`\.yaml:\d+: ClusterConfiguration spec.common: KubeSphere's core`).MatchString(createOut) {
		t.Errorf("no warning about the console's settings:\n%s", createOut)
	}
	// the alert the test causes: a pod that crashes again and again, started first, as the
	// alert waits for its backoff, Prometheus' scrape and evaluation and the rule's minute
	busybox := loadBusybox(t, bed, bed.Machines...)
	crasher := startCrasher(t, kcfg, busybox)
	mustKubectl(t, kcfg, "wait", "--for=condition=Available", "apiservice/v1beta1.metrics.k8s.io", "--timeout=180s")
	// metrics-server scrapes each kubelet every 15 s: a node's usage comes after a scrape or two
	var top string
	waitFor(t, 3*time.Minute, "kubectl top nodes for every node", func() bool {
		out, err := kubectl(t, kcfg, "top", "nodes", "--no-headers")
		top = out
		return err == nil && strings.Count(strings.TrimSpace(out), "\n")+1 == len(bed.Machines) && !strings.Contains(out, "<unknown>")
	})
	t.Logf("kubectl top nodes:\n%s", top)
	localStorageWorks(t, bed, kcfg, exportOut, busybox)
	gatewayRoutes(t, bed, kcfg, exportOut, busybox)
	workspaceWorks(t, kcfg, busybox)
	monitoringWorks(t, bed, kcfg, exportOut, 1) // the kube-vip cluster's etcd is on n1
	logLineFound(t, kcfg, exportOut, busybox)
	chartFromAppStore(t, kcfg, exportOut)
	alertReachesReceiver(t, kcfg, crasher)
	imagesFromBundle(t, kcfg, exportOut)
	recordPlatformUsage(t, kcfg)
}

// imagesFromBundle checks that every image a pod of the cluster runs (containers and init
// containers, every namespace) is one the bundle's export listed, apart from the test's own
// probe and busybox (loadProbe and loadBusybox import them by hand).
func imagesFromBundle(t *testing.T, kcfg, exportOut string) {
	t.Helper()
	out := mustKubectl(t, kcfg, "get", "pods", "-A", "-o",
		`jsonpath={range .items[*]}{range .spec.initContainers[*]}{.image}{"\n"}{end}{range .spec.containers[*]}{.image}{"\n"}{end}{end}`)
	seen := map[string]bool{}
	for _, img := range strings.Fields(out) {
		if seen[img] || img == images.ProbeRepository+":"+images.ProbeTag || img == images.BusyboxRepository+":"+images.BusyboxTag {
			continue
		}
		seen[img] = true
		full := img
		if first, _, _ := strings.Cut(img, "/"); !strings.ContainsAny(first, ".:") {
			full = "docker.io/" + img // Docker Hub's short form
		}
		if !strings.Contains(exportOut, "image "+full+" (") {
			t.Errorf("a pod runs %s, which the bundle's export does not list", img)
		}
	}
	if len(seen) < 10 {
		t.Errorf("only %d images run: %v", len(seen), out)
	}
	t.Logf("%d images the pods run, each from the bundle", len(seen))
}

// quotaPod is a busybox pod %[1]s in the workspace's namespace on n2 that requests %[3]s CPU
// and %[4]s GPUs.
const quotaPod = `apiVersion: v1
kind: Pod
metadata: {name: %[1]s, namespace: e2e-team-dev}
spec:
  nodeSelector: {kubernetes.io/hostname: n2}
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %[2]s
    imagePullPolicy: Never
    command: [sleep, "3600"]
    resources:
      requests: {cpu: %[3]s, memory: 16Mi, nvidia.com/gpu: "%[4]s"}
      limits: {nvidia.com/gpu: "%[4]s"}
`

// workspaceWorks checks kk's workspace: its namespace carries KubeSphere's workspace label,
// its admin group administers it (and nobody else), and its quota holds. The test machines
// have no GPU: n2 advertises 4 nvidia.com/gpu through its node status, as Kubernetes documents
// for an extended resource, so the scheduler and the quota act on GPUs for real: two 1-GPU pods
// run, a third is refused with the quota named, a pod without GPUs still runs, and one beyond
// the CPU quota is refused.
func workspaceWorks(t *testing.T, kcfg, busybox string) {
	t.Helper()
	ns := "e2e-team-dev"
	if out := mustKubectl(t, kcfg, "get", "namespace", ns, "-o", `jsonpath={.metadata.labels.kubesphere\.io/workspace}`); out != "e2e-team" {
		t.Errorf("namespace %s: workspace label %q", ns, out)
	}
	if out, _ := kubectl(t, kcfg, "auth", "can-i", "create", "deployments", "-n", ns, "--as", "alice", "--as-group", "e2e-admins"); strings.TrimSpace(out) != "yes" {
		t.Errorf("the workspace's admin group may not create deployments in %s: %q", ns, out)
	}
	if out, _ := kubectl(t, kcfg, "auth", "can-i", "create", "deployments", "-n", ns, "--as", "mallory"); strings.TrimSpace(out) != "no" {
		t.Errorf("a user outside the admin group may create deployments in %s: %q", ns, out)
	}
	mustKubectl(t, kcfg, "patch", "node", "n2", "--subresource=status", "--type=json", "-p",
		`[{"op":"add","path":"/status/capacity/nvidia.com~1gpu","value":"4"},{"op":"add","path":"/status/allocatable/nvidia.com~1gpu","value":"4"}]`)
	defer kubectl(t, kcfg, "patch", "node", "n2", "--subresource=status", "--type=json", "-p",
		`[{"op":"remove","path":"/status/capacity/nvidia.com~1gpu"},{"op":"remove","path":"/status/allocatable/nvidia.com~1gpu"}]`)
	// the quota controller fills in the status before admission counts against it
	mustKubectl(t, kcfg, "-n", ns, "wait", "--for=jsonpath={.status.hard.pods}=4", "resourcequota/e2e-team-quota", "--timeout=120s")
	pod := func(name, cpu, gpus string) string {
		return writeClusterFile(t, name+".yaml", fmt.Sprintf(quotaPod, name, busybox, cpu, gpus))
	}
	mustKubectl(t, kcfg, "apply", "-f", pod("gpu-1", "10m", "1"), "-f", pod("gpu-2", "10m", "1"), "-f", pod("no-gpu", "10m", "0"))
	mustKubectl(t, kcfg, "-n", ns, "wait", "--for=condition=Ready", "pod/gpu-1", "pod/gpu-2", "pod/no-gpu", "--timeout=180s")
	out, err := kubectl(t, kcfg, "create", "-f", pod("gpu-3", "10m", "1"))
	if err == nil || !strings.Contains(out, "exceeded quota: e2e-team-quota") || !strings.Contains(out, "requests.nvidia.com/gpu") {
		t.Errorf("a third 1-GPU pod beyond the workspace's 2: %v\n%s", err, out)
	}
	out, err = kubectl(t, kcfg, "create", "--dry-run=server", "-f", pod("cpu-beyond", "600m", "0"))
	if err == nil || !strings.Contains(out, "exceeded quota: e2e-team-quota") || !strings.Contains(out, "requests.cpu") {
		t.Errorf("a pod beyond the workspace's CPU: %v\n%s", err, out)
	}
	if out := mustKubectl(t, kcfg, "-n", ns, "get", "resourcequota", "e2e-team-quota", "-o", `jsonpath={.status.used.requests\.nvidia\.com/gpu}`); out != "2" {
		t.Errorf("GPUs used in the workspace: %q, want 2", out)
	}
	mustKubectl(t, kcfg, "-n", ns, "delete", "pod", "gpu-1", "gpu-2", "no-gpu", "--wait=true", "--timeout=120s")
}

// platformPods are the pods of each platform component kk installs: namespace and selector.
var platformPods = []struct{ component, namespace, selector string }{
	{"local-storage", "kube-system", "app in (kk-local-storage,snapshot-controller)"},
	{"metrics-server", "kube-system", "k8s-app=metrics-server"},
	{"gateway", "kubesphere-controls-system", "app.kubernetes.io/name=kk-gateway"},
	{"monitoring", "kubesphere-monitoring-system", "app.kubernetes.io/name in (prometheus-operator,prometheus,node-exporter,kube-state-metrics)"},
	{"alerting", "kubesphere-monitoring-system", "app.kubernetes.io/name=alertmanager"},
	{"logging", "kubesphere-logging-system", "app.kubernetes.io/name in (victoria-logs,vlagent)"},
	{"app-store", "kubesphere-system", "app.kubernetes.io/name=kk-app-store"},
}

// recordPlatformUsage logs, and appends to $KK_E2E_RESULTS (make bench), the memory and CPU
// of each platform component's pods as metrics-server reports them. No figure is asserted.
func recordPlatformUsage(t *testing.T, kcfg string) {
	t.Helper()
	var rows []string
	for _, p := range platformPods {
		var out string
		waitFor(t, 2*time.Minute, "metrics of "+p.component+"'s pods", func() bool {
			var err error
			out, err = kubectl(t, kcfg, "-n", p.namespace, "top", "pods", "-l", p.selector, "--no-headers")
			return err == nil && strings.TrimSpace(out) != ""
		})
		var pods int
		var cpu, mem float64 // millicores, MiB
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			fs := strings.Fields(line)
			if len(fs) != 3 {
				continue
			}
			pods++
			c, _ := strconv.ParseFloat(strings.TrimSuffix(fs[1], "m"), 64)
			m, _ := strconv.ParseFloat(strings.TrimSuffix(fs[2], "Mi"), 64)
			cpu, mem = cpu+c, mem+m
		}
		rows = append(rows, fmt.Sprintf("| %s | %d | %.0f MiB | %.0f MiB | %.0fm |", p.component, pods, mem, mem/float64(max(pods, 1)), cpu))
	}
	t.Logf("platform components' usage:\n%s", strings.Join(rows, "\n"))
	appendResults(t, func(f io.Writer) {
		fmt.Fprintf(f, "\n### Platform components (kubectl top, after their checks)\n\n| component | pods | memory | per pod | CPU |\n|---|---|---|---|---|\n%s\n", strings.Join(rows, "\n"))
	})
}

// webBackend is a busybox web server on n1 behind a Service, and an Ingress without a class
// (the default class takes it) routing host web.e2e.test to it.
const webBackend = `apiVersion: v1
kind: Pod
metadata: {name: e2e-web, namespace: default, labels: {app: e2e-web}}
spec:
  nodeSelector: {kubernetes.io/hostname: n1}
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: %s
    imagePullPolicy: Never
    command: [sh, -c, "mkdir -p /tmp/www && echo served-by-e2e-web > /tmp/www/index.html && exec busybox httpd -f -p 8080 -h /tmp/www"]
    ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: e2e-web, namespace: default}
spec:
  selector: {app: e2e-web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: e2e-web, namespace: default}
spec:
  rules:
  - host: web.e2e.test
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: e2e-web, port: {number: 80}}}
`

// gatewayRoutes checks the cluster gateway: Traefik's image came with the bundle, it runs on
// every node (each a worker), its IngressClass is the default one, and an HTTP request to
// port 80 of every node for web.e2e.test reaches the backend pod on n1 (from n2 across the
// pod network); another host gets Traefik's 404.
func gatewayRoutes(t *testing.T, bed *testbed.Bed, kcfg, exportOut, busybox string) {
	t.Helper()
	if !strings.Contains(exportOut, "docker.io/library/traefik:") {
		t.Fatalf("the bundle of a file with the gateway on lacks traefik's image:\n%s", exportOut)
	}
	mustKubectl(t, kcfg, "-n", "kubesphere-controls-system", "rollout", "status", "daemonset/kk-gateway", "--timeout=180s")
	if out := mustKubectl(t, kcfg, "-n", "kubesphere-controls-system", "get", "pods", "-l", "app.kubernetes.io/name=kk-gateway", "-o", "name"); strings.Count(out, "pod/") != len(bed.Machines) {
		t.Errorf("gateway pods %q, want one per node", out)
	}
	web := writeClusterFile(t, "web-backend.yaml", fmt.Sprintf(webBackend, busybox))
	mustKubectl(t, kcfg, "apply", "-f", web)
	mustKubectl(t, kcfg, "wait", "--for=condition=Ready", "pod/e2e-web", "--timeout=180s")
	if out := mustKubectl(t, kcfg, "get", "ingress", "e2e-web", "-o", "jsonpath={.spec.ingressClassName}"); out != "traefik" {
		t.Errorf("the Ingress without a class got class %q, want the default traefik", out)
	}
	get := func(addr, host string) (int, string, error) {
		req, err := http.NewRequest(http.MethodGet, "http://"+net.JoinHostPort(addr, "80")+"/", nil)
		if err != nil {
			return 0, "", err
		}
		req.Host = host
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(body)), err
	}
	for _, m := range bed.Machines {
		var code int
		var body string
		var err error
		waitFor(t, 2*time.Minute, "web.e2e.test through the gateway on "+m.Name, func() bool {
			code, body, err = get(m.Address, "web.e2e.test")
			return err == nil && code == http.StatusOK && body == "served-by-e2e-web"
		})
		if code, _, err := get(m.Address, "other.e2e.test"); err != nil || code != http.StatusNotFound {
			t.Errorf("%s: a host no Ingress names: %d %v, want 404", m.Name, code, err)
		}
	}
	mustKubectl(t, kcfg, "delete", "-f", web, "--wait=true", "--timeout=120s")
}

// localClaim is a claim on the default class; localPod a busybox pod on n2 that writes into it.
const (
	localClaim = `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: e2e-local, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
`
	localPod = `apiVersion: v1
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
	// localSnapshot takes the default VolumeSnapshotClass (it names none)
	localSnapshot = `apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata: {name: e2e-local, namespace: default}
spec:
  source: {persistentVolumeClaimName: e2e-local}
`
)

// localStorageWorks checks kk's local storage, which the ClusterConfiguration's empty
// persistence.storageClass turns on (kk's CSI driver, the upstream sidecars and the
// snapshot-controller, from the bundle): "local" is the default class, binding waits for the
// first consumer and claims may grow; a claim stays Pending without a pod, binds once its pod is
// scheduled on n2, to a volume pinned to n2 that holds what the pod writes in a directory under
// /var/openebs/local there; it grows to 128Mi while the pod runs; a snapshot of it (default
// class) becomes ready, an archive beside the volume on n2; deleting the snapshot and the claim
// removes both.
func localStorageWorks(t *testing.T, bed *testbed.Bed, kcfg, exportOut, busybox string) {
	t.Helper()
	for _, img := range []string{"ghcr.io/kk-project/kk-local-csi:", "registry.k8s.io/sig-storage/csi-provisioner:",
		"registry.k8s.io/sig-storage/csi-snapshotter:", "registry.k8s.io/sig-storage/snapshot-controller:"} {
		if !strings.Contains(exportOut, img) {
			t.Fatalf("the bundle of a file with a ClusterConfiguration lacks local storage's %s:\n%s", img, exportOut)
		}
	}
	if out := mustKubectl(t, kcfg, "get", "storageclass", "local", "-o",
		`jsonpath={.metadata.annotations.storageclass\.kubernetes\.io/is-default-class} {.volumeBindingMode} {.allowVolumeExpansion}`); out != "true WaitForFirstConsumer true" {
		t.Errorf("storage class local: %q, want the default with WaitForFirstConsumer and expansion", out)
	}
	if out := mustKubectl(t, kcfg, "get", "volumesnapshotclass", "local", "-o",
		`jsonpath={.metadata.annotations.snapshot\.storage\.kubernetes\.io/is-default-class} {.driver}`); out != "true "+localcsi.DriverName {
		t.Errorf("volume snapshot class local: %q, want the default of %s", out, localcsi.DriverName)
	}
	mustKubectl(t, kcfg, "-n", "kube-system", "rollout", "status", "daemonset/kk-local-storage", "--timeout=180s")
	mustKubectl(t, kcfg, "-n", "kube-system", "rollout", "status", "deployment/snapshot-controller", "--timeout=180s")
	n2 := bed.Machines[1]

	claim := writeClusterFile(t, "local-claim.yaml", localClaim)
	mustKubectl(t, kcfg, "apply", "-f", claim)
	waitFor(t, time.Minute, "the claim waiting for its first consumer", func() bool {
		out, err := kubectl(t, kcfg, "get", "events", "--field-selector", "involvedObject.name=e2e-local,reason=WaitForFirstConsumer", "-o", "name")
		return err == nil && strings.TrimSpace(out) != ""
	})
	if out := mustKubectl(t, kcfg, "get", "pvc", "e2e-local", "-o", "jsonpath={.status.phase}"); out != "Pending" {
		t.Errorf("the claim without a pod is %q, want Pending", out)
	}
	pod := writeClusterFile(t, "local-pod.yaml", fmt.Sprintf(localPod, busybox))
	mustKubectl(t, kcfg, "apply", "-f", pod)
	mustKubectl(t, kcfg, "wait", "--for=condition=Ready", "pod/e2e-local", "--timeout=180s")
	mustKubectl(t, kcfg, "wait", "--for=jsonpath={.status.phase}=Bound", "pvc/e2e-local", "--timeout=60s")
	pv := mustKubectl(t, kcfg, "get", "pvc", "e2e-local", "-o", "jsonpath={.spec.volumeName}")
	vol := mustKubectl(t, kcfg, "get", "pv", pv, "-o", `jsonpath={.spec.csi.volumeHandle} {.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}`)
	handle, node, _ := strings.Cut(vol, " ")
	if handle == "" || node != n2.Name {
		t.Errorf("the volume %q is pinned to %q, want n2", handle, node)
	}
	if out := rootSSH(t, bed, n2, "cat /var/openebs/local/"+handle+"/f"); strings.TrimSpace(out) != "written-by-e2e" {
		t.Errorf("n2: the volume's file under /var/openebs/local/%s: %q", handle, out)
	}

	mustKubectl(t, kcfg, "patch", "pvc", "e2e-local", "--type=merge", "-p", `{"spec":{"resources":{"requests":{"storage":"128Mi"}}}}`)
	mustKubectl(t, kcfg, "wait", "--for=jsonpath={.status.capacity.storage}=128Mi", "pvc/e2e-local", "--timeout=180s")

	snap := writeClusterFile(t, "local-snapshot.yaml", localSnapshot)
	mustKubectl(t, kcfg, "apply", "-f", snap)
	mustKubectl(t, kcfg, "wait", "--for=jsonpath={.status.readyToUse}=true", "volumesnapshot/e2e-local", "--timeout=180s")
	content := mustKubectl(t, kcfg, "get", "volumesnapshot", "e2e-local", "-o", "jsonpath={.status.boundVolumeSnapshotContentName}")
	snapHandle := mustKubectl(t, kcfg, "get", "volumesnapshotcontent", content, "-o", "jsonpath={.status.snapshotHandle}")
	if out := rootSSH(t, bed, n2, "tar -tzf /var/openebs/local/"+snapHandle+".snap"); !strings.Contains(out, "f") {
		t.Errorf("n2: the snapshot's archive %s.snap holds %q, want the volume's file", snapHandle, out)
	}

	mustKubectl(t, kcfg, "delete", "-f", snap, "--wait=true", "--timeout=120s")
	mustKubectl(t, kcfg, "delete", "-f", pod, "-f", claim, "--wait=true", "--timeout=120s")
	waitFor(t, 2*time.Minute, "the volume and the snapshot removed from n2", func() bool {
		out, err := sshOut(bed, n2, "ls -d /var/openebs/local/"+handle+" /var/openebs/local/"+snapHandle+".snap 2>/dev/null | wc -l")
		return err == nil && strings.TrimSpace(out) == "0"
	})
}

// platformSwitchedOff runs kk create phase platform on the file with metrics_server and the
// gateway off: kk removes what it installed for them, and only that; a second run changes
// nothing.
func platformSwitchedOff(t *testing.T, bin string, bed *testbed.Bed, off, bundle, kcfg string) {
	t.Helper()
	work := workdirOf(kcfg)
	out, _ := kkOn(t, bin, bed, work, "create", "phase", "platform", "-f", off, "-a", bundle)
	// (and platform/gpu-monitoring: its rules and scrape job for kk's Prometheus go with it)
	if n := changed(t, out); n != "8" {
		t.Errorf("switching metrics_server, the gateway, the workspace, monitoring, alerting, logging and the app store off changed %s tasks, want 8 (platform/metrics-server, platform/gateway, platform/tenants, platform/monitoring, platform/alerting, platform/logging, platform/app-store, platform/gpu-monitoring):\n%s", n, out)
	}
	// the app store goes (its claim once its pod has stopped); the namespace it shares with
	// KubeSphere's core stays
	waitFor(t, 2*time.Minute, "the app store's objects gone", func() bool {
		out, err := kubectl(t, kcfg, "-n", "kubesphere-system", "get", "deployment,service,pvc", "-o", "name")
		return err == nil && strings.TrimSpace(out) == ""
	})
	mustKubectl(t, kcfg, "get", "namespace", "kubesphere-system")
	if out, _ := kubectl(t, kcfg, "-n", "kube-system", "get", "prometheusrule,scrapeconfig", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("the GPU monitoring's objects for kk's Prometheus left:\n%s", out)
	}
	mustKubectl(t, kcfg, "-n", "kube-system", "get", "configmap", "kk-gpu-prometheus")
	waitFor(t, 3*time.Minute, "the logging's namespace gone", func() bool {
		_, err := kubectl(t, kcfg, "get", "namespace", "kubesphere-logging-system")
		return err != nil
	})
	// the monitoring stack goes with its namespace (Prometheus' volume too); the operator's
	// CRDs stay, as the cluster's other ServiceMonitors and rules would go with them
	namespaceGone(t, kcfg, monitoringNS, 8*time.Minute)
	if out, _ := kubectl(t, kcfg, "get", "clusterrole,clusterrolebinding", "-l", "kk.kubesphere.io/platform-component in (monitoring,alerting)", "-o", "name"); strings.Contains(out, "/") {
		t.Errorf("monitoring objects left:\n%s", out)
	}
	mustKubectl(t, kcfg, "get", "crd", "prometheuses.monitoring.coreos.com", "servicemonitors.monitoring.coreos.com")
	// the workspace's binding and quota go; its namespace stays
	if out, _ := kubectl(t, kcfg, "-n", "e2e-team-dev", "get", "rolebinding,resourcequota", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("workspace objects left:\n%s", out)
	}
	mustKubectl(t, kcfg, "get", "namespace", "e2e-team-dev")
	if _, err := kubectl(t, kcfg, "get", "apiservice", "v1beta1.metrics.k8s.io"); err == nil {
		t.Errorf("the APIService is still there after switching metrics_server off")
	}
	if out, _ := kubectl(t, kcfg, "-n", "kube-system", "get", "deployment,service,serviceaccount", "-l", "k8s-app=metrics-server", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("metrics-server objects left:\n%s", out)
	}
	if out, _ := kubectl(t, kcfg, "get", "ingressclass,clusterrole,clusterrolebinding", "-l", "app.kubernetes.io/name=kk-gateway", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("gateway objects left:\n%s", out)
	}
	waitFor(t, 2*time.Minute, "the gateway's namespace gone", func() bool {
		_, err := kubectl(t, kcfg, "get", "namespace", "kubesphere-controls-system")
		return err != nil
	})
	// local storage stays: its switch did not change
	mustKubectl(t, kcfg, "get", "storageclass", "local")
	mustKubectl(t, kcfg, "-n", "kube-system", "rollout", "status", "deployment/coredns", "--timeout=120s")
	again, _ := kkOn(t, bin, bed, work, "create", "phase", "platform", "-f", off, "-a", bundle)
	if n := changed(t, again); n != "0" {
		t.Errorf("kk create phase platform again changed %s tasks, want 0", n)
	}
}

// namespaceGone waits up to within for namespace ns to be deleted; when it is not, the test
// fails with what holds it (the namespace's conditions, its pods and claims).
func namespaceGone(t *testing.T, kcfg, ns string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if _, err := kubectl(t, kcfg, "get", "namespace", ns); err != nil {
			return
		}
		if time.Now().After(deadline) {
			conds, _ := kubectl(t, kcfg, "get", "namespace", ns, "-o", `jsonpath={range .status.conditions[*]}{.type}={.status}: {.message}{"\n"}{end}`)
			left, _ := kubectl(t, kcfg, "-n", ns, "get", "pods,pvc,statefulsets,prometheus,alertmanager", "-o", "wide")
			t.Fatalf("namespace %s still there after %s:\n%s\n%s", ns, within, conds, left)
		}
		time.Sleep(5 * time.Second)
	}
}
