package testbed

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// basePackages is what the shared base rootfs holds besides debootstrap's minbase.
var basePackages = []string{
	"systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "iproute2", "iptables", "procps",
	"kmod", "ca-certificates", "netbase", "python3", "iputils-ping", "less",
	// what a Kubernetes node needs (kk init os checks them; the machines are offline, so they
	// must be in the base rather than installed by kk's package step)
	"conntrack", "socat", "ebtables", "ethtool", "ipset",
	// Debian's dockerd (the e2e's docker static release, see e2e/mirror/docker.go) is linked
	// against libdevmapper, as on a Debian host running docker.io
	"libdevmapper1.02.1",
}

const (
	baseSuite     = "bookworm"
	baseRecipe    = "2" // bump when postProcessBase changes: a new base is built beside the old one
	defaultMirror = "http://deb.debian.org/debian"
	baseStamp     = "etc/kk-testbed-base"
)

// cgInit is PID 1 of every machine: nspawn mounts the cgroup v1 controllers read-only, so they are
// remounted writable before systemd starts (so that systemd, containerd and kubelet can use them).
const cgInit = `#!/bin/sh
for c in /sys/fs/cgroup/*; do mountpoint -q "$c" && mount -o remount,bind,rw "$c"; done
exec /lib/systemd/systemd "$@"
`

const sshdDropIn = `# kk testbed
UseDNS no
MaxSessions 100
MaxStartups 100:30:200
`

// baseID names a base by what goes into it.
func baseID() string {
	h := sha256.Sum256([]byte(baseSuite + "|" + strings.Join(basePackages, ",") + "|" + baseRecipe))
	return hex.EncodeToString(h[:])[:12]
}

// parseDebSources returns the first URI of a deb822 stanza serving the Debian suite (not -security).
func parseDebSources(data string) string {
	for _, stanza := range strings.Split(data, "\n\n") {
		var uris, suites []string
		isDeb := true
		sc := bufio.NewScanner(strings.NewReader(stanza))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "uris":
				uris = strings.Fields(v)
			case "suites":
				suites = strings.Fields(v)
			case "types":
				isDeb = false
				for _, t := range strings.Fields(v) {
					if t == "deb" {
						isDeb = true
					}
				}
			}
		}
		if !isDeb || len(uris) == 0 {
			continue
		}
		for _, s := range suites {
			if s == baseSuite || s == baseSuite+"-updates" {
				return uris[0]
			}
		}
	}
	return ""
}

// aptMirror is the Debian mirror this machine's apt uses.
func aptMirror() string {
	if data, err := os.ReadFile("/etc/apt/sources.list.d/debian.sources"); err == nil {
		if u := parseDebSources(string(data)); u != "" {
			return u
		}
	}
	if data, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) >= 3 && f[0] == "deb" && f[2] == baseSuite && !strings.HasPrefix(f[1], "[") {
				return f[1]
			}
		}
	}
	return defaultMirror
}

