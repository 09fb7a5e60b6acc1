package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/etcd"
)

var now = time.Date(2026, 1, 2, 15, 4, 0, 0, time.UTC)

const day = 24 * time.Hour

type issuer struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

var serial int64

func newCert(t testing.TB, cn string, notAfter time.Time, parent *issuer, ca bool) (*issuer, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: now.Add(-day), NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if ca {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		tmpl.ExtKeyUsage = nil
	}
	signer, signerCert := crypto.Signer(key), tmpl
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return &issuer{c, key, p}, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

func kubeconfig(cert, key []byte) []byte {
	b64 := base64.StdEncoding.EncodeToString
	return []byte(`apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: ` + b64([]byte("not read")) + `
    server: https://lb.kubesphere.local:6443
  name: kubernetes
contexts:
- context: {cluster: kubernetes, user: kubernetes-admin}
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
users:
- name: other
  user:
    token: abc
- name: kubernetes-admin
  user:
    client-certificate-data: ` + b64(cert) + `
    client-key-data: ` + b64(key) + `
`)
}

// fixture is a stacked-etcd control plane: kubeadm's three CAs, their leaves, the admin
// kubeconfig and the kubelet's client certificate, with chosen expiry times.
func fixture(t testing.TB) Files {
	ca, _ := newCert(t, "kubernetes", now.Add(3650*day), nil, true)
	fpCA, _ := newCert(t, "front-proxy-ca", now.Add(200*day), nil, true) // within a year
	etcdCA, _ := newCert(t, "etcd-ca", now.Add(3650*day), nil, true)
	leaf := func(cn string, d time.Duration, p *issuer) []byte {
		c, _ := newCert(t, cn, now.Add(d), p, false)
		return c.pem
	}
	admin, adminKey := newCert(t, "kubernetes-admin", now.Add(5*time.Hour), ca, false)
	kubelet, kubeletKey := newCert(t, "system:node:cp1", now.Add(20*day), ca, false)
	return Files{
		KubeadmPKIDir + "/ca.crt":                       ca.pem,
		KubeadmPKIDir + "/front-proxy-ca.crt":           fpCA.pem,
		KubeadmPKIDir + "/etcd/ca.crt":                  etcdCA.pem,
		KubeadmPKIDir + "/apiserver.crt":                leaf("kube-apiserver", 364*day+time.Hour, ca),
		KubeadmPKIDir + "/apiserver-kubelet-client.crt": leaf("kube-apiserver-kubelet-client", 364*day+time.Hour, ca),
		KubeadmPKIDir + "/front-proxy-client.crt":       leaf("front-proxy-client", 364*day+time.Hour, fpCA),
		KubeadmPKIDir + "/apiserver-etcd-client.crt":    leaf("kube-apiserver-etcd-client", 364*day+time.Hour, etcdCA),
		KubeadmPKIDir + "/etcd/server.crt":              leaf("cp1", 364*day+time.Hour, etcdCA),
		KubeadmPKIDir + "/etcd/peer.crt":                leaf("cp1", -time.Hour, etcdCA), // expired
		KubeconfigDir + "/admin.conf":                   kubeconfig(admin.pem, adminKey),
		KubeletClientCert:                               append(append([]byte{}, kubelet.pem...), kubeletKey...),
	}
}

func byName(rows []Row) map[string]Row {
	m := map[string]Row{}
	for _, r := range rows {
		m[r.Certificate] = r
	}
	return m
}

func TestRowsKubeadm(t *testing.T) {
	rows, problems := Rows("cp1", fixture(t), now, config.EtcdKubeadm)
	if len(problems) != 0 {
		t.Fatal(problems)
	}
	var names []string
	for _, r := range rows {
		names = append(names, r.Certificate)
	}
	want := "apiserver apiserver-etcd-client apiserver-kubelet-client front-proxy-client etcd-peer etcd-server admin.conf kubelet-client ca front-proxy-ca etcd-ca"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("rows:\n got %s\nwant %s", got, want)
	}
	m := byName(rows)
	for name, w := range map[string]struct {
		ca, residual  string
		renews, soon  bool
		expired, isCA bool
	}{
		"apiserver":             {"ca", "364d", true, false, false, false},
		"front-proxy-client":    {"front-proxy-ca", "364d", true, false, false, false},
		"apiserver-etcd-client": {"etcd-ca", "364d", true, false, false, false},
		"etcd-server":           {"etcd-ca", "364d", true, false, false, false},
		"etcd-peer":             {"etcd-ca", "expired", true, true, true, false},
		"admin.conf":            {"ca", "5h", true, true, false, false},
		"kubelet-client":        {"ca", "20d", false, true, false, false},
		"ca":                    {"-", "10y", false, false, false, true},
		"front-proxy-ca":        {"-", "200d", false, false, false, true},
	} {
		r := m[name]
		if r.CA != w.ca || r.Residual != w.residual || r.Renews != w.renews || r.ExpiresSoon != w.soon || r.Expired != w.expired || r.IsCA != w.isCA {
			t.Errorf("%s: got %+v, want %+v", name, r, w)
		}
	}
	if r := m["admin.conf"]; r.Subject != "kubernetes-admin" || r.Path != "/etc/kubernetes/admin.conf" || !r.Expires.Equal(now.Add(5*time.Hour)) {
		t.Errorf("admin.conf row: %+v", r)
	}
}

