// Command push measures kk's offline-bundle path: the time `kk artifact export` takes to
// build a bundle for one Kubernetes version from the local upstream (cold cache and warm
// cache), and the time kk's SSH connector takes to push that bundle to 3 test machines in
// parallel, against OpenSSH scp of the same bytes to the same machines.
//
//	go run ./e2e/bench/push -out e2e/bench/push-results.md [-runs 3] [-keep]
//
// Needs root (test machines are systemd-nspawn containers, see e2e/testbed), the local
// upstream mirror and test images (make mirror), and scp. Every run is verified: the export
// exits 0 and the warm export reports "downloaded 0 B"; every pushed file's sha256 on every
// machine equals the bundle's; kk's first push reports changed on every machine and its
// re-run reports unchanged on every machine. A run that failed is reported as failed, never
// as a time. No timing is asserted anywhere: the goals are stated and compared in the report.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kk-project/kk/e2e/testbed"
	"github.com/kk-project/kk/e2e/upstream"
)

type config struct {
	out       string
	runs      int
	bedName   string
	k8s       string
	keep      bool
	prototype bool
	timeout   time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.out, "out", "", "write the markdown results to `file` (required)")
	flag.IntVar(&c.runs, "runs", 3, "runs per measurement; the table shows the median")
	flag.StringVar(&c.bedName, "bed", "kkpush", "testbed name (3 machines)")
	flag.StringVar(&c.k8s, "k8s", "v1.34.4", "Kubernetes version of the exported bundle")
	flag.BoolVar(&c.keep, "keep", false, "leave the test machines running at the end")
	flag.BoolVar(&c.prototype, "prototype", true, "also measure the bench's prototype of the upload with concurrent sftp writes (diagnosis)")
	flag.DurationVar(&c.timeout, "timeout", 15*time.Minute, "limit for one export or one push")
	flag.Parse()
	if c.out == "" || c.runs < 1 {
		fmt.Fprintln(os.Stderr, "push: -out is required and -runs must be ≥ 1")
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "push:", err)
		os.Exit(1)
	}
}

// run does the whole benchmark and writes the results file; progress goes to log. It
// returns an error when any measurement failed (the file is still written, with the
// failures in place of times).
func run(ctx context.Context, c config, log io.Writer) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("needs root (test machines are systemd-nspawn containers)")
	}
	for _, tool := range []string{"scp", "ssh"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is needed for the comparison: %w", tool, err)
		}
	}
	// The bundle and the export caches are large (hundreds of MB): keep them on disk, not tmpfs.
	work, err := os.MkdirTemp("/var/tmp", "kkpush-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	f := gatherFacts(ctx)
	var res results
	res.runs = c.runs

	logf(log, "building kk")
	kk, err := buildKK(ctx, work)
	if err != nil {
		return err
	}
	dirs := upstream.DefaultDirs()
	up, err := upstream.Serve(ctx, dirs)
	if err != nil {
		return err
	}
	man := filepath.Join(work, "manifest.yaml")
	data, err := upstream.Manifest(dirs, c.k8s)
	if err != nil {
		return err
	}
	if err := os.WriteFile(man, []byte(data), 0o644); err != nil {
		return err
	}

	bundle, err := measureExport(ctx, c, kk, man, up, work, &res.export, log)
	if err != nil {
		return err
	}

	logf(log, "starting %d test machines (bed %s)", machines, c.bedName)
	opts := testbed.Options{Name: c.bedName}
	bootStart := time.Now()
	bed, err := testbed.Up(ctx, opts, machines)
	if err != nil {
		err = fmt.Errorf("testbed up: %w", err)
		if !c.keep {
			err = errors.Join(err, testbed.Down(context.WithoutCancel(ctx), opts))
		}
		return err
	}
	res.bedUp = time.Since(bootStart)
	if !c.keep {
		defer func() {
			logf(log, "stopping the test machines")
			if derr := testbed.Down(context.WithoutCancel(ctx), opts); derr != nil {
				err = errors.Join(err, fmt.Errorf("testbed down: %w", derr))
			}
		}()
	}
	f.machines = machineFacts(ctx, bed)
	f.cipherKK, f.cipherSCP = ciphers(ctx, bed)

	if err := measurePush(ctx, c, bed, bundle, &res, log); err != nil {
		return err
	}

	f.loadAfter = loadAvg()
	md := renderMarkdown(c, f, &res)
	fmt.Fprint(log, "\n"+md)
	if err := os.WriteFile(c.out, []byte(md), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	logf(log, "results written to %s", c.out)
	return errors.Join(res.errs()...)
}

// machines is how many machines the bundle is pushed to.
const machines = 3

func logf(w io.Writer, format string, a ...any) {
	fmt.Fprintf(w, "push: %s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}

func buildKK(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "kk")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/kk")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/kk: %w\n%s", err, out)
	}
	return bin, nil
}
