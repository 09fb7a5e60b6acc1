//go:build cgo

package gpu

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/prometheus/client_golang/prometheus"
)

// RunExporter serves /metrics (and /healthz answering "ok") on o.Listen until ctx ends. It
// never exits because NVML is missing: kk_gpu_nvml_up 0 then, retried at each scrape.
func RunExporter(ctx context.Context, o ExporterOptions) error {
	var pods podDevices
	if o.PodResources != "" {
		k, err := newKubeletPods(o.PodResources)
		if err != nil {
			return err
		}
		defer k.close()
		pods = k
	}
	c := newCollector(nvml.New(), o.Hostname, pods)
	c.start()
	defer c.shutdown()
	return serveMetrics(ctx, o.Listen, c)
}

// collector reads the GPUs through NVML at each scrape. It describes no metric, which makes it
// an unchecked collector: its gauges have two descriptions each (with and without the pod
// labels), which a checked one may not.
type collector struct {
	lib      nvml.Interface
	hostname string
	pods     podDevices // nil: no pod labels

	// mu makes scrapes one at a time: up, and NVML's initialisation, are shared.
	mu     sync.Mutex
	up     bool
	errors *prometheus.CounterVec

	initWarn, readWarn, podWarn warnOnce
}

func newCollector(lib nvml.Interface, hostname string, pods podDevices) *collector {
	return &collector{lib: lib, hostname: hostname, pods: pods, errors: newNVMLErrors()}
}

// start initialises NVML, or leaves it to the next scrape.
func (c *collector) start() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.initNVML()
}

// shutdown ends NVML's session, which holds the GPUs' device files open.
func (c *collector) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.up {
		return
	}
	c.up = false
	if ret := c.lib.Shutdown(); ret != nvml.SUCCESS {
		slog.Warn("NVML shutdown", "err", error(ret))
	}
}

// initNVML initialises NVML unless it is: a host's driver may come after the exporter (kk
// installs it, or the host boots with the exporter first), so a failure is retried.
func (c *collector) initNVML() {
	if c.up {
		return
	}
	if ret := c.lib.Init(); ret != nvml.SUCCESS {
		c.initWarn.warn(ret.Error(), "NVML is not there yet; retried at each scrape", "err", error(ret))
		return
	}
	c.initWarn.reset()
	c.up = true
	slog.Info("NVML initialised")
}

// Describe describes nothing: see collector.
func (c *collector) Describe(chan<- *prometheus.Desc) {}

// Collect reads every GPU's gauges, with its holders' pod labels.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.errors.Collect(ch)
	c.initNVML()
	down := func() {
		ch <- prometheus.MustNewConstMetric(descNVMLUp, prometheus.GaugeValue, 0)
		ch <- prometheus.MustNewConstMetric(descGPUCount, prometheus.GaugeValue, 0)
	}
	if !c.up {
		down()
		return
	}
	n, ret := c.lib.DeviceGetCount()
	if !c.check(-1, ret, "device_count") {
		// the driver went (unloaded for an upgrade): NVML starts afresh at the next scrape
		c.up = false
		c.lib.Shutdown()
		down()
		return
	}
	ch <- prometheus.MustNewConstMetric(descNVMLUp, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(descGPUCount, prometheus.GaugeValue, float64(n))
	if n == 0 {
		return
	}
	pods := lookupHolders(context.Background(), c.pods, &c.podWarn)
	for i := range n {
		d, ret := c.lib.DeviceGetHandleByIndex(i)
		if !c.check(i, ret, "device_handle") {
			continue
		}
		c.collectDevice(ch, i, d, pods)
	}
}