// ensureBase returns the shared base rootfs, building it once under an exclusive flock.
func (b *bed) ensureBase(ctx context.Context) (string, error) {
	rootfs := filepath.Join(b.baseDir, "rootfs-"+baseID())
	if _, err := os.Stat(filepath.Join(rootfs, baseStamp)); err == nil {
		return rootfs, nil
	}
	if err := os.MkdirAll(filepath.Join(b.baseDir, "cache"), 0o755); err != nil {
		return "", b.errf("base rootfs: create dir", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(b.baseDir, "lock"))
	if err != nil {
		return "", b.errf("base rootfs: lock", err)
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(rootfs, baseStamp)); err == nil {
		return rootfs, nil // built by someone else while we waited
	}
	if err := needCommands("debootstrap", "chroot"); err != nil {
		return "", b.errf("base rootfs", err)
	}
	// leftovers of killed builds: we hold the lock, so nobody is building them
	if old, _ := filepath.Glob(filepath.Join(b.baseDir, "tmp-*")); len(old) > 0 {
		for _, d := range old {
			if err := removeTree(d); err != nil {
				return "", b.errf("base rootfs: remove stale build", err)
			}
		}
	}
	if _, err := os.Stat(rootfs); err == nil { // no stamp: incomplete
		if err := removeTree(rootfs); err != nil {
			return "", b.errf("base rootfs: remove incomplete base", err)
		}
	}
	tmp := filepath.Join(b.baseDir, fmt.Sprintf("tmp-%s-%d", baseID(), os.Getpid()))
	mirror := aptMirror()
	logPath := filepath.Join(b.baseDir, "debootstrap.log")
	slog.Info("testbed: building base rootfs (once)", "bed", b.name, "dir", rootfs, "mirror", mirror, "log", logPath)
	start := time.Now()
	if err := b.debootstrap(ctx, tmp, mirror, logPath); err != nil {
		_ = removeTree(tmp)
		return "", err
	}
	if err := postProcessBase(ctx, tmp); err != nil {
		_ = removeTree(tmp)
		return "", b.errf("base rootfs: customize", err)
	}
	if err := unmountAll(tmp); err != nil {
		return "", b.errf("base rootfs: unmount build mounts", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, baseStamp), []byte(baseID()+" "+strings.Join(basePackages, ",")+"\n"), 0o644); err != nil {
		return "", b.errf("base rootfs: stamp", err)
	}
	if err := os.Rename(tmp, rootfs); err != nil {
		_ = removeTree(tmp)
		return "", b.errf("base rootfs: rename into place", err)
	}
	slog.Info("testbed: base rootfs built", "bed", b.name, "took", time.Since(start).Round(time.Second))
	return rootfs, nil
}

func (b *bed) debootstrap(ctx context.Context, target, mirror, logPath string) error {
	logf, err := os.Create(logPath)
	if err != nil {
		return b.errf("base rootfs: debootstrap log", err)
	}
	defer logf.Close()
	args := []string{"--variant=minbase", "--cache-dir=" + filepath.Join(b.baseDir, "cache"),
		"--include=" + strings.Join(basePackages, ","), baseSuite, target, mirror}
	fmt.Fprintf(logf, "debootstrap %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, "debootstrap", args...)
	var out bytes.Buffer
	w := io.MultiWriter(logf, &out)
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the build
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		killProcsUnder(target)
		_ = unmountAll(target)
		return b.errf("base rootfs: debootstrap (log "+logPath+")", fmt.Errorf("%w\n%s", err, tail(out.String(), 3000)))
	}
	return nil
}

// postProcessBase turns a fresh debootstrap into the shared lower layer of the machines.
func postProcessBase(ctx context.Context, r string) error {
	p := func(rel string) string { return filepath.Join(r, rel) }
	if err := os.WriteFile(p("etc/machine-id"), nil, 0o444); err != nil { // per machine, in its overlay
		return err
	}
	keys, _ := filepath.Glob(p("etc/ssh/ssh_host_*")) // per machine, generated by the harness
	debs, _ := filepath.Glob(p("var/cache/apt/archives/*.deb"))
	for _, f := range append(keys, debs...) {
		if err := os.Remove(f); err != nil {
			return err
		}
	}
	if err := run(ctx, nil, "chroot", r, "useradd", "-m", "-s", "/bin/bash", kubeUser); err != nil {
		return err
	}
	_ = os.Remove(p("etc/resolv.conf")) // offline machines: an unreachable nameserver makes apt hang
	files := []struct {
		rel  string
		data string
		mode os.FileMode
	}{
		{"etc/resolv.conf", "", 0o644},
		{"etc/ssh/sshd_config.d/kk-testbed.conf", sshdDropIn, 0o644},
		{"usr/local/sbin/cg-init", cgInit, 0o755},
	}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(p(f.rel)), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p(f.rel), []byte(f.data), f.mode); err != nil {
			return err
		}
	}
	return nil
}

// removeTree removes dir after killing what runs from it (an orphaned build) and unmounting anything below it; it refuses while mounts remain.
func removeTree(dir string) error {
	killProcsUnder(dir)
	if err := unmountAll(dir); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
