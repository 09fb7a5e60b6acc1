//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kk-project/kk/artifacts/versions"

	"github.com/kk-project/kk/e2e/mirror"
	"github.com/kk-project/kk/e2e/testbed"
)

// dockerDataRoot is docker's data-root on the test machines: their root is an overlay, on
// which docker's overlay2 storage driver cannot stack, while /var/lib/containerd is a
// directory of the real disk (see testbed). A user whose disk for containers is mounted
// elsewhere sets registry.dataRoot the same way.
const dockerDataRoot = "/var/lib/containerd/docker"

// dockerK8s is the docker cluster's Kubernetes version.
const dockerK8s = e2eK8s

// dockerCluster writes the Cluster file of an all-in-one machine whose container manager is
// Docker with cri-dockerd, declared a GPU host (its device plugin time-sliced as gpuHost
// says, kk's GPU exporter off: the kube-vip cluster serves it).
func dockerCluster(t *testing.T, bed *testbed.Bed) string {
	t.Helper()
	gpu := gpuHost(bed.Machines[0].Name)
	gpu[1][1] = strings.Replace(gpu[1][1], "}}}\n", "}}, exporter: {enabled: false}}\n", 1)
	// (the bed's Cluster file sets kubelet's disk thresholds for a disk the machines share)
	s := bedCluster(t, bed, append([][2]string{{"containerManager: containerd}", "containerManager: docker}"}}, gpu...))
	if !strings.Contains(s, "exporter: {enabled: false}") {
		t.Fatalf("the docker cluster's spec.gpu:\n%s", s)
	}
	return writeClusterFile(t, "cluster-docker.yaml", strings.TrimRight(s, "\n")+"\n  registry: {dataRoot: "+dockerDataRoot+"}\n")
}

// TestCreateClusterDocker builds an all-in-one cluster whose container manager is Docker
// (docker's static release, pinned by checksum in the bundle's Manifest) with cri-dockerd as
// the CRI, from the bundle of its own Cluster file (kk create manifest -c): kubelet runs its
// pods through cri-dockerd, the images come from the bundle with docker load, flannel and
// CoreDNS work, and a re-run changes nothing. The machine is a GPU host: every container runs
// through NVIDIA's runtime, docker's default there (dockerGPU).
func TestCreateClusterDocker(t *testing.T) {
	lane(t)
	bin := kkBinary(t)
	bed := testbed.Require(t, testbed.Options{Name: "kkdock"}, 1)
	m := bed.Machines[0]
	cfg := dockerCluster(t, bed)
	bundle := exportBundle(t, bin, "docker", "-c", cfg)
	c, kcfg := createOnBed(t, bin, bundle, cfg, bed, "work-docker")

	// The node is Ready and runs on docker through cri-dockerd.
	mustKubectl(t, kcfg, "wait", "--for=condition=Ready", "node", "--all", "--timeout=300s")
	spec := mirror.DefaultSpec()
	// Debian's docker reports its package version: docker://20.10.24+dfsg1
	if out := mustKubectl(t, kcfg, "get", "node", m.Name, "-o", "jsonpath={.status.nodeInfo.containerRuntimeVersion}"); !strings.HasPrefix(out, "docker://"+spec.Docker) {
		t.Errorf("node %s container runtime %q, want docker://%s", m.Name, out, spec.Docker)
	}
	kubelet := rootSSH(t, bed, m, "cat /var/lib/kubelet/config.yaml /var/lib/kubelet/kubeadm-flags.env 2>/dev/null")
	if !strings.Contains(kubelet, "cri-dockerd.sock") {
		t.Errorf("kubelet does not use cri-dockerd's socket:\n%s", kubelet)
	}
	if out := rootSSH(t, bed, m, "docker info --format '{{.DockerRootDir}} {{.Driver}}'"); strings.TrimSpace(out) != dockerDataRoot+" overlay2" {
		t.Errorf("docker root and storage driver: %q, want %q", out, dockerDataRoot+" overlay2")
	}
	// The control plane runs in docker containers; the pause image came from the bundle.
	ps := rootSSH(t, bed, m, "docker ps --format '{{.Names}}'")
	for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "coredns", "kube-flannel"} {
		if !strings.Contains(ps, "k8s_"+c) {
			t.Errorf("docker ps shows no %s container:\n%s", c, ps)
		}
	}
	set, err := versions.For(dockerK8s)
	if err != nil {
		t.Fatal(err)
	}
	rootSSH(t, bed, m, "docker image inspect --format '{{.Id}}' "+set.PauseImage())
	dockerGPU(t, bed, kcfg, m)

	// A DaemonSet pod Running; a pod resolves kubernetes.default through CoreDNS and reaches
	// the API through the service IP.
	probe := loadProbeWith(t, bed, "docker load -q -i", m)
	manifest := filepath.Join(t.TempDir(), "probe.yaml")
	if err := os.WriteFile(manifest, []byte(fmt.Sprintf(probeDaemonSet, probe, m.Name)), 0o644); err != nil {
		t.Fatal(err)
	}
	mustKubectl(t, kcfg, "apply", "-f", manifest)
	mustKubectl(t, kcfg, "rollout", "status", "daemonset/e2e-probe", "--timeout=300s")
	if out := mustKubectl(t, kcfg, "get", "daemonset", "e2e-probe", "-o", "jsonpath={.status.numberReady}"); strings.TrimSpace(out) != "1" {
		t.Errorf("probe DaemonSet ready on %s nodes, want 1", out)
	}
	mustKubectl(t, kcfg, "wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/e2e-probe-dns", "--timeout=180s")
	if out := mustKubectl(t, kcfg, "logs", "e2e-probe-dns", "-c", "dns"); !strings.Contains(out, "OK dns") {
		t.Errorf("DNS from a pod: %s", out)
	}
	if out := mustKubectl(t, kcfg, "logs", "e2e-probe-dns", "-c", "api"); !strings.Contains(out, "OK api") {
		t.Errorf("API through the service IP from a pod: %s", out)
	}

	c.rerunChangesNothing(t, "all-in-one create with docker + cri-dockerd (1 machine)")
}

