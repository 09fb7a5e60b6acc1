package gpu

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	podresourcesv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// kk's GPU exporter: NVIDIA's dcgm-exporter needs DCGM, which kk does not install, so kk
// serves the GPU metrics that matter most itself, read through NVML by a host daemon
// (`kk node gpu-exporter`) on each GPU host. The series carry dcgm-exporter's names and labels,
// so that dashboards made for it (NVIDIA's "NVIDIA DCGM Exporter Dashboard") work unchanged.

// ExporterOptions configure RunExporter.
type ExporterOptions struct {
	Listen       string // host:port to serve /metrics on
	PodResources string // the kubelet's pod-resources socket path ("": no pod labels)
	Hostname     string // the Hostname label's value
}

const (
	// DefaultPodResourcesSocket is where the kubelet serves its pod-resources API.
	DefaultPodResourcesSocket = "/var/lib/kubelet/pod-resources/kubelet.sock"
	// ExporterPort is the exporter's port on each GPU host (not dcgm-exporter's 9400, so
	// that one installed by hand does not collide).
	ExporterPort = 9835
)

// The exporter's metrics: dcgm-exporter's names for the GPU gauges, kk's own for the
// exporter's state.
const (
	MetricGPUUtil     = "DCGM_FI_DEV_GPU_UTIL"
	MetricMemCopyUtil = "DCGM_FI_DEV_MEM_COPY_UTIL"
	MetricFBUsed      = "DCGM_FI_DEV_FB_USED"
	MetricFBFree      = "DCGM_FI_DEV_FB_FREE"
	MetricGPUTemp     = "DCGM_FI_DEV_GPU_TEMP"
	MetricPowerUsage  = "DCGM_FI_DEV_POWER_USAGE"
	MetricSMClock     = "DCGM_FI_DEV_SM_CLOCK"
	MetricNVMLUp      = "kk_gpu_nvml_up"
	MetricGPUCount    = "kk_gpu_count"
	MetricNVMLErrors  = "kk_gpu_nvml_errors_total"
)

// dcgm-exporter's labels: the GPU's, then the container holding it.
const (
	labelGPU       = "gpu"       // NVML index
	labelUUID      = "UUID"      // GPU-…
	labelDevice    = "device"    // nvidia0: "nvidia" and the minor number
	labelModel     = "modelName" // NVIDIA A100-SXM4-40GB
	labelHostname  = "Hostname"
	labelPod       = "pod"
	labelNamespace = "namespace"
	labelContainer = "container"
)

// gpuGauge is one of the per-GPU gauges, with a description for a GPU no container holds and
// one for a GPU held by a container: dcgm-exporter leaves the pod labels out rather than
// empty, and so does kk. Two descriptions of one name with different labels are what a
// checked collector may not have, which is why the collector describes nothing (see Describe).
type gpuGauge struct {
	name      string
	free, pod *prometheus.Desc
}

func newGPUGauge(name, help string) gpuGauge {
	gpuLabels := []string{labelGPU, labelUUID, labelDevice, labelModel, labelHostname}
	podLabels := slices.Concat(gpuLabels, []string{labelPod, labelNamespace, labelContainer})
	return gpuGauge{
		name: name,
		free: prometheus.NewDesc(name, help, gpuLabels, nil),
		pod:  prometheus.NewDesc(name, help, podLabels, nil),
	}
}

// The gauges, with dcgm-exporter's help texts (its default-counters.csv).
var (
	gaugeGPUUtil     = newGPUGauge(MetricGPUUtil, "GPU utilization (in %).")
	gaugeMemCopyUtil = newGPUGauge(MetricMemCopyUtil, "Memory utilization (in %).")
	gaugeFBUsed      = newGPUGauge(MetricFBUsed, "Framebuffer memory used (in MiB).")
	gaugeFBFree      = newGPUGauge(MetricFBFree, "Framebuffer memory free (in MiB).")
	gaugeGPUTemp     = newGPUGauge(MetricGPUTemp, "GPU temperature (in C).")
	gaugePowerUsage  = newGPUGauge(MetricPowerUsage, "Power draw (in W).")
	gaugeSMClock     = newGPUGauge(MetricSMClock, "SM clock frequency (in MHz).")

	descNVMLUp = prometheus.NewDesc(MetricNVMLUp,
		"Whether NVML is initialised (1) or not (0: no driver yet, retried at each scrape).", nil, nil)
	descGPUCount = prometheus.NewDesc(MetricGPUCount, "GPUs NVML reports on this host.", nil, nil)
)

// newNVMLErrors counts the NVML calls that failed, by the metric they left out (or the step:
// device_count, device_handle, uuid, name, minor_number, mig). NOT_SUPPORTED is no failure.
func newNVMLErrors() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricNVMLErrors,
		Help: "NVML calls that failed, by the metric (or step) they left out.",
	}, []string{"metric"})
}

// gpuID is what names a GPU in its series.
type gpuID struct {
	Index  int
	UUID   string
	Device string // nvidia0
	Model  string
}

// metric is g's series for the GPU id on host, held by h (nil: held by no container).
func (g gpuGauge) metric(value float64, id gpuID, host string, h *holder) prometheus.Metric {
	values := []string{fmt.Sprint(id.Index), id.UUID, id.Device, id.Model, host}
	if h == nil {
		return prometheus.MustNewConstMetric(g.free, prometheus.GaugeValue, value, values...)
	}
	values = append(values, h.Pod, h.Namespace, h.Container)
	return prometheus.MustNewConstMetric(g.pod, prometheus.GaugeValue, value, values...)
}

// holder is a container that the kubelet gave a GPU (or a MIG device, or a time-slicing
// replica of either).
type holder struct {
	Namespace, Pod, Container string
}

