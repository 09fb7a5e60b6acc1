//go:build integration

package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// dial connects to m as user with the bed key, checking its host key against the bed's known_hosts.
func dial(t *testing.T, b *Bed, m Machine, user string) *ssh.Client {
	t.Helper()
	keyData, err := os.ReadFile(b.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(keyData)
	if err != nil {
		t.Fatal(err)
	}
	hk, err := knownhosts.New(b.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", net.JoinHostPort(m.Address, "22"), &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hk, Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("ssh %s@%s (%s): %v", user, m.Name, m.Address, err)
	}
	return c
}

// exec runs cmd in a new session (stdin optional) and returns its output and error.
func execSSH(c *ssh.Client, cmd, stdin string) (string, error) {
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	if stdin != "" {
		s.Stdin = strings.NewReader(stdin)
	}
	var out, errOut bytes.Buffer // separate: the session copies stdout and stderr concurrently
	s.Stdout, s.Stderr = &out, &errOut
	err = s.Run(cmd)
	if err != nil && errOut.Len() > 0 {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(errOut.String()))
	}
	return strings.TrimSpace(out.String()), err
}

func assertNoLeftovers(t *testing.T, o Options) {
	t.Helper()
	b, err := o.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if left := b.leftovers(); len(left) > 0 {
		t.Errorf("left behind after down:\n  %s", strings.Join(left, "\n  "))
	}
	// the machines' own processes (systemd, sshd...) are gone too: nothing runs from their roots
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if root, err := os.Readlink("/proc/" + e.Name() + "/root"); err == nil && strings.HasPrefix(root, b.dir+"/") {
			t.Errorf("process %s still runs in %s", e.Name(), root)
		}
	}
}

