package testbed

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
)

// needCommands fails with a clear message naming the first missing command.
func needCommands(names ...string) error {
	pkg := map[string]string{
		"ip": "iproute2", "systemd-nspawn": "systemd-container", "debootstrap": "debootstrap",
		"chroot": "coreutils", "sshd": "openssh-server", "/usr/sbin/sshd": "openssh-server",
	}
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			return fmt.Errorf("required command %q not found in PATH (Debian package %s): %w", n, pkg[n], err)
		}
	}
	return nil
}

func needRoot() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("must run as root (euid %d): network namespaces, overlay mounts and systemd-nspawn need it", os.Geteuid())
	}
	return nil
}

// run executes a command and returns an error carrying its output.
func run(ctx context.Context, stdin []byte, name string, args ...string) error {
	_, err := output(ctx, stdin, name, args...)
	return err
}

func output(ctx context.Context, stdin []byte, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(tail(out.String(), 2000)))
	}
	return out.String(), nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// fileTail returns up to the last n bytes of a file (for console logs in errors).
func fileTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := st.Size() - n
	if off < 0 {
		off = 0
	}
	b := make([]byte, st.Size()-off)
	_, _ = f.ReadAt(b, off)
	return string(b)
}

// lockFile takes an exclusive flock on path (created if needed), honouring ctx while waiting.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("flock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// newKey returns an ed25519 key as an OpenSSH private key PEM and an authorized_keys line.
func newKey(comment string) (priv []byte, pub string, err error) {
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	blk, err := ssh.MarshalPrivateKey(sk, comment)
	if err != nil {
		return nil, "", err
	}
	sp, err := ssh.NewPublicKey(pk)
	if err != nil {
		return nil, "", err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))
	if comment != "" {
		line += " " + comment
	}
	return pem.EncodeToMemory(blk), line, nil
}

// writeKeyPair writes path (0600) and path.pub unless path exists; returns the public line.
func writeKeyPair(path, comment string) (string, error) {
	if b, err := os.ReadFile(path + ".pub"); err == nil {
		if _, err := os.Stat(path); err == nil {
			return strings.TrimSpace(string(b)), nil
		}
	}
	priv, pub, err := newKey(comment)
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(path, priv, 0o600); err != nil {
		return "", err
	}
	if err := writeFileAtomic(path+".pub", []byte(pub+"\n"), 0o644); err != nil {
		return "", err
	}
	return pub, nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := fmt.Sprintf("%s.tmp%d", path, os.Getpid())
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

const pwAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

func randomPassword(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = pwAlphabet[int(b[i])%len(pwAlphabet)]
	}
	return string(b), nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", b), nil
}

// ---- processes ----

// procState returns the state letter of pid ('R', 'S', 'Z', ...) or 0 when it does not exist.
func procState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	s := procState(pid)
	return s != 0 && s != 'Z' && s != 'X'
}

func cmdline(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return string(bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '}))
}

// readPid reads a pid file and returns the pid if that process is alive and its command line
// contains want (guards against pid reuse).
func readPid(path, want string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0
	}
	if !alive(pid) || !strings.Contains(cmdline(pid), want) {
		return 0
	}
	return pid
}

