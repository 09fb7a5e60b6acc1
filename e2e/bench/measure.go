package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kk-project/kk/e2e/bench/internal/play"
)

// benchHost is one light host as both tools see it.
type benchHost struct {
	Name    string
	Address string
	Port    int    // 0 = 22
	Key     string // the client key for this host (its bed's)
}

// sample is one measured invocation of a tool. A sample with err set has no valid time.
type sample struct {
	wall   time.Duration
	cpu    time.Duration // user+system of the process and the children it waited for
	rssKiB int64         // peak resident set of the largest process of the tree
	timing []string      // kkplay's TIMING lines
	// kkplay's HANDSHAKES line: the most SSH dials at once, and the attempts tried again
	// after a transient connection error
	handshakes, redials int
	changed             int // changed task×host results the tool reported
	err                 error
}

// measurement is one table cell: every run of one tool in one mode.
type measurement struct {
	samples []sample
}

func (m *measurement) add(s sample) { m.samples = append(m.samples, s) }

// failure returns the first failed run, or nil.
func (m *measurement) failure() error {
	for _, s := range m.samples {
		if s.err != nil {
			return s.err
		}
	}
	if len(m.samples) == 0 {
		return errors.New("not run")
	}
	return nil
}

// median returns the median wall time; ok is false when any run failed.
func (m *measurement) median() (time.Duration, bool) {
	if m.failure() != nil {
		return 0, false
	}
	ws := make([]time.Duration, len(m.samples))
	for i, s := range m.samples {
		ws[i] = s.wall
	}
	slices.Sort(ws)
	return ws[len(ws)/2], true
}

// medianCPU is the median CPU time of the runs (valid only when median is).
func (m *measurement) medianCPU() time.Duration {
	cs := make([]time.Duration, len(m.samples))
	for i, s := range m.samples {
		cs[i] = s.cpu
	}
	slices.Sort(cs)
	return cs[len(cs)/2]
}

// changed is what the last run reported changed (-1 when it failed).
func (m *measurement) changed() int {
	if m.failure() != nil {
		return -1
	}
	return m.samples[len(m.samples)-1].changed
}

// peakHandshakes is the most simultaneous dials over the runs, and the redials they needed.
func (m *measurement) peakHandshakes() (peak, redials int) {
	for _, s := range m.samples {
		peak, redials = max(peak, s.handshakes), max(redials, s.redials)
	}
	return peak, redials
}

// peakRSS is the largest peak RSS over the runs, in KiB.
func (m *measurement) peakRSS() int64 {
	var p int64
	for _, s := range m.samples {
		p = max(p, s.rssKiB)
	}
	return p
}

// row is every measurement for one host count.
type row struct {
	n                          int
	lightUp                    time.Duration
	kkFirst, kkRerun           measurement
	ansibleFirst, ansibleRerun measurement
	filesIdentical             bool   // both tools left byte-identical files on every host
	ansible                    bool   // ansible was measured at this N (else kk alone)
	beds                       int    // testbeds the light hosts were spread over
	load                       string // load average when kk's first run started
	probe                      probe
}

func (r *row) errs() []error {
	var out []error
	for _, m := range []struct {
		name string
		m    *measurement
	}{{"kk first run", &r.kkFirst}, {"kk re-run", &r.kkRerun}, {"ansible first run", &r.ansibleFirst}, {"ansible re-run", &r.ansibleRerun}} {
		if !r.ansible && strings.HasPrefix(m.name, "ansible") {
			continue
		}
		if err := m.m.failure(); err != nil {
			out = append(out, fmt.Errorf("N=%d, %s: %w", r.n, m.name, err))
		}
	}
	return out
}

