package cluster

import (
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/artifacts/catalog"
	"github.com/kk-project/kk/modules/etcd"
	"github.com/kk-project/kk/modules/gpu"
	"github.com/kk-project/kk/modules/kubernetes"
	"github.com/kk-project/kk/modules/runtime"
	"github.com/kk-project/kk/pipeline"
)

// TestGPUDriverPlan: spec.gpu.driver.version makes the gpu phase, beside the runtime and
// etcd (after the os phase) and before kubeadm; its artifacts must hold the installer of that
// version, or the plan is refused before any host is touched.
func TestGPUDriverPlan(t *testing.T) {
	src := strings.Replace(vipCluster, "  kubernetes: {version: v1.34.4}\n", "  kubernetes: {version: v1.34.4}\n  gpu: {driver: {version: 570.195.03}}\n", 1)
	c, _, err := v1alpha2.Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	a := &Artifacts{Versions: map[string]string{}}
	for _, b := range []string{"etcd", "etcdctl", "etcdutl"} {
		a.Files.Add("amd64", b, "/nonexistent/"+b)
	}
	if _, err := NewPlan(c, a, Options{Workdir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "spec.gpu.driver.version 570.195.03") ||
		!strings.Contains(err.Error(), "export a bundle of this Cluster file") {
		t.Errorf("artifacts without the driver installer: %v", err)
	}
	a.Versions[catalog.NvidiaDriver] = "570.195.03"
	a.Files.Add("amd64", catalog.NvidiaDriver, "/nonexistent/NVIDIA-Linux-x86_64-570.195.03.run")
	// spec.gpu brings the container toolkit: its package must be there too
	if _, err := NewPlan(c, a, Options{Workdir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "spec.gpu.toolkit.version v1.20.2") {
		t.Errorf("artifacts without the container toolkit: %v", err)
	}
	withToolkit(a)
	ts := planTasks(t, c, a)
	first := after(ts, gpu.TaskDriverPrereqs)
	for _, beside := range []string{runtime.TaskBinaries, etcd.TaskInstall} {
		if slices.Contains(first, beside) {
			t.Errorf("%s waits for %s: the driver builds beside the runtime and etcd", gpu.TaskDriverPrereqs, beside)
		}
	}
	// the phase after (the load balancer's kube-vip, before kubeadm init) waits for the driver
	if !slices.ContainsFunc(ts, func(tk pipeline.Task) bool {
		return !strings.HasPrefix(tk.Name, "gpu/") && slices.Contains(tk.After, gpu.TaskContainerd)
	}) {
		t.Error("no task waits for the gpu phase's last task")
	}
	// the toolkit installs beside the runtime; containerd's nvidia drop-in waits for the whole
	// runtime phase (containerd running, its images imported) and restarts it
	if a := after(ts, gpu.TaskToolkit); slices.Contains(a, runtime.TaskBinaries) || !slices.Contains(a, gpu.TaskPersistenced) {
		t.Errorf("%s after %v: it installs beside the runtime, after the driver", gpu.TaskToolkit, a)
	}
	for _, want := range []string{gpu.TaskToolkit, runtime.TaskService, runtime.ReadyTask} {
		if !slices.Contains(after(ts, gpu.TaskContainerd), want) {
			t.Errorf("%s after %v, want %s", gpu.TaskContainerd, after(ts, gpu.TaskContainerd), want)
		}
	}
	if !slices.Contains(after(ts, gpu.TaskRuntimeClass), kubernetes.TaskNodeRoles) {
		t.Errorf("%s after %v", gpu.TaskRuntimeClass, after(ts, gpu.TaskRuntimeClass))
	}
	// without spec.gpu there is no gpu phase (the nodes of GPU hosts are labelled all the same,
	// and an exporter an earlier run put is removed)
	c.GPU = config.GPU{}
	ts = planTasks(t, c, a)
	if slices.ContainsFunc(ts, func(tk pipeline.Task) bool {
		return strings.HasPrefix(tk.Name, "gpu/") && tk.Name != gpu.TaskNodeLabels && tk.Name != gpu.TaskExporter
	}) {
		t.Error("driver tasks without spec.gpu")
	}
	if !slices.Contains(after(ts, gpu.TaskNodeLabels), kubernetes.TaskNodeRoles) {
		t.Errorf("%s after %v, want the nodes registered (%s)", gpu.TaskNodeLabels, after(ts, gpu.TaskNodeLabels), kubernetes.TaskNodeRoles)
	}
}

// TestGPUDockerPlan: with docker, the toolkit's second task is gpu/docker-nvidia (after the
// runtime phase; the phase after waits for it), and no RuntimeClass is made.
func TestGPUDockerPlan(t *testing.T) {
	src := strings.Replace(vipCluster, "  kubernetes: {version: v1.34.4}\n", "  kubernetes: {version: v1.34.4, containerManager: docker}\n  gpu: {}\n", 1)
	src = strings.Replace(src, "{name: w,", `{name: w, labels: {nvidia.com/gpu.present: "true"},`, 1)
	c, _, err := v1alpha2.Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.DeclaredGPUHosts(); !slices.Equal(got, []string{"w"}) {
		t.Fatalf("declared GPU hosts %v", got)
	}
	a := &Artifacts{Versions: map[string]string{}}
	for _, b := range []string{"etcd", "etcdctl", "etcdutl"} {
		a.Files.Add("amd64", b, "/nonexistent/"+b)
	}
	ts := planTasks(t, c, withToolkit(a))
	for _, want := range []string{gpu.TaskToolkit, runtime.TaskService} {
		if !slices.Contains(after(ts, gpu.TaskDocker), want) {
			t.Errorf("%s after %v, want %s", gpu.TaskDocker, after(ts, gpu.TaskDocker), want)
		}
	}
	if !slices.ContainsFunc(ts, func(tk pipeline.Task) bool {
		return !strings.HasPrefix(tk.Name, "gpu/") && slices.Contains(tk.After, gpu.TaskDocker)
	}) {
		t.Error("no task waits for the gpu phase's last task")
	}
	for _, tk := range ts {
		if tk.Name == gpu.TaskContainerd || tk.Name == gpu.TaskRuntimeClass {
			t.Errorf("docker: the plan has %s", tk.Name)
		}
	}
}

// withToolkit adds NVIDIA's container toolkit v1.20.2 to a.
func withToolkit(a *Artifacts) *Artifacts {
	a.Versions[catalog.NvidiaContainerToolkit] = "v1.20.2"
	a.Files.Add("amd64", catalog.NvidiaContainerToolkit, "/nonexistent/nvidia-container-toolkit-base_1.20.2-1_amd64.deb")
	return a
}

// planTasks is the task list of c's plan on artifacts a.
func planTasks(t *testing.T, c *config.Cluster, a *Artifacts) []pipeline.Task {
	t.Helper()
	p, err := NewPlan(c, a, Options{Workdir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ts, err := p.Tasks(Options{})
	if err != nil {
		t.Fatal(err)
	}
	return ts
}
