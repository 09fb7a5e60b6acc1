//go:build cgo

package gpu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// mockGPUs is go-nvml's DGX A100 cut to n GPUs, whose readings are known: GPU i is UUID GPU-i,
// minor number 10+i, at 50+10i % (memory 20+i %), (i+1) GiB used, 40+i °C, 100.5+i W and
// 1410+i MHz. They answer only the sensor and clock the exporter must ask for.
func mockGPUs(n int) *dgxa100.Server {
	s := dgxa100.New()
	s.Devices = s.Devices[:n]
	for i, nd := range s.Devices {
		d := nd.(*dgxa100.Device)
		u := uint32(i)
		d.UUID = fmt.Sprintf("GPU-%d", i)
		d.Minor = 10 + i
		used := uint64(i+1) << 30
		d.MemoryInfo = nvml.Memory{Total: 40 << 30, Used: used, Free: 40<<30 - used}
		d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
			return nvml.Utilization{Gpu: 50 + 10*u, Memory: 20 + u}, nvml.SUCCESS
		}
		d.GetTemperatureFunc = func(s nvml.TemperatureSensors) (uint32, nvml.Return) {
			if s != nvml.TEMPERATURE_GPU {
				return 0, nvml.ERROR_INVALID_ARGUMENT
			}
			return 40 + u, nvml.SUCCESS
		}
		d.GetPowerUsageFunc = func() (uint32, nvml.Return) { return 100500 + 1000*u, nvml.SUCCESS }
		d.GetClockInfoFunc = func(c nvml.ClockType) (uint32, nvml.Return) {
			if c != nvml.CLOCK_SM {
				return 0, nvml.ERROR_INVALID_ARGUMENT
			}
			return 1410 + u, nvml.SUCCESS
		}
	}
	return s
}

// fakePods answers the kubelet's List response it holds (or its error), through the same
// mapping as the gRPC client.
type fakePods struct {
	resp *podresourcesv1.ListPodResourcesResponse
	err  error
}

func (f *fakePods) holders(context.Context) (map[string][]holder, error) {
	if f.err != nil {
		return nil, f.err
	}
	return deviceHolders(f.resp), nil
}

func pod(namespace, name string, containers ...*podresourcesv1.ContainerResources) *podresourcesv1.PodResources {
	return &podresourcesv1.PodResources{Namespace: namespace, Name: name, Containers: containers}
}

func container(name, resource string, ids ...string) *podresourcesv1.ContainerResources {
	return &podresourcesv1.ContainerResources{Name: name, Devices: []*podresourcesv1.ContainerDevices{
		{ResourceName: resource, DeviceIds: ids},
	}}
}

// The pods of TestExporterMetrics: GPU 0 is ml/train-0's; GPU 2 is time-sliced between
// ml/infer-a (two replicas, one series) and dev/notebook; GPU 1 is only another plugin's ID.
var testPods = &podresourcesv1.ListPodResourcesResponse{PodResources: []*podresourcesv1.PodResources{
	pod("ml", "train-0", container("trainer", "nvidia.com/gpu", "GPU-0")),
	pod("ml", "infer-a", container("server", "nvidia.com/gpu", "GPU-2::0", "GPU-2::2")),
	pod("dev", "notebook", container("jupyter", "nvidia.com/gpu", "GPU-2::1")),
	pod("other", "fpga", container("main", "example.com/fpga", "GPU-1")),
}}

