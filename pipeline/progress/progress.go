// Package progress is the terminal view of a run: one overall progress bar (progressbar/v3)
// on a terminal, or one line per finished task elsewhere (CI logs), plus failures as they happen.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/kk-project/kk/pipeline"
)

// View is an Observer printing to w.
type View struct {
	w       io.Writer
	tty     bool
	verbose bool

	mu  sync.Mutex
	bar *progressbar.ProgressBar
}

// New returns a view on w. Bars are drawn only when w is a terminal; verbose also prints
// every command (--debug).
func New(w io.Writer, verbose bool) *View {
	v := &View{w: w, verbose: verbose}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		v.tty = true
	}
	return v
}

// Observe implements pipeline.Observer.
func (v *View) Observe(e pipeline.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch e.Kind {
	case pipeline.EventRunStart:
		if v.tty {
			v.bar = progressbar.NewOptions(e.Total,
				progressbar.OptionSetWriter(v.w),
				progressbar.OptionSetDescription(e.Run),
				progressbar.OptionShowCount(),
				progressbar.OptionSetElapsedTime(true),
				progressbar.OptionSetPredictTime(false),
				progressbar.OptionClearOnFinish(),
				progressbar.OptionThrottle(100*time.Millisecond))
		} else {
			fmt.Fprintf(v.w, "%s: %d tasks×hosts\n", e.Run, e.Total)
		}
	case pipeline.EventTaskEnd:
		r := e.Result
		if v.bar != nil {
			_ = v.bar.Add(1)
		}
		line := ""
		switch {
		case r.Status == pipeline.StatusFailed:
			line = fmt.Sprintf("FAILED  %-28s %s: %v", r.Task, r.Host, r.Err)
		case !v.tty || v.verbose:
			line = fmt.Sprintf("%-7s %-28s %s (%s)", r.Status, r.Task, r.Host, r.Duration.Round(time.Millisecond))
			if r.Message != "" {
				line += " " + r.Message
			}
		}
		v.println(line)
	case pipeline.EventCommand:
		if v.verbose {
			v.println(fmt.Sprintf("        %s $ %s  -> exit %d", e.Host, e.Cmd, e.ExitCode))
		}
	case pipeline.EventLog:
		switch {
		case e.Warn:
			v.println(fmt.Sprintf("warning %-28s %s: %s", e.Task, e.Host, e.Message))
		case v.verbose:
			v.println(fmt.Sprintf("        %s [%s] %s", e.Host, e.Task, e.Message))
		}
	case pipeline.EventRunEnd:
		if v.bar != nil {
			_ = v.bar.Finish()
			v.bar = nil
		}
	}
}

func (v *View) println(line string) {
	if line == "" {
		return
	}
	if v.bar != nil {
		_ = v.bar.Clear()
	}
	fmt.Fprintln(v.w, line)
	if v.bar != nil {
		_ = v.bar.RenderBlank()
	}
}

// HumanBytes formats a byte count for people: 512 B, 1.5 KiB, 315.5 MiB.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
