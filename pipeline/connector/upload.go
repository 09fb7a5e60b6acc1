package connector

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// This file holds the upload logic shared by SSH and Local: the local checksum,
// the "is the host already up to date" probe, and the shell snippets that put a
// staged file into place. Both connectors go through these helpers, so the
// skip-if-identical rule is the same everywhere.

// defaultMode is used when File.Mode is zero.
const defaultMode fs.FileMode = 0o644

// open returns the file's content as a stream.
func (f File) open() (io.ReadCloser, error) {
	if f.LocalPath != "" {
		return os.Open(f.LocalPath)
	}
	return io.NopCloser(bytes.NewReader(f.Data)), nil
}

// copyContent streams the file's content into w through a buffer.
func (f File) copyContent(w io.Writer) error {
	r, err := f.open()
	if err != nil {
		return err
	}
	defer r.Close()
	bw := bufio.NewWriterSize(w, 256<<10)
	if _, err := io.Copy(bw, bufio.NewReaderSize(r, 256<<10)); err != nil {
		return err
	}
	return bw.Flush()
}

// unixMode returns the permission bits as chmod understands them (e.g. 0644, 04755).
func (f File) unixMode() uint32 {
	m := f.Mode
	if m == 0 {
		m = defaultMode
	}
	u := uint32(m & 0o7777)
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// modeArg is the mode as an octal chmod argument ("644", "4755").
func (f File) modeArg() string { return strconv.FormatUint(uint64(f.unixMode()), 8) }

// owner is the "user:group" to chown to. Uploads always write as root (directly or
// through sudo), so an empty Owner means root:root.
func (f File) owner() string {
	if f.Owner == "" {
		return "root:root"
	}
	return f.Owner
}

func (f File) validate() error {
	if !path.IsAbs(f.Path) || path.Clean(f.Path) == "/" {
		return fmt.Errorf("upload: path %q must be an absolute file path", f.Path)
	}
	return nil
}

// localSum returns the hex sha256 of the file's content.
func (f File) localSum() (string, error) {
	h := sha256.New()
	if err := f.copyContent(h); err != nil {
		return "", fmt.Errorf("upload %s: read local content: %w", f.Path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// stateCmd prints "<mode> <user>:<group> <uid>:<gid>" then the sha256sum line of p.
func stateCmd(p string) string {
	return "stat -c '%a %U:%G %u:%g' -- " + Quote(p) + " && sha256sum -- " + Quote(p)
}

// fileState is what stateCmd reports about a file on the host.
type fileState struct {
	mode   string // octal, as stat %a prints it
	names  string // user:group
	ids    string // uid:gid
	sha256 string
}

func parseState(out string) (fileState, bool) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		return fileState{}, false
	}
	meta := strings.Fields(lines[0])
	sum := strings.Fields(lines[1])
	if len(meta) != 3 || len(sum) < 1 {
		return fileState{}, false
	}
	return fileState{mode: meta[0], names: meta[1], ids: meta[2], sha256: strings.TrimPrefix(sum[0], `\`)}, true
}

// ownerMatches reports whether want ("user", "user:group", names or ids) describes st.
func ownerMatches(want string, st fileState) bool {
	wu, wg, hasGroup := strings.Cut(want, ":")
	nu, ng, _ := strings.Cut(st.names, ":")
	iu, ig, _ := strings.Cut(st.ids, ":")
	if wu != "" && wu != nu && wu != iu {
		return false
	}
	if hasGroup && wg != "" && wg != ng && wg != ig {
		return false
	}
	return true
}

// upToDate reports whether the host already has f with the same content, mode and
// owner. It runs one privileged command through c (Local's; SSH tests many files in one:
// statesCmd). sum is the local sha256.
func upToDate(ctx context.Context, c Connector, f File, sum string) (bool, error) {
	r, err := c.Exec(ctx, stateCmd(f.Path), ExecOptions{Sudo: true})
	if err != nil {
		return false, err
	}
	if r.ExitCode != 0 {
		return false, nil // missing or unreadable: write it
	}
	st, ok := parseState(r.Stdout)
	return ok && st.matches(f, sum), nil
}

// matches reports whether the file st describes is f, whose local sha256 is sum: same
// content, mode and owner (a file with no state, missing, never matches).
func (st fileState) matches(f File, sum string) bool {
	return st.sha256 != "" && st.sha256 == sum && st.mode == f.modeArg() && ownerMatches(f.owner(), st)
}

// stagedName returns "<dir>/.<base>.kk-tmp-<random>": a temp name next to the target,
// so the final rename stays on one file system and is atomic.
func stagedName(target string) string {
	dir, base := path.Split(target)
	return dir + "." + base + ".kk-tmp-" + randomHex(6)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// chownChmodCmd sets owner and mode of tmp (chown first: it clears setuid bits).
func chownChmodCmd(tmp string, f File) string {
	return "chown -- " + Quote(f.owner()) + " " + Quote(tmp) + " && chmod -- " + f.modeArg() + " " + Quote(tmp)
}

// installCmd is the privileged half of an upload by a non-root user: src is a file
// the user wrote; it is copied next to the target, given its owner and mode, then
// renamed over the target. The staged copy is removed on failure. The caller
// removes src.
func installCmd(src string, f File) string {
	tmp := stagedName(f.Path)
	return "mkdir -p -- " + Quote(path.Dir(f.Path)) +
		" && (umask 077 && cp -- " + Quote(src) + " " + Quote(tmp) + ")" +
		" && " + chownChmodCmd(tmp, f) +
		" && mv -f -- " + Quote(tmp) + " " + Quote(f.Path) +
		" || { rc=$?; rm -f -- " + Quote(tmp) + "; echo " + Quote("could not write "+f.Path) + " >&2; exit $rc; }"
}

// statesCmd prints, for each of paths, a line "== <index>" and then what stateCmd prints of
// it (nothing for a file that is missing or unreadable).
func statesCmd(paths []string) string {
	var sb strings.Builder
	for i, p := range paths {
		fmt.Fprintf(&sb, "echo '== %d'; { %s; } 2>/dev/null\n", i, stateCmd(p))
	}
	sb.WriteString("true")
	return sb.String()
}

// parseStates reads statesCmd's output for n paths; a path it does not describe has no
// state (ok false).
func parseStates(out string, n int) []fileState {
	states := make([]fileState, n)
	cur, lines := -1, []string(nil)
	flush := func() {
		if cur >= 0 && cur < n {
			if st, ok := parseState(strings.Join(lines, "\n")); ok {
				states[cur] = st
			}
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, "== "); ok {
			if i, err := strconv.Atoi(rest); err == nil {
				flush()
				cur, lines = i, nil
				continue
			}
		}
		lines = append(lines, l)
	}
	flush()
	return states
}

// batchUploader is a connector that writes many files in fewer round trips than one
// Upload each.
type batchUploader interface {
	uploadMany(ctx context.Context, files []File) ([]bool, error)
}

// uploadsAtOnce bounds the files UploadAll writes at once to one host: each waits on round
// trips (sftp's open, write, chmod and rename), which overlap; the connection bounds its
// sessions below sshd's limit in any case.
const uploadsAtOnce = 4

// eachAtOnce runs do for each of idx, uploadsAtOnce at a time; after a failure no further
// one starts, those under way finish, and the first failure is returned.
func eachAtOnce(idx []int, do func(i int) error) error {
	var failed atomic.Bool
	var g errgroup.Group
	g.SetLimit(uploadsAtOnce)
	for _, i := range idx {
		g.Go(func() error {
			if failed.Load() {
				return nil
			}
			if err := do(i); err != nil {
				failed.Store(true)
				return err
			}
			return nil
		})
	}
	return g.Wait()
}

// batchSize bounds the files one privileged command of UploadAll tests or installs (and so
// its length).
const batchSize = 48

// UploadAll writes files to c's host as Upload does, each skipped when identical, and
// reports which it wrote. Over SSH one privileged command tells which files are in place
// and, for a user other than root, one more installs those written: two commands for up
// to batchSize files rather than two for each (each one a sudo, and a round trip). After a
// failure no further file is written, those under way finish, and the first failure is
// returned, naming its file.
func UploadAll(ctx context.Context, c Connector, files []File) ([]bool, error) {
	changed := make([]bool, len(files))
	b, ok := c.(batchUploader)
	if !ok {
		all := make([]int, len(files))
		for i := range all {
			all[i] = i
		}
		err := eachAtOnce(all, func(i int) error {
			ch, err := c.Upload(ctx, files[i])
			if err != nil {
				return fmt.Errorf("write %s: %w", files[i].Path, err)
			}
			changed[i] = ch
			return nil
		})
		return changed, err
	}
	for start := 0; start < len(files); start += batchSize {
		end := min(start+batchSize, len(files))
		ch, err := b.uploadMany(ctx, files[start:end])
		copy(changed[start:], ch)
		if err != nil {
			return changed, err
		}
	}
	return changed, nil
}
