package connector

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/pkg/sftp"
)

// sftpClient returns the connection's shared sftp client, starting it on first use.
func (s *SSH) sftpClient() (*sftp.Client, error) {
	s.sftpMu.Lock()
	defer s.sftpMu.Unlock()
	if s.sftpConn == nil {
		// Concurrent writes keep up to 64 requests in flight (as OpenSSH's scp does) instead
		// of waiting for each 32 KiB write: a failed transfer may leave holes in the temp
		// file, which is removed and never renamed into place.
		c, err := sftp.NewClient(s.client, sftp.UseConcurrentWrites(true))
		if err != nil {
			// no file was touched yet: a connection that broke is worth a redial
			return nil, markTransient(context.Background(), s.errorf("start sftp: %w", err))
		}
		s.sftpConn = c
	}
	return s.sftpConn, nil
}

// Upload implements Connector as uploadMany of f alone: root writes a temp file next to the
// target over sftp and renames it into place; other users stage the file in their home
// directory and install it with one sudo command.
func (s *SSH) Upload(ctx context.Context, f File) (bool, error) {
	changed, err := s.uploadMany(ctx, []File{f})
	return changed[0], err
}

func (s *SSH) uploadAsRoot(ctx context.Context, f File) (err error) {
	sc, err := s.sftpClient()
	if err != nil {
		return err
	}
	if err := sc.MkdirAll(path.Dir(f.Path)); err != nil {
		return s.errorf("upload %s: mkdir: %w", f.Path, err)
	}
	tmp := stagedName(f.Path)
	if err := s.writeRemote(ctx, sc, tmp, f); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = sc.Remove(tmp)
		}
	}()
	if err := s.setOwnerMode(ctx, sc, tmp, f); err != nil {
		return err
	}
	if err := sc.PosixRename(tmp, f.Path); err != nil {
		return s.errorf("upload %s: rename into place: %w", f.Path, err)
	}
	return nil
}

// setOwnerMode gives the staged file tmp f's owner and mode: through sftp for root's own
// files (no command to start, which counts when a task uploads many files), else with
// chown and chmod, which resolve user and group names.
func (s *SSH) setOwnerMode(ctx context.Context, sc *sftp.Client, tmp string, f File) error {
	if f.owner() == "root:root" {
		// chown first: it clears setuid bits
		if err := sc.Chown(tmp, 0, 0); err != nil {
			return s.errorf("upload %s: chown: %w", f.Path, err)
		}
		if err := sc.Chmod(tmp, fs.FileMode(f.unixMode()&0o777)|f.Mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return s.errorf("upload %s: chmod: %w", f.Path, err)
		}
		return nil
	}
	r, err := s.Exec(ctx, chownChmodCmd(tmp, f), ExecOptions{})
	if err != nil {
		return err
	}
	if err := r.Err(); err != nil {
		return s.errorf("upload %s: %w", f.Path, err)
	}
	return nil
}

// stagedInHome is a new name for a file a user other than root stages in its home directory
// (/tmp when sftp cannot tell it) before sudo installs it.
func stagedInHome(sc *sftp.Client) string {
	home, err := sc.Getwd()
	if err != nil || home == "" {
		home = "/tmp"
	}
	return path.Join(home, ".kk-upload-"+randomHex(8))
}

// writeRemote creates p (mode 0600, must not exist) and streams f's content into
// it. On failure p is removed. ctx cancellation closes the file mid-transfer.
func (s *SSH) writeRemote(ctx context.Context, sc *sftp.Client, p string, f File) (err error) {
	w, err := sc.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return s.errorf("upload %s: create %s: %w", f.Path, p, err)
	}
	defer func() {
		if err != nil {
			_ = sc.Remove(p)
		}
	}()
	stop := context.AfterFunc(ctx, func() { w.Close() })
	defer stop()
	if err := w.Chmod(0o600); err != nil {
		w.Close()
		return s.errorf("upload %s: chmod %s: %w", f.Path, p, err)
	}
	err = f.copyContent(w)
	if cerr := w.Close(); err == nil && !errors.Is(cerr, os.ErrClosed) {
		err = cerr
	}
	if ctx.Err() != nil {
		return s.errorf("upload %s: %w", f.Path, ctx.Err())
	}
	if err != nil {
		return s.errorf("upload %s: write %s: %w", f.Path, p, err)
	}
	return nil
}

