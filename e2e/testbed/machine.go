package testbed

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// bootTimeout bounds the wait for every machine's sshd after its start.
const bootTimeout = 3 * time.Minute

// nspawnPropagate is where systemd-nspawn keeps a runtime dir per machine name.
const nspawnPropagate = "/run/systemd/nspawn/propagate"

// stopTimeout bounds a clean guest shutdown before the machine is killed.
const stopTimeout = 20 * time.Second

type mdir struct {
	i                                                 int
	name                                              string
	dir, root, disk, upper, work, containerd, console string
	script, runnerPid, nspawnPid, stop, cgroupLst     string
}

func (b *bed) mdir(i int) mdir {
	d := b.machineDir(i)
	// what the machine writes is below disk: its own file system where the bed has
	// Options.DiskGiB, a plain directory otherwise
	disk := filepath.Join(d, "disk")
	return mdir{i: i, name: fmt.Sprintf("n%d", i), dir: d, root: filepath.Join(d, "root"), disk: disk,
		upper: filepath.Join(disk, "upper"), work: filepath.Join(disk, "work"),
		containerd: filepath.Join(disk, "containerd"), console: filepath.Join(d, "console.log"),
		script: filepath.Join(d, "run.sh"), runnerPid: filepath.Join(d, "runner.pid"),
		nspawnPid: filepath.Join(d, "nspawn.pid"), stop: filepath.Join(d, "stop"), cgroupLst: filepath.Join(d, "cgroups")}
}

// running reports whether machine i's runner is alive and its root is mounted.
func (b *bed) running(m mdir) bool {
	if readPid(m.runnerPid, m.script) == 0 {
		return false
	}
	for _, p := range mountsUnder(m.root) {
		if p == m.root {
			return true
		}
	}
	return false
}

// Up boots n systemd-nspawn machines n1..nN (keeping those already running) and waits until
// each answers SSH. It returns machines n1..nN; machines beyond n that already run are kept.
func Up(ctx context.Context, o Options, n int) (*Bed, error) {
	b, err := o.resolve()
	if err != nil {
		return nil, err
	}
	if n < 1 || n > maxHosts {
		return nil, b.errf("up", fmt.Errorf("n=%d out of range 1..%d", n, maxHosts))
	}
	if err := needRoot(); err != nil {
		return nil, b.errf("up", err)
	}
	if err := needCommands("ip", "systemd-nspawn", "chroot"); err != nil {
		return nil, b.errf("up", err)
	}
	unlock, err := b.open(ctx, "machines")
	if err != nil {
		return nil, err
	}
	defer unlock()
	start := time.Now()
	base, err := b.ensureBase(ctx)
	if err != nil {
		return nil, err
	}
	pub, err := writeKeyPair(b.keyPath(), "kk-testbed-"+b.name)
	if err != nil {
		return nil, b.errf("client key", err)
	}
	pw, err := b.password()
	if err != nil {
		return nil, b.errf("kube password", err)
	}
	if err := b.ensureBridge(ctx); err != nil {
		return nil, err
	}
	if err := raiseInotifyLimits(); err != nil {
		return nil, b.errf("inotify limits", err)
	}
	// machines that run already (maybe more than n) stay; the hosts files list all of them
	total := n
	for _, i := range b.machineIndexes() {
		if i > total && b.running(b.mdir(i)) {
			total = i
		}
	}
	hosts := b.hostsFile(total)
	bootStart := time.Now()
	var started, all []mdir
	for i := 1; i <= n; i++ {
		m := b.mdir(i)
		all = append(all, m)
		if b.running(m) {
			if err := appendMissingHosts(filepath.Join(m.root, "etc/hosts"), b, total); err != nil {
				return nil, b.merrf(m.name, "update /etc/hosts", err)
			}
			continue
		}
		if err := b.startMachine(ctx, m, base, pub, pw, hosts); err != nil {
			return nil, err
		}
		started = append(started, m)
	}
	for i := n + 1; i <= total; i++ {
		if m := b.mdir(i); b.running(m) {
			_ = appendMissingHosts(filepath.Join(m.root, "etc/hosts"), b, total)
		}
	}
	restart := func(m mdir) error { return b.startMachine(ctx, m, base, pub, pw, hosts) }
	if err := b.waitBoot(ctx, all, restart); err != nil { // kept machines answer at once
		return nil, err
	}
	if len(started) > 0 {
		slog.Info("testbed: machines up", "bed", b.name, "started", len(started), "boot", time.Since(bootStart).Round(time.Millisecond), "total", time.Since(start).Round(time.Millisecond))
	}
	bed := &Bed{Name: b.name, Dir: b.dir, KeyPath: b.keyPath(), User: kubeUser, Password: pw}
	for i := 1; i <= n; i++ {
		m := b.mdir(i)
		key, err := os.ReadFile(filepath.Join(m.root, "etc/ssh/ssh_host_ed25519_key.pub"))
		if err != nil {
			return nil, b.merrf(m.name, "read host key", err)
		}
		f := strings.Fields(string(key))
		if len(f) < 2 {
			return nil, b.merrf(m.name, "read host key", fmt.Errorf("bad key %q", key))
		}
		bed.Machines = append(bed.Machines, Machine{Name: m.name, Address: b.addr(i), HostKey: f[0] + " " + f[1]})
	}
	if bed.KnownHosts, err = b.writeKnownHosts(bed.Machines); err != nil {
		return nil, b.errf("write known_hosts", err)
	}
	if bed.ClusterFile, err = b.writeCluster(bed.Machines, kubeUser, pw); err != nil {
		return nil, b.errf("write cluster file", err)
	}
	return bed, nil
}

