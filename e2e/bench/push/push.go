package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kk-project/kk/artifacts/download"
	"github.com/kk-project/kk/e2e/testbed"
	"github.com/kk-project/kk/pipeline/connector"
)

// Where each tool writes on the machines. Separate directories, so that one tool's file
// never satisfies the other's skip check.
const (
	kkPath    = "/var/tmp/kk-push/bundle.tar.gz"
	scpPath   = "/var/tmp/scp-push/bundle.tar.gz"
	protoPath = "/var/tmp/proto-push/bundle.tar.gz"
)

// pushSample is one push of the bundle to every machine.
type pushSample struct {
	wall    time.Duration
	wire    int64         // bytes sent to the machines: host-side veth tx counters, all machines
	wireRx  int64         // bytes received from the machines
	rchar   int64         // bytes this process read (read syscalls: files and sockets), kk only
	cpu     time.Duration // user+system CPU on this side: this process (kk, prototype) or the scp processes and their ssh
	changed []bool        // kk's Upload result per machine (kk only)
	phases  []phase       // prototype only: where the time went, slowest machine per phase
	err     error
}

// phase is one step of the prototype's upload and how long it took on the slowest machine.
type phase struct {
	name string
	d    time.Duration
}

// results is everything the report shows.
type results struct {
	runs       int
	export     exportResults
	bedUp      time.Duration
	bundleSize int64
	bundleSum  string
	hashOnce   time.Duration // one sha256 pass over the bundle in this process
	kk, scp    []pushSample
	rerun      []pushSample
	proto      [][]pushSample // per variant (proto.go), the diagnosis prototype's pushes
	orders     []string
}

func (r *results) errs() []error {
	var errs []error
	add := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	for i, s := range r.export.cold {
		add(fmt.Sprintf("export cold, run %d", i+1), s.err)
	}
	for i, s := range r.export.warm {
		add(fmt.Sprintf("export warm, run %d", i+1), s.err)
	}
	for _, set := range []struct {
		name string
		s    []pushSample
	}{{"kk push", r.kk}, {"scp push", r.scp}, {"kk re-run", r.rerun}} {
		for i, s := range set.s {
			add(fmt.Sprintf("%s, run %d", set.name, i+1), s.err)
		}
	}
	for j, ss := range r.proto {
		for i, s := range ss {
			add(fmt.Sprintf("diagnosis push, %s, run %d", variants[j].name, i+1), s.err)
		}
	}
	return errs
}

// measurePush pushes the bundle c.runs times with each tool (fresh targets every run),
// then re-runs kk's push onto the files it just wrote.
func measurePush(ctx context.Context, c config, bed *testbed.Bed, bundle string, r *results, log io.Writer) error {
	st, err := os.Stat(bundle)
	if err != nil {
		return err
	}
	r.bundleSize = st.Size()
	start := time.Now()
	if r.bundleSum, _, err = download.FileSHA256(context.Background(), bundle); err != nil {
		return err
	}
	r.hashOnce = time.Since(start)

	veths, err := vethsOf(c.bedName, bed)
	if err != nil {
		return err
	}
	for i := range c.runs {
		if err := clean(ctx, bed); err != nil {
			return err
		}
		order := []string{"kk", "scp"}
		if i%2 == 1 {
			order = []string{"scp", "kk"} // alternate, so neither tool always goes first
		}
		r.orders = append(r.orders, strings.Join(order, ", "))
		for _, tool := range order {
			switch tool {
			case "kk":
				logf(log, "run %d/%d: kk push to %d machines", i+1, c.runs, len(bed.Machines))
				s := measured(veths, func() pushSample { return kkPush(ctx, c, bed, bundle, kkPath) })
				s.err = errors.Join(s.err, wantChanged(s.changed, true), verify(ctx, bed, kkPath, r.bundleSum))
				logSample(log, s, r.bundleSize)
				r.kk = append(r.kk, s)
			case "scp":
				logf(log, "run %d/%d: scp to %d machines", i+1, c.runs, len(bed.Machines))
				s := measured(veths, func() pushSample { return scpPush(ctx, c, bed, bundle, scpPath) })
				s.err = errors.Join(s.err, verify(ctx, bed, scpPath, r.bundleSum))
				logSample(log, s, r.bundleSize)
				r.scp = append(r.scp, s)
			}
		}
		logf(log, "run %d/%d: kk re-run (files already there)", i+1, c.runs)
		s := measured(veths, func() pushSample { return kkPush(ctx, c, bed, bundle, kkPath) })
		s.err = errors.Join(s.err, wantChanged(s.changed, false), verify(ctx, bed, kkPath, r.bundleSum))
		logSample(log, s, r.bundleSize)
		r.rerun = append(r.rerun, s)

		if c.prototype {
			// Every variant of the same code, rotating which goes first.
			if r.proto == nil {
				r.proto = make([][]pushSample, len(variants))
			}
			for k := range variants {
				j := (k + i) % len(variants)
				v := variants[j]
				logf(log, "run %d/%d: diagnosis push, %s", i+1, c.runs, v.name)
				s := measured(veths, func() pushSample { return protoPush(ctx, c, bed, bundle, protoPath, v) })
				s.err = errors.Join(s.err, verify(ctx, bed, protoPath, r.bundleSum))
				logSample(log, s, r.bundleSize)
				r.proto[j] = append(r.proto[j], s)
				if err := clean(ctx, bed); err != nil {
					return err
				}
			}
		}
	}
	return clean(ctx, bed)
}

