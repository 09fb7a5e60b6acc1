// Command testlog reads `go test -json` on its standard input and prints what plain `go test`
// prints (a failed test's whole log, a passed test's result line), then, last, the end of
// each failed test's log up to its first failure (testbed.FailedMarker, logged just after it)
// or to where its cleanup began reporting the cluster's state (testbed.AfterFailureMarker):
// a CI log that keeps only its head and tail still says why a test failed, however much the
// test logged after it. It exits 1 when a test or a package failed, or when no package
// reported a result (go test did not run).
//
//	go test -json ./e2e 2>&1 | go run ./e2e/cmd/testlog
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/kk-project/kk/e2e/testbed"
)

func main() {
	if !filter(os.Stdin, os.Stdout) {
		os.Exit(1)
	}
}

// event is one line of `go test -json` (cmd/test2json's TestEvent).
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// Bounds of the summary: it must fit the tail of a CI log.
const (
	maxTestLines = 10 // per failed test
	maxLines     = 24 // in all
	maxLineLen   = 300
)

type failure struct {
	test  string
	lines []string
}

// filter copies in's events to out as go test's text and reports whether every package
// passed.
func filter(in io.Reader, out io.Writer) bool {
	logs := map[string][]string{} // a running test's output, printed if it fails
	var order []string            // the tests in the order of their first output
	var failed []failure
	results, bad := 0, false
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if json.Unmarshal(line, &e) != nil || e.Action == "" {
			// not an event: the go command's own words (a build error, a flag it refused)
			fmt.Fprintf(out, "%s\n", line)
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "build-output": // a package that does not compile: the compiler's words
			fmt.Fprint(out, e.Output)
		case "build-fail":
			bad = true
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
				results++
				continue
			}
			// the result line only (its frame is the last line of the log)
			if l := logs[key]; len(l) > 0 && strings.HasPrefix(strings.TrimSpace(l[len(l)-1]), "--- ") {
				fmt.Fprint(out, l[len(l)-1])
			}
			delete(logs, key)
		case "fail":
			if e.Test == "" {
				results++
				bad = true
				continue
			}
			bad = true
			for _, l := range logs[key] {
				fmt.Fprint(out, l)
			}
			failed = append(failed, failure{test: e.Test, lines: beforeMarker(logs[key])})
			delete(logs, key)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(out, "testlog: reading go test's output: %v\n", err)
		bad = true
	}
	// a test still running when the binary ended (a timeout's panic, a crash): its log may
	// hold why
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
	if results == 0 {
		fmt.Fprintln(out, "testlog: no package reported a result (did go test run?)")
		bad = true
	}
	summary(out, failed)
	return !bad
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
