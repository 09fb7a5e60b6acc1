package etcd

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/binaries"
)

func testCluster() *config.Cluster {
	etcd := []config.Role{config.RoleEtcd}
	return &config.Cluster{
		Name: "t",
		Hosts: []*config.Host{
			{Name: "n1", Address: "203.0.113.1", InternalAddress: "10.0.0.1", Arch: "amd64", Roles: []config.Role{config.RoleEtcd, config.RoleControlPlane}},
			{Name: "n2", Address: "n2.example.com", InternalAddress: "10.0.0.2,fd00::2", Arch: "amd64", Roles: etcd},
			{Name: "n3", Address: "10.0.0.3", InternalAddress: "10.0.0.3", Arch: "amd64", Roles: etcd},
			{Name: "w1", Address: "10.0.0.9", InternalAddress: "10.0.0.9", Arch: "amd64", Roles: []config.Role{config.RoleWorker}},
		},
		Kubernetes: config.Kubernetes{ClusterName: "cluster.local"},
		Etcd: config.Etcd{
			Type: config.EtcdKubeKey, Port: 2379, PeerPort: 2380, DataDir: "/var/lib/etcd",
			BackupDir: "/var/backups/kube_etcd", BackupPeriod: 30, KeepBackupNumber: 4, BackupScriptDir: "/usr/local/bin/kube-scripts",
			HeartbeatInterval: 250, ElectionTimeout: 5000, SnapshotCount: 10000, AutoCompactionRetention: 8,
			Metrics: "basic", QuotaBackendBytes: 2147483648, MaxRequestBytes: 1572864, MaxSnapshots: 5, MaxWals: 5, LogLevel: "info",
		},
	}
}

func testFiles(t *testing.T) binaries.Files {
	t.Helper()
	dir := t.TempDir()
	var f binaries.Files
	for _, n := range Programs {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		f.Add("amd64", n, p)
	}
	return f
}

func parseCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSpecForMembersAndSANs(t *testing.T) {
	s, err := SpecFor(testCluster(), t.TempDir(), testFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range s.Members {
		names = append(names, m.Name)
	}
	if !slices.Equal(names, []string{"n1", "n2", "n3"}) {
		t.Fatalf("members %v, want the etcd hosts n1 n2 n3", names)
	}
	want := map[string]struct{ dns, ips []string }{
		"n1": {[]string{"n1", "n1.cluster.local", "localhost"}, []string{"10.0.0.1", "203.0.113.1", "127.0.0.1", "::1"}},
		"n2": {[]string{"n2", "n2.cluster.local", "localhost", "n2.example.com"}, []string{"10.0.0.2", "fd00::2", "127.0.0.1", "::1"}},
		"n3": {[]string{"n3", "n3.cluster.local", "localhost"}, []string{"10.0.0.3", "127.0.0.1", "::1"}},
	}
	for name, w := range want {
		for kind, pair := range map[string][]byte{"server": s.Server[name].CertPEM, "peer": s.Peer[name].CertPEM} {
			c := parseCert(t, pair)
			if c.Subject.CommonName != name {
				t.Errorf("%s %s CN %q", name, kind, c.Subject.CommonName)
			}
			if !slices.Equal(c.DNSNames, w.dns) {
				t.Errorf("%s %s DNS SANs %v, want %v", name, kind, c.DNSNames, w.dns)
			}
			var ips []string
			for _, ip := range c.IPAddresses {
				ips = append(ips, ip.String())
			}
			if !slices.Equal(ips, w.ips) {
				t.Errorf("%s %s IP SANs %v, want %v", name, kind, ips, w.ips)
			}
			if !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
				t.Errorf("%s %s usages %v", name, kind, c.ExtKeyUsage)
			}
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(s.CA)
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Errorf("%s %s does not verify against the etcd CA: %v", name, kind, err)
			}
		}
	}
	if _, ok := s.Server["w1"]; ok {
		t.Error("a worker got an etcd member certificate")
	}
	for kind, p := range map[string][]byte{"admin": s.Admin.CertPEM, "apiserver": s.APIServerClient.CertPEM} {
		c := parseCert(t, p)
		if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
			t.Errorf("%s client cert usages %v", kind, c.ExtKeyUsage)
		}
	}
	if !bytes.Equal(s.ClientCert, s.APIServerClient.CertPEM) || !bytes.Equal(s.ClientCA, s.CA) || !bytes.Equal(s.ClientKey, s.APIServerClient.KeyPEM) {
		t.Error("client files for control planes are not the CA and the kube-apiserver client pair")
	}
}