// Three GPUs: their gauges under dcgm-exporter's names and labels, a holder's pod labels,
// time-slicing's holders each once, a power reading the device does not support left out, a
// failing temperature left out and counted.
func TestExporterMetrics(t *testing.T) {
	s := mockGPUs(3)
	s.Devices[1].(*dgxa100.Device).GetPowerUsageFunc = func() (uint32, nvml.Return) { return 0, nvml.ERROR_NOT_SUPPORTED }
	s.Devices[2].(*dgxa100.Device).GetTemperatureFunc = func(nvml.TemperatureSensors) (uint32, nvml.Return) {
		return 0, nvml.ERROR_UNKNOWN
	}
	c := newCollector(s, "gpu-host-1", &fakePods{resp: testPods})
	c.start()
	const gpu0 = `Hostname="gpu-host-1",UUID="GPU-0",container="trainer",device="nvidia10",gpu="0",modelName="Mock NVIDIA A100-SXM4-40GB",namespace="ml",pod="train-0"`
	const gpu1 = `Hostname="gpu-host-1",UUID="GPU-1",device="nvidia11",gpu="1",modelName="Mock NVIDIA A100-SXM4-40GB"`
	const gpu2a = `Hostname="gpu-host-1",UUID="GPU-2",container="server",device="nvidia12",gpu="2",modelName="Mock NVIDIA A100-SXM4-40GB",namespace="ml",pod="infer-a"`
	const gpu2b = `Hostname="gpu-host-1",UUID="GPU-2",container="jupyter",device="nvidia12",gpu="2",modelName="Mock NVIDIA A100-SXM4-40GB",namespace="dev",pod="notebook"`
	want := strings.NewReplacer("GPU0", gpu0, "GPU1", gpu1, "GPU2A", gpu2a, "GPU2B", gpu2b).Replace(`
# HELP DCGM_FI_DEV_FB_FREE Framebuffer memory free (in MiB).
# TYPE DCGM_FI_DEV_FB_FREE gauge
DCGM_FI_DEV_FB_FREE{GPU0} 39936
DCGM_FI_DEV_FB_FREE{GPU1} 38912
DCGM_FI_DEV_FB_FREE{GPU2A} 37888
DCGM_FI_DEV_FB_FREE{GPU2B} 37888
# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).
# TYPE DCGM_FI_DEV_FB_USED gauge
DCGM_FI_DEV_FB_USED{GPU0} 1024
DCGM_FI_DEV_FB_USED{GPU1} 2048
DCGM_FI_DEV_FB_USED{GPU2A} 3072
DCGM_FI_DEV_FB_USED{GPU2B} 3072
# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).
# TYPE DCGM_FI_DEV_GPU_TEMP gauge
DCGM_FI_DEV_GPU_TEMP{GPU0} 40
DCGM_FI_DEV_GPU_TEMP{GPU1} 41
# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).
# TYPE DCGM_FI_DEV_GPU_UTIL gauge
DCGM_FI_DEV_GPU_UTIL{GPU0} 50
DCGM_FI_DEV_GPU_UTIL{GPU1} 60
DCGM_FI_DEV_GPU_UTIL{GPU2A} 70
DCGM_FI_DEV_GPU_UTIL{GPU2B} 70
# HELP DCGM_FI_DEV_MEM_COPY_UTIL Memory utilization (in %).
# TYPE DCGM_FI_DEV_MEM_COPY_UTIL gauge
DCGM_FI_DEV_MEM_COPY_UTIL{GPU0} 20
DCGM_FI_DEV_MEM_COPY_UTIL{GPU1} 21
DCGM_FI_DEV_MEM_COPY_UTIL{GPU2A} 22
DCGM_FI_DEV_MEM_COPY_UTIL{GPU2B} 22
# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).
# TYPE DCGM_FI_DEV_POWER_USAGE gauge
DCGM_FI_DEV_POWER_USAGE{GPU0} 100.5
DCGM_FI_DEV_POWER_USAGE{GPU2A} 102.5
DCGM_FI_DEV_POWER_USAGE{GPU2B} 102.5
# HELP DCGM_FI_DEV_SM_CLOCK SM clock frequency (in MHz).
# TYPE DCGM_FI_DEV_SM_CLOCK gauge
DCGM_FI_DEV_SM_CLOCK{GPU0} 1410
DCGM_FI_DEV_SM_CLOCK{GPU1} 1411
DCGM_FI_DEV_SM_CLOCK{GPU2A} 1412
DCGM_FI_DEV_SM_CLOCK{GPU2B} 1412
# HELP kk_gpu_count GPUs NVML reports on this host.
# TYPE kk_gpu_count gauge
kk_gpu_count 3
# HELP kk_gpu_nvml_errors_total NVML calls that failed, by the metric (or step) they left out.
# TYPE kk_gpu_nvml_errors_total counter
kk_gpu_nvml_errors_total{metric="DCGM_FI_DEV_GPU_TEMP"} 1
# HELP kk_gpu_nvml_up Whether NVML is initialised (1) or not (0: no driver yet, retried at each scrape).
# TYPE kk_gpu_nvml_up gauge
kk_gpu_nvml_up 1
`)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}

	// the kubelet failing: the same GPUs, no pod labels
	c = newCollector(mockGPUs(3), "gpu-host-1", &fakePods{err: errors.New("kubelet gone")})
	c.start()
	want = strings.ReplaceAll(`
# HELP DCGM_FI_DEV_SM_CLOCK SM clock frequency (in MHz).
# TYPE DCGM_FI_DEV_SM_CLOCK gauge
DCGM_FI_DEV_SM_CLOCK{Hostname="gpu-host-1",UUID="GPU-0",device="nvidia10",gpu="0",modelName="MODEL"} 1410
DCGM_FI_DEV_SM_CLOCK{Hostname="gpu-host-1",UUID="GPU-1",device="nvidia11",gpu="1",modelName="MODEL"} 1411
DCGM_FI_DEV_SM_CLOCK{Hostname="gpu-host-1",UUID="GPU-2",device="nvidia12",gpu="2",modelName="MODEL"} 1412
`, "MODEL", "Mock NVIDIA A100-SXM4-40GB")
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), MetricSMClock); err != nil {
		t.Error(err)
	}
}