// kk's etcd (type kubekey): the member's own files get short names, the key files none, and
// the leaves' CA is kk's etcd CA although kubeadm's etcd CA on the host has the same name.
func TestRowsKubeKeyEtcd(t *testing.T) {
	kkCA, _ := newCert(t, "etcd-ca", now.Add(3650*day), nil, true)
	otherCA, _ := newCert(t, "etcd-ca", now.Add(3650*day), nil, true) // same name, other key
	leaf := func(cn string, p *issuer) []byte {
		c, _ := newCert(t, cn, now.Add(364*day+time.Hour), p, false)
		return c.pem
	}
	files := Files{
		etcd.CertDir + "/ca.pem":                    kkCA.pem,
		etcd.CertDir + "/member-e1.pem":             leaf("e1", kkCA),
		etcd.CertDir + "/peer-e1.pem":               leaf("e1", kkCA),
		etcd.CertDir + "/member-e2.pem":             leaf("e2", kkCA),
		etcd.CertDir + "/admin.pem":                 leaf("kk-etcd-admin", kkCA),
		etcd.CertDir + "/apiserver-etcd-client.pem": leaf("kube-apiserver-etcd-client", kkCA),
		etcd.CertDir + "/member-e1-key.pem":         []byte("never read"),
		KubeadmPKIDir + "/etcd/ca.crt":              otherCA.pem,
	}
	rows, problems := Rows("e1", files, now, config.EtcdKubeKey)
	if len(problems) != 0 {
		t.Fatal(problems)
	}
	m := byName(rows)
	for _, n := range []string{"etcd-member", "etcd-member-peer", "etcd-member-e2", "kk-etcd-admin", "kk-apiserver-etcd-client"} {
		if r, ok := m[n]; !ok || r.CA != "kk-etcd-ca" || !r.Renews {
			t.Errorf("%s: %+v (present %v), want CA kk-etcd-ca, renews", n, r, ok)
		}
	}
	if r := m["kk-etcd-ca"]; !r.IsCA || r.Renews || r.CA != "-" {
		t.Errorf("kk-etcd-ca: %+v", r)
	}
	if len(rows) != 7 {
		t.Errorf("%d rows, want 7 (no key file): %+v", len(rows), rows)
	}

	// type external: the user's files, which kk does not renew
	rows, _ = Rows("cp1", files, now, config.EtcdExternal)
	m = byName(rows)
	if r := m["external-etcd-client"]; r.CA != "external-etcd-ca" || r.Renews {
		t.Errorf("external-etcd-client: %+v", r)
	}
	if _, ok := m["etcd-member"]; ok {
		t.Error("type external reports a member certificate")
	}
	// type kubeadm: nothing under the etcd directory
	rows, _ = Rows("cp1", files, now, config.EtcdKubeadm)
	if len(rows) != 1 || rows[0].Certificate != "etcd-ca" {
		t.Errorf("kubeadm: %+v", rows)
	}
}