func TestSpecForReusesCertificates(t *testing.T) {
	work, files := t.TempDir(), testFiles(t)
	first, err := SpecFor(testCluster(), work, files)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Issued) != 1+2*3+2 {
		t.Errorf("first SpecFor issued %v, want CA, 2 per member, admin, apiserver client", first.Issued)
	}
	second, err := SpecFor(testCluster(), work, files)
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Issued) != 0 {
		t.Errorf("second SpecFor re-issued %v", second.Issued)
	}
	if !bytes.Equal(first.CA, second.CA) || !bytes.Equal(first.Server["n2"].KeyPEM, second.Server["n2"].KeyPEM) ||
		!bytes.Equal(first.Peer["n3"].CertPEM, second.Peer["n3"].CertPEM) || !bytes.Equal(first.Admin.CertPEM, second.Admin.CertPEM) {
		t.Error("second SpecFor returned other certificates")
	}
	// a member's address changes: only its two certificates are re-issued
	c := testCluster()
	c.Hosts[2].Address = "198.51.100.3"
	third, err := SpecFor(c, work, files)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(third.Issued, []string{"member-n3", "peer-n3"}) {
		t.Errorf("after n3's address changed, issued %v, want member-n3 peer-n3", third.Issued)
	}
	if !slices.ContainsFunc(parseCert(t, third.Server["n3"].CertPEM).IPAddresses, net.ParseIP("198.51.100.3").Equal) {
		t.Error("re-issued n3 certificate lacks the new address")
	}
}

func TestSpecForNeedsBinaries(t *testing.T) {
	var f binaries.Files
	f.Add("amd64", "etcd", "/x/etcd")
	_, err := SpecFor(testCluster(), t.TempDir(), f)
	if err == nil || !strings.Contains(err.Error(), "etcdctl") || !strings.Contains(err.Error(), "etcdutl") {
		t.Errorf("want an error naming etcdctl and etcdutl, got %v", err)
	}
}