// With MIG on, the kubelet names MIG devices by their own UUIDs: their holders are their
// GPU's (each once however many of its MIG devices they hold); an empty slot is no error.
func TestExporterMIGHolders(t *testing.T) {
	s := mockGPUs(2)
	d := s.Devices[0].(*dgxa100.Device)
	d.GetMigModeFunc = func() (int, int, nvml.Return) { return nvml.DEVICE_MIG_ENABLE, nvml.DEVICE_MIG_ENABLE, nvml.SUCCESS }
	d.GetMaxMigDeviceCountFunc = func() (int, nvml.Return) { return 7, nvml.SUCCESS }
	d.GetMigDeviceHandleByIndexFunc = func(j int) (nvml.Device, nvml.Return) {
		if j > 2 {
			return nil, nvml.ERROR_NOT_FOUND
		}
		return &mock.Device{GetUUIDFunc: func() (string, nvml.Return) { return fmt.Sprintf("MIG-%d", j), nvml.SUCCESS }}, nvml.SUCCESS
	}
	pods := &podresourcesv1.ListPodResourcesResponse{PodResources: []*podresourcesv1.PodResources{
		pod("ml", "small", container("a", "nvidia.com/mig-1g.5gb", "MIG-0", "MIG-2")),
		pod("ml", "single", container("b", "nvidia.com/gpu", "MIG-1")),
	}}
	c := newCollector(s, "h", &fakePods{resp: pods})
	c.start()
	want := strings.ReplaceAll(`
# HELP DCGM_FI_DEV_SM_CLOCK SM clock frequency (in MHz).
# TYPE DCGM_FI_DEV_SM_CLOCK gauge
DCGM_FI_DEV_SM_CLOCK{Hostname="h",UUID="GPU-0",container="a",device="nvidia10",gpu="0",modelName="MODEL",namespace="ml",pod="small"} 1410
DCGM_FI_DEV_SM_CLOCK{Hostname="h",UUID="GPU-0",container="b",device="nvidia10",gpu="0",modelName="MODEL",namespace="ml",pod="single"} 1410
DCGM_FI_DEV_SM_CLOCK{Hostname="h",UUID="GPU-1",device="nvidia11",gpu="1",modelName="MODEL"} 1411
# HELP kk_gpu_nvml_errors_total NVML calls that failed, by the metric (or step) they left out.
# TYPE kk_gpu_nvml_errors_total counter
`, "MODEL", "Mock NVIDIA A100-SXM4-40GB")
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), MetricSMClock, MetricNVMLErrors); err != nil {
		t.Error(err)
	}
}

