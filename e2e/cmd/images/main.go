// Command images builds kk's test container images (e2e/images) as one
// OCI image layout and serves them from a registry on loopback.
//
//	images build [--mirror-dir /var/tmp/kk-mirror] [--out /var/tmp/kk-images] [--docker-tars]
//	             [--k8s VERSION,...] [--components k8s,etcd,...] [--only NAME,...]
//	images serve [--out /var/tmp/kk-images] [--addr 127.0.0.1:5055]
//	images list  [--base 127.0.0.1:5055] [--out /var/tmp/kk-images]
//
// The default directories are $KK_MIRROR_DIR and $KK_IMAGES_DIR, else the ones above.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/kk-project/kk/e2e/images"
	"github.com/kk-project/kk/e2e/mirror"
	"github.com/kk-project/kk/e2e/upstream"
)

func main() {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		cancel()
		os.Exit(1)
	}
}

func usage() error {
	return fmt.Errorf("usage: images build [--mirror-dir DIR] [--out DIR] [--docker-tars] [--k8s VERSION,...] [--components COMPONENT,...] [--only NAME,...]\n" +
		"       images serve [--out DIR] [--addr 127.0.0.1:5055]\n" +
		"       images list  [--out DIR] [--base HOST:PORT]")
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usage()
	}
	fs := flag.NewFlagSet("images "+args[0], flag.ContinueOnError)
	dirs := upstream.DefaultDirs()
	out := fs.String("out", dirs.Images, "output directory (cache and OCI layout under <out>/oci)")
	switch args[0] {
	case "build":
		mirrorDir := fs.String("mirror-dir", dirs.Mirror, "local upstream mirror built by e2e/mirror")
		tars := fs.Bool("docker-tars", false, "also write a docker-load tarball per image under <out>/tars")
		onlyList := fs.String("only", "", "comma-separated images to build (e.g. kube-proxy,haproxy); default all")
		k8s := fs.String("k8s", "", "comma-separated Kubernetes versions to build images of (default all of the mirror spec)")
		components := fs.String("components", "", "build only the images made from these mirror components (as mirror build --only)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		opts := images.Options{MirrorDir: *mirrorDir, OutDir: *out, DockerTars: *tars, Log: os.Stderr}
		if *onlyList != "" {
			opts.Only = strings.Split(*onlyList, ",")
		}
		if *components != "" {
			opts.Components = strings.Split(*components, ",")
		}
		if *k8s != "" {
			spec, err := mirror.DefaultSpec().SelectKubernetes(strings.Split(*k8s, ","))
			if err != nil {
				return err
			}
			opts.Spec = &spec
		}
		res, err := images.Build(ctx, opts)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "IMAGE\tSIZE\tDIGEST")
		var total int64
		for _, im := range res.Images {
			fmt.Fprintf(tw, "%s\t%.1f MiB\t%s\n", strings.Join(im.Refs(), " "), float64(im.Size)/(1<<20), im.Digest[:19])
			total += im.Size
		}
		tw.Flush()
		fmt.Printf("%d images (%.1f MiB summed over images; shared layers counted once per image), %d layers built, %.1fs; layout %s\n",
			len(res.Images), float64(total)/(1<<20), res.LayersBuilt, res.Seconds, res.LayoutDir)
		return nil
	case "serve":
		addr := fs.String("addr", "127.0.0.1:5055", "loopback address to listen on")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		base, stop, err := images.Serve(ctx, images.LayoutDir(*out), *addr)
		if err != nil {
			return err
		}
		defer stop()
		fmt.Printf("serving %s on http://%s\n", images.LayoutDir(*out), base)
		for _, h := range images.UpstreamRegistries() {
			fmt.Printf("  %s/... -> %s/...\n", h, base)
		}
		<-ctx.Done()
		return nil
	case "list":
		baseFlag := fs.String("base", "", "print mirror references for this registry base (HOST:PORT)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		data, err := os.ReadFile(*out + "/images.json")
		if err != nil {
			return fmt.Errorf("images list: %w (run images build first)", err)
		}
		var s images.Summary
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("images list: %s: %w", *out+"/images.json", err)
		}
		for _, im := range s.Images {
			for _, r := range im.Refs {
				if *baseFlag == "" {
					fmt.Println(r)
					continue
				}
				m, err := images.MirrorRef(r, *baseFlag)
				if err != nil {
					return err
				}
				fmt.Printf("%s\t%s\n", r, m)
			}
		}
		return nil
	}
	return usage()
}
