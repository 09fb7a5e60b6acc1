package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/kk-project/kk/e2e/images"

	"github.com/kk-project/kk/artifacts/download"
	"github.com/kk-project/kk/e2e/upstream"
)

// exportSample is one `kk artifact export`.
type exportSample struct {
	wall       time.Duration
	downloaded string // as kk reports it, e.g. "512.3 MiB"
	reused     string
	size       int64  // bytes of the bundle
	sha256     string // of the bundle
	err        error
}

// exportResults are all export runs.
type exportResults struct {
	cold, warm []exportSample
}

var downloadedRe = regexp.MustCompile(`downloaded ([0-9.]+ [KMGT]?i?B), reused ([0-9.]+ [KMGT]?i?B)`)

// runExport runs kk artifact export once and verifies it.
func runExport(ctx context.Context, c config, kk, man string, up upstream.Served, workdir, out string) (s exportSample) {
	reg := "http://" + up.Registry
	args := []string{"artifact", "export", "-m", man, "-o", out, "--workdir", workdir,
		"--mirror", up.Mirror, "--registry-mirror", images.RegistryMirrorFlag(reg)}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, kk, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.Dir = filepath.Dir(out)
	start := time.Now()
	err := cmd.Run()
	s.wall = time.Since(start)
	if err != nil {
		s.err = fmt.Errorf("kk %s: %w\n%s", strings.Join(args, " "), err, tail(buf.String(), 2000))
		return s
	}
	m := downloadedRe.FindStringSubmatch(buf.String())
	if m == nil {
		s.err = fmt.Errorf("kk artifact export: no \"downloaded X, reused Y\" line in its output:\n%s", tail(buf.String(), 2000))
		return s
	}
	s.downloaded, s.reused = m[1], m[2]
	st, err := os.Stat(out)
	if err != nil {
		s.err = fmt.Errorf("kk artifact export exited 0 but wrote no bundle: %w", err)
		return s
	}
	s.size = st.Size()
	if s.sha256, _, err = download.FileSHA256(context.Background(), out); err != nil {
		s.err = err
	}
	return s
}

// measureExport exports the bundle c.runs times with an empty workdir (cold) and c.runs
// times with a workdir that already holds everything (warm). It returns the bundle of the
// last warm export, the one that is pushed.
func measureExport(ctx context.Context, c config, kk, man string, up upstream.Served, work string, r *exportResults, log io.Writer) (string, error) {
	wd := filepath.Join(work, "workdir")
	for i := range c.runs {
		if err := os.RemoveAll(wd); err != nil {
			return "", err
		}
		if err := os.MkdirAll(wd, 0o755); err != nil {
			return "", err
		}
		out := filepath.Join(work, "bundle-cold.tar.gz")
		os.Remove(out)
		logf(log, "export %d/%d, cold (empty workdir)", i+1, c.runs)
		s := runExport(ctx, c, kk, man, up, wd, out)
		if s.err == nil && s.downloaded == "0 B" {
			s.err = fmt.Errorf("cold export: downloaded 0 B from an empty workdir")
		}
		logf(log, "  %s, downloaded %s, bundle %d B, err %v", secs(s.wall), s.downloaded, s.size, s.err)
		r.cold = append(r.cold, s)
	}
	bundle := filepath.Join(work, "bundle.tar.gz")
	for i := range c.runs {
		os.Remove(bundle)
		logf(log, "export %d/%d, warm (same workdir)", i+1, c.runs)
		s := runExport(ctx, c, kk, man, up, wd, bundle)
		if s.err == nil && s.downloaded != "0 B" {
			s.err = fmt.Errorf("warm export: want \"downloaded 0 B\", kk reported downloaded %s", s.downloaded)
		}
		logf(log, "  %s, downloaded %s, bundle %d B, err %v", secs(s.wall), s.downloaded, s.size, s.err)
		r.warm = append(r.warm, s)
	}
	if last := r.warm[len(r.warm)-1]; last.err != nil {
		return "", fmt.Errorf("no bundle to push: %w", last.err)
	}
	// The caches are not needed any more; the pushes should not compete with them for disk.
	_ = os.RemoveAll(wd)
	_ = os.Remove(filepath.Join(work, "bundle-cold.tar.gz"))
	return bundle, nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