// measureN brings up n light hosts, measures both tools on them and takes the hosts down.
// Tool failures are recorded in the row; the error is for the harness itself.
func measureN(ctx context.Context, c config, n int, work, kkplay, blobPath string, log io.Writer) (r row, err error) {
	r.n = n
	fmt.Fprintf(log, "bench: N=%d: bringing up light hosts\n", n)
	start := time.Now()
	b, err := lightUp(ctx, c.bedName, n, work)
	if err != nil {
		return r, fmt.Errorf("light up %d hosts: %w", n, err)
	}
	r.lightUp = time.Since(start)
	r.beds = b.beds
	r.ansible = n <= c.ansibleMax
	if r.ansible && b.beds > 1 {
		err = errors.Join(fmt.Errorf("ansible at N=%d: the hosts span %d beds with different keys; lower -ansible-max", n, b.beds), b.down(context.WithoutCancel(ctx)))
		return r, err
	}
	defer func() {
		if derr := b.down(context.WithoutCancel(ctx)); derr != nil {
			err = errors.Join(err, fmt.Errorf("light down: %w", derr))
		}
	}()
	fmt.Fprintf(log, "bench: N=%d: %d hosts up in %s\n", n, len(b.hosts), r.lightUp.Round(time.Millisecond))
	r.probe = probeHosts(ctx, b.hosts[0], b.keyPath, b.knownHosts)
	if r.probe.err != nil {
		fmt.Fprintf(log, "bench: N=%d: probe: %v\n", n, r.probe.err)
	} else {
		fmt.Fprintf(log, "bench: N=%d: empty command round trip %s\n", n, r.probe.execRTT.Round(time.Microsecond))
	}

	dir := filepath.Join(work, fmt.Sprintf("n%d", n))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return r, err
	}
	hostsFile := filepath.Join(dir, "hosts.txt")
	var hf strings.Builder
	for _, h := range b.hosts {
		fmt.Fprintf(&hf, "%s,%s", h.Name, h.Address)
		switch {
		case b.beds > 1:
			fmt.Fprintf(&hf, ",%d,%s", h.Port, h.Key) // port 0 = 22
		case h.Port != 0:
			fmt.Fprintf(&hf, ",%d", h.Port)
		}
		hf.WriteByte('\n')
	}
	if err := os.WriteFile(hostsFile, []byte(hf.String()), 0o644); err != nil {
		return r, err
	}
	var ans *ansibleSetup
	if r.ansible {
		ans, err = writeAnsible(filepath.Join(dir, "ansible"), b.hosts, b, c.root, blobPath, n)
		if err != nil {
			return r, err
		}
	}
	kkArgs := []string{"-hosts", hostsFile, "-key", b.keyPath, "-known-hosts", b.knownHosts,
		"-concurrency", strconv.Itoa(n), "-root", c.root, "-handshakes", strconv.Itoa(c.handshakes)}

	identical := true
	for i := 1; i <= c.runs; i++ {
		step := func(name string, m *measurement, s sample) {
			m.add(s)
			if s.err != nil {
				fmt.Fprintf(log, "bench: N=%d run %d/%d: %s FAILED: %v\n", n, i, c.runs, name, s.err)
				return
			}
			fmt.Fprintf(log, "bench: N=%d run %d/%d: %-17s %8s  cpu %8s  peak rss %6.1f MiB\n", n, i, c.runs, name,
				s.wall.Round(time.Millisecond), s.cpu.Round(time.Millisecond), float64(s.rssKiB)/1024)
		}

		// kk: first run changes the two files on every host; the re-run changes nothing.
		if err := clean(c.root, b.hosts); err != nil {
			return r, err
		}
		if i == 1 {
			r.load = loadAvg()
		}
		s := runKK(ctx, c, kkplay, kkArgs, n, 2*n)
		if s.err == nil {
			s.err = verifyFiles(c.root, b.hosts)
		}
		step("kk first run", &r.kkFirst, s)
		if s.err == nil {
			s = runKK(ctx, c, kkplay, kkArgs, 3*n, 0)
			if s.err == nil {
				s.err = verifyFiles(c.root, b.hosts)
			}
		} else {
			s = sample{err: errors.New("not run: the first run failed")}
		}
		step("kk re-run", &r.kkRerun, s)

		// ansible: the same, on a clean slate.
		if !r.ansible {
			continue
		}
		if err := clean(c.root, b.hosts); err != nil {
			return r, err
		}
		s = runAnsible(ctx, c, ans, filepath.Join(dir, fmt.Sprintf("cp-%d-first", i)), b.hosts, 2)
		if s.err == nil {
			if s.err = verifyFiles(c.root, b.hosts); s.err != nil {
				identical = false
			}
		}
		step("ansible first run", &r.ansibleFirst, s)
		if s.err == nil {
			s = runAnsible(ctx, c, ans, filepath.Join(dir, fmt.Sprintf("cp-%d-rerun", i)), b.hosts, 0)
			if s.err == nil {
				s.err = verifyFiles(c.root, b.hosts)
			}
		} else {
			s = sample{err: errors.New("not run: the first run failed")}
		}
		step("ansible re-run", &r.ansibleRerun, s)
	}
	r.filesIdentical = identical && r.kkFirst.failure() == nil && r.ansibleFirst.failure() == nil
	if err := os.RemoveAll(c.root); err != nil {
		return r, fmt.Errorf("clean %s: %w", c.root, err)
	}
	return r, nil
}

// clean removes what earlier runs wrote and recreates each host's empty directory (for both
// tools alike, so that ansible's copy, which does not create parent directories, needs no
// extra task).
func clean(root string, hosts []benchHost) error {
	if !filepath.IsAbs(root) || filepath.Clean(root) == "/" {
		return fmt.Errorf("refusing to clean root directory %q: must be an absolute path below /", root)
	}
	if err := os.RemoveAll(root); err != nil {
		return fmt.Errorf("clean %s: %w", root, err)
	}
	for _, h := range hosts {
		if err := os.MkdirAll(play.Dir(root, h.Name), 0o755); err != nil {
			return fmt.Errorf("host %s: make directory: %w", h.Name, err)
		}
	}
	return nil
}

