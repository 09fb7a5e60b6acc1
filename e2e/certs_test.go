//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/e2e/testbed"
)

// certLifetime is the leaf certificate lifetime of the HA and kube-vip clusters
// (kubernetes.certificateValidityPeriod): short, so that check-expiration, renew and the
// renewal timer act on certificates close to expiry.
const certLifetime = "3h"

// certRow is one row of kk certs check-expiration -o json.
type certRow struct {
	Host        string    `json:"host"`
	Certificate string    `json:"certificate"`
	Path        string    `json:"path"`
	Expires     time.Time `json:"expires"`
	IsCA        bool      `json:"isCA"`
	Renews      bool      `json:"renews"`
}

// checkExpiration runs kk certs check-expiration -o json and returns its rows by host and path.
func checkExpiration(t *testing.T, bin, cfg string, bed *testbed.Bed) map[string]certRow {
	t.Helper()
	r := kk(t, bin, "certs", "check-expiration", "-f", cfg, "-o", "json", "--known-hosts", bed.KnownHosts)
	if r.code != 0 {
		t.Fatalf("kk certs check-expiration: exit %d", r.code)
	}
	// the JSON is stdout; notes went to stderr, which kk() mixed in: take the array
	start, end := strings.Index(r.out, "[\n"), strings.LastIndex(r.out, "\n]")
	if start < 0 || end < start {
		t.Fatalf("no JSON array in check-expiration's output")
	}
	var rows []certRow
	if err := json.Unmarshal([]byte(r.out[start:end+2]), &rows); err != nil {
		t.Fatalf("check-expiration JSON: %v", err)
	}
	out := map[string]certRow{}
	for _, row := range rows {
		out[row.Host+" "+row.Path] = row
	}
	return out
}

// leavesExpireWithin fails unless every certificate kk renews expires within d from now and
// there are at least min of them.
func leavesExpireWithin(t *testing.T, rows map[string]certRow, d time.Duration, min int) {
	t.Helper()
	n := 0
	for k, r := range rows {
		if !r.Renews {
			continue
		}
		n++
		if left := time.Until(r.Expires); left > d {
			t.Errorf("%s (%s) expires in %s, want within %s (kubernetes.certificateValidityPeriod: %s)", k, r.Certificate, left.Round(time.Minute), d, certLifetime)
		}
	}
	if n < min {
		t.Errorf("%d renewable certificates, want at least %d", n, min)
	}
}

// renewedAll fails unless every certificate kk renews (on host, or on every host when
// host is "") expires later in after than in before, and every CA is the same (same expiry:
// kk never re-issues a CA).
func renewedAll(t *testing.T, what, host string, before, after map[string]certRow) {
	t.Helper()
	for k, b := range before {
		if host != "" && b.Host != host {
			continue
		}
		a, ok := after[k]
		if !ok {
			t.Errorf("%s: %s is gone", what, k)
			continue
		}
		switch {
		case b.Renews && !a.Expires.After(b.Expires):
			t.Errorf("%s: %s (%s) still expires %s", what, k, b.Certificate, a.Expires)
		case b.IsCA && !a.Expires.Equal(b.Expires):
			t.Errorf("%s: CA %s changed: expires %s, was %s", what, k, a.Expires, b.Expires)
		}
	}
}

// caFingerprints are the sha256 sums of every CA file on machines.
func caFingerprints(t *testing.T, bed *testbed.Bed, ms []testbed.Machine) string {
	t.Helper()
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(m.Name + "\n" + rootSSH(t, bed, m, "sha256sum /etc/kubernetes/pki/ca.crt /etc/kubernetes/pki/front-proxy-ca.crt "+
			"/etc/kubernetes/pki/etcd/ca.crt /etc/ssl/etcd/ssl/ca.pem 2>/dev/null; true"))
	}
	return b.String()
}

// poller runs on machine m a loop of API requests through the internal load balancer (a new
// connection each, as kubectl makes), one a second, logging ok or FAIL per request;
// stop ends it and returns the counts.
func poller(t *testing.T, bed *testbed.Bed, m testbed.Machine, server string) (stop func() (ok, failed int, failures string)) {
	t.Helper()
	rootSSH(t, bed, m, `rm -f /root/poll.stop /root/poll.log /root/poll.err; nohup sh -c 'while [ ! -f /root/poll.stop ]; do `+
		`if kubectl --kubeconfig /root/admin.conf --server `+server+` --request-timeout=20s get --raw /api/v1/namespaces/kube-system >/dev/null 2>>/root/poll.err; `+
		`then echo ok; else echo "FAIL $(date +%T)"; fi >> /root/poll.log; sleep 1; done' >/dev/null 2>&1 &`)
	return func() (int, int, string) {
		rootSSH(t, bed, m, "touch /root/poll.stop; sleep 2")
		log := rootSSH(t, bed, m, "cat /root/poll.log")
		return strings.Count(log, "ok\n"), strings.Count(log, "FAIL"), rootSSH(t, bed, m, "grep FAIL /root/poll.log; tail -n 20 /root/poll.err; true")
	}
}

