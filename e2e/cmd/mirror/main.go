// Command mirror builds and serves kk's local upstream mirror (see
// package e2e/mirror):
//
//	mirror build [--dir /var/tmp/kk-mirror] [--k8s v1.37.2,...] [--only k8s,etcd,...]
//	mirror serve [--dir /var/tmp/kk-mirror] [--addr 127.0.0.1:8089]
//	mirror paths                  # the URL paths the mirror serves
//	mirror times [--dir ...]      # cold build times recorded in the stamps
//
// The default directory is $KK_MIRROR_DIR, else /var/tmp/kk-mirror. build prints one line
// per step and component; the output of the go tool goes to <dir>/.logs/<build>.log.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/kk-project/kk/e2e/mirror"
	"github.com/kk-project/kk/e2e/upstream"
)

var defaultDir = upstream.DefaultDirs().Mirror

func usage() {
	fmt.Fprintf(os.Stderr, `usage:
  mirror build [--dir %[1]s] [--k8s VERSION,...] [--only %[2]s]
  mirror serve [--dir %[1]s] [--addr 127.0.0.1:8089]
  mirror paths
  mirror times [--dir %[1]s]
`, defaultDir, strings.Join(mirror.Components, ","))
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "build":
		err = build(ctx, os.Args[2:])
	case "serve":
		err = serve(ctx, os.Args[2:])
	case "times":
		err = times(os.Args[2:])

	case "paths":
		for _, a := range mirror.DefaultSpec().Artifacts() {
			fmt.Printf("%s\n%s\n", a.Path, a.Checksum)
		}
	case "-h", "--help", "help":
		usage()
	default:
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func build(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("mirror build", flag.ExitOnError)
	dir := fs.String("dir", defaultDir, "mirror directory (also the build cache)")
	only := fs.String("only", "", "comma-separated components to build (default all): "+strings.Join(mirror.Components, ","))
	k8s := fs.String("k8s", "", "comma-separated Kubernetes versions to build (default all of the spec: "+strings.Join(mirror.DefaultSpec().Kubernetes, ",")+")")
	fs.Parse(args)
	var opts mirror.BuildOptions
	if *only != "" {
		opts.Only = strings.Split(*only, ",")
	}
	spec := mirror.DefaultSpec()
	if *k8s != "" {
		var err error
		if spec, err = spec.SelectKubernetes(strings.Split(*k8s, ",")); err != nil {
			return err
		}
	}
	start := time.Now()
	if err := mirror.BuildWith(ctx, *dir, spec, opts, os.Stderr); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "mirror: %s ready in %s\n", *dir, time.Since(start).Round(time.Second))
	return nil
}

func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("mirror serve", flag.ExitOnError)
	dir := fs.String("dir", defaultDir, "mirror directory")
	addr := fs.String("addr", "127.0.0.1:8089", "listen address")
	fs.Parse(args)
	_, base, err := mirror.Serve(ctx, *dir, *addr)
	if err != nil {
		return err
	}
	fmt.Printf("mirror: serving %s at %s\n", *dir, base)
	<-ctx.Done()
	return nil
}

func times(args []string) error {
	fs := flag.NewFlagSet("mirror times", flag.ExitOnError)
	dir := fs.String("dir", defaultDir, "mirror directory")
	fs.Parse(args)
	fmt.Println("| build | version | cold build time | size (MiB) | built (UTC) |")
	fmt.Println("|---|---|---|---|---|")
	var total float64
	for _, bt := range mirror.BuildTimes(*dir, mirror.DefaultSpec()) {
		if bt.Built.IsZero() {
			fmt.Printf("| %s | %s | not built | | |\n", bt.Name, bt.Version)
			continue
		}
		total += bt.Seconds
		fmt.Printf("| %s | %s | %s | %.0f | %s |\n", bt.Name, bt.Version,
			(time.Duration(bt.Seconds) * time.Second).String(), float64(bt.Bytes)/(1<<20), bt.Built.Format("2006-01-02 15:04"))
	}
	fmt.Printf("| **total** | | %s | | |\n", (time.Duration(total) * time.Second).String())
	return nil
}
