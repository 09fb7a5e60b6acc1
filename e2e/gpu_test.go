//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/e2e/mirror"
	"github.com/kk-project/kk/e2e/testbed"
)

// gpuHost makes the bed's Cluster file declare host name a GPU host (the label NVIDIA's tools
// give one, which kk reads as a declaration: the test machines have no GPU on their PCI bus)
// and switch kk's GPU support on (spec.gpu), each GPU shared devicePluginReplicas times.
func gpuHost(name string) [][2]string {
	return [][2]string{
		{"{name: " + name + ",", "{name: " + name + `, labels: {nvidia.com/gpu.present: "true"},`},
		{"  etcd: {type: kubekey}\n", fmt.Sprintf("  etcd: {type: kubekey}\n  gpu: {devicePlugin: {timeSlicing: {replicas: %d}}}\n", devicePluginReplicas)},
	}
}

// gpuDryRun runs kk create cluster --dry-run of cfg on the bed before its cluster exists: the
// plan names, on the declared GPU host gpu, NVIDIA's container toolkit, containerd's nvidia
// runtime and kk's GPU exporter (on no other host), and the device plugin, the RuntimeClass
// and the workspaces' quotas among the cluster's tasks. (The driver's plan is the gpu
// module's golden file: the mirror has no driver installer to bundle.)
func gpuDryRun(t *testing.T, bin string, bed *testbed.Bed, cfg, bundle string, gpu testbed.Machine, others ...testbed.Machine) {
	t.Helper()
	plan, _ := kkOn(t, bin, bed, filepath.Join(e2eDir(t), "work-dry"), "create", "cluster", "-f", cfg, "-a", bundle, "--dry-run")
	on := plannedOn(plan, gpu.Name)
	for _, want := range []string{"gpu/container-toolkit", "gpu/containerd-nvidia", "gpu/exporter"} {
		if !slices.Contains(on, want+" "+gpu.Name) {
			t.Errorf("the dry run plans no %s on %s (the GPU host):\n%s", want, gpu.Name, plan)
		}
	}
	var names []string
	for _, m := range append(others, gpu) {
		names = append(names, m.Name)
	}
	all := plannedOn(plan, names...)
	for _, want := range []string{"gpu/runtime-class", "platform/nvidia-device-plugin", "platform/tenants"} {
		if !slices.ContainsFunc(all, func(p string) bool { return strings.HasPrefix(p, want+" ") }) {
			t.Errorf("the dry run plans no %s:\n%s", want, plan)
		}
	}
	for _, m := range others {
		for _, p := range plannedOn(plan, m.Name) {
			if strings.HasPrefix(p, "gpu/container-toolkit ") || strings.HasPrefix(p, "gpu/exporter ") {
				t.Errorf("the dry run plans %s on a host without a GPU", p)
			}
		}
	}
}

// devicePluginReplicas is the e2e's time-slicing: each GPU advertised this many times.
const devicePluginReplicas = 3

// runtimeClassPod is a busybox pod of the RuntimeClass nvidia: no node selector of its own
// (the class's sends it to the GPU nodes), no GPU asked for.
const runtimeClassPod = `apiVersion: v1
kind: Pod
metadata: {name: e2e-nvidia-runtime, namespace: default}
spec:
  runtimeClassName: nvidia
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %s
    imagePullPolicy: Never
    command: [sleep, "3600"]
`