// renewOptions: what renewCerts does besides renewing.
type renewOptions struct {
	// pollFrom, when set, polls the API through server during the renewal.
	pollFrom *testbed.Machine
	server   string
	// runTimer starts the timer's service on the first host; nodesReady waits for every
	// node Ready after each renewal (a cluster without a network has none).
	runTimer, nodesReady bool
}

// renewCerts is the certificate step of a cluster whose certificates live certLifetime:
// check-expiration shows them close to expiry; kk certs renew (with a client polling the API
// through the load balancer, when asked) extends every one on every host and keeps every CA;
// the admin kubeconfig kk rewrote works; the renewal timer is installed on every
// control-plane and etcd host and, when asked, started by hand on the first, renews there.
func renewCerts(t *testing.T, bin, cfg, kcfg string, bed *testbed.Bed, hosts []testbed.Machine, o renewOptions) {
	t.Helper()
	before := checkExpiration(t, bin, cfg, bed)
	leavesExpireWithin(t, before, 3*time.Hour+10*time.Minute, 10*len(hosts))
	cas := caFingerprints(t, bed, hosts)

	var stop func() (int, int, string)
	if o.pollFrom != nil {
		stop = poller(t, bed, *o.pollFrom, o.server)
		time.Sleep(3 * time.Second)
	}
	start := time.Now()
	if r := kkLong(t, bin, "certs", "renew", "-f", cfg, "-y", "--known-hosts", bed.KnownHosts, "--workdir", workdirOf(kcfg)); r.code != 0 {
		t.Fatalf("kk certs renew: exit %d", r.code)
	}
	t.Logf("kk certs renew on %d hosts took %s", len(hosts), time.Since(start).Round(time.Second))
	if stop != nil {
		ok, failed, failures := stop()
		t.Logf("API poller through %s during the renewal: %d requests ok, %d failed", o.server, ok, failed)
		if failed > 0 || ok < 20 {
			t.Errorf("API poller through the load balancer: %d ok, %d failed during kk certs renew:\n%s", ok, failed, failures)
		}
	}
	renewed := checkExpiration(t, bin, cfg, bed)
	renewedAll(t, "kk certs renew", "", before, renewed)
	leavesExpireWithin(t, renewed, 3*time.Hour+10*time.Minute, 10*len(hosts))
	if got := caFingerprints(t, bed, hosts); got != cas {
		t.Errorf("CA files changed by kk certs renew:\nbefore:\n%s\nafter:\n%s", cas, got)
	}
	mustKubectl(t, kcfg, "get", "--raw", "/readyz")
	if o.nodesReady {
		mustKubectl(t, kcfg, "wait", "--for=condition=Ready", "node", "--all", "--timeout=300s")
	}

	// The timer: installed and waiting on every host; its service, started by hand on the
	// first (a control plane and, with kk's etcd, a member), renews what expires within 30
	// days there (every certificate here) and only there.
	for _, m := range hosts {
		if out := rootSSH(t, bed, m, "systemctl is-enabled kk-certs-renew.timer; systemctl is-active kk-certs-renew.timer"); out != "enabled\nactive\n" {
			t.Errorf("%s: kk-certs-renew.timer: %q, want enabled and active", m.Name, out)
		}
	}
	if !o.runTimer {
		return
	}
	m := hosts[0]
	if out, err := sshLong(bed, m, "systemctl start kk-certs-renew.service"); err != nil {
		t.Fatalf("%s: systemctl start kk-certs-renew.service: %v\n%s\n%s", m.Name, err, out,
			rootSSH(t, bed, m, "journalctl -u kk-certs-renew.service --no-pager -o cat | tail -n 40"))
	}
	t.Logf("%s: kk-certs-renew.service:\n%s", m.Name, rootSSH(t, bed, m, "journalctl -u kk-certs-renew.service --no-pager -o cat | tail -n 8"))
	timed := checkExpiration(t, bin, cfg, bed)
	renewedAll(t, "kk-certs-renew.service", m.Name, renewed, timed)
	for k, r := range renewed {
		if r.Host != m.Name && !timed[k].Expires.Equal(r.Expires) {
			t.Errorf("kk-certs-renew.service on %s changed %s on another host", m.Name, k)
		}
	}
	if got := caFingerprints(t, bed, hosts); got != cas {
		t.Errorf("CA files changed by kk-certs-renew.service:\nbefore:\n%s\nafter:\n%s", cas, got)
	}
	mustKubectl(t, kcfg, "wait", "--for=condition=Ready", "node", "--all", "--timeout=300s")
}

