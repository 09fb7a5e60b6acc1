// Command upstream exports the bundle of a test cluster from the local mirror and images
// (served on loopback only while it runs), for make demo:
//
//	upstream export [--kk bin/kk] [--k8s v1.37.2] [--dir /var/tmp/kk-e2e]
//
// The mirror and the images are read from $KK_MIRROR_DIR and $KK_IMAGES_DIR (default
// /var/tmp/kk-mirror, /var/tmp/kk-images). It prints the bundle's path on stdout.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kk-project/kk/e2e/mirror"
	"github.com/kk-project/kk/e2e/upstream"
)

func main() {
	k8sDefault := mirror.DefaultSpec().Kubernetes[0]
	if len(os.Args) < 2 || os.Args[1] != "export" {
		fmt.Fprintf(os.Stderr, "usage: upstream export [--kk bin/kk] [--k8s %s] [--dir /var/tmp/kk-e2e]\n", k8sDefault)
		os.Exit(2)
	}
	fs := flag.NewFlagSet("upstream export", flag.ExitOnError)
	kk := fs.String("kk", "bin/kk", "kk binary")
	k8s := fs.String("k8s", k8sDefault, "Kubernetes version (one the mirror and the images were built for)")
	dir := fs.String("dir", "/var/tmp/kk-e2e", "where the manifest, the bundle and the download cache go")
	fs.Parse(os.Args[2:])
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	d := upstream.DefaultDirs()
	s, err := upstream.Serve(ctx, d)
	if err == nil {
		var p string
		if p, err = upstream.Export(ctx, *kk, d, s, *dir, *k8s, os.Stderr); err == nil {
			fmt.Println(p)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}