// Fetch implements Connector: sftp as root, `sudo cat` otherwise.
func (s *SSH) Fetch(ctx context.Context, p string) ([]byte, error) {
	if !s.isRoot() {
		r, err := s.Exec(ctx, "cat -- "+Quote(p), ExecOptions{Sudo: true})
		if err != nil {
			return nil, err
		}
		if err := r.Err(); err != nil {
			return nil, s.errorf("fetch %s: %w", p, err)
		}
		return []byte(r.Stdout), nil
	}
	sc, err := s.sftpClient()
	if err != nil {
		return nil, err
	}
	rf, err := sc.Open(p)
	if err != nil {
		return nil, s.errorf("fetch %s: %w", p, err)
	}
	defer rf.Close()
	stop := context.AfterFunc(ctx, func() { rf.Close() })
	defer stop()
	b, err := io.ReadAll(rf)
	if ctx.Err() != nil {
		return nil, s.errorf("fetch %s: %w", p, ctx.Err())
	}
	if err != nil {
		return nil, s.errorf("fetch %s: %w", p, err)
	}
	return b, nil
}

// uploadMany implements batchUploader: one privileged command reads the state of every
// file; those that differ are written over sftp a few at once (as root straight into
// place; another user stages them in its home directory, and one privileged command
// installs them all).
func (s *SSH) uploadMany(ctx context.Context, files []File) ([]bool, error) {
	changed := make([]bool, len(files))
	paths := make([]string, len(files))
	sums := make([]string, len(files))
	for i, f := range files {
		if err := f.validate(); err != nil {
			return changed, s.errorf("%w", err)
		}
		sum, err := f.localSum()
		if err != nil {
			return changed, s.errorf("%w", err)
		}
		paths[i], sums[i] = f.Path, sum
	}
	r, err := s.Exec(ctx, statesCmd(paths), ExecOptions{Sudo: true})
	if err != nil {
		return changed, err
	}
	if err := r.Err(); err != nil {
		return changed, s.errorf("read the state of %d files: %w", len(files), err)
	}
	var todo []int
	for i, st := range parseStates(r.Stdout, len(files)) {
		if !st.matches(files[i], sums[i]) {
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return changed, nil
	}
	if s.isRoot() {
		err = eachAtOnce(todo, func(i int) error { return s.uploadAsRoot(ctx, files[i]) })
	} else {
		err = s.stageAndInstall(ctx, files, todo)
	}
	if err != nil {
		return changed, err
	}
	for _, i := range todo {
		changed[i] = true
	}
	return changed, nil
}

// stageAndInstall writes files[todo] into the user's home directory over sftp and installs
// them with one privileged command; the staged copies are removed in any case.
func (s *SSH) stageAndInstall(ctx context.Context, files []File, todo []int) error {
	sc, err := s.sftpClient()
	if err != nil {
		return err
	}
	staged := make(map[int]string, len(todo))
	for _, i := range todo {
		staged[i] = stagedInHome(sc)
	}
	defer func() {
		for _, p := range staged {
			_ = sc.Remove(p)
		}
	}()
	if err := eachAtOnce(todo, func(i int) error { return s.writeRemote(ctx, sc, staged[i], files[i]) }); err != nil {
		return err
	}
	var script strings.Builder
	for _, i := range todo {
		script.WriteString(installCmd(staged[i], files[i]) + "\n")
	}
	r, err := s.Exec(ctx, script.String(), ExecOptions{Sudo: true})
	if err != nil {
		return err
	}
	if err := r.Err(); err != nil {
		return s.errorf("install %d uploaded files: %w", len(todo), err)
	}
	return nil
}
