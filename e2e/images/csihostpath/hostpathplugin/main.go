// Command hostpathplugin is kk's e2e stand-in for the CSI hostpath driver's program of the same
// name (registry.k8s.io/sig-storage/hostpathplugin; see package csihostpath for what it does).
// It takes the upstream program's flags that kk's local storage template passes, with their
// upstream defaults, and a few more that it accepts for the same meaning.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/kk-project/kk/e2e/images/csihostpath"
)

// version is the release of the image this program stands in for (set by e2e/images).
var version = "unknown"

func main() {
	var cfg csihostpath.Config
	var legacyExpansion, expansion, noController, noNode, showVersion bool
	endpoint := flag.String("endpoint", "unix://tmp/csi.sock", "CSI endpoint")
	flag.StringVar(&cfg.Name, "drivername", "hostpath.csi.k8s.io", "name of the driver")
	flag.StringVar(&cfg.StateDir, "statedir", "/csi-data-dir", "directory of the volumes, the snapshots and the driver's records")
	flag.StringVar(&cfg.NodeID, "nodeid", "", "node id")
	flag.Int64Var(&cfg.MaxVolumesPerNode, "maxvolumespernode", 0, "limit of volumes per node (0: none)")
	flag.Int64Var(&cfg.MaxVolumeSize, "max-volume-size", 1<<40, "maximum size of a volume in bytes")
	flag.BoolVar(&cfg.Topology, "enable-topology", true, "advertise the node's topology segment")
	flag.BoolVar(&legacyExpansion, "node-expand-required", true, "deprecated: as --enable-volume-expansion")
	flag.BoolVar(&expansion, "enable-volume-expansion", true, "advertise volume expansion")
	flag.BoolVar(&noController, "disable-controller-expansion", false, "do not advertise the controller's expansion")
	flag.BoolVar(&noNode, "disable-node-expansion", false, "do not advertise the node's expansion")
	flag.BoolVar(&showVersion, "version", false, "print the version and exit")
	flag.Int("v", 0, "log verbosity (every call is logged)")
	flag.Parse()
	if showVersion {
		fmt.Println(filepath.Base(os.Args[0]), version)
		return
	}
	cfg.Version = version
	expansion = expansion && legacyExpansion
	cfg.ControllerExpansion = expansion && !noController
	cfg.NodeExpansion = expansion && !noNode
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.Printf("hostpathplugin %s (kk's e2e stand-in)", version)
	d, err := csihostpath.New(cfg, csihostpath.BindMounter{})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := csihostpath.Serve(ctx, d, *endpoint); err != nil {
		log.Fatal(err)
	}
}