// machineIndexes lists the machine numbers that have a directory, a namespace or a cgroup.
func (b *bed) machineIndexes() []int {
	set := map[int]bool{}
	ents, _ := os.ReadDir(b.dir)
	for _, e := range ents {
		if rest, ok := strings.CutPrefix(e.Name(), "n"); ok && e.IsDir() {
			if i, err := strconv.Atoi(rest); err == nil && i > 0 {
				set[i] = true
			}
		}
	}
	nss, _ := b.listNetns()
	for _, ns := range nss {
		set[nsIndex(ns)] = true
	}
	for _, c := range findCgroups(b.isOwnObj) {
		set[nsIndex(filepath.Base(c))] = true
	}
	var out []int
	for i := range set {
		if i > 0 {
			out = append(out, i)
		}
	}
	sort.Ints(out)
	return out
}

func (b *bed) hostsFile(total int) string {
	var sb strings.Builder
	sb.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	for j := 1; j <= total; j++ {
		fmt.Fprintf(&sb, "%s\tn%d\n", b.addr(j), j)
	}
	return sb.String()
}

// appendMissingHosts adds the lines of machines 1..total that a running machine's /etc/hosts lacks
// (leaving whatever else is in it alone).
func appendMissingHosts(path string, b *bed, total int) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			have[f[0]+" "+f[1]] = true
		}
	}
	var add strings.Builder
	for j := 1; j <= total; j++ {
		if !have[fmt.Sprintf("%s n%d", b.addr(j), j)] {
			fmt.Fprintf(&add, "%s\tn%d\n", b.addr(j), j)
		}
	}
	if add.Len() == 0 {
		return nil
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	return os.WriteFile(path, append(data, add.String()...), 0o644)
}