// collectDevice sends GPU i's gauges: one series for each container holding it (time-slicing
// shares a GPU), or one without pod labels.
func (c *collector) collectDevice(ch chan<- prometheus.Metric, i int, d nvml.Device, pods map[string][]holder) {
	id := gpuID{Index: i}
	var ret nvml.Return
	// series without the UUID would be another GPU's once it answers again
	if id.UUID, ret = d.GetUUID(); !c.check(i, ret, "uuid") {
		return
	}
	if name, ret := d.GetName(); c.check(i, ret, "name") {
		id.Model = name
	}
	if minor, ret := d.GetMinorNumber(); c.check(i, ret, "minor_number") {
		id.Device = fmt.Sprintf("nvidia%d", minor)
	}
	holders := c.gpuHolders(i, d, id.UUID, pods)
	send := func(g gpuGauge, v float64) {
		if len(holders) == 0 {
			ch <- g.metric(v, id, c.hostname, nil)
			return
		}
		for _, h := range holders {
			ch <- g.metric(v, id, c.hostname, &h)
		}
	}
	if u, ret := d.GetUtilizationRates(); c.check(i, ret, MetricGPUUtil, MetricMemCopyUtil) {
		send(gaugeGPUUtil, float64(u.Gpu))
		send(gaugeMemCopyUtil, float64(u.Memory))
	}
	if m, ret := d.GetMemoryInfo(); c.check(i, ret, MetricFBUsed, MetricFBFree) {
		send(gaugeFBUsed, float64(m.Used>>20))
		send(gaugeFBFree, float64(m.Free>>20))
	}
	if t, ret := d.GetTemperature(nvml.TEMPERATURE_GPU); c.check(i, ret, MetricGPUTemp) {
		send(gaugeGPUTemp, float64(t))
	}
	if mw, ret := d.GetPowerUsage(); c.check(i, ret, MetricPowerUsage) {
		send(gaugePowerUsage, float64(mw)/1000)
	}
	if mhz, ret := d.GetClockInfo(nvml.CLOCK_SM); c.check(i, ret, MetricSMClock) {
		send(gaugeSMClock, float64(mhz))
	}
}

// gpuHolders are the containers holding GPU i (uuid) or, with MIG on, one of its MIG devices
// (the kubelet names those by their own MIG- UUIDs): the GPU's series are theirs.
func (c *collector) gpuHolders(i int, d nvml.Device, uuid string, pods map[string][]holder) []holder {
	if len(pods) == 0 {
		return nil
	}
	hs := pods[uuid]
	mode, _, ret := d.GetMigMode()
	if ret == nvml.ERROR_NOT_SUPPORTED || ret == nvml.SUCCESS && mode != nvml.DEVICE_MIG_ENABLE {
		return hs
	}
	if !c.check(i, ret, "mig") {
		return hs
	}
	n, ret := d.GetMaxMigDeviceCount()
	if !c.check(i, ret, "mig") {
		return hs
	}
	hs = slices.Clone(hs)
	for j := range n {
		mig, ret := d.GetMigDeviceHandleByIndex(j)
		if ret == nvml.ERROR_NOT_FOUND { // no MIG device in that slot
			continue
		}
		if !c.check(i, ret, "mig") {
			continue
		}
		migUUID, ret := mig.GetUUID()
		if !c.check(i, ret, "mig") {
			continue
		}
		for _, h := range pods[migUUID] {
			hs = addHolder(hs, h)
		}
	}
	return hs
}

// check says whether an NVML call on GPU i (-1: none) answered. NOT_SUPPORTED is a device
// without that metric, left out quietly; another failure is counted under each of the
// metrics it leaves out, and logged once.
func (c *collector) check(i int, ret nvml.Return, metrics ...string) bool {
	switch ret {
	case nvml.SUCCESS:
		return true
	case nvml.ERROR_NOT_SUPPORTED:
		return false
	}
	for _, m := range metrics {
		c.errors.WithLabelValues(m).Inc()
		args := []any{"metric", m, "err", error(ret)}
		if i >= 0 {
			args = append([]any{"gpu", i}, args...)
		}
		c.readWarn.warn(fmt.Sprintf("%d %s %s", i, m, ret.Error()), "NVML call failed (counted in "+MetricNVMLErrors+")", args...)
	}
	return false
}
