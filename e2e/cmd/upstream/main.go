// Command upstream exports the bundle of a test cluster from the local mirror and images
// (served on loopback only while it runs), for make demo:
//
//	upstream export [--kk bin/kk] [--k8s v1.34.4] [--dir /var/tmp/kk-e2e]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/kk-project/kk/e2e/upstream"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "export" {
		fmt.Fprintln(os.Stderr, "usage: upstream export [--kk bin/kk] [--k8s v1.34.4] [--dir /var/tmp/kk-e2e]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("upstream export", flag.ExitOnError)
	kk := fs.String("kk", "bin/kk", "kk binary")
	k8s := fs.String("k8s", "v1.34.4", "Kubernetes version")
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
