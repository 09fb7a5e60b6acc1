// Command testlog reads `go test -json` on its standard input and prints what plain `go test`
// prints (a failed test's whole log, a passed test's result line), then, last, the end of
// each failed test's log up to its first failure (testbed.FailedMarker, logged just after it)
// or to where its cleanup began reporting the cluster's state (testbed.AfterFailureMarker),
// and one line of every test's result and time: a CI log that keeps only a short tail still
// says which test failed, why, and where the time went, however much the tests logged.
//
// A SIGTERM, SIGINT or SIGHUP (a CI job's time limit kills the whole process group) ends the
// reading there: the summary then also names the tests still running, with their last lines.
// It exits 1 when a test or a package failed, when it was interrupted, or when no package
// reported a result (go test did not run).
//
// Given a command, testlog runs it and reads its output (stdout and stderr) instead of its
// own input, and stops reading shortly after the command exits: a process a test left behind
// that still holds the output (a machine's runner) cannot keep the job waiting for an end of
// file that never comes. The command's failure is testlog's.
//
//	go run ./e2e/cmd/testlog go test -json ./e2e
//	go test -json ./e2e 2>&1 | go run ./e2e/cmd/testlog
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kk-project/kk/e2e/testbed"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	ok := false
	if len(os.Args) > 1 {
		ok = runCommand(os.Args[1:], os.Stdout, stop)
	} else {
		ok = filter(os.Stdin, os.Stdout, stop)
	}
	if !ok {
		os.Exit(1)
	}
}

// graceAfterExit is how long testlog goes on reading once the command exited: what is still
// in the pipe.
const graceAfterExit = 3 * time.Second

// runCommand runs argv with its output on a pipe that filter reads, and reports whether both
// the command and its tests passed. Once the command exits, the pipe is read for
// graceAfterExit more at most: a process it left behind may hold the pipe's other end.
func runCommand(argv []string, out io.Writer, stop <-chan os.Signal) bool {
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(out, "testlog: %v\n", err)
		return false
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(out, "testlog: %v\n", err)
		return false
	}
	w.Close() // the command's copy is the only writer left
	pr := &pipeReader{f: r}
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		exited <- err
		time.Sleep(graceAfterExit)
		pr.stop()
	}()
	ok := filter(pr, out, stop)
	if pr.stopped.Load() {
		fmt.Fprintf(out, "testlog: %s exited, but a process it left behind still holds its output: stopped reading %s after\n", argv[0], graceAfterExit)
	}
	select {
	case err := <-exited:
		if err != nil {
			fmt.Fprintf(out, "testlog: %s: %v\n", strings.Join(argv[:min(len(argv), 3)], " "), err)
			return false
		}
	case <-time.After(10 * time.Second): // interrupted, and it runs on
		fmt.Fprintf(out, "testlog: %s still runs\n", argv[0])
		return false
	}
	return ok
}

// pipeReader reads f until stop, which turns the read it interrupts into an end of file.
type pipeReader struct {
	f       *os.File
	stopped atomic.Bool
}

func (p *pipeReader) Read(b []byte) (int, error) {
	n, err := p.f.Read(b)
	if err != nil && p.stopped.Load() {
		return n, io.EOF
	}
	return n, err
}

func (p *pipeReader) stop() {
	p.stopped.Store(true)
	p.f.Close()
}

// event is one line of `go test -json` (cmd/test2json's TestEvent).
type event struct {
	Time    time.Time `json:",omitempty"`
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// Bounds of the summary: it must fit the short tail of a CI log.
const (
	maxTestLines = 6  // per failed test
	maxLines     = 12 // in all
	maxLineLen   = 240
)

// graceAfterSignal is how long testlog goes on reading after a signal: the lines go test
// and the test binary write as they die.
const graceAfterSignal = time.Second

type failure struct {
	test  string
	lines []string
}

// result is one finished (or unfinished) top-level test for the closing line.
type result struct {
	test    string
	status  string // pass, skip, FAIL, UNFINISHED
	elapsed time.Duration
}

// filter copies in's events to out as go test's text and reports whether every package
// passed. A value on stop ends the reading early (the process is being killed): what was
// read so far is summed up and filter reports failure.
func filter(in io.Reader, out io.Writer, stop <-chan os.Signal) bool {
	lines := make(chan []byte)
	readErr := make(chan error, 1)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			lines <- append([]byte(nil), sc.Bytes()...)
		}
		readErr <- sc.Err()
	}()

	logs := map[string][]string{}     // a running test's output, printed if it fails
	started := map[string]time.Time{} // a running test's start
	var order []string                // the tests in the order of their first output
	var failed []failure
	var results []result
	var first, last time.Time
	var interrupted os.Signal
	var grace <-chan time.Time // after a signal: what go test still writes as it dies
	nresults, bad := 0, false