// podDevices says which containers hold which devices: device UUID (GPU-… or MIG-…) to
// holders. The kubelet's pod-resources API in the exporter, a fake in tests.
type podDevices interface {
	holders(ctx context.Context) (map[string][]holder, error)
}

// podResourcesTimeout bounds a List: a scrape waits for it.
const podResourcesTimeout = 2 * time.Second

// podResourcesMaxMsg is the kubelet's own client's limit on a response (a node of many pods
// answers more than gRPC's default 4 MiB).
const podResourcesMaxMsg = 16 << 20

// kubeletPods reads the holders from the kubelet's pod-resources API on its unix socket.
type kubeletPods struct {
	socket string
	conn   *grpc.ClientConn
	client podresourcesv1.PodResourcesListerClient
}

// newKubeletPods is a client of the socket, connected at its first call (and again after the
// kubelet restarts), so the socket need not exist yet.
func newKubeletPods(socket string) (*kubeletPods, error) {
	conn, err := grpc.NewClient("unix://"+socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(podResourcesMaxMsg)))
	if err != nil {
		return nil, fmt.Errorf("kubelet pod-resources client for %s: %w", socket, err)
	}
	return &kubeletPods{socket: socket, conn: conn, client: podresourcesv1.NewPodResourcesListerClient(conn)}, nil
}

func (k *kubeletPods) close() error { return k.conn.Close() }

func (k *kubeletPods) holders(ctx context.Context) (map[string][]holder, error) {
	// a missing socket (no kubelet yet) says so, rather than as gRPC's "connection refused"
	if _, err := os.Stat(k.socket); err != nil {
		return nil, fmt.Errorf("kubelet pod-resources socket: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, podResourcesTimeout)
	defer cancel()
	resp, err := k.client.List(ctx, &podresourcesv1.ListPodResourcesRequest{})
	if err != nil {
		return nil, fmt.Errorf("kubelet pod-resources List on %s: %w", k.socket, err)
	}
	return deviceHolders(resp), nil
}

// deviceHolders maps the NVIDIA devices of the kubelet's answer to their containers, each
// container once per device: time-slicing may give one container two replicas of a GPU, and
// a series must not be there twice.
func deviceHolders(resp *podresourcesv1.ListPodResourcesResponse) map[string][]holder {
	m := map[string][]holder{}
	for _, p := range resp.GetPodResources() {
		for _, c := range p.GetContainers() {
			h := holder{Namespace: p.GetNamespace(), Pod: p.GetName(), Container: c.GetName()}
			for _, d := range c.GetDevices() {
				if !nvidiaResource(d.GetResourceName()) {
					continue
				}
				for _, id := range d.GetDeviceIds() {
					uuid := deviceUUID(id)
					m[uuid] = addHolder(m[uuid], h)
				}
			}
		}
	}
	return m
}

// nvidiaResource says whether a device plugin resource is NVIDIA's: whole GPUs (or, with the
// single MIG strategy, MIG devices) as nvidia.com/gpu, MIG devices as nvidia.com/mig-1g.5gb
// and the like with the mixed one.
func nvidiaResource(name string) bool {
	return name == "nvidia.com/gpu" || strings.HasPrefix(name, "nvidia.com/mig-")
}

// deviceUUID is the device of a device plugin ID: time-slicing's replicas are "UUID::N".
func deviceUUID(id string) string {
	uuid, _, _ := strings.Cut(id, "::")
	return uuid
}

// addHolder adds h to hs unless it is there.
func addHolder(hs []holder, h holder) []holder {
	for _, x := range hs {
		if x == h {
			return hs
		}
	}
	return append(hs, h)
}

// lookupHolders asks pods (nil: no pod labels) for the holders; on failure the GPUs are
// exported without pod labels, and the failure is logged once for each kind until the next
// success.
func lookupHolders(ctx context.Context, pods podDevices, w *warnOnce) map[string][]holder {
	if pods == nil {
		return nil
	}
	m, err := pods.holders(ctx)
	if err != nil {
		w.warn(podsFailureKind(err), "GPU metrics without pod labels", "err", err)
		return nil
	}
	w.reset()
	return m
}

// podsFailureKind tells a kubelet not there from one that fails.
func podsFailureKind(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return "no socket"
	}
	if s, ok := status.FromError(err); ok {
		return "gRPC " + s.Code().String()
	}
	return "other"
}

// warnOnce logs a failure the first time its kind is seen until reset: an exporter scraped
// every 15 seconds would otherwise repeat one line forever.
type warnOnce struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (w *warnOnce) warn(kind, msg string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen[kind] {
		return
	}
	if w.seen == nil {
		w.seen = map[string]bool{}
	}
	w.seen[kind] = true
	slog.Warn(msg, args...)
}

// reset ends the failures: the next one is logged again.
func (w *warnOnce) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	clear(w.seen)
}

// scrapesInFlight bounds the scrapes waiting on the collector: an NVML call on a GPU in a bad
// state may hang for seconds, and scrapes queued behind it would pile up.
const scrapesInFlight = 4

// serveMetrics serves c's metrics on /metrics and "ok" on /healthz on listen until ctx ends.
func serveMetrics(ctx context.Context, listen string, c prometheus.Collector) error {
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		return fmt.Errorf("GPU exporter: register the collector: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(slog.Default().Handler(), slog.LevelError),
		// a series that fails leaves the others served
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: scrapesInFlight,
	}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", listen)
	if err != nil {
		return fmt.Errorf("GPU exporter: listen on %s: %w", listen, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	slog.Info("GPU exporter serving", "address", ln.Addr().String())
	select {
	case err := <-served:
		return fmt.Errorf("GPU exporter: serve on %s: %w", listen, err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("GPU exporter: shut down the server: %w", err)
	}
	return nil
}