// startMachine creates machine m from scratch (clearing leftovers of an earlier run) and starts
// its runner; it does not wait for the boot.
func (b *bed) startMachine(ctx context.Context, m mdir, base, pub, pw, hosts string) error {
	if err := b.stopMachine(ctx, m); err != nil {
		return b.merrf(m.name, "clear leftovers", err)
	}
	if err := removeTree(m.dir); err != nil {
		return b.merrf(m.name, "remove old machine dir", err)
	}
	if err := os.MkdirAll(m.disk, 0o755); err != nil {
		return b.merrf(m.name, "create dirs", err)
	}
	if b.diskGiB > 0 {
		if err := ownDisk(ctx, m, b.diskGiB); err != nil {
			return b.merrf(m.name, "its own disk", err)
		}
	}
	for _, d := range []string{m.upper, m.work, m.root, m.containerd} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return b.merrf(m.name, "create dirs", err)
		}
	}
	if err := b.addHostNet(ctx, m.i); err != nil {
		return err
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", base, m.upper, m.work)
	if err := syscall.Mount("overlay", m.root, "overlay", 0, opts); err != nil {
		return b.merrf(m.name, "mount overlay root", fmt.Errorf("mount -t overlay -o %s %s: %w", opts, m.root, err))
	}
	// private: nothing the guest mounts (kubelet makes / rshared) propagates back to this machine
	if err := syscall.Mount("", m.root, "", syscall.MS_PRIVATE, ""); err != nil {
		return b.merrf(m.name, "make overlay root private", err)
	}
	if err := b.customize(ctx, m, pub, pw, hosts); err != nil {
		return err
	}
	cgs, err := b.makeCgroups(m)
	if err != nil {
		return b.merrf(m.name, "create cgroups", err)
	}
	if err := os.WriteFile(m.script, []byte(b.runnerScript(m, cgs)), 0o755); err != nil {
		return b.merrf(m.name, "write runner script", err)
	}
	logf, err := os.OpenFile(m.console, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return b.merrf(m.name, "open console log", err)
	}
	defer logf.Close()
	cmd := exec.Command("/bin/sh", m.script) // not bound to ctx: the machine outlives this call
	cmd.Dir = m.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return b.merrf(m.name, "start runner", err)
	}
	go func() { _ = cmd.Wait() }() // reap it if it ends while this process lives
	if err := os.WriteFile(m.runnerPid, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		return b.merrf(m.name, "write runner pid", err)
	}
	return nil
}

// customize writes the per-machine files into the overlay before the first boot.
func (b *bed) customize(ctx context.Context, m mdir, pub, pw, hosts string) error {
	r := func(rel string) string { return filepath.Join(m.root, rel) }
	uid, gid, home, err := lookupUser(r("etc/passwd"), kubeUser)
	if err != nil {
		return b.merrf(m.name, "find user kube", err)
	}
	hostPriv, hostPub, err := newKey("root@" + m.name)
	if err != nil {
		return b.merrf(m.name, "host key", err)
	}
	mid, err := randomHex(16)
	if err != nil {
		return b.merrf(m.name, "machine-id", err)
	}
	files := []struct {
		rel      string
		data     string
		mode     os.FileMode
		uid, gid int
	}{
		{"etc/hostname", m.name + "\n", 0o644, 0, 0},
		{"etc/hosts", hosts, 0o644, 0, 0},
		{"etc/machine-id", mid + "\n", 0o444, 0, 0},
		// A nameserver that answers at once with "port unreachable": the machine's own address,
		// where nothing serves DNS. Machines are offline (an unreachable nameserver would make
		// apt wait minutes), yet CoreDNS refuses to start with no upstream at all.
		{"etc/resolv.conf", "nameserver " + b.addr(m.i) + "\noptions timeout:1 attempts:1\n", 0o644, 0, 0},
		{"etc/ssh/ssh_host_ed25519_key", string(hostPriv), 0o600, 0, 0},
		{"etc/ssh/ssh_host_ed25519_key.pub", hostPub + "\n", 0o644, 0, 0},
		{"root/.ssh/authorized_keys", pub + "\n", 0o600, 0, 0},
		{strings.TrimPrefix(home, "/") + "/.ssh/authorized_keys", pub + "\n", 0o600, uid, gid},
		{"etc/sudoers.d/kube", kubeUser + " ALL=(ALL:ALL) ALL\n", 0o440, 0, 0},
	}
	for _, f := range files {
		p := r(f.rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return b.merrf(m.name, "write "+f.rel, err)
		}
		if err := os.Chown(filepath.Dir(p), f.uid, f.gid); err != nil {
			return b.merrf(m.name, "write "+f.rel, err)
		}
		_ = os.Remove(p) // may be a symlink into the guest's tree
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			return b.merrf(m.name, "write "+f.rel, err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return b.merrf(m.name, "write "+f.rel, err)
		}
		if err := os.Chown(p, f.uid, f.gid); err != nil {
			return b.merrf(m.name, "write "+f.rel, err)
		}
	}
	// chpasswd reads the password from stdin: it never appears on a command line
	if err := run(ctx, []byte(kubeUser+":"+pw+"\n"), "chroot", m.root, "chpasswd"); err != nil {
		return b.merrf(m.name, "set kube password (chpasswd)", err)
	}
	return nil
}