read:
	for {
		var line []byte
		select {
		case l, ok := <-lines:
			if !ok {
				if err := <-readErr; err != nil {
					fmt.Fprintf(out, "testlog: reading go test's output: %v\n", err)
					bad = true
				}
				break read
			}
			line = l
		case s := <-stop:
			if interrupted == nil {
				interrupted = s
				grace = time.After(graceAfterSignal)
			}
			continue
		case <-grace:
			break read
		}
		var e event
		if json.Unmarshal(line, &e) != nil || e.Action == "" {
			// not an event: the go command's own words (a build error, a flag it refused)
			fmt.Fprintf(out, "%s\n", line)
			continue
		}
		if !e.Time.IsZero() {
			if first.IsZero() {
				first = e.Time
			}
			last = e.Time
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "build-output": // a package that does not compile: the compiler's words
			fmt.Fprint(out, e.Output)
		case "build-fail":
			bad = true
		case "run":
			if e.Test != "" {
				started[key] = e.Time
			}
		case "output":
			if e.Test == "" {
				fmt.Fprint(out, e.Output)
				continue
			}
			if frame.MatchString(e.Output) {
				continue // === RUN, PAUSE, CONT: plain go test does not print them
			}
			if _, seen := logs[key]; !seen {
				order = append(order, key)
			}
			logs[key] = append(logs[key], e.Output)
		case "pass", "skip":
			if e.Test == "" {
				nresults++
				continue
			}
			// a top-level test's result line only (its frame is the last line of the log)
			top := !strings.Contains(e.Test, "/")
			if l := logs[key]; top && len(l) > 0 && strings.HasPrefix(strings.TrimSpace(l[len(l)-1]), "--- ") {
				fmt.Fprint(out, l[len(l)-1])
			}
			if top {
				results = append(results, result{e.Test, e.Action, seconds(e.Elapsed)})
			}
			delete(logs, key)
			delete(started, key)
		case "fail":
			if e.Test == "" {
				nresults++
				bad = true
				continue
			}
			bad = true
			for _, l := range logs[key] {
				fmt.Fprint(out, l)
			}
			failed = append(failed, failure{test: e.Test, lines: beforeMarker(logs[key])})
			if !strings.Contains(e.Test, "/") {
				results = append(results, result{e.Test, "FAIL", seconds(e.Elapsed)})
			}
			delete(logs, key)
			delete(started, key)
		}
	}
	if interrupted != nil {
		fmt.Fprintf(out, "testlog: %s: stopped reading go test's output %s into the run\n", interrupted, since(first, last))
		bad = true
	}
	// a test still running when the binary ended (a timeout's panic, a crash) or when the
	// job was killed: its log may hold why
	for _, key := range order {
		l, running := logs[key]
		if !running {
			continue
		}
		_, test, _ := strings.Cut(key, " ")
		fmt.Fprintf(out, "--- UNFINISHED: %s\n", test)
		for _, line := range l {
			fmt.Fprint(out, line)
		}
		failed = append(failed, failure{test: test + " (unfinished)", lines: beforeMarker(l)})
	}
	for _, key := range order {
		if _, running := logs[key]; running {
			_, test, _ := strings.Cut(key, " ")
			if strings.Contains(test, "/") {
				continue
			}
			var d time.Duration
			if t, ok := started[key]; ok && !t.IsZero() && !last.IsZero() {
				d = last.Sub(t).Round(time.Second)
			}
			results = append(results, result{test, "UNFINISHED", d})
		}
	}
	if nresults == 0 && interrupted == nil {
		fmt.Fprintln(out, "testlog: no package reported a result (did go test run?)")
		bad = true
	}
	summary(out, failed)
	closing(out, results, since(first, last))
	return !bad
}