// No driver at start: NVML down and no GPU series, the exporter still answering; the driver
// coming later is found at the next scrape. The driver going (device count failing) is NVML
// down again, shut down, and initialised afresh after.
func TestExporterNVMLRetry(t *testing.T) {
	s := mockGPUs(2)
	s.InitFunc = func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
	c := newCollector(s, "h", nil)
	c.start()
	const down = `
# HELP kk_gpu_count GPUs NVML reports on this host.
# TYPE kk_gpu_count gauge
kk_gpu_count 0
# HELP kk_gpu_nvml_up Whether NVML is initialised (1) or not (0: no driver yet, retried at each scrape).
# TYPE kk_gpu_nvml_up gauge
kk_gpu_nvml_up 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(down)); err != nil {
		t.Error(err)
	}
	if n := len(s.InitCalls()); n != 2 {
		t.Errorf("NVML initialised %d times, want at start and at the scrape", n)
	}

	s.InitFunc = func() nvml.Return { return nvml.SUCCESS }
	if n := testutil.CollectAndCount(c, MetricGPUUtil); n != 2 {
		t.Errorf("%d %s series once NVML answers, want 2", n, MetricGPUUtil)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(`
# HELP kk_gpu_nvml_up Whether NVML is initialised (1) or not (0: no driver yet, retried at each scrape).
# TYPE kk_gpu_nvml_up gauge
kk_gpu_nvml_up 1
`), MetricNVMLUp); err != nil {
		t.Error(err)
	}

	count := s.DeviceGetCountFunc
	s.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_DRIVER_NOT_LOADED }
	if err := testutil.CollectAndCompare(c, strings.NewReader(down+`
# HELP kk_gpu_nvml_errors_total NVML calls that failed, by the metric (or step) they left out.
# TYPE kk_gpu_nvml_errors_total counter
kk_gpu_nvml_errors_total{metric="device_count"} 1
`)); err != nil {
		t.Error(err)
	}
	if n := len(s.ShutdownCalls()); n != 1 {
		t.Errorf("NVML shut down %d times after the driver went, want 1", n)
	}
	s.DeviceGetCountFunc = count
	if n := testutil.CollectAndCount(c, MetricSMClock); n != 2 {
		t.Errorf("%d %s series once the driver is back, want 2", n, MetricSMClock)
	}
	c.shutdown()
	c.shutdown()
	if n, m := len(s.InitCalls()), len(s.ShutdownCalls()); n != 4 || m != 2 {
		t.Errorf("NVML initialised %d times and shut down %d, want 4 and 2", n, m)
	}
}

// The kubelet's pod-resources API over gRPC on a unix socket: the NVIDIA devices' holders,
// time-slicing's suffix gone; a missing socket and a failing kubelet tell their kinds apart.
func TestKubeletPods(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "kubelet.sock")
	k, err := newKubeletPods(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer k.close()
	// no kubelet yet
	if _, err := k.holders(t.Context()); !errors.Is(err, fs.ErrNotExist) || podsFailureKind(err) != "no socket" {
		t.Errorf("no socket: %v (%s)", err, podsFailureKind(err))
	}

	lister := &fakeLister{resp: testPods}
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	podresourcesv1.RegisterPodResourcesListerServer(srv, lister)
	go srv.Serve(ln)
	defer srv.Stop()

	got, err := k.holders(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]holder{
		"GPU-0": {{Namespace: "ml", Pod: "train-0", Container: "trainer"}},
		"GPU-2": {{Namespace: "ml", Pod: "infer-a", Container: "server"}, {Namespace: "dev", Pod: "notebook", Container: "jupyter"}},
	}
	if !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("holders %v, want %v", got, want)
	}

	lister.err = status.Error(codes.Internal, "broken")
	if _, err := k.holders(t.Context()); err == nil || podsFailureKind(err) != "gRPC Internal" {
		t.Errorf("failing kubelet: %v (%s)", err, podsFailureKind(err))
	}
}

type fakeLister struct {
	podresourcesv1.UnimplementedPodResourcesListerServer
	resp *podresourcesv1.ListPodResourcesResponse
	err  error
}

func (f *fakeLister) List(context.Context, *podresourcesv1.ListPodResourcesRequest) (*podresourcesv1.ListPodResourcesResponse, error) {
	return f.resp, f.err
}

// RunExporter with the host's NVML (none on a machine without a driver: kk_gpu_nvml_up 0, no
// GPU series) and no kubelet: /metrics and /healthz answer, and it returns once ctx ends.
func TestRunExporter(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- RunExporter(ctx, ExporterOptions{
			Listen: addr, PodResources: filepath.Join(t.TempDir(), "kubelet.sock"), Hostname: "h",
		})
	}()
	get := func(path string) (string, error) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("GET %s: %s %s", path, resp.Status, b)
		}
		return string(b), err
	}
	var health string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if health, err = get("/healthz"); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || health != "ok" {
		t.Fatalf("/healthz %q: %v", health, err)
	}
	metrics, err := get("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case strings.Contains(metrics, "\nkk_gpu_nvml_up 0\n"):
		if strings.Contains(metrics, "DCGM_FI_") {
			t.Errorf("GPU series without NVML:\n%s", metrics)
		}
	case strings.Contains(metrics, "\nkk_gpu_nvml_up 1\n"): // a host with a driver
	default:
		t.Errorf("no %s:\n%s", MetricNVMLUp, metrics)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunExporter: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunExporter still running after its context ended")
	}

	// a port taken is an error, at once
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if err := RunExporter(t.Context(), ExporterOptions{Listen: taken.Addr().String()}); err == nil ||
		!strings.Contains(err.Error(), "listen on") {
		t.Errorf("port taken: %v", err)
	}
}
