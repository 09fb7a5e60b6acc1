package main

import (
	"encoding/json"
	"errors"

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
	return c
}
