// Command upstream builds an offline bundle the way a user does, against the local mirror and
// images (served on loopback only while it runs), for make demo:
//
//	upstream export [--kk bin/kk] [--dir /var/tmp/kk-e2e] [--name NAME] -- CREATE-MANIFEST-ARGS
//
// It runs `kk create manifest CREATE-MANIFEST-ARGS -f DIR/manifest-NAME.yaml` (e.g. "-c
// cluster.yaml" or "--with-kubernetes v1.37.2"), then `kk artifact export` of that manifest
// with --mirror and --registry-mirror pointing at the local upstream, printing each command.
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

	"github.com/kk-project/kk/e2e/upstream"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "export" {
		fmt.Fprintln(os.Stderr, "usage: upstream export [--kk bin/kk] [--dir /var/tmp/kk-e2e] [--name NAME] -- CREATE-MANIFEST-ARGS")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("upstream export", flag.ExitOnError)
	kk := fs.String("kk", "bin/kk", "kk binary")
	dir := fs.String("dir", "/var/tmp/kk-e2e", "where the manifest, the bundle and the download cache go")
	name := fs.String("name", "demo", "the bundle is DIR/bundle-NAME.tar.gz, its manifest DIR/manifest-NAME.yaml")
	fs.Parse(os.Args[2:])
	if fs.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "upstream export: say which cluster after --: -c cluster.yaml, or --with-kubernetes vX.Y.Z")
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	s, err := upstream.Serve(ctx, upstream.DefaultDirs())
	if err == nil {
		var p string
		if p, err = upstream.Export(ctx, *kk, s, *dir, *name, fs.Args(), os.Stderr); err == nil {
			fmt.Println(p)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}