func TestRowsCANotOnHostAndProblems(t *testing.T) {
	ca, _ := newCert(t, "kubernetes", now.Add(3650*day), nil, true)
	kubelet, _ := newCert(t, "system:node:e1", now.Add(300*day), ca, false)
	files := Files{
		KubeletClientCert:                   kubelet.pem,
		KubeadmPKIDir + "/apiserver.crt":    []byte("garbage"),
		KubeconfigDir + "/scheduler.conf":   []byte("apiVersion: v1\nkind: Config\nusers: []\n"),
		KubeconfigDir + "/super-admin.conf": []byte("users: [[["),
	}
	rows, problems := Rows("e1", files, now, config.EtcdKubeKey)
	if len(rows) != 1 || rows[0].CA != "(kubernetes)" || rows[0].Renews {
		t.Errorf("rows: %+v", rows)
	}
	if len(problems) != 3 {
		t.Fatalf("problems: %v", problems)
	}
	for _, p := range problems {
		if !strings.HasPrefix(p.Error(), "host e1: /etc/kubernetes/") {
			t.Errorf("problem does not name host and path: %v", p)
		}
	}
}

func TestResidual(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Second: "expired", 0: "expired", 30 * time.Second: "30s", 59 * time.Minute: "59m",
		5*time.Hour + 59*time.Minute: "5h", 47 * time.Hour: "47h", 48 * time.Hour: "2d", 364*day + 23*time.Hour: "364d",
		365 * day: "1y", 3650 * day: "10y",
	} {
		if got := Residual(d); got != want {
			t.Errorf("Residual(%s) = %s, want %s", d, got, want)
		}
	}
}

func TestWriteTable(t *testing.T) {
	rows, _ := Rows("cp1", fixture(t), now, config.EtcdKubeadm)
	var b bytes.Buffer
	if err := WriteTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Logf("\n%s", out)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(rows)+1 || !strings.HasPrefix(lines[0], "HOST  CERTIFICATE") {
		t.Fatalf("table:\n%s", out)
	}
	for _, l := range lines {
		if strings.HasSuffix(l, " ") {
			t.Errorf("trailing blanks: %q", l)
		}
	}
	for want, note := range map[string]string{"admin.conf": "<30d", "kubelet-client": "<30d", "etcd-peer": "EXPIRED", "apiserver": ""} {
		var line string
		for _, l := range lines {
			if f := strings.Fields(l); len(f) > 1 && f[1] == want {
				line = l
			}
		}
		if note == "" && (strings.Contains(line, "<30d") || strings.Contains(line, "EXPIRED")) || !strings.HasSuffix(line, note) {
			t.Errorf("%s: line %q, want note %q", want, line, note)
		}
	}
	if !strings.Contains(out, "cp1   admin.conf                Jan 02, 2026 20:04 UTC  5h        ca              yes     <30d") {
		t.Errorf("admin.conf row not rendered as expected:\n%s", out)
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colours in the table")
	}
}

func TestWriteJSON(t *testing.T) {
	rows, _ := Rows("cp1", fixture(t), now, config.EtcdKubeadm)
	var b bytes.Buffer
	if err := WriteJSON(&b, rows); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if len(got) != len(rows) {
		t.Fatalf("%d objects, want %d", len(got), len(rows))
	}
	for _, o := range got {
		if o["certificate"] == "admin.conf" {
			if o["host"] != "cp1" || o["expires"] != "2026-01-02T20:04:00Z" || o["residual"] != "5h" || o["ca"] != "ca" ||
				o["renews"] != true || o["expiresSoon"] != true || o["residualSeconds"] != float64(5*3600) {
				t.Errorf("admin.conf: %v", o)
			}
		}
	}
	b.Reset()
	_ = WriteJSON(&b, nil)
	if strings.TrimSpace(b.String()) != "[]" {
		t.Errorf("no rows: %q", b.String())
	}
}