func lookupUser(passwd, user string) (uid, gid int, home string, err error) {
	data, err := os.ReadFile(passwd)
	if err != nil {
		return 0, 0, "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 7 && f[0] == user {
			uid, err1 := strconv.Atoi(f[2])
			gid, err2 := strconv.Atoi(f[3])
			if err1 != nil || err2 != nil {
				return 0, 0, "", fmt.Errorf("bad passwd line %q", line)
			}
			return uid, gid, f[5], nil
		}
	}
	return 0, 0, "", fmt.Errorf("no user %s in %s", user, passwd)
}

// makeCgroups gives machine m its own cgroup in every mounted hierarchy, below this process's
// own cgroup there (this machine's PID 1 is not systemd, so nspawn --keep-unit would otherwise
// put every machine into the same cgroup).
func (b *bed) makeCgroups(m mdir) ([]string, error) {
	hs, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, h := range hs {
		d := filepath.Join(h.own, b.cgroupName(m.i))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return dirs, err
		}
		dirs = append(dirs, d)
		if filepath.Base(h.mount) == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(h.own, f))
				if err != nil {
					return dirs, err
				}
				if err := os.WriteFile(filepath.Join(d, f), v, 0o644); err != nil {
					return dirs, fmt.Errorf("%s: %w", filepath.Join(d, f), err)
				}
			}
		}
	}
	return dirs, os.WriteFile(m.cgroupLst, []byte(strings.Join(dirs, "\n")+"\n"), 0o644)
}

func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// ownDisk makes m.disk an ext4 file system of gib GiB of its own: a sparse file beside it,
// loop-mounted (the loop device goes with the unmount), with discard so that what the machine
// deletes gives the space back to this machine's disk. Teardown unmounts it with the rest of
// the machine's mounts.
func ownDisk(ctx context.Context, m mdir, gib int) error {
	img := m.disk + ".img"
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		return err
	}
	if err := os.Truncate(img, int64(gib)<<30); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"mkfs.ext4", "-q", "-F", "-m", "0", "-L", "kk-" + m.name, img},
		{"mount", "-o", "loop,discard", img, m.disk},
	} {
		if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// runnerScript runs one machine in the foreground and restarts it when the guest reboots
// (nspawn exits 133); it is started detached and outlives the process that started it.
// Machines get every capability but CAP_SYS_TIME: they share this machine's clock, and a
// guest setting the time (timedatectl, chrony) would move the host's.
func (b *bed) runnerScript(m mdir, cgs []string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "#!/bin/sh\n# kk testbed %s: runner of machine %s (written by e2e/testbed)\nd=%s\n", b.name, m.name, shq(m.dir))
	sb.WriteString("rm -f \"$d/stop\"\n")
	for _, c := range cgs {
		fmt.Fprintf(&sb, "echo $$ > %s || { echo 'testbed runner: cannot join cgroup %s'; exit 97; }\n", shq(filepath.Join(c, "cgroup.procs")), c)
	}
	// The runner logs what happens to it (its console log is the only trace of a failed boot)
	// and outlives stray SIGHUP/SIGTERM/SIGINT: only its machine's end (or SIGKILL) stops it.
	fmt.Fprintf(&sb, `log() { echo "$(date +%%T) testbed runner: $*"; }
trap 'log "SIGHUP ignored"' HUP
trap 'log "SIGTERM ignored"' TERM
trap 'log "SIGINT ignored"' INT
export SYSTEMD_NSPAWN_API_VFS_WRITABLE=1
while :; do
  log "starting systemd-nspawn"
  systemd-nspawn --register=no --keep-unit --kill-signal=SIGRTMIN+3 -M %s --hostname=%s -D "$d/root" \
    --network-namespace-path=/run/netns/%s \
    --capability=all --drop-capability=CAP_SYS_TIME --system-call-filter='@keyring bpf' \
    --bind=/dev/kmsg --bind="$d/disk/containerd:/var/lib/containerd" \
    --resolv-conf=off --console=passive /usr/local/sbin/cg-init &
  pid=$!
  echo $pid > "$d/nspawn.pid"
  while :; do wait $pid; rc=$?; kill -0 $pid 2>/dev/null || break; done
  log "nspawn exited rc=$rc"
  [ $rc -eq 133 ] && [ ! -e "$d/stop" ] || break
done
rm -f "$d/nspawn.pid"
`, b.netns(m.i), m.name, b.netns(m.i))
	return sb.String()
}