// invoke runs cmd and measures it. Output is returned for parsing and error messages.
func invoke(cmd *exec.Cmd) (sample, string) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	s := sample{wall: time.Since(start)}
	if ps := cmd.ProcessState; ps != nil {
		s.cpu = ps.UserTime() + ps.SystemTime()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			s.rssKiB = ru.Maxrss // KiB on Linux
		}
	}
	if err != nil {
		s.err = fmt.Errorf("%s: %w\n%s", filepath.Base(cmd.Path), err, tail(out.String(), 3000))
	}
	return s, out.String()
}

var kkHandshakes = regexp.MustCompile(`(?m)^HANDSHAKES peak=(\d+) redials=(\d+)$`)

var kkResult = regexp.MustCompile(`(?m)^RESULT ok=(\d+) changed=(\d+) skipped=(\d+) failed=(\d+)$`)

// runKK runs kkplay and checks its counts.
func runKK(ctx context.Context, c config, kkplay string, args []string, wantOK, wantChanged int) sample {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	s, out := invoke(exec.CommandContext(ctx, kkplay, args...))
	if s.err != nil {
		return s
	}
	m := kkResult.FindStringSubmatch(out)
	if m == nil {
		s.err = fmt.Errorf("kkplay printed no RESULT line:\n%s", tail(out, 3000))
		return s
	}
	if got := fmt.Sprintf("ok=%s changed=%s skipped=%s failed=%s", m[1], m[2], m[3], m[4]); got != fmt.Sprintf("ok=%d changed=%d skipped=0 failed=0", wantOK, wantChanged) {
		s.err = fmt.Errorf("kkplay: %s, want ok=%d changed=%d skipped=0 failed=0", got, wantOK, wantChanged)
		return s
	}
	s.changed, _ = strconv.Atoi(m[2])
	for line := range strings.Lines(out) {
		if t, ok := strings.CutPrefix(line, "TIMING "); ok {
			s.timing = append(s.timing, strings.TrimSpace(t))
		}
	}
	if m := kkHandshakes.FindStringSubmatch(out); m != nil {
		s.handshakes, _ = strconv.Atoi(m[1])
		s.redials, _ = strconv.Atoi(m[2])
	} else {
		s.err = fmt.Errorf("kkplay printed no HANDSHAKES line:\n%s", tail(out, 3000))
	}
	return s
}

// runAnsible runs the playbook with a fresh ControlPath dir and checks its PLAY RECAP.
func runAnsible(ctx context.Context, c config, a *ansibleSetup, controlDir string, hosts []benchHost, wantChanged int) sample {
	if err := os.MkdirAll(controlDir, 0o700); err != nil {
		return sample{err: err}
	}
	defer stopMasters(context.WithoutCancel(ctx), controlDir)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	s, out := invoke(a.command(ctx, controlDir))
	if s.err != nil {
		return s
	}
	s.changed, s.err = checkRecap(out, hosts, wantChanged)
	if s.err != nil {
		s.err = fmt.Errorf("%w\n%s", s.err, tail(out, 3000))
	}
	return s
}

// verifyFiles checks the play's outcome on every host: the payload and the rendered unit.
func verifyFiles(root string, hosts []benchHost) error {
	want := play.BlobSHA256()
	for _, h := range hosts {
		blob, err := os.ReadFile(play.BlobPath(root, h.Name))
		if err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
		if sum := sha256.Sum256(blob); hex.EncodeToString(sum[:]) != want {
			return fmt.Errorf("host %s: %s has the wrong content", h.Name, play.BlobPath(root, h.Name))
		}
		unit, err := os.ReadFile(play.UnitPath(root, h.Name))
		if err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
		wantUnit, err := play.RenderUnit(play.UnitFor(root, h.Name, h.Address))
		if err != nil {
			return err
		}
		if !bytes.Equal(unit, wantUnit) {
			return fmt.Errorf("host %s: %s differs from kk's rendering:\n--- got\n%s\n--- want\n%s", h.Name, play.UnitPath(root, h.Name), unit, wantUnit)
		}
	}
	return nil
}

// buildKKPlay compiles kkplay into dir.
func buildKKPlay(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "kkplay")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/kk-project/kk/e2e/bench/kkplay")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build kkplay: %w\n%s", err, out)
	}
	return bin, nil
}

// writeBlob writes the payload for ansible's copy (kkplay generates the same bytes itself).
func writeBlob(dir string) (string, error) {
	p := filepath.Join(dir, "blob")
	if err := os.WriteFile(p, play.Blob(), 0o644); err != nil {
		return "", fmt.Errorf("write payload: %w", err)
	}
	return p, nil
}

func lookPath(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found (apt-get install ansible): %w", name, err)
	}
	return p, nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
