package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// etcdClusterFile is a Cluster file whose hosts are loopback addresses nothing listens on: a
// command that dialed would fail with a connection error, not the refusal the tests want.
func etcdClusterFile(t *testing.T, etcdType string) string {
	t.Helper()
	return write(t, "cluster.yaml", head+"  hosts:\n  - {name: n1, address: 127.0.0.2, password: x}\n  - {name: n2, address: 127.0.0.3, password: x}\n"+
		"  roleGroups:\n    etcd: [n1, n2]\n    control-plane: [n1]\n  etcd:\n    type: "+etcdType+"\n"+
		func() string {
			if etcdType == "external" {
				return "    external:\n      endpoints: [https://10.0.0.9:2379]\n"
			}
			return ""
		}())
}

func noRun(t *testing.T, what, out string, err error) {
	t.Helper()
	if strings.Contains(out, "tasks×hosts") || strings.Contains(out, "dial") || (err != nil && strings.Contains(err.Error(), "dial")) {
		t.Errorf("%s started a run:\n%s\n%v", what, out, err)
	}
}

func TestEtcdCommandsRefuseBeforeAnyHost(t *testing.T) {
	kubekey := etcdClusterFile(t, "kubekey")
	dir := t.TempDir()
	snap := filepath.Join(dir, "etcd-snapshot-t-20250101T000000Z.db")
	if err := os.WriteFile(snap, []byte("a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	// the checksum of other content
	if err := os.WriteFile(snap+".sha256", []byte(strings.Repeat("ab", 32)+"  etcd-snapshot-t-20250101T000000Z.db\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no snapshot flag", []string{"etcd", "restore", "-f", kubekey}, "--snapshot FILE is required"},
		{"no cluster file", []string{"etcd", "restore", "--snapshot", snap}, "no cluster file"},
		{"bad checksum", []string{"etcd", "restore", "-f", kubekey, "--snapshot", snap, "--yes"}, "bad checksum"},
		{"missing snapshot", []string{"etcd", "restore", "-f", kubekey, "--snapshot", filepath.Join(dir, "none.db"), "--yes"}, "no such file"},
		{"restore kubeadm", []string{"etcd", "restore", "-f", etcdClusterFile(t, "kubeadm"), "--snapshot", snap, "--yes"}, "etcd type kubeadm: kk etcd restore restores only the etcd kk runs"},
		{"restore external", []string{"etcd", "restore", "-f", etcdClusterFile(t, "external"), "--snapshot", snap, "--yes"}, "etcd type external: kk does not run this etcd"},
		{"backup external", []string{"etcd", "backup", "-f", etcdClusterFile(t, "external")}, "etcd type external: kk does not run this etcd"},
		{"backup without file", []string{"etcd", "backup"}, "no cluster file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := kk(t, append(c.args, "--workdir", t.TempDir())...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v: %v, want %q\n%s", c.args, err, c.want, out)
			}
			noRun(t, c.name, out, err)
		})
	}
	// the bad checksum is refused with nothing changed: the error says so
	_, err := kk(t, "etcd", "restore", "-f", kubekey, "--snapshot", snap, "--yes", "--workdir", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "etcd restore refused, nothing was changed") {
		t.Errorf("bad checksum: %v", err)
	}
}

// For a stacked etcd --list says there is no periodic backup and lists the local snapshots,
// without reaching a host.
func TestEtcdBackupListLocal(t *testing.T) {
	work := t.TempDir()
	dir := filepath.Join(work, "backups", "etcd")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "etcd-snapshot-t-20250101T000000Z.db"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(dir, "etcd-snapshot-t-20250101T000000Z.json"), []byte(`{"revision":42,"member":"n1","time":"2025-01-01T00:00:00Z"}`), 0o644)
	out, err := kk(t, "etcd", "backup", "--list", "-f", etcdClusterFile(t, "kubeadm"), "--workdir", work)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"only for etcd type kubekey", "snapshots taken by kk etcd backup in " + dir, "etcd-snapshot-t-20250101T000000Z.db", " 42 ", " n1"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	noRun(t, "list", out, err)
}

func TestEtcdHelp(t *testing.T) {
	out, err := kk(t, "etcd", "--help")
	if err != nil || !strings.Contains(out, "backup") || !strings.Contains(out, "restore") {
		t.Errorf("kk etcd --help: %v\n%s", err, out)
	}
	out, _ = kk(t, "etcd", "backup", "--help")
	for _, w := range []string{"--list", "-o, --output", "<workdir>/backups/etcd"} {
		if !strings.Contains(out, w) {
			t.Errorf("backup help lacks %q", w)
		}
	}
	out, _ = kk(t, "etcd", "restore", "--help")
	for _, w := range []string{"--snapshot", "never deleted", "--yes"} {
		if !strings.Contains(out, w) {
			t.Errorf("restore help lacks %q", w)
		}
	}
}
