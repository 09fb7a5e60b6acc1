// Command kk-local-csi is kk's local volume driver (package localcsi), the CSI driver of the
// platform's local storage: one process per node serves CSI on --endpoint and, with
// --kubelet-registration-path, registers itself with the node's kubelet. Its image is
// ghcr.io/kk-project/kk-local-csi at kk's version table's tag.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/kk-project/kk/modules/platform/localcsi"
)

// version is the image's tag (set by the image's build).
var version = "dev"

func main() {
	var cfg localcsi.Config
	r := &localcsi.Registrar{}
	var httpEndpoint string
	var showVersion bool
	endpoint := flag.String("endpoint", "unix:///csi/csi.sock", "the CSI socket")
	flag.StringVar(&cfg.Name, "drivername", localcsi.DriverName, "name of the driver")
	flag.StringVar(&cfg.StateDir, "statedir", "/csi-data-dir", "directory of the volumes, the snapshots and the driver's records")
	flag.StringVar(&cfg.NodeID, "nodeid", "", "node id (the node's name)")
	flag.Int64Var(&cfg.MaxVolumesPerNode, "maxvolumespernode", 0, "limit of volumes per node (0: none)")
	flag.Int64Var(&cfg.MaxVolumeSize, "max-volume-size", 1<<40, "maximum size of a volume in bytes")
	flag.StringVar(&r.KubeletPath, "kubelet-registration-path", "", "the CSI socket on the host, where the kubelet reaches it (empty: do not register)")
	flag.StringVar(&r.Dir, "plugin-registration-path", "/registration", "the kubelet's plugins_registry directory in this container")
	flag.StringVar(&httpEndpoint, "http-endpoint", "", "address of /healthz (none when empty): 200 while the registration socket is there and the kubelet has not refused the driver")
	flag.BoolVar(&showVersion, "version", false, "print the version and exit")
	flag.Parse()
	if showVersion {
		fmt.Println("kk-local-csi", version)
		return
	}
	cfg.Version = version
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.Printf("kk-local-csi %s", version)
	d, err := localcsi.New(cfg, localcsi.BindMounter{})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 2)
	go func() { errc <- localcsi.Serve(ctx, d, *endpoint) }()
	if r.KubeletPath != "" {
		var mu sync.Mutex
		var state error // the kubelet's refusal
		r.Registered = func(err error) {
			mu.Lock()
			state = err
			mu.Unlock()
			if err != nil {
				// as node-driver-registrar: exit, so that the container restarts and registers afresh
				log.Fatal(err)
			}
			log.Printf("the kubelet registered the CSI driver")
		}
		if httpEndpoint != "" {
			mux := http.NewServeMux()
			mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
				mu.Lock()
				err := state
				mu.Unlock()
				if _, serr := os.Stat(r.SocketFor(cfg.Name)); serr != nil && err == nil {
					err = serr
				}
				if err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				fmt.Fprintln(w, "ok")
			})
			go func() { errc <- http.ListenAndServe(httpEndpoint, mux) }()
		}
		go func() { errc <- r.Serve(ctx, cfg.Name) }()
	}
	if err := <-errc; err != nil {
		log.Fatal(err)
	}
}