// workdirOf is the kk workdir of the admin kubeconfig kk wrote there.
func workdirOf(kcfg string) string { return kcfg[:strings.LastIndexByte(kcfg, '/')] }

// backupRestore is the etcd step of the HA cluster: a namespace with a ConfigMap, kk etcd
// backup, the namespace deleted, kk etcd restore of that snapshot: the namespace and its
// ConfigMap are back, every node Ready, etcd healthy; a damaged copy of the snapshot is
// refused before anything stops.
func backupRestore(t *testing.T, bin, cfg, kcfg string, bed *testbed.Bed, members int) {
	t.Helper()
	mustKubectl(t, kcfg, "create", "namespace", "e2e-restore")
	mustKubectl(t, kcfg, "-n", "e2e-restore", "create", "configmap", "kept", "--from-literal=by=kk-etcd-backup")
	dir := t.TempDir()
	common := []string{"-f", cfg, "--known-hosts", bed.KnownHosts, "--workdir", workdirOf(kcfg)}
	if r := kk(t, bin, append([]string{"etcd", "backup", "-o", dir}, common...)...); r.code != 0 {
		t.Fatalf("kk etcd backup: exit %d", r.code)
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "*.db"))
	if len(snaps) != 1 {
		t.Fatalf("kk etcd backup wrote %v, want one snapshot", snaps)
	}
	if r := kk(t, bin, append([]string{"etcd", "backup", "--list", "-o", dir}, common...)...); r.code != 0 || !strings.Contains(r.out, filepath.Base(snaps[0])) {
		t.Errorf("kk etcd backup --list: exit %d, does not list %s", r.code, filepath.Base(snaps[0]))
	}
	mustKubectl(t, kcfg, "delete", "namespace", "e2e-restore", "--wait=true", "--timeout=120s")

	// a damaged copy (its checksum file kept) is refused, and nothing stopped
	bad := filepath.Join(t.TempDir(), filepath.Base(snaps[0]))
	for _, f := range [][2]string{{snaps[0], bad}, {snaps[0] + ".sha256", bad + ".sha256"},
		{strings.TrimSuffix(snaps[0], ".db") + ".json", strings.TrimSuffix(bad, ".db") + ".json"}} {
		copyFile(t, f[0], f[1])
	}
	data, _ := os.ReadFile(bad)
	data[len(data)/2] ^= 0xff
	os.WriteFile(bad, data, 0o600)
	if r := kk(t, bin, append([]string{"etcd", "restore", "--snapshot", bad, "-y"}, common...)...); r.code == 0 || !strings.Contains(r.out, "checksum") {
		t.Errorf("kk etcd restore of a damaged snapshot: exit %d, want a refusal naming the checksum", r.code)
	}
	mustKubectl(t, kcfg, "get", "--raw", "/readyz")

	start := time.Now()
	if r := kkLong(t, bin, append([]string{"etcd", "restore", "--snapshot", snaps[0], "-y"}, common...)...); r.code != 0 {
		t.Fatalf("kk etcd restore: exit %d", r.code)
	}
	t.Logf("kk etcd restore took %s", time.Since(start).Round(time.Second))
	waitFor(t, 3*time.Minute, "the restored namespace", func() bool {
		out, err := kubectl(t, kcfg, "-n", "e2e-restore", "get", "configmap", "kept", "-o", "jsonpath={.data.by}")
		return err == nil && out == "kk-etcd-backup"
	})
	mustKubectl(t, kcfg, "wait", "--for=condition=Ready", "node", "--all", "--timeout=300s")
	health := rootSSH(t, bed, bed.Machines[0], "ETCDCTL_API=3 etcdctl --cacert /etc/ssl/etcd/ssl/ca.pem --cert /etc/ssl/etcd/ssl/admin.pem "+
		"--key /etc/ssl/etcd/ssl/admin-key.pem --endpoints https://127.0.0.1:2379 endpoint health --cluster")
	if c := strings.Count(health, "is healthy"); c != members {
		t.Errorf("etcd after the restore: %d healthy members, want %d:\n%s", c, members, health)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
