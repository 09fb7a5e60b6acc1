package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kk-project/kk/e2e/testbed"
)

func events(t *testing.T, es ...event) string {
	t.Helper()
	var sb strings.Builder
	for _, e := range es {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		sb.Write(b)
		sb.WriteByte('\n')
	}
	return sb.String()
}

func TestFilterFailure(t *testing.T) {
	const p = "example.com/e2e"
	in := events(t,
		event{Action: "start", Package: p},
		event{Action: "output", Package: p, Output: "INFO testbed: machines up\n"},
		event{Action: "run", Package: p, Test: "TestA"},
		event{Action: "output", Package: p, Test: "TestA", Output: "=== RUN   TestA\n"},
		event{Action: "output", Package: p, Test: "TestA", Output: "    a_test.go:3: a log line\n"},
		event{Action: "output", Package: p, Test: "TestA", Output: "--- PASS: TestA (1.00s)\n"},
		event{Action: "pass", Package: p, Test: "TestA"},
		event{Action: "run", Package: p, Test: "TestB"},
		event{Action: "output", Package: p, Test: "TestB", Output: "    b_test.go:9: $ kk upgrade\n"},
		event{Action: "output", Package: p, Test: "TestB", Output: "    b_test.go:10: kk upgrade: exit 1: error: upgrade/workers on n5\n"},
		event{Action: "output", Package: p, Test: "TestB", Output: "        second line\n"},
		event{Action: "output", Package: p, Test: "TestB", Output: "    b_test.go:20: " + testbed.AfterFailureMarker + "\n"},
		event{Action: "output", Package: p, Test: "TestB", Output: "    b_test.go:21: a long cluster dump\n"},
		event{Action: "output", Package: p, Test: "TestB", Output: "--- FAIL: TestB (9.00s)\n"},
		event{Action: "fail", Package: p, Test: "TestB"},
		event{Action: "output", Package: p, Output: "FAIL\n"},
		event{Action: "fail", Package: p},
	)
	var out strings.Builder
	if filter(strings.NewReader(in), &out, nil) {
		t.Error("a failed test: filter reported success")
	}
	s := out.String()
	for _, want := range []string{"INFO testbed: machines up\n", "--- PASS: TestA (1.00s)\n", "b_test.go:21: a long cluster dump",
		"1 failed test(s)",
		"--- TestB\n    b_test.go:9: $ kk upgrade\n    b_test.go:10: kk upgrade: exit 1: error: upgrade/workers on n5\n        second line\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	for _, not := range []string{"a log line", "=== RUN"} {
		if strings.Contains(s, not) {
			t.Errorf("output has %q (a passed test's log, a frame plain go test does not print):\n%s", not, s)
		}
	}
	// the summary comes last and stops at the marker
	sum := s[strings.Index(s, "failed test(s)"):]
	if !strings.Contains(s, "a long cluster dump") || strings.Contains(sum, "a long cluster dump") || strings.Contains(sum, "--- FAIL") {
		t.Errorf("the summary is not the failed test's log up to the marker:\n%s", s)
	}
}

func TestFilterPass(t *testing.T) {
	const p = "example.com/e2e"
	in := events(t,
		event{Action: "run", Package: p, Test: "TestA"},
		event{Action: "run", Package: p, Test: "TestA/sub"},
		event{Action: "output", Package: p, Test: "TestA/sub", Output: "    --- PASS: TestA/sub (0.50s)\n"},
		event{Action: "pass", Package: p, Test: "TestA/sub", Elapsed: 0.5},
		event{Action: "output", Package: p, Test: "TestA", Output: "--- PASS: TestA (2.00s)\n"},
		event{Action: "pass", Package: p, Test: "TestA", Elapsed: 2},
		event{Action: "output", Package: p, Output: "ok  \texample.com/e2e\t1.0s\n"},
		event{Action: "pass", Package: p},
	)
	var out strings.Builder
	if !filter(strings.NewReader(in), &out, nil) {
		t.Errorf("every test passed: filter reported failure:\n%s", out.String())
	}
	if strings.Contains(out.String(), "failed test") {
		t.Errorf("a summary without failures:\n%s", out.String())
	}
	// subtests are their test's business: neither their result lines nor the closing line
	if s := out.String(); strings.Contains(s, "TestA/sub") || !strings.Contains(s, "--- PASS: TestA (2.00s)") || !strings.Contains(s, "in all: 1 passed; slowest passed: A 2s") {
		t.Errorf("output:\n%s", s)
	}
}

