// Command kkplay runs the benchmark's 3-task play with kk's engine, used as a library:
// upload a 1 MiB file, render a systemd unit from a template, run a command, on every host
// listed in a hosts file, over SSH.
//
//	kkplay -hosts hosts.txt -key id_ed25519 -known-hosts known_hosts [-concurrency N] [-handshakes N] [-root /tmp/kkbench]
//
// The hosts file has one "name,address[,port[,key]]" per line ('#' starts a comment; port
// empty or 0 = 22; key: this host's client key file instead of -key). kkplay prints the
// engine's report, then machine-readable lines the bench driver parses:
//
//	RESULT ok=50 changed=100 skipped=0 failed=0
//	HANDSHAKES peak=8 redials=0
//
// (the most SSH dials that ran at once, and the attempts tried again after a transient
// connection error) and TIMING lines that break the run down (dials, uploads, commands).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kk-project/kk/e2e/bench/internal/play"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

type options struct {
	hostsFile   string
	key         string
	knownHosts  string
	user        string
	concurrency int
	handshakes  int
	root        string
	cpuProfile  string
}

func main() {
	var o options
	flag.StringVar(&o.hostsFile, "hosts", "", "file with one `name,address[,port]` per line (required)")
	flag.StringVar(&o.key, "key", "", "SSH private key `file` (required)")
	flag.StringVar(&o.knownHosts, "known-hosts", "", "known_hosts `file` holding every host's key (required)")
	flag.StringVar(&o.user, "user", "root", "SSH login user")
	flag.IntVar(&o.concurrency, "concurrency", 0, "task×host executions at once (0 = one per host)")
	flag.IntVar(&o.handshakes, "handshakes", 0, "SSH dials at once (0 = kk's default)")
	flag.StringVar(&o.root, "root", play.DefaultRoot, "each host writes under `dir`/<host>/")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to `file`")
	flag.Parse()
	if o.hostsFile == "" || o.knownHosts == "" {
		fmt.Fprintln(os.Stderr, "kkplay: -hosts and -known-hosts are required")
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kkplay:", err)
		os.Exit(1)
	}
}

// hostAddr is one line of the hosts file.
type hostAddr struct {
	name, address string
	port          int
	key           string // "" = -key
}

func readHosts(p string) ([]hostAddr, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("hosts file: %w", err)
	}
	defer f.Close()
	var out []hostAddr
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		parts := strings.Split(line, ",")
		if len(parts) < 2 || len(parts) > 4 || parts[0] == "" || parts[1] == "" {
			return nil, fmt.Errorf("hosts file %s:%d: want name,address[,port[,key]], got %q", p, n, line)
		}
		h := hostAddr{name: strings.TrimSpace(parts[0]), address: strings.TrimSpace(parts[1])}
		if len(parts) >= 3 && strings.TrimSpace(parts[2]) != "" {
			if h.port, err = strconv.Atoi(strings.TrimSpace(parts[2])); err != nil || h.port < 0 || h.port > 65535 {
				return nil, fmt.Errorf("hosts file %s:%d: bad port %q", p, n, parts[2])
			}
		}
		if len(parts) == 4 {
			h.key = strings.TrimSpace(parts[3])
		}
		if seen[h.name] {
			return nil, fmt.Errorf("hosts file %s:%d: host %s listed twice", p, n, h.name)
		}
		seen[h.name] = true
		out = append(out, h)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("hosts file %s: %w", p, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("hosts file %s: no hosts", p)
	}
	return out, nil
}

// tasks builds the play. Each host runs upload → render → command in that order (like the
// ansible play), but hosts pipeline independently: no barrier between tasks.
func tasks(root string, addrs map[string]string) []pipeline.Task {
	blob := play.Blob()
	sum := play.BlobSHA256()
	return []pipeline.Task{
		{
			Name:  "upload blob",
			Desc:  "copy a 1 MiB file",
			Hosts: pipeline.AllHosts(),
			Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
				return t.Upload(ctx, connector.File{Path: play.BlobPath(root, t.Name), Data: blob, Mode: 0o644})
			},
		},
		{
			Name:  "render unit",
			Desc:  "render a systemd unit from a template",
			Hosts: pipeline.AllHosts(),
			After: []string{"upload blob"},
			Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
				data, err := play.RenderUnit(play.UnitFor(root, t.Name, addrs[t.Name]))
				if err != nil {
					return false, err
				}
				return t.Upload(ctx, connector.File{Path: play.UnitPath(root, t.Name), Data: data, Mode: 0o644})
			},
		},
		{
			Name:  "checksum blob",
			Desc:  "run a command",
			Hosts: pipeline.AllHosts(),
			After: []string{"render unit"},
			Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
				out, err := t.Run(ctx, play.SumCommand(root, t.Name))
				if err != nil {
					return false, err
				}
				if got, _, _ := strings.Cut(out, " "); got != sum {
					return false, fmt.Errorf("sha256 of %s is %q, want %s", play.BlobPath(root, t.Name), got, sum)
				}
				return false, nil // reads only: never a change
			},
		},
	}
}

