//go:build integration

package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestBenchSmall runs the whole benchmark on 3 light hosts and checks the results file:
// functional checks only (both tools ran, every run verified, kk's re-run changed nothing),
// never a timing.
func TestBenchSmall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (light hosts are network namespaces)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "results.md")
	c := config{
		out:     out,
		ns:      []int{3},
		runs:    1,
		root:    filepath.Join(t.TempDir(), "kkbench"), // light hosts share this filesystem
		bedName: "kkbt",
		timeout: 5 * time.Minute,
		// ansible is measured at N=3 too (main's -ansible-max default)
		ansibleMax: lightPerBed,
	}
	var log strings.Builder
	err := run(ctx, c, &log)
	t.Log(log.String())
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	for _, want := range []string{"| N | kk first run | kk re-run | kk peak RSS | ansible first run | ansible re-run |", "## Machine"} {
		if !strings.Contains(md, want) {
			t.Errorf("results lack %q:\n%s", want, md)
		}
	}
	// the N=3 row has a time in each tool's columns (a failed run would read FAILED)
	row := regexp.MustCompile(`(?m)^\| 3 \| ([0-9.]+ s) \| ([0-9.]+ s) \| ([0-9.]+ MiB) \| ([0-9.]+ s) \| ([0-9.]+ s) \| `)
	if !row.MatchString(md) {
		t.Errorf("no complete row for N=3 (kk and ansible times):\n%s", md)
	}
	if strings.Contains(md, "## Failures") {
		t.Errorf("a run failed:\n%s", md)
	}
	// details: N | hosts up | kk changed first / re-run | ansible changed first / re-run | ... | identical
	details := regexp.MustCompile(`(?m)^\| 3 \| [0-9.]+ s \| (\d+) / (\d+) \| (\d+) / (\d+) \| .* \| (yes|no) \|$`)
	m := details.FindStringSubmatch(md)
	if m == nil {
		t.Fatalf("no details row for N=3:\n%s", md)
	}
	// first runs change the 2 files on each of the 3 hosts; re-runs change nothing
	if m[1] != "6" || m[2] != "0" {
		t.Errorf("kk changed %s on the first run and %s on the re-run, want 6 and 0", m[1], m[2])
	}
	if m[3] != "6" || m[4] != "0" {
		t.Errorf("ansible changed %s on the first run and %s on the re-run, want 6 and 0", m[3], m[4])
	}
	if m[5] != "yes" {
		t.Errorf("kk's and ansible's files were not identical:\n%s", md)
	}
}