// gpuToolkitWorks checks NVIDIA's container toolkit on the bed's declared GPU host gpu (and
// nowhere else): its base package from the bundle, containerd's nvidia runtime written by
// nvidia-ctk as a drop-in and loaded, the RuntimeClass nvidia, and a pod of that class that
// lands on gpu and runs through nvidia-container-runtime (no GPU asked: it hands the
// container to runc as it is).
func gpuToolkitWorks(t *testing.T, bed *testbed.Bed, kcfg string, gpu testbed.Machine, others []testbed.Machine) {
	t.Helper()
	toolkitInstalled(t, bed, gpu)
	dropIn := rootSSH(t, bed, gpu, "cat /etc/containerd/conf.d/99-nvidia.toml")
	if !strings.Contains(dropIn, "runtimes.nvidia") || !strings.Contains(dropIn, "/usr/bin/nvidia-container-runtime") {
		t.Errorf("%s: containerd's nvidia drop-in:\n%s", gpu.Name, dropIn)
	}
	if out := rootSSH(t, bed, gpu, "crictl info -o go-template --template '{{range $k, $v := .config.containerd.runtimes}}{{$k}} {{end}}'"); !strings.Contains(out, "nvidia") {
		t.Errorf("%s: containerd's CRI runtimes %q, want nvidia among them", gpu.Name, out)
	}
	for _, m := range others {
		if out := rootSSH(t, bed, m, "ls /etc/containerd/conf.d 2>/dev/null; dpkg-query -W nvidia-container-toolkit-base 2>/dev/null; true"); strings.TrimSpace(out) != "" {
			t.Errorf("%s (no GPU host) has the toolkit: %q", m.Name, out)
		}
	}
	if out := mustKubectl(t, kcfg, "get", "runtimeclass", "nvidia", "-o", `jsonpath={.handler} {.scheduling.nodeSelector.nvidia\.com/gpu\.present}`); out != "nvidia true" {
		t.Errorf("RuntimeClass nvidia: %q, want handler nvidia, on the GPU nodes", out)
	}
	pod := writeClusterFile(t, "nvidia-runtime-pod.yaml", fmt.Sprintf(runtimeClassPod, loadBusybox(t, bed, gpu)))
	mustKubectl(t, kcfg, "apply", "-f", pod)
	mustKubectl(t, kcfg, "wait", "--for=condition=Ready", "pod/e2e-nvidia-runtime", "--timeout=180s")
	if out := mustKubectl(t, kcfg, "get", "pod", "e2e-nvidia-runtime", "-o", "jsonpath={.spec.nodeName}"); out != gpu.Name {
		t.Errorf("the RuntimeClass nvidia's pod runs on %q, want %s (the GPU host)", out, gpu.Name)
	}
	if out := rootSSH(t, bed, gpu, "crictl inspectp -o go-template --template '{{.status.runtimeHandler}}' $(crictl pods -q --name e2e-nvidia-runtime --state ready)"); strings.TrimSpace(out) != "nvidia" {
		t.Errorf("%s: the pod's runtime handler %q, want nvidia", gpu.Name, out)
	}
	mustKubectl(t, kcfg, "delete", "-f", pod, "--wait=true", "--timeout=120s")
}

// toolkitInstalled checks that the toolkit's base package of the mirror's release is
// installed on gpu, with its nvidia-ctk.
func toolkitInstalled(t *testing.T, bed *testbed.Bed, gpu testbed.Machine) {
	t.Helper()
	v := strings.TrimPrefix(mirror.DefaultSpec().NvidiaContainerToolkit, "v")
	if out := rootSSH(t, bed, gpu, "dpkg-query -W -f='${Version}' nvidia-container-toolkit-base; echo; nvidia-ctk --version | head -n1"); !strings.HasPrefix(out, v+"-1\n") || !strings.Contains(out, v) {
		t.Errorf("%s: the toolkit's package and nvidia-ctk: %q, want %s-1", gpu.Name, out, v)
	}
}