func TestMachines(t *testing.T) {
	// a disk of their own: what kubelet sees of / and containerd's store is the machine's
	o := Options{Name: "tbtest", DiskGiB: 4}
	start := time.Now()
	b := Require(t, o, 2)
	t.Logf("2 machines up in %v", time.Since(start))
	if len(b.Machines) != 2 || b.User != "kube" || b.Password == "" || b.Light {
		t.Fatalf("bed: %+v", b)
	}
	if fi, err := os.Stat(b.ClusterFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cluster file %s: %v %v", b.ClusterFile, fi.Mode(), err)
	}
	cf, _ := os.ReadFile(b.ClusterFile)
	for _, m := range b.Machines {
		if !strings.Contains(string(cf), "name: "+m.Name+", address: "+m.Address) {
			t.Errorf("cluster file lacks %s:\n%s", m.Name, cf)
		}
	}

	var wg sync.WaitGroup
	for _, m := range b.Machines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kube := dial(t, b, m, "kube")
			defer kube.Close()
			if out, err := execSSH(kube, "hostname; id -un", ""); err != nil || out != m.Name+"\nkube" {
				t.Errorf("%s: hostname/id: %q %v", m.Name, out, err)
			}
			// systemd is PID 1 and the boot finishes
			var state string
			for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
				state, _ = execSSH(kube, "systemctl is-system-running", "")
				if state == "running" || state == "degraded" {
					break
				}
			}
			if state != "running" && state != "degraded" {
				failed, _ := execSSH(kube, "systemctl --failed --no-legend", "")
				t.Errorf("%s: systemctl is-system-running = %q; failed units: %s", m.Name, state, failed)
			}
			if comm, err := execSSH(kube, "cat /proc/1/comm", ""); err != nil || comm != "systemd" {
				t.Errorf("%s: PID 1 is %q (%v)", m.Name, comm, err)
			}
			// sudo needs the password: -n fails (fresh session, nothing cached), -S with it works
			if out, err := execSSH(kube, "sudo -n true", ""); err == nil {
				t.Errorf("%s: sudo -n true succeeded without a password (NOPASSWD?): %s", m.Name, out)
			}
			if out, err := execSSH(kube, "sudo -S -p '' id -u", b.Password+"\n"); err != nil || !strings.HasSuffix(out, "0") {
				t.Errorf("%s: sudo -S with the password: %q %v", m.Name, out, err)
			}
			if out, err := execSSH(kube, "sudo -S -p '' true", "wrong-password\n"); err == nil {
				t.Errorf("%s: sudo accepted a wrong password: %s", m.Name, out)
			}
			root := dial(t, b, m, "root")
			defer root.Close()
			for _, c := range []struct{ cmd, want string }{
				{"getent hosts n1 n2 | awk '{print $1}' | paste -sd,", b.Machines[0].Address + "," + b.Machines[1].Address},
				{"awk '/^nameserver/{print $2}' /etc/resolv.conf", m.Address},
				{"getent hosts nosuch.example >/dev/null; echo fast", "fast"},
				{"findmnt -no FSTYPE /var/lib/containerd | grep -vx overlay >/dev/null && echo real-disk", "real-disk"},
				{"df -BG --output=size / /var/lib/containerd | tail -n +2 | tr -d ' ' | paste -sd,", "4G,4G"},
				{"mkdir -p /sys/fs/cgroup/memory/probe && rmdir /sys/fs/cgroup/memory/probe && echo ok", "ok"},
				{"ping -c1 -W2 " + b.Machines[0].Address + " >/dev/null && echo ok", "ok"},
			} {
				if out, err := execSSH(root, c.cmd, ""); err != nil || out != c.want {
					t.Errorf("%s: %s: got %q (%v), want %q", m.Name, c.cmd, out, err, c.want)
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// machines have their own cgroups (not one shared tree)
	cg0, _ := execSSH(dial(t, b, b.Machines[0], "root"), "cat /sys/fs/cgroup/memory/memory.usage_in_bytes", "")
	cg1, _ := execSSH(dial(t, b, b.Machines[1], "root"), "cat /sys/fs/cgroup/memory/memory.usage_in_bytes", "")
	if cg0 == "" || cg0 == cg1 {
		t.Logf("memory usage n1=%s n2=%s (expected distinct cgroups)", cg0, cg1)
	}

	// Up again: same machines kept (same host keys), one more added
	b2, err := Up(context.Background(), o, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(b2.Machines) != 3 || b2.Machines[0].HostKey != b.Machines[0].HostKey || b2.Machines[1].HostKey != b.Machines[1].HostKey {
		t.Fatalf("re-Up did not keep the running machines: %+v vs %+v", b2.Machines, b.Machines)
	}
	c3 := dial(t, b2, b2.Machines[2], "root")
	if out, err := execSSH(c3, "hostname", ""); err != nil || out != "n3" {
		t.Errorf("n3: %q %v", out, err)
	}
	c3.Close()
	if out, err := execSSH(dial(t, b2, b2.Machines[0], "root"), "getent hosts n3 | awk '{print $1}'", ""); err != nil || out != b2.Machines[2].Address {
		t.Errorf("n1 does not resolve the added n3: %q %v", out, err)
	}

	// a guest reboot restarts the machine (runner sees nspawn exit 133)
	r := dial(t, b2, b2.Machines[1], "root")
	bootID, _ := execSSH(r, "cat /proc/sys/kernel/random/boot_id; cat /proc/1/stat | cut -d' ' -f22", "")
	_, _ = execSSH(r, "systemctl reboot", "")
	r.Close()
	rebooted := false
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline) && !rebooted; time.Sleep(time.Second) {
		if waitSSHBanner(context.Background(), b2.Machines[1].Address) != nil {
			continue
		}
		func() {
			c, err := ssh.Dial("tcp", net.JoinHostPort(b2.Machines[1].Address, "22"), clientConfig(t, b2, "root"))
			if err != nil {
				return
			}
			defer c.Close()
			now, _ := execSSH(c, "cat /proc/sys/kernel/random/boot_id; cat /proc/1/stat | cut -d' ' -f22", "")
			rebooted = now != "" && now != bootID
		}()
	}
	if !rebooted {
		t.Errorf("n2 did not come back after systemctl reboot")
	}

	checkRunnerSurvival(t, o)

	start = time.Now()
	if err := Down(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	t.Logf("down in %v", time.Since(start))
	assertNoLeftovers(t, o)
	if err := Down(context.Background(), o); err != nil {
		t.Errorf("second Down: %v", err)
	}
}

func clientConfig(t *testing.T, b *Bed, user string) *ssh.ClientConfig {
	keyData, _ := os.ReadFile(b.KeyPath)
	signer, err := ssh.ParsePrivateKey(keyData)
	if err != nil {
		t.Fatal(err)
	}
	hk, err := knownhosts.New(b.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	return &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: hk, Timeout: 5 * time.Second}
}

func TestLightHosts(t *testing.T) {
	o := Options{Name: "tblight"}
	start := time.Now()
	b := RequireLight(t, o, 5)
	t.Logf("5 light hosts up in %v", time.Since(start))
	if len(b.Machines) != 5 || !b.Light || b.User != "" || b.Password != "" {
		t.Fatalf("bed: %+v", b)
	}
	var wg sync.WaitGroup
	for _, m := range b.Machines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := dial(t, b, m, "root")
			defer c.Close()
			// many concurrent sessions on one connection (MaxSessions raised)
			var sw sync.WaitGroup
			for k := 0; k < 10; k++ {
				sw.Add(1)
				go func() {
					defer sw.Done()
					out, err := execSSH(c, "ip -4 -o addr show eth0 | awk '{print $4}'", "")
					if err != nil || out != m.Address+"/24" {
						t.Errorf("%s session %d: %q %v", m.Name, k, out, err)
					}
				}()
			}
			sw.Wait()
		}()
	}
	wg.Wait()
	// password logins are refused
	_, err := ssh.Dial("tcp", b.Machines[0].Address+":22", &ssh.ClientConfig{User: "root",
		Auth: []ssh.AuthMethod{ssh.Password("x")}, HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second})
	if err == nil {
		t.Error("password login accepted")
	}
	// idempotent: the same hosts are kept
	b2, err := LightUp(context.Background(), o, 5)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b.Machines {
		if b2.Machines[i] != b.Machines[i] {
			t.Errorf("host %d changed: %+v -> %+v", i, b.Machines[i], b2.Machines[i])
		}
	}
	if err := LightDown(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	assertNoLeftovers(t, o) // (no dial after down: without the bridge the address would route off this machine)
}

// Two beds side by side get distinct networks.
func TestSubnetsDistinct(t *testing.T) {
	seen := map[string]string{}
	for _, n := range []string{"tbtest", "tblight", "kkt", "kkos", "kkerr", "kkb", "kkdemo"} {
		s := fmt.Sprint(defaultSubnet(n))
		if other, ok := seen[s]; ok {
			t.Errorf("beds %s and %s share default subnet %s (resolved at Up by skipping used subnets)", n, other, s)
		}
		seen[s] = n
	}
}

// Two beds started at the same moment get their own networks and machines.
func TestTwoBedsAtOnce(t *testing.T) {
	opts := []Options{{Name: "tbpa"}, {Name: "tbpb"}}
	beds := make([]*Bed, len(opts))
	errs := make([]error, len(opts))
	var wg sync.WaitGroup
	for i, o := range opts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			beds[i], errs[i] = Up(context.Background(), o, 1)
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, o := range opts {
			if err := Down(context.Background(), o); err != nil {
				t.Error(err)
			}
			assertNoLeftovers(t, o)
		}
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if beds[0].Machines[0].Address == beds[1].Machines[0].Address {
		t.Fatalf("both beds use %s", beds[0].Machines[0].Address)
	}
	for _, b := range beds {
		c := dial(t, b, b.Machines[0], "root")
		if out, err := execSSH(c, "hostname", ""); err != nil || out != "n1" {
			t.Errorf("%s: %q %v", b.Name, out, err)
		}
		c.Close()
	}
}

// checkRunnerSurvival checks that a runner ignores stray SIGTERM/SIGHUP (logging them), that a
// machine whose runner and nspawn died before its sshd answered is reported as ended, and that
// waitBoot starts it again once.
func checkRunnerSurvival(t *testing.T, o Options) {
	t.Helper()
	bb, err := o.resolve()
	if err != nil {
		t.Fatal(err)
	}
	st, err := bb.readState()
	if err != nil || st == nil {
		t.Fatalf("read bed state: %v %v", st, err)
	}
	bb.subnet = st.Subnet // as Up chose it
	m := bb.mdir(3)
	runner := readPid(m.runnerPid, m.script)
	if runner == 0 {
		t.Fatalf("n3: no live runner (pid file %s)", m.runnerPid)
	}
	_ = syscall.Kill(runner, syscall.SIGTERM)
	_ = syscall.Kill(runner, syscall.SIGHUP)
	time.Sleep(time.Second)
	if readPid(m.runnerPid, m.script) != runner {
		t.Fatalf("n3: runner %d did not survive SIGTERM/SIGHUP; console:\n%s", runner, fileTail(m.console, 2000))
	}
	// the runner's shell runs a trap once the command it waits for lets it: on a loaded
	// machine that takes a while (no timing is asserted; the deadline bounds a broken run)
	var log string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		log = fileTail(m.console, 4000)
		if strings.Contains(log, "SIGTERM ignored") && strings.Contains(log, "SIGHUP ignored") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("n3: console log does not record the ignored signals:\n%s", log)
			break
		}
	}

	nspawn := readPid(m.nspawnPid, "systemd-nspawn")
	_ = syscall.Kill(runner, syscall.SIGKILL)
	_ = syscall.Kill(nspawn, syscall.SIGKILL)
	if !waitGone(context.Background(), 10*time.Second, runner, nspawn) {
		t.Fatal("n3: runner and nspawn survived SIGKILL")
	}
	ctx := context.Background()
	if err := bb.waitBoot(ctx, []mdir{m}, nil); !errors.Is(err, errMachineEnded) {
		t.Fatalf("waitBoot on a dead machine without restart: %v, want errMachineEnded", err)
	}
	restarts := 0
	err = bb.waitBoot(ctx, []mdir{m}, func(mdir) error {
		restarts++
		_, err := Up(ctx, o, 3)
		return err
	})
	if err != nil || restarts != 1 {
		t.Fatalf("waitBoot with restart: err=%v restarts=%d, want nil and 1", err, restarts)
	}
}