// TestFilterNoResult: go test that did not run (a build error, a refused flag) is a failure.
func TestFilterNoResult(t *testing.T) {
	var out strings.Builder
	if filter(strings.NewReader("go: unknown flag -x\n"), &out, nil) {
		t.Error("no package result: filter reported success")
	}
	if !strings.Contains(out.String(), "go: unknown flag -x") {
		t.Errorf("the go command's own words are lost:\n%s", out.String())
	}
}

func TestSummaryBounded(t *testing.T) {
	var log []string
	for i := 0; i < 100; i++ {
		log = append(log, "    x_test.go:1: "+strings.Repeat("x", 1000)+"\n")
	}
	var fs []failure
	for i := 0; i < 5; i++ {
		fs = append(fs, failure{test: fmt.Sprintf("Test%d", i), lines: beforeMarker(log)})
	}
	var out strings.Builder
	summary(&out, fs)
	if n := strings.Count(out.String(), "\n"); n > maxLines+len(fs)+2 {
		t.Errorf("summary of 5 failed tests of 100 long lines: %d lines", n)
	}
	if !strings.Contains(out.String(), "--- Test4 (see its log above)") || strings.Contains(out.String(), strings.Repeat("x", maxLineLen+1)) {
		t.Errorf("summary not bounded:\n%s", out.String())
	}
}

// TestFilterTimeout: a test the binary's timeout ended never reports; its log is printed, and
// the summary ends at the panic (what it was doing, then why it stopped).
func TestFilterTimeout(t *testing.T) {
	const p = "example.com/e2e"
	in := events(t,
		event{Action: "run", Package: p, Test: "TestSlow"},
		event{Action: "output", Package: p, Test: "TestSlow", Output: "    a_test.go:3: waiting for the upgrade\n"},
		event{Action: "output", Package: p, Test: "TestSlow", Output: "panic: test timed out after 75m\n"},
		event{Action: "output", Package: p, Test: "TestSlow", Output: "\trunning tests:\n\t\tTestSlow (75m0s)\n\ngoroutine 1 [running]:\n"},
		event{Action: "output", Package: p, Output: "FAIL\texample.com/e2e\t4500.1s\n"},
		event{Action: "fail", Package: p},
	)
	var out strings.Builder
	if filter(strings.NewReader(in), &out, nil) {
		t.Error("a timeout: filter reported success")
	}
	s := out.String()
	sum := s[strings.Index(s, "failed test(s)"):]
	if !strings.Contains(s, "--- UNFINISHED: TestSlow") || !strings.Contains(sum, "TestSlow (unfinished)") ||
		!strings.Contains(sum, "waiting for the upgrade") || !strings.Contains(sum, "panic: test timed out") || strings.Contains(sum, "goroutine") {
		t.Errorf("output:\n%s", s)
	}
}

// TestFilterBuildFailure: a package that does not compile shows the compiler's words and fails.
func TestFilterBuildFailure(t *testing.T) {
	in := `{"ImportPath":"example.com/e2e [example.com/e2e.test]","Action":"build-output","Output":"./x_test.go:3:27: undefined: thing\n"}
{"ImportPath":"example.com/e2e [example.com/e2e.test]","Action":"build-fail"}
{"Action":"start","Package":"example.com/e2e"}
{"Action":"output","Package":"example.com/e2e","Output":"FAIL\texample.com/e2e [build failed]\n"}
{"Action":"fail","Package":"example.com/e2e","FailedBuild":"example.com/e2e [example.com/e2e.test]"}
`
	var out strings.Builder
	if filter(strings.NewReader(in), &out, nil) {
		t.Error("a build failure: filter reported success")
	}
	if !strings.Contains(out.String(), "undefined: thing") {
		t.Errorf("the compiler's words are lost:\n%s", out.String())
	}
}

