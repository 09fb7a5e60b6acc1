// Command bench measures kk's fan-out against ansible-playbook: the same 3-task play (upload
// a 1 MiB file, render a systemd unit from a template, run a command) on N light hosts
// (network namespaces with their own sshd, see e2e/testbed), first run and re-run, and
// writes a markdown table of wall times, kk's peak RSS and the speed-up.
//
//	go run ./e2e/bench -out e2e/bench/results.md [-n 10,50] [-runs 1] [-ansible-max 240] [-handshakes 0]
//
// Past -ansible-max hosts kk runs alone (ansible takes too long there). More than 240 hosts are
// spread over several testbeds.
//
// Needs root (network namespaces) and ansible-playbook. Each run is verified (exit status,
// changed/ok counts, the files on every host); a run that failed is reported as failed,
// never as a time. No timing is asserted anywhere.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type config struct {
	out     string
	ns      []int
	runs    int
	root    string // per-host directories go under root/<host>
	bedName string
	timeout time.Duration // per tool invocation
	// ansibleMax is the largest N at which ansible is measured too
	ansibleMax int
	// handshakes is kkplay's bound on simultaneous SSH dials (0 = the engine's default)
	handshakes int
}

func main() {
	var c config
	var ns string
	flag.StringVar(&c.out, "out", "", "write the markdown results to `file` (required)")
	flag.StringVar(&ns, "n", "10,50", "comma-separated host counts")
	flag.IntVar(&c.runs, "runs", 1, "runs per measurement; the table shows the median")
	flag.StringVar(&c.root, "root", "/tmp/kkbench", "each host writes under `dir`/<host>/ (removed before each run)")
	flag.StringVar(&c.bedName, "bed", "kkb", "testbed name (light hosts)")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Minute, "limit for one tool invocation")
	flag.IntVar(&c.ansibleMax, "ansible-max", lightPerBed, "measure ansible only up to `N` hosts; kk alone beyond")
	flag.IntVar(&c.handshakes, "handshakes", 0, "kkplay's bound on simultaneous SSH dials (0 = kk's default)")
	flag.Parse()
	var err error
	if c.ns, err = parseCounts(ns); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if c.out == "" || c.runs < 1 {
		fmt.Fprintln(os.Stderr, "bench: -out is required and -runs must be ≥ 1")
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseCounts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-n: bad host count %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// run does the whole benchmark and writes the results file; progress goes to log. It
// returns an error when any measurement failed (the file is still written, with the
// failures in place of times).
func run(ctx context.Context, c config, log io.Writer) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (light hosts are network namespaces)")
	}
	if _, err := lookPath("ansible-playbook"); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "kkbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	fmt.Fprintln(log, "bench: building kkplay")
	kkplay, err := buildKKPlay(ctx, work)
	if err != nil {
		return err
	}
	blobPath, err := writeBlob(work)
	if err != nil {
		return err
	}
	facts := gatherFacts(ctx)
	var rows []row
	var failed []error
	for _, n := range c.ns {
		r, err := measureN(ctx, c, n, work, kkplay, blobPath, log)
		if err != nil {
			// the harness failed (e.g. hosts did not come up): keep the rows measured so far
			failed = append(failed, fmt.Errorf("N=%d: %w", n, err))
			fmt.Fprintf(log, "bench: N=%d: %v\n", n, err)
			break
		}
		rows = append(rows, r)
		failed = append(failed, r.errs()...)
	}
	if len(rows) == 0 {
		return errors.Join(failed...)
	}
	facts.loadAfter = loadAvg()
	md := renderMarkdown(c, facts, rows)
	fmt.Fprint(log, "\n"+md)
	if err := os.WriteFile(c.out, []byte(md), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	fmt.Fprintln(log, "bench: results written to", c.out)
	return errors.Join(failed...)
}