func TestCAWarningsAndExpiringWithin(t *testing.T) {
	rows, _ := Rows("cp1", fixture(t), now, config.EtcdKubeadm)
	w := CAWarnings(rows)
	if len(w) != 1 || !strings.Contains(w[0], "host cp1: CA front-proxy-ca") || !strings.Contains(w[0], "expires in 200d") {
		t.Errorf("CA warnings: %q", w)
	}
	count := func(d time.Duration) int { return len(ExpiringWithin(rows, d)) }
	if n := count(0); n != 1 { // etcd-peer, expired
		t.Errorf("within 0: %d", n)
	}
	if n := count(6 * time.Hour); n != 2 { // + admin.conf
		t.Errorf("within 6h: %d", n)
	}
	if n := count(30 * day); n != 3 { // + kubelet-client
		t.Errorf("within 30d: %d", n)
	}
	if n := count(365 * day); n != len(rows)-2 { // all but ca and etcd-ca
		t.Errorf("within 365d: %d of %d", n, len(rows))
	}
}

func TestParseWithin(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30d": 30 * day, "0d": 0, "72h": 72 * time.Hour, "1d12h": 36 * time.Hour, " 90m ": 90 * time.Minute, "0": 0,
		"106751d": 106751 * day,
	} {
		if got, err := ParseWithin(in); err != nil || got != want {
			t.Errorf("ParseWithin(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "-1d", "+1d", "1.5d", "30", "-1h", "1d-1h", "2dd", "30days", "106752d", "106751d24h", "x"} {
		if d, err := ParseWithin(in); err == nil {
			t.Errorf("ParseWithin(%q) = %v, want an error", in, d)
		} else if !strings.Contains(err.Error(), "30d") {
			t.Errorf("error does not say what is wanted: %v", err)
		}
	}
}

func FuzzParseWithin(f *testing.F) {
	for _, s := range []string{"30d", "1d12h", "72h", "0", "-1h", "1.5h", "9223372036854775807ns", "106751d23h47m16s", "d", "1d1d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseWithin(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseWithin(%q) = %v, negative", s, d)
		}
		// what it accepts is a duration: Go's own form of it reads back the same
		if back, err := ParseWithin(d.String()); err != nil || back != d {
			t.Fatalf("ParseWithin(%q) = %v, but %q reads back as %v, %v", s, d, d.String(), back, err)
		}
	})
}

func TestParseOutput(t *testing.T) {
	out := "noise\n" + markFile + "/etc/kubernetes/pki/ca.crt\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" + markEnd + "\n" +
		markFile + "/unterminated\nxx\n" +
		markTimer + "LoadState=loaded\n" + markTimer + "UnitFileState=enabled\n" + markTimer + "ActiveState=active\n" + markTimer + "LastTriggerUSec=Mon 2026-01-05 03:00:00 UTC\n"
	files, timer := ParseOutput(out)
	if len(files) != 1 || string(files["/etc/kubernetes/pki/ca.crt"]) != "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" {
		t.Errorf("files: %q", files)
	}
	// the unterminated file swallowed the timer lines: they are part of its body, never state
	if timer != (Timer{}) {
		t.Errorf("timer read from inside a file: %+v", timer)
	}
	_, timer = ParseOutput(strings.Replace(out, markFile+"/unterminated\nxx\n", "", 1))
	if got := timer.String(); got != "installed, enabled, active, last triggered Mon 2026-01-05 03:00:00 UTC" {
		t.Errorf("timer: %s", got)
	}
	for out, want := range map[string]string{
		markTimer + "LoadState=not-found\n" + markTimer + "LastTriggerUSec=n/a\n":                                                                              "not installed",
		markTimer + "LoadState=loaded\n" + markTimer + "UnitFileState=disabled\n" + markTimer + "ActiveState=inactive\n" + markTimer + "LastTriggerUSec=n/a\n": "installed, disabled, inactive, never triggered",
		markTimer + "NoSystemd=yes\n":                                "unknown (no systemctl)",
		markTimer + "Error=Failed to connect to bus: Host is down\n": "unknown (systemctl: Failed to connect to bus: Host is down)",
		"": "unknown (not read)",
	} {
		if _, tm := ParseOutput(out); tm.String() != want {
			t.Errorf("timer %q: %s, want %s", out, tm.String(), want)
		}
	}
}

