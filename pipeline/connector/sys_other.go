//go:build !unix

package connector

import (
	"os"
	"os/exec"
	"sync"
)

// knownHostsMu stands in for flock where the platform has none. It is global
// mutable state, unavoidable here: it must be shared by every dial in the process.
var knownHostsMu sync.Mutex

func lockFile(*os.File) (func(), error) {
	knownHostsMu.Lock()
	return knownHostsMu.Unlock, nil
}

func killGroup(*exec.Cmd) {}

func exitCode(e *exec.ExitError) int { return e.ExitCode() }
