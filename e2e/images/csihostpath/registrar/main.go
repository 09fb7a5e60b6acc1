// Command registrar is kk's e2e stand-in for node-driver-registrar
// (registry.k8s.io/sig-storage/csi-node-driver-registrar): it registers the CSI driver of its
// pod with the kubelet (see csihostpath.Registrar). It takes the upstream program's flags that
// kk's local storage template passes, with their upstream defaults, and serves /healthz on
// --http-endpoint as upstream does: 200 while the registration socket is there and the
// kubelet has not refused the driver.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/kk-project/kk/e2e/images/csihostpath"
)

// version is the release of the image this program stands in for (set by e2e/images).
var version = "unknown"

func main() {
	r := &csihostpath.Registrar{}
	var httpEndpoint string
	var showVersion bool
	flag.StringVar(&r.CSIAddress, "csi-address", "/run/csi/socket", "the CSI driver's socket in this container")
	flag.StringVar(&r.KubeletPath, "kubelet-registration-path", "", "the CSI driver's socket on the host, where the kubelet reaches it")
	flag.StringVar(&r.Dir, "plugin-registration-path", "/registration", "the kubelet's plugins_registry directory in this container")
	flag.StringVar(&httpEndpoint, "http-endpoint", "", "address of the /healthz endpoint (none when empty)")
	flag.BoolVar(&showVersion, "version", false, "print the version and exit")
	flag.Int("v", 0, "log verbosity")
	flag.Parse()
	if showVersion {
		fmt.Println(filepath.Base(os.Args[0]), version)
		return
	}
	if r.KubeletPath == "" {
		log.Fatal("--kubelet-registration-path is required")
	}
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.Printf("csi-node-driver-registrar %s (kk's e2e stand-in)", version)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var mu sync.Mutex
	var refused error
	r.Registered = func(err error) {
		mu.Lock()
		refused = err
		mu.Unlock()
		if err != nil {
			// as upstream: exit, so that the container restarts and registers afresh
			log.Fatal(err)
		}
		log.Printf("the kubelet registered the CSI driver")
	}
	name, err := r.DriverName(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if httpEndpoint != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			mu.Lock()
			err := refused
			mu.Unlock()
			if _, serr := os.Stat(r.SocketFor(name)); serr != nil && err == nil {
				err = serr
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			fmt.Fprintln(w, "ok")
		})
		go func() { log.Fatal(http.ListenAndServe(httpEndpoint, mux)) }()
	}
	if err := r.Serve(ctx, name); err != nil {
		log.Fatal(err)
	}
}