// The host command, run with sh on a copy of a host's files: it prints every certificate and
// the kubeconfigs' client certificates, and no key, even from a file holding both; what it
// prints gives the same rows as the files themselves.
func TestScriptPrintsCertificatesNeverKeys(t *testing.T) {
	if _, err := exec.LookPath("awk"); err != nil {
		t.Skip("no awk")
	}
	root := t.TempDir()
	files := fixture(t)
	kkCA, _ := newCert(t, "etcd-ca", now.Add(3650*day), nil, true)
	member, memberKey := newCert(t, "cp1", now.Add(100*day), kkCA, false)
	files[etcd.CertDir+"/ca.pem"] = kkCA.pem
	files[etcd.CertDir+"/member-cp1.pem"] = member.pem
	files[etcd.CertDir+"/member-cp1-key.pem"] = memberKey
	// a kubeconfig naming its certificate by a relative path
	sched, schedKey := newCert(t, "system:kube-scheduler", now.Add(50*day), nil, false)
	files[KubeconfigDir+"/scheduler.conf"] = []byte("apiVersion: v1\nkind: Config\nusers:\n- name: s\n  user:\n    client-certificate: pki/sched.crt\n    client-key: pki/sched.key\n")
	files[KubeadmPKIDir+"/sched.crt"] = sched.pem
	files[KubeadmPKIDir+"/sched.key"] = schedKey
	for p, b := range files {
		dst := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	script := Script(config.EtcdKubeKey)
	script = strings.ReplaceAll(script, " /etc/", " "+root+"/etc/")
	script = strings.ReplaceAll(script, " /var/", " "+root+"/var/")
	script = strings.ReplaceAll(script, "command -v systemctl", "false")
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if strings.Contains(string(out), "PRIVATE KEY") || strings.Contains(string(out), "client-key") ||
		strings.Contains(string(out), base64.StdEncoding.EncodeToString(schedKey)[:40]) {
		t.Fatalf("the script printed a key:\n%s", out)
	}
	got, timer := ParseOutput(string(out))
	if !timer.NoSystemd {
		t.Errorf("timer: %+v", timer)
	}
	// the files under their host paths
	host := Files{}
	for p, b := range got {
		host[strings.TrimPrefix(p, root)] = b
	}
	for p, b := range host { // the kubeconfig's reference, as the host wrote it
		host[p] = bytes.ReplaceAll(b, []byte(root), nil)
	}
	rows, problems := Rows("cp1", host, now, config.EtcdKubeKey)
	if len(problems) != 0 {
		t.Fatal(problems)
	}
	want, _ := Rows("cp1", files, now, config.EtcdKubeKey)
	if len(rows) != len(want) {
		t.Fatalf("%d rows from the script's output, %d from the files:\n%+v", len(rows), len(want), rows)
	}
	for i := range rows {
		if rows[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, rows[i], want[i])
		}
	}
	if m := byName(rows); m["scheduler.conf"].Subject != "system:kube-scheduler" || m["etcd-member"].CA != "kk-etcd-ca" || m["admin.conf"].Subject != "kubernetes-admin" {
		t.Errorf("rows: %+v", rows)
	}
}