// timings collects where the run spends its time; fed from many goroutines.
type timings struct {
	mu       sync.Mutex
	start    time.Time
	dials    []time.Duration
	lastDial time.Duration // since start, when the last dial finished
	uploads  []time.Duration
	commands []time.Duration
}

func (tm *timings) dialed(began time.Time) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	tm.dials = append(tm.dials, time.Since(began))
	tm.lastDial = max(tm.lastDial, time.Since(tm.start))
}

func (tm *timings) Observe(e pipeline.Event) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	switch e.Kind {
	case pipeline.EventUpload:
		tm.uploads = append(tm.uploads, e.Duration)
	case pipeline.EventCommand:
		tm.commands = append(tm.commands, e.Duration)
	}
}

func (tm *timings) write(w io.Writer) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	line := func(what string, ds []time.Duration) {
		if len(ds) == 0 {
			return
		}
		s := slices.Clone(ds)
		slices.Sort(s)
		var sum time.Duration
		for _, d := range s {
			sum += d
		}
		fmt.Fprintf(w, "TIMING %s n=%d mean=%s p50=%s max=%s\n", what, len(s),
			(sum / time.Duration(len(s))).Round(time.Microsecond), s[len(s)/2].Round(time.Microsecond), s[len(s)-1].Round(time.Microsecond))
	}
	line("dial", tm.dials)
	fmt.Fprintf(w, "TIMING all-dialed after=%s\n", tm.lastDial.Round(time.Microsecond))
	line("upload", tm.uploads)
	line("command", tm.commands)
}

func run(ctx context.Context, o options, stdout io.Writer) (err error) {
	list, err := readHosts(o.hostsFile)
	if err != nil {
		return err
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	tm := &timings{start: time.Now()}
	addrs := map[string]string{}
	hosts := make([]*pipeline.Host, 0, len(list))
	for _, h := range list {
		addrs[h.name] = h.address
		key := h.key
		if key == "" {
			key = o.key
		}
		if key == "" {
			return fmt.Errorf("host %s: no key: give -key or a key in the hosts file", h.name)
		}
		cfg := connector.SSHConfig{
			Host:           h.name,
			Address:        h.address,
			Port:           h.port,
			User:           o.user,
			PrivateKeyPath: key,
			KnownHostsPath: o.knownHosts,
		}
		hosts = append(hosts, pipeline.NewHost(h.name, nil, func(ctx context.Context) (connector.Connector, error) {
			began := time.Now()
			c, err := connector.DialSSH(ctx, cfg)
			if err != nil {
				return nil, err
			}
			tm.dialed(began)
			return c, nil
		}))
	}
	defer func() {
		var errs []error
		for _, h := range hosts {
			errs = append(errs, h.Close())
		}
		err = errors.Join(append([]error{err}, errs...)...)
	}()

	g, err := pipeline.NewGraph(tasks(o.root, addrs), hosts)
	if err != nil {
		return err
	}
	conc := o.concurrency
	if conc <= 0 {
		conc = len(hosts)
	}
	rep, runErr := pipeline.Run(ctx, g, pipeline.Options{Name: "kkplay", Concurrency: conc, Handshakes: o.handshakes, Observer: tm})
	if rep != nil {
		rep.WriteTable(stdout)
		fmt.Fprintf(stdout, "RESULT ok=%d changed=%d skipped=%d failed=%d\n", rep.Count(pipeline.StatusOK),
			rep.Count(pipeline.StatusChanged), rep.Count(pipeline.StatusSkipped), rep.Count(pipeline.StatusFailed))
		fmt.Fprintf(stdout, "HANDSHAKES peak=%d redials=%d\n", rep.PeakHandshakes, rep.Redials)
		tm.write(stdout)
	}
	return runErr
}
