package main

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kk-project/kk/modules/gpu"
)

// newNodeCommand is what kk runs on a host it uploaded itself to (hidden: not for users).
func newNodeCommand() *cobra.Command {
	c := &cobra.Command{
		Use:    "node",
		Short:  "Commands kk runs on a cluster's hosts",
		Hidden: true,
	}
	c.AddCommand(&cobra.Command{
		Use:   "facts",
		Short: "Print this host's GPU inventory (NVML) as JSON",
		Long: `Print this host's GPU inventory as JSON: the NVIDIA driver and CUDA versions and each
GPU's index, UUID, model, memory, compute capability and MIG mode, read through NVML
(libnvidia-ml.so.1). A host without an NVIDIA driver prints {"gpus": null} with "noDriver": true.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out gpu.NodeFacts
			inv, err := gpu.Local()
			switch {
			case errors.Is(err, gpu.ErrNoDriver):
				out.NoDriver = true
			case err != nil:
				return err
			default:
				out.Inventory = inv
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		},
	})
	c.AddCommand(newNodeGPUExporterCommand())
	return c
}

// newNodeGPUExporterCommand is kk's GPU exporter, which the gpu/exporter task runs as the
// systemd service kk-gpu-exporter on each GPU host.
func newNodeGPUExporterCommand() *cobra.Command {
	o := gpu.ExporterOptions{PodResources: gpu.DefaultPodResourcesSocket}
	c := &cobra.Command{
		Use:   "gpu-exporter",
		Short: "Serve this host's NVIDIA GPU metrics (NVML) for Prometheus",
		Long: `Serve this host's NVIDIA GPU metrics on http://LISTEN/metrics, read through NVML at each
scrape and named as NVIDIA's dcgm-exporter names them (DCGM_FI_DEV_GPU_UTIL, _FB_USED,
_GPU_TEMP, _POWER_USAGE, ...), each GPU labelled with the pod, namespace and container holding
it (the kubelet's pod-resources API). Without a driver it serves kk_gpu_nvml_up 0 and tries
again at the next scrape.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Hostname == "" {
				o.Hostname, _ = os.Hostname()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return gpu.RunExporter(ctx, o)
		},
	}
	c.Flags().StringVar(&o.Listen, "listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(gpu.ExporterPort)), "address:port to serve /metrics on")
	c.Flags().StringVar(&o.Hostname, "hostname", "", "the Hostname label (default: this host's name)")
	c.Flags().StringVar(&o.PodResources, "pod-resources", o.PodResources, "the kubelet's pod-resources socket (\"\": no pod labels)")
	return c
}