func logSample(log io.Writer, s pushSample, size int64) {
	if s.err != nil {
		logf(log, "  FAILED: %v", s.err)
		return
	}
	logf(log, "  %s, %.1f MB/s aggregate, %d B on the wire to the machines (%.3f%% of %d×bundle)",
		secs(s.wall), mbps(int64(machines)*size, s.wall), s.wire, 100*float64(s.wire)/float64(int64(machines)*size), machines)
}

// measured runs f after flushing dirty pages (so one push's write-back does not land in the
// next one's time) and adds the veth and read counters around it.
func measured(veths []string, f func() pushSample) pushSample {
	syncDisks()
	tx0, rx0, err := counters(veths)
	if err != nil {
		return pushSample{err: err}
	}
	r0 := rchar()
	s := f()
	s.rchar = rchar() - r0
	tx1, rx1, err := counters(veths)
	if err != nil {
		s.err = errors.Join(s.err, err)
	}
	s.wire, s.wireRx = tx1-tx0, rx1-rx0
	return s
}

func syncDisks() { _ = exec.Command("sync").Run() }

// vethsOf returns the host-side veth of every machine: testbed names it tb<bed>-<i> and
// plugs it into the bed's bridge tb-<bed>. What the host sends to machine i crosses it as tx.
func vethsOf(bedName string, bed *testbed.Bed) ([]string, error) {
	var out []string
	for _, m := range bed.Machines {
		i, err := strconv.Atoi(strings.TrimPrefix(m.Name, "n"))
		if err != nil {
			return nil, fmt.Errorf("machine %s: unexpected name", m.Name)
		}
		v := fmt.Sprintf("tb%s-%d", bedName, i)
		if _, err := os.Stat("/sys/class/net/tb-" + bedName + "/brif/" + v); err != nil {
			return nil, fmt.Errorf("machine %s: veth %s is not a port of bridge tb-%s (testbed naming changed?): %w", m.Name, v, bedName, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func counters(veths []string) (tx, rx int64, err error) {
	read := func(p string) (int64, error) {
		b, err := os.ReadFile(p)
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	for _, v := range veths {
		t, err := read("/sys/class/net/" + v + "/statistics/tx_bytes")
		if err != nil {
			return 0, 0, fmt.Errorf("veth %s counters: %w", v, err)
		}
		r, err := read("/sys/class/net/" + v + "/statistics/rx_bytes")
		if err != nil {
			return 0, 0, fmt.Errorf("veth %s counters: %w", v, err)
		}
		tx, rx = tx+t, rx+r
	}
	return tx, rx, nil
}

// rchar is the bytes this process has read through read syscalls (files and sockets).
func rchar() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "rchar: "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return -1
}

// kkPush is kk's way: connector.DialSSH to every machine as root (bed key, known_hosts
// checked), then connector.Upload of the bundle from its local path, all machines in
// parallel. The time runs from the first dial to the last Close.
func kkPush(ctx context.Context, c config, bed *testbed.Bed, bundle, remote string) pushSample {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	s := pushSample{changed: make([]bool, len(bed.Machines))}
	errs := make([]error, len(bed.Machines))
	var wg sync.WaitGroup
	cpu0 := selfCPU()
	start := time.Now()
	for i, m := range bed.Machines {
		wg.Go(func() {
			conn, err := connector.DialSSH(ctx, connector.SSHConfig{
				Host: m.Name, Address: m.Address, User: "root",
				PrivateKeyPath: bed.KeyPath, KnownHostsPath: bed.KnownHosts,
			})
			if err != nil {
				errs[i] = err
				return
			}
			defer conn.Close()
			s.changed[i], errs[i] = conn.Upload(ctx, connector.File{Path: remote, LocalPath: bundle, Mode: 0o644})
		})
	}
	wg.Wait()
	s.wall = time.Since(start)
	s.cpu = selfCPU() - cpu0
	s.err = errors.Join(errs...)
	return s
}

// selfCPU is the user+system CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func wantChanged(changed []bool, want bool) error {
	var bad []string
	for i, c := range changed {
		if c != want {
			bad = append(bad, fmt.Sprintf("n%d", i+1))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("Upload reported changed=%v on %s, want %v", !want, strings.Join(bad, ", "), want)
	}
	return nil
}

// scpPush is OpenSSH's scp (SFTP protocol, its default since 9.0) of the same file to every
// machine, one process per machine, all in parallel; host keys checked the same way.
func scpPush(ctx context.Context, c config, bed *testbed.Bed, bundle, remote string) pushSample {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	errs := make([]error, len(bed.Machines))
	cpus := make([]time.Duration, len(bed.Machines))
	var wg sync.WaitGroup
	start := time.Now()
	for i, m := range bed.Machines {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, "scp", "-q", "-i", bed.KeyPath,
				"-o", "UserKnownHostsFile="+bed.KnownHosts, "-o", "StrictHostKeyChecking=yes",
				"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
				bundle, "root@"+m.Address+":"+remote)
			out, err := cmd.CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("%s: scp: %w: %s", m.Name, err, strings.TrimSpace(string(out)))
			}
			if ps := cmd.ProcessState; ps != nil {
				cpus[i] = ps.UserTime() + ps.SystemTime() // includes the ssh child scp waited for
			}
		})
	}
	wg.Wait()
	s := pushSample{wall: time.Since(start), err: errors.Join(errs...)}
	for _, d := range cpus {
		s.cpu += d
	}
	return s
}