// devicePluginWaits checks NVIDIA's device plugin: its DaemonSet has one pod, on the declared
// GPU host gpu, which read kk's configuration (the file's time-slicing, failOnInitError off)
// and, finding no GPU there, waits rather than fails.
func devicePluginWaits(t *testing.T, kcfg string, gpu testbed.Machine) {
	t.Helper()
	sel := "app.kubernetes.io/name=nvidia-device-plugin"
	if out := mustKubectl(t, kcfg, "-n", "kube-system", "get", "pods", "-l", sel, "-o", `jsonpath={range .items[*]}{.spec.nodeName} {.status.phase}{"\n"}{end}`); out != gpu.Name+" Running\n" {
		t.Errorf("device plugin pods (node, phase):\n%s\nwant one, Running on %s (the GPU host)", out, gpu.Name)
	}
	var logs string
	waitFor(t, 2*time.Minute, "the device plugin to say it found no devices", func() bool {
		logs, _ = kubectl(t, kcfg, "-n", "kube-system", "logs", "-l", sel, "--tail=-1")
		return strings.Contains(logs, "No devices found. Waiting indefinitely.")
	})
	replicas := regexp.MustCompile(`"replicas":\s*` + strconv.Itoa(devicePluginReplicas) + `\b`)
	if !strings.Contains(logs, `"failOnInitError": false`) || !replicas.MatchString(logs) {
		t.Errorf("the device plugin's configuration lacks kk's failOnInitError false or time-slicing of %d:\n%s", devicePluginReplicas, logs)
	}
}

// gpuExporterServes checks kk's GPU exporter: its service runs on the declared GPU host gpu
// (and on no other), serves its metrics on gpu's address to another node (from, which a
// cluster's Prometheus would be on) and, without a driver there, says NVML does not answer;
// the dashboard and the Prometheus files are in the cluster.
func gpuExporterServes(t *testing.T, bed *testbed.Bed, kcfg string, gpu, from testbed.Machine) {
	t.Helper()
	if out := rootSSH(t, bed, gpu, "systemctl is-active kk-gpu-exporter.service; systemctl is-enabled kk-gpu-exporter.service"); out != "active\nenabled\n" {
		t.Errorf("%s: kk-gpu-exporter %q, want active and enabled", gpu.Name, out)
	}
	if out := rootSSH(t, bed, from, "systemctl list-unit-files kk-gpu-exporter.service --no-legend; true"); strings.TrimSpace(out) != "" {
		t.Errorf("%s (no GPU host) has the exporter's unit: %q", from.Name, out)
	}
	metrics := rootSSH(t, bed, from, `python3 -c 'import urllib.request; print(urllib.request.urlopen("http://`+gpu.Address+`:9835/metrics", timeout=10).read().decode())'`)
	if !regexp.MustCompile(`(?m)^kk_gpu_nvml_up(\{[^}]*\})? 0$`).MatchString(metrics) || strings.Contains(metrics, "DCGM_FI_DEV_GPU_UTIL{") {
		t.Errorf("%s's exporter, from %s:\n%s\nwant kk_gpu_nvml_up 0 and no GPU series (no driver there)", gpu.Name, from.Name, metrics)
	}
	if out := mustKubectl(t, kcfg, "-n", "kube-system", "get", "configmap", "-l", "grafana_dashboard=1", "-o", "name"); !strings.Contains(out, "configmap/kk-gpu-dashboard") {
		t.Errorf("the GPU dashboard's ConfigMap (grafana_dashboard=1): %q", out)
	}
	if out := mustKubectl(t, kcfg, "-n", "kube-system", "get", "configmap", "kk-gpu-prometheus", "-o", `jsonpath={.data.kk-gpu\.rules\.yaml}`); !strings.Contains(out, "record: namespace_pod:dcgm_gpu_utilization:avg") {
		t.Errorf("the GPU recording rules: %q", out)
	}
	// kk's Prometheus (the cluster's file has spec.monitoring) scrapes the GPU node's exporter
	waitFor(t, 3*time.Minute, "Prometheus scraping "+gpu.Name+"'s GPU exporter", func() bool {
		up, err := promQuery(t, kcfg, `up{job="kk-gpu-exporter"} == 1`)
		return err == nil && len(up) == 1 && up[0]["node"] == gpu.Name
	})
	if out := mustKubectl(t, kcfg, "-n", "kube-system", "get", "prometheusrule", "kk-gpu-rules", "-o", "jsonpath={.spec.groups[0].name}"); out != "kk-gpu" {
		t.Errorf("the GPU rules for kk's Prometheus: %q", out)
	}
}