// procsMentioning lists live processes whose command line contains s.
func procsMentioning(s string) []int {
	ents, _ := os.ReadDir("/proc")
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if alive(pid) && strings.Contains(cmdline(pid), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killProcsUnder kills the processes whose command line names dir or whose root is inside it
// (a build chrooted there).
func killProcsUnder(dir string) {
	dir = filepath.Clean(dir)
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || !alive(pid) {
			continue
		}
		root, _ := os.Readlink("/proc/" + e.Name() + "/root")
		if root == dir || strings.HasPrefix(root, dir+"/") || mentionsPath(cmdline(pid), dir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			pids = append(pids, pid)
		}
	}
	waitGone(context.Background(), 5*time.Second, pids...)
}

// mentionsPath reports whether cmd names dir or something below it ("/x/n1" is not in "/x/n10").
func mentionsPath(cmd, dir string) bool {
	for i := 0; ; {
		j := strings.Index(cmd[i:], dir)
		if j < 0 {
			return false
		}
		end := i + j + len(dir)
		if end == len(cmd) || cmd[end] == '/' || cmd[end] == ' ' {
			return true
		}
		i = end
	}
}

// waitGone waits until none of pids is alive or ctx/timeout expires; reports whether all are gone.
func waitGone(ctx context.Context, timeout time.Duration, pids ...int) bool {
	deadline := time.Now().Add(timeout)
	for {
		left := false
		for _, p := range pids {
			if p > 0 && alive(p) {
				left = true
			}
		}
		if !left {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ---- mounts ----

type mountEntry struct {
	point  string
	fstype string
	source string
	root   string
	super  string
}

// unescapeMount undoes the octal escapes of /proc/*/mountinfo (\040 for space...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func parseMountinfo(data []byte) []mountEntry {
	var out []mountEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if len(f) < 5 || len(g) < 2 {
			continue
		}
		e := mountEntry{root: unescapeMount(f[3]), point: unescapeMount(f[4]), fstype: g[0], source: g[1]}
		if len(g) > 2 {
			e.super = g[2]
		}
		out = append(out, e)
	}
	return out
}

func mounts() []mountEntry {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	return parseMountinfo(b)
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	dir = filepath.Clean(dir)
	var pts []string
	seen := map[string]bool{}
	for _, m := range mounts() {
		if (m.point == dir || strings.HasPrefix(m.point, dir+"/")) && !seen[m.point] {
			seen[m.point] = true
			pts = append(pts, m.point)
		}
	}
	sort.Slice(pts, func(i, j int) bool { return len(pts[i]) > len(pts[j]) })
	return pts
}

// unmountAll unmounts everything at or below dir (stacked mounts included).
func unmountAll(dir string) error {
	for round := 0; round < 20; round++ {
		pts := mountsUnder(dir)
		if len(pts) == 0 {
			return nil
		}
		for _, p := range pts {
			if err := syscall.Unmount(p, 0); err != nil {
				if err == syscall.EBUSY && round >= 5 {
					_ = syscall.Unmount(p, syscall.MNT_DETACH)
				}
			}
		}
		if round > 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if pts := mountsUnder(dir); len(pts) > 0 {
		return fmt.Errorf("still mounted: %s", strings.Join(pts, ", "))
	}
	return nil
}

// ---- cgroups ----

// cgroupHierarchy is one mounted cgroup hierarchy and this process's cgroup in it.
type cgroupHierarchy struct {
	mount string // e.g. /sys/fs/cgroup/memory
	own   string // this process's cgroup directory in it
}

// ownCgroups maps every mounted cgroup hierarchy to this process's cgroup directory in it.
func ownCgroups() ([]cgroupHierarchy, error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	ms := mounts()
	var out []cgroupHierarchy
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		ctrls, path := parts[1], parts[2]
		for _, m := range ms {
			var match bool
			switch {
			case ctrls == "" && m.fstype == "cgroup2":
				match = true
			case ctrls != "" && m.fstype == "cgroup":
				opts := map[string]bool{}
				for _, o := range strings.Split(m.super, ",") {
					opts[o] = true
				}
				match = true
				for _, c := range strings.Split(ctrls, ",") {
					if !opts[c] {
						match = false
					}
				}
			}
			if !match || seen[m.point] || !strings.HasPrefix(m.point, "/sys/fs/cgroup") {
				continue
			}
			rel := path
			if m.root != "/" {
				if !strings.HasPrefix(path, m.root) {
					continue
				}
				rel = strings.TrimPrefix(path, m.root)
			}
			seen[m.point] = true
			out = append(out, cgroupHierarchy{mount: m.point, own: filepath.Join(m.point, rel)})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no cgroup hierarchies mounted under /sys/fs/cgroup")
	}
	return out, nil
}

// findCgroups returns cgroup directories (in every hierarchy, up to depth 4) whose base name
// satisfies match; the directories below a match are not searched.
func findCgroups(match func(string) bool) []string {
	var out []string
	hs, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, h := range hs {
		var walk func(dir string, depth int)
		walk = func(dir string, depth int) {
			ents, err := os.ReadDir(dir)
			if err != nil {
				return
			}
			for _, e := range ents {
				if !e.IsDir() {
					continue
				}
				p := filepath.Join(dir, e.Name())
				if match(e.Name()) {
					out = append(out, p)
					continue
				}
				if depth < 4 {
					walk(p, depth+1)
				}
			}
		}
		walk(h, 1)
	}
	return out
}

// cgroupProcs returns the pids in dir and in every cgroup below it.
func cgroupProcs(dir string) []int {
	var pids []int
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// removeCgroup kills whatever still runs in dir (and below), then removes the tree depth-first.
func removeCgroup(ctx context.Context, dir string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		for _, p := range cgroupProcs(dir) {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		var dirs []string
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		var lastErr error
		for i := len(dirs) - 1; i >= 0; i-- { // children after parents in walk order: reverse is depth-first
			if err := syscall.Rmdir(dirs[i]); err != nil && err != syscall.ENOENT {
				lastErr = fmt.Errorf("rmdir %s: %w", dirs[i], err)
			}
		}
		if lastErr == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return lastErr
		}
		time.Sleep(100 * time.Millisecond)
	}
}