// sshRun runs a command on m as root with OpenSSH.
func sshRun(ctx context.Context, bed *testbed.Bed, m testbed.Machine, command string) (string, error) {
	args := append(bed.SSHArgs(m), command)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %s: %w: %s", m.Name, command, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// onAll runs f for every machine in parallel and joins the errors.
func onAll(bed *testbed.Bed, f func(m testbed.Machine) error) error {
	errs := make([]error, len(bed.Machines))
	var wg sync.WaitGroup
	for i, m := range bed.Machines {
		wg.Go(func() { errs[i] = f(m) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// clean removes every pushed file, so that the next push transfers everything.
func clean(ctx context.Context, bed *testbed.Bed) error {
	dirs := []string{path.Dir(kkPath), path.Dir(scpPath), path.Dir(protoPath)}
	return onAll(bed, func(m testbed.Machine) error {
		_, err := sshRun(ctx, bed, m, "rm -rf -- "+strings.Join(dirs, " ")+" && mkdir -p -- "+path.Dir(scpPath))
		return err
	})
}

// verify checks the sha256 of p on every machine against the bundle's.
func verify(ctx context.Context, bed *testbed.Bed, p, want string) error {
	return onAll(bed, func(m testbed.Machine) error {
		out, err := sshRun(ctx, bed, m, "sha256sum -- "+p)
		if err != nil {
			return err
		}
		got, _, _ := strings.Cut(strings.TrimSpace(out), " ")
		if got != want {
			return fmt.Errorf("%s: %s has sha256 %s, the bundle %s", m.Name, p, got, want)
		}
		return nil
	})
}