// dockerGPU checks NVIDIA's container toolkit with docker on the GPU host gpu: its package
// from the bundle, NVIDIA's runtime docker's default, every pod's container (the control
// plane's among them) created with it, that runtime handing containers to docker's own runc
// (the restricted one: the machine is a container), no RuntimeClass (cri-dockerd serves no
// handler but the default), and NVIDIA's device plugin there waiting for a GPU.
func dockerGPU(t *testing.T, bed *testbed.Bed, kcfg string, gpu testbed.Machine) {
	t.Helper()
	toolkitInstalled(t, bed, gpu)
	if out := rootSSH(t, bed, gpu, "docker info --format '{{.DefaultRuntime}}'"); strings.TrimSpace(out) != "nvidia" {
		t.Errorf("%s: docker's default runtime %q, want nvidia", gpu.Name, out)
	}
	if out := rootSSH(t, bed, gpu, "docker inspect --format '{{.HostConfig.Runtime}}' $(docker ps -q --filter name=k8s_kube-apiserver --filter name=k8s_kube-flannel)"); out != "nvidia\nnvidia\n" {
		t.Errorf("%s: the runtime of the API server's and flannel's containers %q, want nvidia", gpu.Name, out)
	}
	if out := rootSSH(t, bed, gpu, "nvidia-ctk config | grep -A1 -x '\\[nvidia-container-runtime\\]\\|runtimes = .*' | grep '^runtimes'"); !strings.Contains(out, `"/usr/local/libexec/kk/runc-restricted"`) {
		t.Errorf("%s: nvidia-container-runtime's OCI runtimes %q, want docker's restricted runc", gpu.Name, out)
	}
	if out, _ := kubectl(t, kcfg, "get", "runtimeclass", "-o", "name"); strings.TrimSpace(out) != "" {
		t.Errorf("RuntimeClasses with docker: %q, want none", out)
	}
	devicePluginWaits(t, kcfg, gpu)
}
