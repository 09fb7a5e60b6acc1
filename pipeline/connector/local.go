package connector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Local is a Connector for the machine kk runs on. When kk is not root, Sudo
// commands use `sudo -n` (kk holds no local password): configure NOPASSWD or run
// kk as root.
type Local struct {
	name string
	root bool
}

var _ Connector = (*Local)(nil)

// NewLocal returns the connector for this machine.
func NewLocal() *Local { return &Local{name: "localhost", root: os.Geteuid() == 0} }

func (l *Local) errorf(format string, a ...any) error {
	return fmt.Errorf("host %s: "+format, append([]any{l.name}, a...)...)
}

// Exec implements Connector. On cancellation the command's whole process group is killed.
func (l *Local) Exec(ctx context.Context, cmd string, opts ExecOptions) (Result, error) {
	res := Result{Cmd: cmd}
	argv := []string{"/bin/sh", "-c", cmd}
	sudo := opts.Sudo && !l.root
	if sudo {
		argv = append([]string{"sudo", "-n", "--"}, argv...)
	}
	c := exec.CommandContext(ctx, argv[0], argv[1:]...)
	killGroup(c)
	c.WaitDelay = 2 * time.Second
	var o, e bytes.Buffer
	c.Stdout, c.Stderr = &o, &e
	if opts.Stdin != nil {
		c.Stdin = bytes.NewReader(opts.Stdin)
	}
	err := c.Run()
	res.Stdout, res.Stderr = o.String(), e.String()
	if ctx.Err() != nil {
		return res, l.errorf("%w", ctx.Err())
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.ExitCode = exitCode(exit)
	default:
		return res, l.errorf("run command: %w", err)
	}
	if sudo && res.ExitCode == 1 && strings.Contains(res.Stderr, "a password is required") {
		return res, l.errorf("sudo needs a password: kk runs `sudo -n` locally; allow NOPASSWD or run kk as root")
	}
	return res, nil
}

// Upload implements Connector with the same skip rule as SSH: as root, a temp file
// next to the target renamed into place; otherwise a private temp file installed
// by one sudo command.
func (l *Local) Upload(ctx context.Context, f File) (bool, error) {
	if err := f.validate(); err != nil {
		return false, l.errorf("%w", err)
	}
	sum, err := f.localSum()
	if err != nil {
		return false, l.errorf("%w", err)
	}
	same, err := upToDate(ctx, l, f, sum)
	if err != nil || same {
		return false, err
	}
	if l.root {
		err = l.install(ctx, f)
	} else {
		err = l.installWithSudo(ctx, f)
	}
	return err == nil, err
}

func (l *Local) install(ctx context.Context, f File) (err error) {
	dir := filepath.Dir(f.Path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return l.errorf("upload %s: %w", f.Path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.Path)+".kk-tmp-*")
	if err != nil {
		return l.errorf("upload %s: %w", f.Path, err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	err = f.copyContent(tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return l.errorf("upload %s: write: %w", f.Path, err)
	}
	r, err := l.Exec(ctx, chownChmodCmd(tmp.Name(), f), ExecOptions{})
	if err != nil {
		return err
	}
	if err := r.Err(); err != nil {
		return l.errorf("upload %s: %w", f.Path, err)
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return l.errorf("upload %s: %w", f.Path, err)
	}
	return nil
}

func (l *Local) installWithSudo(ctx context.Context, f File) error {
	tmp, err := os.CreateTemp("", "kk-upload-*")
	if err != nil {
		return l.errorf("upload %s: %w", f.Path, err)
	}
	defer os.Remove(tmp.Name())
	err = f.copyContent(tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return l.errorf("upload %s: write: %w", f.Path, err)
	}
	r, err := l.Exec(ctx, installCmd(tmp.Name(), f), ExecOptions{Sudo: true})
	if err != nil {
		return err
	}
	if err := r.Err(); err != nil {
		return l.errorf("upload %s: %w", f.Path, err)
	}
	return nil
}

// Fetch implements Connector.
func (l *Local) Fetch(ctx context.Context, p string) ([]byte, error) {
	if l.root {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, l.errorf("fetch: %w", err)
		}
		return b, nil
	}
	r, err := l.Exec(ctx, "cat -- "+Quote(p), ExecOptions{Sudo: true})
	if err != nil {
		return nil, err
	}
	if err := r.Err(); err != nil {
		return nil, l.errorf("fetch %s: %w", p, err)
	}
	return []byte(r.Stdout), nil
}

// Close implements Connector; there is nothing to release.
func (l *Local) Close() error { return nil }