// waitBoot waits until every machine answers SSH, in parallel. A started machine whose runner
// and nspawn both end before its sshd answers is started again once (restart), with a warning
// that carries its console log; a second such end fails the boot.
func (b *bed) waitBoot(ctx context.Context, ms []mdir, restart func(mdir) error) error {
	ctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	for k, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := b.waitMachine(ctx, m)
			if errors.Is(err, errMachineEnded) && restart != nil {
				slog.Warn("testbed: machine ended before sshd answered; starting it again", "bed", b.name, "machine", m.name, "err", err)
				if err = restart(m); err == nil {
					err = b.waitMachine(ctx, m)
				}
			}
			errs[k] = err
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// errMachineEnded marks a machine whose runner and nspawn both ended before its sshd answered.
var errMachineEnded = errors.New("machine ended before sshd answered")

// machineAlive reports whether machine m's runner or its systemd-nspawn still runs.
func (b *bed) machineAlive(m mdir) bool {
	return readPid(m.runnerPid, m.script) != 0 || readPid(m.nspawnPid, "systemd-nspawn") != 0
}

func (b *bed) waitMachine(ctx context.Context, m mdir) error {
	addr := b.addr(m.i)
	var last error
	for {
		if !b.machineAlive(m) {
			return b.merrf(m.name, "boot", fmt.Errorf("%w; console log %s:\n%s", errMachineEnded, m.console, fileTail(m.console, 3000)))
		}
		if last = waitSSHBanner(ctx, addr); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return b.merrf(m.name, "boot", fmt.Errorf("no SSH banner from %s:22 within %v (last: %v); console log %s:\n%s", addr, bootTimeout, last, m.console, fileTail(m.console, 3000)))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Down stops every machine of the bed and removes all it created on this machine (mounts,
// cgroups, namespaces, links, processes) except the state directory's key and password and the
// cached base rootfs. It is idempotent.
func Down(ctx context.Context, o Options) error {
	return down(ctx, o, "machines")
}

func down(ctx context.Context, o Options, kind string) error {
	b, err := o.resolve()
	if err != nil {
		return err
	}
	if err := needRoot(); err != nil {
		return b.errf("down", err)
	}
	if err := needCommands("ip"); err != nil {
		return b.errf("down", err)
	}
	if _, err := os.Stat(b.dir); errors.Is(err, fs.ErrNotExist) && !b.anythingUp() {
		return nil
	}
	unlock, err := lockFile(ctx, filepath.Join(mkdirOK(b.dir), ".lock"))
	if err != nil {
		return b.errf("down: lock bed", err)
	}
	defer unlock()
	if st, _ := b.readState(); st != nil && st.Kind != kind && b.anythingUp() {
		return b.errf("down", fmt.Errorf("bed is up as %q: use the matching down", st.Kind))
	}
	var errs []error
	if kind == "light" {
		errs = append(errs, b.stopLight(ctx))
	} else {
		idx := b.machineIndexes()
		merrs := make([]error, len(idx))
		var wg sync.WaitGroup
		for k, i := range idx {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := b.mdir(i)
				if merrs[k] = b.stopMachine(ctx, m); merrs[k] == nil {
					if err := removeTree(m.dir); err != nil {
						merrs[k] = b.merrf(m.name, "remove machine dir", err)
					}
				}
			}()
		}
		wg.Wait()
		errs = append(errs, merrs...)
	}
	// sweep: anything of this bed that escaped the per-machine teardown
	for _, p := range procsMentioning(b.dir + "/") {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	for _, c := range findCgroups(b.isOwnObj) {
		if err := removeCgroup(ctx, c); err != nil {
			errs = append(errs, b.errf("remove cgroup", err))
		}
	}
	if err := unmountAll(b.dir); err != nil {
		errs = append(errs, b.errf("unmount", err))
	}
	errs = append(errs, b.delNetwork(ctx))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, f := range []string{"cluster.yaml", "known_hosts"} { // they describe machines that are gone
		_ = os.Remove(filepath.Join(b.dir, f))
	}
	if left := b.leftovers(); len(left) > 0 {
		return b.errf("down", fmt.Errorf("left behind: %s", strings.Join(left, "; ")))
	}
	return nil
}

func mkdirOK(dir string) string {
	_ = os.MkdirAll(dir, 0o700)
	return dir
}

// stopMachine shuts machine m down cleanly (SIGTERM to nspawn: the guest's systemd halts),
// kills it after stopTimeout, then removes its cgroups, mounts and network namespace.
func (b *bed) stopMachine(ctx context.Context, m mdir) error {
	_ = os.WriteFile(m.stop, nil, 0o644) // the runner must not restart it
	runner := readPid(m.runnerPid, m.script)
	nspawn := readPid(m.nspawnPid, "systemd-nspawn")
	if nspawn == 0 {
		for _, p := range procsMentioning(m.root) {
			if strings.Contains(cmdline(p), "systemd-nspawn") {
				nspawn = p
			}
		}
	}
	if nspawn > 0 {
		_ = syscall.Kill(nspawn, syscall.SIGTERM)
	}
	if !waitGone(ctx, stopTimeout, runner, nspawn) {
		slog.Warn("testbed: machine did not shut down in time; killing it", "bed", b.name, "machine", m.name)
	}
	for _, p := range append(procsMentioning(m.dir+"/"), runner, nspawn) {
		if p > 0 {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
	var errs []error
	cgs := findCgroups(func(n string) bool { return n == b.cgroupName(m.i) })
	if data, err := os.ReadFile(m.cgroupLst); err == nil {
		cgs = append(cgs, strings.Fields(string(data))...)
	}
	for _, c := range cgs {
		if err := removeCgroup(ctx, c); err != nil {
			errs = append(errs, fmt.Errorf("remove cgroup: %w", err))
		}
	}
	if err := unmountAll(m.dir); err != nil {
		errs = append(errs, fmt.Errorf("unmount: %w", err))
	}
	if err := b.delHostNet(ctx, b.netns(m.i)); err != nil {
		errs = append(errs, err)
	}
	// nspawn's own per-machine runtime dir (it removes it itself unless it was killed)
	if err := removeTree(filepath.Join(nspawnPropagate, b.netns(m.i))); err != nil {
		errs = append(errs, fmt.Errorf("remove nspawn runtime dir: %w", err))
	}
	_ = os.Remove(m.runnerPid)
	_ = os.Remove(m.nspawnPid)
	if len(errs) > 0 {
		return b.merrf(m.name, "stop", errors.Join(errs...))
	}
	return nil
}

// inotifyLimits are the VM-wide inotify limits machines running Kubernetes need: every
// machine's systemd, containerd (its CRI plugin fails to load without a watcher), kubelet and
// the API servers take inotify instances, and the kernel's default of 128 instances is shared
// by all machines (kind asks for at least 512).
var inotifyLimits = map[string]int{
	"/proc/sys/fs/inotify/max_user_instances": 8192,
	"/proc/sys/fs/inotify/max_user_watches":   524288,
}

// raiseInotifyLimits raises (never lowers) the inotify limits of this machine.
func raiseInotifyLimits() error {
	for p, want := range inotifyLimits {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		cur, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if cur >= want {
			continue
		}
		if err := os.WriteFile(p, []byte(strconv.Itoa(want)+"\n"), 0o644); err != nil {
			return fmt.Errorf("raise %s from %d to %d: %w", p, cur, want, err)
		}
	}
	return nil
}
