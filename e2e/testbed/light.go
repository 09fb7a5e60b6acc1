package testbed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

const sshdPath = "/usr/sbin/sshd"

// lightConcurrency bounds how many light hosts are set up at once.
const lightConcurrency = 8

// LightUp starts n light hosts n1..nN: network namespaces on the bed bridge, each running this
// machine's own sshd (own config, host key and pid file; the filesystem is shared, there is no
// systemd). Root logs in with the bed key only. Hosts already running are kept.
func LightUp(ctx context.Context, o Options, n int) (*Bed, error) {
	b, err := o.resolve()
	if err != nil {
		return nil, err
	}
	if n < 1 || n > maxHosts {
		return nil, b.errf("light up", fmt.Errorf("n=%d out of range 1..%d", n, maxHosts))
	}
	if err := needRoot(); err != nil {
		return nil, b.errf("light up", err)
	}
	if err := needCommands("ip", sshdPath); err != nil {
		return nil, b.errf("light up", err)
	}
	unlock, err := b.open(ctx, "light")
	if err != nil {
		return nil, err
	}
	defer unlock()
	start := time.Now()
	pub, err := writeKeyPair(b.keyPath(), "kk-testbed-"+b.name)
	if err != nil {
		return nil, b.errf("client key", err)
	}
	if err := writeFileAtomic(b.lightAuthorizedKeys(), []byte(pub+"\n"), 0o600); err != nil {
		return nil, b.errf("authorized_keys", err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // sshd's privilege separation dir
		return nil, b.errf("create /run/sshd", err)
	}
	if err := b.ensureBridge(ctx); err != nil {
		return nil, err
	}
	ms := make([]Machine, n)
	errs := make([]error, n)
	sem := make(chan struct{}, lightConcurrency)
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ms[i-1], errs[i-1] = b.lightHost(ctx, i)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i, m := range ms {
		if err := b.waitLight(wctx, i+1, m); err != nil {
			return nil, err
		}
	}
	slog.Info("testbed: light hosts up", "bed", b.name, "n", n, "took", time.Since(start).Round(time.Millisecond))
	bed := &Bed{Name: b.name, Dir: b.dir, KeyPath: b.keyPath(), Machines: ms, Light: true}
	if bed.KnownHosts, err = b.writeKnownHosts(ms); err != nil {
		return nil, b.errf("write known_hosts", err)
	}
	if bed.ClusterFile, err = b.writeCluster(ms, "root", ""); err != nil {
		return nil, b.errf("write cluster file", err)
	}
	return bed, nil
}

// LightDown stops the light hosts of the bed and removes their namespaces, links and bridge.
func LightDown(ctx context.Context, o Options) error {
	return down(ctx, o, "light")
}

func (b *bed) lightAuthorizedKeys() string { return filepath.Join(b.dir, "authorized_keys") }

type ldir struct {
	name, dir, config, key, pid string
}

func (b *bed) ldir(i int) ldir {
	d := filepath.Join(b.dir, fmt.Sprintf("n%d", i))
	return ldir{name: fmt.Sprintf("n%d", i), dir: d, config: filepath.Join(d, "sshd_config"),
		key: filepath.Join(d, "ssh_host_ed25519_key"), pid: filepath.Join(d, "sshd.pid")}
}

// lightHost makes sure light host i runs (keeping it when it does).
func (b *bed) lightHost(ctx context.Context, i int) (Machine, error) {
	l := b.ldir(i)
	m := Machine{Name: l.name, Address: b.addr(i)}
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return m, b.merrf(l.name, "create dir", err)
	}
	hostPub, err := writeKeyPair(l.key, "root@"+l.name)
	if err != nil {
		return m, b.merrf(l.name, "host key", err)
	}
	f := strings.Fields(hostPub)
	m.HostKey = f[0] + " " + f[1]
	if readPid(l.pid, l.config) > 0 {
		if _, err := os.Stat(filepath.Join("/run/netns", b.netns(i))); err == nil {
			return m, nil
		}
	}
	if pid := readPid(l.pid, l.config); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if err := b.delHostNet(ctx, b.netns(i)); err != nil {
		return m, b.merrf(l.name, "clear leftovers", err)
	}
	if err := b.addHostNet(ctx, i); err != nil {
		return m, err
	}
	cfg := fmt.Sprintf(`# kk testbed %s light host %s
ListenAddress %s
Port 22
HostKey %s
PidFile %s
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile %s
StrictModes no
UsePAM no
UseDNS no
MaxSessions 200
MaxStartups 200:30:400
PerSourceMaxStartups none
Subsystem sftp internal-sftp
`, b.name, l.name, m.Address, l.key, l.pid, b.lightAuthorizedKeys())
	if err := os.WriteFile(l.config, []byte(cfg), 0o600); err != nil {
		return m, b.merrf(l.name, "write sshd_config", err)
	}
	_ = os.Remove(l.pid)
	// sshd daemonizes and writes its pid file; it runs in the namespace, detached from us.
	// Light hosts share this machine's filesystem, root's home included: a heavy ~/.bashrc
	// (this VM's runs `pyenv init`) would be paid by every command of every tool. A real host's
	// non-interactive shell starts in a millisecond, so inside sshd's own mount namespace
	// (`ip netns exec` makes one, slave to ours) root's rc files are hidden behind /dev/null.
	hide := `for f in /root/.bashrc /root/.profile /root/.bash_profile; do [ -f "$f" ] && mount --bind /dev/null "$f"; done; exec "$0" "$@"`
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", b.netns(i), "/bin/sh", "-c", hide, sshdPath, "-f", l.config)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if out, err := cmd.CombinedOutput(); err != nil {
		return m, b.merrf(l.name, "start sshd", fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out))))
	}
	return m, nil
}

func (b *bed) waitLight(ctx context.Context, i int, m Machine) error {
	l := b.ldir(i)
	var last error
	for {
		if last = waitSSHBanner(ctx, m.Address); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return b.merrf(m.Name, "start sshd", fmt.Errorf("no SSH banner from %s:22 (last: %v); sshd pid %d", m.Address, last, readPid(l.pid, l.config)))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stopLight kills the bed's sshds and deletes its namespaces (and thereby their veths).
func (b *bed) stopLight(ctx context.Context) error {
	var pids []int
	for _, p := range procsMentioning(b.dir + "/") {
		if strings.Contains(cmdline(p), "sshd") {
			pids = append(pids, p)
			_ = syscall.Kill(p, syscall.SIGTERM)
		}
	}
	if !waitGone(ctx, 3*time.Second, pids...) {
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
	var errs []error
	nss, _ := b.listNetns()
	for _, ns := range nss {
		errs = append(errs, b.delHostNet(ctx, ns))
	}
	ents, _ := filepath.Glob(filepath.Join(b.dir, "n*", "sshd.pid"))
	for _, p := range ents {
		_ = os.Remove(p)
	}
	return errors.Join(errs...)
}
