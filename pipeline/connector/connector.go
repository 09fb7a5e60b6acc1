// Package connector reaches a host: run commands, copy files in, read files back.
// Two implementations: SSH (x/crypto/ssh + pkg/sftp) and Local (the machine kk runs on).
package connector

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"strings"
)

// Connector is the one way modules and the engine touch a host.
// Implementations are safe for concurrent use by many tasks.
type Connector interface {
	// Exec runs cmd with /bin/sh -c on the host. A non-zero exit is NOT an error:
	// it is reported in Result.ExitCode; err is for transport failures and cancellation.
	Exec(ctx context.Context, cmd string, opts ExecOptions) (Result, error)
	// Upload writes data to path atomically (temp file + rename in the same directory),
	// sets mode and owner, and skips the transfer when the remote file already has the
	// same sha256, mode and owner. It reports whether the host changed.
	Upload(ctx context.Context, f File) (changed bool, err error)
	// Fetch reads a remote file (with privilege escalation when the connector is not root).
	Fetch(ctx context.Context, path string) ([]byte, error)
	// Close releases the connection.
	Close() error
}

// ExecOptions tune one command.
type ExecOptions struct {
	// Sudo runs the command as root: directly when logged in as root, else via
	// `sudo -S -p ''` with the password fed on stdin (never on a command line).
	Sudo bool
	// Stdin is passed to the command (after the sudo password, if one is needed).
	Stdin []byte
}

// Result of one command.
type Result struct {
	Cmd      string
	Stdout   string
	Stderr   string
	ExitCode int
}

// Err returns nil for exit code 0, else a *CommandError carrying the command, exit code and stderr tail.
func (r Result) Err() error {
	if r.ExitCode == 0 {
		return nil
	}
	return &CommandError{Cmd: r.Cmd, ExitCode: r.ExitCode, Stderr: tail(r.Stderr, 2000), Stdout: tail(r.Stdout, 500)}
}

// CommandError is a command that ran and failed.
type CommandError struct {
	Cmd      string
	ExitCode int
	Stderr   string
	Stdout   string
}

func (e *CommandError) Error() string {
	out := strings.TrimSpace(e.Stderr)
	if out == "" {
		out = strings.TrimSpace(e.Stdout)
	}
	return fmt.Sprintf("command %q exited %d: %s", e.Cmd, e.ExitCode, out)
}

// File is one file to upload.
type File struct {
	Path      string      // absolute path on the host
	Data      []byte      // content (use LocalPath for large files)
	LocalPath string      // when set, content is streamed from this local file instead of Data
	Mode      fs.FileMode // permission bits, e.g. 0644
	Owner     string      // "user:group" or "" for root:root (when privileged) / login user
}

// Quote returns s quoted for a POSIX shell.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("@%+=:,./-_", c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// Cmd builds a shell command line from an argument list, quoting each argument once.
func Cmd(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// FileTest is a shell test that f.Path holds exactly f.Data with mode f.Mode.
func FileTest(f File) string {
	sum := sha256.Sum256(f.Data)
	return fmt.Sprintf(`[ -f %[1]s ] && [ "$(sha256sum < %[1]s | cut -d' ' -f1)" = %[2]s ] && [ "$(stat -c %%a %[1]s)" = %[3]o ]`,
		Quote(f.Path), hex.EncodeToString(sum[:]), f.Mode.Perm())
}
