//go:build integration

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kk-project/kk/e2e/testbed"
)

// kk init os on 3 machines as a non-root user whose sudo needs a password: the first run changes
// them, the second changes nothing, a dry run then plans nothing, and precheck passes.
func TestInitOSConvergesAndReRunChangesNothing(t *testing.T) {
	bin := kkBinary(t)
	bed := testbed.Require(t, testbed.Options{Name: "kkos"}, 3)
	work := t.TempDir()
	args := func(a ...string) []string {
		return append(a, "-f", bed.ClusterFile, "--known-hosts", bed.KnownHosts, "--workdir", work)
	}

	// make one machine need every fix: swap in fstab (commented out by kk), a stale hosts block
	first := kk(t, bin, args("init", "os", "--yes")...)
	if first.code != 0 {
		t.Fatalf("first kk init os failed")
	}
	if n := changed(t, first.out); n == "0" {
		t.Errorf("first run changed nothing")
	}
	second := kk(t, bin, args("init", "os", "--yes")...)
	if second.code != 0 || changed(t, second.out) != "0" {
		t.Fatalf("second run: exit %d, changed %s, want 0 changed", second.code, changed(t, second.out))
	}
	dry := kk(t, bin, args("init", "os", "--dry-run")...)
	if dry.code != 0 || !strings.Contains(dry.out, " 0 would change") {
		t.Errorf("dry run on converged hosts plans changes")
	}
	pre := kk(t, bin, args("precheck")...)
	if pre.code != 0 {
		t.Errorf("precheck fails after init os")
	}

	// what the machines look like now
	for _, m := range bed.Machines {
		out := rootSSH(t, bed, m, "hostname; sysctl -n net.ipv4.ip_forward; cat /etc/hosts; cat /etc/modules-load.d/kubernetes-kk.conf")
		for _, want := range []string{m.Name + "\n", "\n1\n", "# BEGIN kk managed hosts", bed.Machines[0].Address + " n1", "br_netfilter"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s lacks %q:\n%s", m.Name, want, out)
			}
		}
	}
	// one log per host, and no password in any log
	logs, _ := filepath.Glob(filepath.Join(work, "logs", "*", "*.log"))
	if len(logs) < 3 {
		t.Errorf("want per-host logs, got %v", logs)
	}
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if strings.Contains(string(b), bed.Password) {
			t.Errorf("%s contains the sudo password", l)
		}
	}
	for _, out := range []string{first.out, second.out, dry.out, pre.out} {
		if strings.Contains(out, bed.Password) {
			t.Error("output contains the sudo password")
		}
	}

	// a host that drifted is put right again, and only that host changes
	rootSSH(t, bed, bed.Machines[1], "sysctl -w net.ipv4.ip_forward=0 >/dev/null; rm /etc/sysctl.d/99-kubernetes-kk.conf")
	third := kk(t, bin, args("init", "os", "--yes")...)
	if third.code != 0 || changed(t, third.out) != "1" {
		t.Errorf("drift repair: want exactly 1 changed")
	}
}

// Errors that reach hosts name the host and the task, and exit non-zero.
func TestHostErrorsNameTheHost(t *testing.T) {
	bin := kkBinary(t)
	bed := testbed.Require(t, testbed.Options{Name: "kkerr"}, 1)
	work := t.TempDir()
	src, err := os.ReadFile(bed.ClusterFile)
	if err != nil {
		t.Fatal(err)
	}
	variant := func(name string, edit func(string) string) string {
		p := filepath.Join(t.TempDir(), name+".yaml")
		if err := os.WriteFile(p, []byte(edit(string(src))), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	m := bed.Machines[0]

	t.Run("wrong sudo password", func(t *testing.T) {
		f := variant("wrongpw", func(s string) string { return strings.Replace(s, bed.Password, "not-the-password", 1) })
		r := kk(t, bin, "precheck", "-f", f, "--known-hosts", bed.KnownHosts, "--workdir", work)
		if r.code == 0 || !strings.Contains(r.out, "host n1") || strings.Contains(r.out, "not-the-password") {
			t.Errorf("want a failure naming n1 and no password in output")
		}
	})
	t.Run("host key mismatch", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		// another machine's key under this machine's address
		other := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
		os.WriteFile(kh, []byte(m.Address+" "+other+"\n"), 0o600)
		r := kk(t, bin, "init", "os", "--yes", "-f", bed.ClusterFile, "--known-hosts", kh, "--trust-on-first-use", "--workdir", work)
		if r.code == 0 || !strings.Contains(r.out, "host key mismatch") || !strings.Contains(r.out, "n1") {
			t.Errorf("want a host key mismatch naming n1")
		}
	})
	t.Run("unknown host key without TOFU", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		os.WriteFile(kh, nil, 0o600)
		r := kk(t, bin, "precheck", "-f", bed.ClusterFile, "--known-hosts", kh, "--workdir", work)
		if r.code == 0 || !strings.Contains(r.out, "not in known_hosts") {
			t.Errorf("want an unknown-host-key error")
		}
		r = kk(t, bin, "precheck", "-f", bed.ClusterFile, "--known-hosts", kh, "--trust-on-first-use", "--workdir", work)
		b, _ := os.ReadFile(kh)
		if !strings.Contains(string(b), m.Address) || strings.Contains(r.out, "not in known_hosts") {
			t.Errorf("TOFU did not record the key:\n%s", b)
		}
	})
	t.Run("unreachable host", func(t *testing.T) {
		// an address in the bed's own subnet where no machine runs
		parts := strings.Split(m.Address, ".")
		ghost := strings.Join(parts[:3], ".") + ".250"
		f := variant("ghost", func(s string) string { return strings.ReplaceAll(s, m.Address, ghost) })
		r := kk(t, bin, "precheck", "-f", f, "--known-hosts", bed.KnownHosts, "--workdir", work)
		if r.code == 0 || !strings.Contains(r.out, "host n1") {
			t.Errorf("want a failure naming n1")
		}
	})
}