// TestFilterFirstFailure: a test that went on after a t.Errorf is summed up by the lines
// before its first FailedMarker, not by its last ones.
func TestFilterFirstFailure(t *testing.T) {
	const p = "example.com/e2e"
	in := events(t,
		event{Action: "run", Package: p, Test: "TestHA"},
		event{Action: "output", Package: p, Test: "TestHA", Output: "    certs_test.go:157: API poller: 1 failed\n"},
		event{Action: "output", Package: p, Test: "TestHA", Output: "    testbed.go:300: " + testbed.FailedMarker + "\n"},
		event{Action: "output", Package: p, Test: "TestHA", Output: "    cluster_test.go:400: $ kk delete cluster\n"},
		event{Action: "output", Package: p, Test: "TestHA", Output: "    cluster_test.go:150: " + testbed.AfterFailureMarker + "\n"},
		event{Action: "output", Package: p, Test: "TestHA", Output: "--- FAIL: TestHA (9.00s)\n"},
		event{Action: "fail", Package: p, Test: "TestHA"},
		event{Action: "fail", Package: p},
	)
	var out strings.Builder
	filter(strings.NewReader(in), &out, nil)
	s := out.String()
	sum := s[strings.Index(s, "failed test(s)"):]
	if !strings.Contains(sum, "API poller: 1 failed") || strings.Contains(sum, "kk delete cluster") {
		t.Errorf("summary:\n%s", sum)
	}
}

// TestFilterInterrupted: the CI job's time limit kills the process group while a test runs.
// testlog stops reading at the signal and names the running test with its last lines, the
// finished ones with their times, in the closing line.
func TestFilterInterrupted(t *testing.T) {
	const p = "example.com/e2e"
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	in := events(t,
		event{Time: at(0), Action: "start", Package: p},
		event{Time: at(0), Action: "run", Package: p, Test: "TestHA"},
		event{Time: at(0), Action: "run", Package: p, Test: "TestDocker"},
		event{Time: at(1), Action: "output", Package: p, Test: "TestHA", Output: "    cluster_test.go:300: $ kk upgrade\n"},
		event{Time: at(4), Action: "output", Package: p, Test: "TestDocker", Output: "--- PASS: TestDocker (247.54s)\n"},
		event{Time: at(4), Action: "pass", Package: p, Test: "TestDocker", Elapsed: 247.54},
		event{Time: at(30), Action: "output", Package: p, Test: "TestHA", Output: "    cluster_test.go:310: waiting for n5\n"},
	)
	pr, pw := io.Pipe()
	written := make(chan struct{})
	go func() {
		_, _ = pw.Write([]byte(in)) // returns once read; then go test hangs: the pipe stays open
		close(written)
	}()
	stop := make(chan os.Signal, 1)
	done := make(chan bool)
	var out strings.Builder
	go func() { done <- filter(pr, &out, stop) }()
	<-written
	stop <- syscall.SIGTERM
	var ok bool
	select {
	case ok = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("filter did not return after the signal")
	}
	if ok {
		t.Error("interrupted: filter reported success")
	}
	s := out.String()
	for _, want := range []string{"testlog: terminated: stopped reading", "--- UNFINISHED: TestHA", "--- TestHA (unfinished)\n", "waiting for n5",
		"testlog: 30m0s in all: 1 passed; UNFINISHED: HA 30m0s; slowest passed: Docker 4m8s"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if lines := strings.Split(strings.TrimSpace(s), "\n"); !strings.HasPrefix(lines[len(lines)-1], "testlog: 30m0s in all: ") {
		t.Errorf("the closing line is not last:\n%s", s)
	}
	if testing.Verbose() {
		t.Log(s)
	}
	pw.Close()
}

// TestRunCommandLeftBehind: the command exits, a process it started still holds its output;
// testlog stops reading shortly after and reports the command's result, not a hang.
func TestRunCommandLeftBehind(t *testing.T) {
	script := `echo '{"Action":"run","Package":"p","Test":"TestA"}'
echo '{"Action":"pass","Package":"p","Test":"TestA","Elapsed":1}'
echo '{"Action":"pass","Package":"p"}'
sleep 60 &
exit 0`
	var out strings.Builder
	start := time.Now()
	ok := runCommand([]string{"sh", "-c", script}, &out, nil)
	if !ok || time.Since(start) > 30*time.Second {
		t.Errorf("ok=%v after %s:\n%s", ok, time.Since(start), out.String())
	}
	if !strings.Contains(out.String(), "a process it left behind still holds its output") {
		t.Errorf("the leftover process is not named:\n%s", out.String())
	}
	// a failing command fails testlog, whatever its output says
	out.Reset()
	if runCommand([]string{"sh", "-c", `echo '{"Action":"pass","Package":"p"}'; exit 3`}, &out, nil) {
		t.Errorf("a command that exited 3 passed:\n%s", out.String())
	}
	// a command that does not start
	out.Reset()
	if runCommand([]string{"/nonexistent/go"}, &out, nil) || !strings.Contains(out.String(), "testlog:") {
		t.Errorf("a missing command:\n%s", out.String())
	}
}