// seconds is a test's elapsed seconds (go test's float) as a duration.
func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(time.Second)
}

// since formats the time from a to b, or "?" when a is unknown.
func since(a, b time.Time) string {
	if a.IsZero() || b.IsZero() {
		return "?"
	}
	return b.Sub(a).Round(time.Second).String()
}

// frame matches the lines go test -v adds that plain go test does not print.
var frame = regexp.MustCompile(`^=== (RUN|PAUSE|CONT|NAME) `)

// beforeMarker returns the last maxTestLines lines of log before the first of
// testbed.FailedMarker and testbed.AfterFailureMarker (before the result line when there is
// neither; up to a panic's first line, without its stacks).
func beforeMarker(log []string) []string {
	var lines []string
chunks:
	for _, chunk := range log {
		if strings.Contains(chunk, testbed.AfterFailureMarker) || strings.Contains(chunk, testbed.FailedMarker) {
			break
		}
		for _, l := range strings.Split(strings.TrimRight(chunk, "\n"), "\n") {
			lines = append(lines, l)
			if strings.HasPrefix(l, "panic: ") {
				break chunks // a timeout or a crash: what follows is goroutine stacks
			}
		}
	}
	if n := len(lines); n > 0 && strings.HasPrefix(lines[n-1], "--- FAIL") {
		lines = lines[:n-1]
	}
	if len(lines) > maxTestLines {
		lines = lines[len(lines)-maxTestLines:]
	}
	return lines
}

// summary prints the end of each failed test's log, shortened to fit a log's tail.
func summary(out io.Writer, failed []failure) {
	if len(failed) == 0 {
		return
	}
	fmt.Fprintf(out, "\n%d failed test(s); the end of each one's log before its cleanup:\n", len(failed))
	budget := maxLines
	for _, f := range failed {
		if budget <= 0 {
			fmt.Fprintf(out, "--- %s (see its log above)\n", f.test)
			continue
		}
		fmt.Fprintf(out, "--- %s\n", f.test)
		lines := f.lines
		if len(lines) > budget {
			lines = lines[len(lines)-budget:]
		}
		budget -= len(lines)
		for _, l := range lines {
			if len(l) > maxLineLen {
				l = l[:maxLineLen] + " …"
			}
			fmt.Fprintln(out, l)
		}
	}
}

// slowest is how many of the passed tests the closing line names, slowest first.
const slowest = 6

// closing prints one line, last in the log: how many top-level tests passed, the failed and
// unfinished ones and the slowest passed ones, each with its time.
func closing(out io.Writer, results []result, total string) {
	if len(results) == 0 {
		return
	}
	var bad, passed []result
	skipped := 0
	for _, r := range results {
		switch r.status {
		case "pass":
			passed = append(passed, r)
		case "skip":
			skipped++
		default:
			bad = append(bad, r)
		}
	}
	name := func(r result) string { return strings.TrimPrefix(r.test, "Test") + " " + r.elapsed.String() }
	line := fmt.Sprintf("testlog: %s in all: %d passed", total, len(passed))
	if skipped > 0 {
		line += fmt.Sprintf(", %d skipped", skipped)
	}
	for _, status := range []string{"FAIL", "UNFINISHED"} {
		var names []string
		for _, r := range bad {
			if r.status == status {
				names = append(names, name(r))
			}
		}
		if len(names) > 0 {
			line += fmt.Sprintf("; %s: %s", status, strings.Join(names, ", "))
		}
	}
	sort.SliceStable(passed, func(i, j int) bool { return passed[i].elapsed > passed[j].elapsed })
	if len(passed) > slowest {
		passed = passed[:slowest]
	}
	var names []string
	for _, r := range passed {
		if r.elapsed >= time.Second {
			names = append(names, name(r))
		}
	}
	if len(names) > 0 {
		line += "; slowest passed: " + strings.Join(names, ", ")
	}
	fmt.Fprintln(out, line)
}