func TestRenderEnv(t *testing.T) {
	s, err := SpecFor(testCluster(), t.TempDir(), testFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, state := range []string{StateNew, StateExisting} {
		b, err := s.RenderEnv("n2", state)
		if err != nil {
			t.Fatal(err)
		}
		env := string(b)
		for _, want := range []string{
			"ETCD_NAME=n2\n",
			"ETCD_INITIAL_CLUSTER=n1=https://10.0.0.1:2380,n2=https://10.0.0.2:2380,n3=https://10.0.0.3:2380\n",
			"ETCD_INITIAL_CLUSTER_STATE=" + state + "\n",
			"ETCD_ADVERTISE_CLIENT_URLS=https://10.0.0.2:2379\n",
			"ETCD_LISTEN_CLIENT_URLS=https://10.0.0.2:2379,https://127.0.0.1:2379\n",
			"ETCD_INITIAL_ADVERTISE_PEER_URLS=https://10.0.0.2:2380\n",
			"ETCD_LISTEN_PEER_URLS=https://10.0.0.2:2380\n",
			"ETCD_DATA_DIR=/var/lib/etcd\n",
			"ETCD_HEARTBEAT_INTERVAL=250\n", "ETCD_ELECTION_TIMEOUT=5000\n", "ETCD_SNAPSHOT_COUNT=10000\n",
			"ETCD_AUTO_COMPACTION_RETENTION=8\n", "ETCD_QUOTA_BACKEND_BYTES=2147483648\n", "ETCD_MAX_REQUEST_BYTES=1572864\n",
			"ETCD_METRICS=basic\n", "ETCD_LOG_LEVEL=info\n",
			"ETCD_CERT_FILE=/etc/ssl/etcd/ssl/member-n2.pem\n", "ETCD_KEY_FILE=/etc/ssl/etcd/ssl/member-n2-key.pem\n",
			"ETCD_PEER_CERT_FILE=/etc/ssl/etcd/ssl/peer-n2.pem\n", "ETCD_TRUSTED_CA_FILE=/etc/ssl/etcd/ssl/ca.pem\n",
			"ETCD_CLIENT_CERT_AUTH=true\n", "ETCD_PEER_CLIENT_CERT_AUTH=true\n",
		} {
			if !strings.Contains(env, want) {
				t.Errorf("env (%s) lacks %q:\n%s", state, want, env)
			}
		}
	}
	if _, err := s.RenderEnv("w1", StateNew); err == nil {
		t.Error("rendered an env file for a host without role etcd")
	}
}

// TestRenderEnvExtraArgs: etcd.extraArgs become ETCD_* lines in flag-name order; one naming a
// flag kk sets itself replaces kk's line; a bad flag name or a value with a line break fails.
func TestRenderEnvExtraArgs(t *testing.T) {
	c := testCluster()
	c.Etcd.ExtraArgs = map[string]string{"--quota-backend-bytes": "8589934592", "experimental-initial-corrupt-check": "true", "auto-compaction-mode": "revision"}
	s, err := SpecFor(c, t.TempDir(), testFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.RenderEnv("n1", StateNew)
	if err != nil {
		t.Fatal(err)
	}
	env := string(b)
	want := "# etcd.extraArgs (they replace kk's own line of the same flag)\n" +
		"ETCD_AUTO_COMPACTION_MODE=revision\nETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK=true\nETCD_QUOTA_BACKEND_BYTES=8589934592\n"
	if !strings.HasSuffix(env, want) {
		t.Errorf("env does not end with the extra args:\n%s", env)
	}
	if n := strings.Count(env, "ETCD_QUOTA_BACKEND_BYTES="); n != 1 {
		t.Errorf("ETCD_QUOTA_BACKEND_BYTES set %d times:\n%s", n, env)
	}
	if !strings.Contains(env, "ETCD_NAME=n1\n") {
		t.Errorf("kk's own lines are gone:\n%s", env)
	}
	for _, bad := range []map[string]string{{"--bad flag": "x"}, {"log-level": "debug\nETCD_NAME=evil"}, {"--name": "a", "name": "b"}} {
		c.Etcd.ExtraArgs = bad
		s.Etcd = c.Etcd
		if _, err := s.RenderEnv("n1", StateNew); err == nil || !strings.Contains(err.Error(), "etcd.extraArgs") {
			t.Errorf("%v: want an etcd.extraArgs error, got %v", bad, err)
		}
	}
	u, err := s.RenderUnit("n1", false)
	if err != nil || !strings.Contains(string(u), "EnvironmentFile=/etc/etcd.env\n") || !strings.Contains(string(u), "ExecStart=/usr/local/bin/etcd\n") ||
		!strings.Contains(string(u), "Type=notify") || !strings.Contains(string(u), "LimitNOFILE=65536") {
		t.Errorf("unit: %v\n%s", err, u)
	}
	if u, _ := s.RenderUnit("n1", true); strings.Contains(string(u), "LimitNOFILE") {
		t.Errorf("unit in a container raises the open-files limit:\n%s", u)
	}
}

func TestBackupFiles(t *testing.T) {
	s, err := SpecFor(testCluster(), t.TempDir(), testFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	files, err := s.BackupFiles("n1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range files {
		got[f.Path] = string(f.Data)
	}
	script := got["/usr/local/bin/kube-scripts/etcd-backup.sh"]
	timer := got["/etc/systemd/system/backup-etcd.timer"]
	svc := got["/etc/systemd/system/backup-etcd.service"]
	for _, want := range []string{"OnActiveSec=30min\n", "OnUnitActiveSec=30min\n", "WantedBy=timers.target"} {
		if !strings.Contains(timer, want) {
			t.Errorf("timer lacks %q:\n%s", want, timer)
		}
	}
	for _, want := range []string{"Type=oneshot", "ExecStart=/usr/local/bin/kube-scripts/etcd-backup.sh\n"} {
		if !strings.Contains(svc, want) {
			t.Errorf("service lacks %q:\n%s", want, svc)
		}
	}
	for _, want := range []string{"dir=/var/backups/kube_etcd\n", "keep=4\n", "snapshot save", "--endpoints=https://127.0.0.1:2379",
		"--cert=/etc/ssl/etcd/ssl/admin.pem", "--key=/etc/ssl/etcd/ssl/admin-key.pem"} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	if files[0].Mode != 0o755 {
		t.Errorf("script mode %o", files[0].Mode)
	}
}

func TestUnhealthy(t *testing.T) {
	s, err := SpecFor(testCluster(), t.TempDir(), testFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	all := `[{"endpoint":"https://10.0.0.1:2379","health":true,"took":"3ms"},{"endpoint":"https://10.0.0.2:2379","health":true,"took":"3ms"},{"endpoint":"https://10.0.0.3:2379","health":true,"took":"3ms"}]`
	if bad := s.Unhealthy(all, ""); bad != nil {
		t.Errorf("healthy cluster reported %v", bad)
	}
	one := `[{"endpoint":"https://10.0.0.1:2379","health":true,"took":"3ms"},{"endpoint":"https://10.0.0.3:2379","health":false,"took":"5s","error":"context deadline exceeded"}]`
	bad := s.Unhealthy(one, "Error: unhealthy cluster")
	if len(bad) != 2 || !strings.HasPrefix(bad[0], "n2 (https://10.0.0.2:2379): not a started member") ||
		bad[1] != "n3 (https://10.0.0.3:2379): context deadline exceeded" {
		t.Errorf("got %q", bad)
	}
	bad = s.Unhealthy("", "{\"level\":\"warn\"}\nError: context deadline exceeded")
	if len(bad) != 1 || !strings.Contains(bad[0], "Error: context deadline exceeded") {
		t.Errorf("no JSON: got %q", bad)
	}
}

func TestTypesAndClientFiles(t *testing.T) {
	c := testCluster()
	if eps := Endpoints(c); !slices.Equal(eps, []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.3:2379"}) {
		t.Errorf("endpoints %v", eps)
	}
	s, err := SpecFor(c, t.TempDir(), testFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, task := range Tasks(s) {
		names = append(names, task.Name)
	}
	if !slices.Equal(names, []string{TaskCerts, TaskInstall, TaskConfig, TaskService, TaskHealth, TaskBackup}) {
		t.Errorf("tasks %v", names)
	}
	if ct := ClientTasks(s); len(ct) != 1 || ct[0].Hosts.Desc != "control-plane" {
		t.Errorf("client tasks %+v", ct)
	}
	if ca, cert, key := ClientFiles(c); ca != ClientCAFile || cert != ClientCertFile || key != ClientKeyFile {
		t.Errorf("client files %s %s %s", ca, cert, key)
	}

	c.Etcd.Type = config.EtcdKubeadm
	s, err = SpecFor(c, t.TempDir(), binaries.Files{})
	if err != nil || Tasks(s) != nil || ClientTasks(s) != nil || Endpoints(c) != nil {
		t.Errorf("kubeadm etcd: err %v, tasks %d, client tasks %d, endpoints %v", err, len(Tasks(s)), len(ClientTasks(s)), Endpoints(c))
	}

	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	os.WriteFile(ca, []byte("CA"), 0o600)
	c.Etcd.Type = config.EtcdExternal
	c.Etcd.External = config.ExternalEtcd{Endpoints: []string{"https://192.0.2.10:2379"}, CAFile: ca,
		CertFile: filepath.Join(dir, "missing.crt"), KeyFile: filepath.Join(dir, "missing.key")}
	if _, err := SpecFor(c, t.TempDir(), binaries.Files{}); err == nil || !strings.Contains(err.Error(), "missing.crt") {
		t.Errorf("missing external cert file: got %v, want an error naming missing.crt", err)
	}
	os.WriteFile(c.Etcd.External.CertFile, []byte("CERT"), 0o600)
	os.WriteFile(c.Etcd.External.KeyFile, []byte("KEY"), 0o600)
	s, err = SpecFor(c, t.TempDir(), binaries.Files{})
	if err != nil {
		t.Fatal(err)
	}
	if Tasks(s) != nil || len(ClientTasks(s)) != 1 || string(s.ClientCA) != "CA" || string(s.ClientKey) != "KEY" {
		t.Errorf("external: tasks %d, client tasks %d", len(Tasks(s)), len(ClientTasks(s)))
	}
	if eps := Endpoints(c); !slices.Equal(eps, []string{"https://192.0.2.10:2379"}) {
		t.Errorf("external endpoints %v", eps)
	}
	c.Etcd.External.CertFile, c.Etcd.External.KeyFile, c.Etcd.External.CAFile = "", "", ""
	s, _ = SpecFor(c, t.TempDir(), binaries.Files{})
	if ClientTasks(s) != nil {
		t.Error("external etcd without TLS files got a client-certs task")
	}
	if a, b, k := ClientFiles(c); a != "" || b != "" || k != "" {
		t.Errorf("external without TLS: client files %q %q %q", a, b, k)
	}
}

func TestMembership(t *testing.T) {
	s, err := SpecFor(testCluster(), t.TempDir(), testFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	ml := &memberList{Members: []listedMember{
		{Name: "n1", PeerURLs: []string{"https://10.0.0.1:2380"}},
		{Name: "", PeerURLs: []string{"https://10.0.0.3:2380"}}, // added, not started yet
	}}
	if got := s.membership(ml); got != "n1=https://10.0.0.1:2380,n3=https://10.0.0.3:2380" {
		t.Errorf("membership %q", got)
	}
	if got := s.InitialCluster(); got != "n1=https://10.0.0.1:2380,n2=https://10.0.0.2:2380,n3=https://10.0.0.3:2380" {
		t.Errorf("initial cluster %q", got)
	}
	env, err := s.renderEnv("n3", StateExisting, s.membership(ml))
	if err != nil || !strings.Contains(string(env), "ETCD_INITIAL_CLUSTER=n1=https://10.0.0.1:2380,n3=https://10.0.0.3:2380\n") {
		t.Errorf("joining env: %v\n%s", err, env)
	}
}
