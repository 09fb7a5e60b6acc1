package certs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	certutil "k8s.io/client-go/util/cert"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/etcd"
	"github.com/kk-project/kk/modules/pki"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/pipeline/connector/connectortest"
)

// scriptOutput is what Script prints on a host holding files.
func scriptOutput(files Files) string {
	var b strings.Builder
	for p, data := range files {
		b.WriteString(markFile + p + "\n" + string(data))
		if !strings.HasSuffix(string(data), "\n") {
			b.WriteString("\n")
		}
		b.WriteString(markEnd + "\n")
	}
	return b.String()
}

// The timer's renewal on a host renews only when a certificate kk renews is due, through
// kubeadm certs renew all and the restart script, never for a CA or the kubelet's own.
func TestRenewLocalKubeadm(t *testing.T) {
	files := fixture(t)
	const url = "https://10.0.0.11:6443"
	for _, tc := range []struct {
		within  time.Duration
		renewed string // "" when nothing is due
	}{
		{30 * day, "etcd-peer admin.conf"}, // the kubelet's (20d) and front-proxy-ca (200d) are not kk's to renew
		{time.Hour, "etcd-peer"},           // expired an hour ago
		{-2 * time.Hour, ""},               // nothing expired for more than 2 hours
	} {
		var scripts []string
		shell := func(_ context.Context, s string) (string, error) {
			scripts = append(scripts, s)
			if len(scripts) == 1 {
				return scriptOutput(files), nil
			}
			return "", nil
		}
		var log strings.Builder
		got, err := RenewLocal(context.Background(), LocalOptions{Host: "cp1", EtcdType: config.EtcdKubeadm, Within: tc.within,
			APIServer: url, Shell: shell, Now: func() time.Time { return now }}, &log)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, " ") != tc.renewed {
			t.Errorf("within %s: renewed %q, want %q", tc.within, got, tc.renewed)
		}
		if tc.renewed == "" {
			if len(scripts) != 1 || !strings.Contains(log.String(), "no certificate expires within") {
				t.Errorf("within %s: ran %d scripts, log %q", tc.within, len(scripts), log.String())
			}
			continue
		}
		if len(scripts) != 2 || scripts[1] != KubeadmRenewScript(url) {
			t.Errorf("within %s: scripts %q, want the read and then KubeadmRenewScript", tc.within, scripts)
		}
	}
}

// kk's etcd certificates are re-issued on the host as they were (names, addresses, usages,
// lifetime), with a new key, by the etcd CA beside them.
func TestReissueFile(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := pki.LoadOrCreateCA(dir, "ca", "etcd-ca")
	if err != nil {
		t.Fatal(err)
	}
	spec := etcd.MemberCertSpec(etcd.Member{Name: "n1", DNSNames: []string{"n1", "localhost"}})
	spec.Validity = 3 * time.Hour
	p, err := ca.Issue(spec)
	if err != nil {
		t.Fatal(err)
	}
	crt, key := filepath.Join(dir, "member-n1.pem"), filepath.Join(dir, "member-n1-key.pem")
	if err := pki.WriteFiles(p, crt, key); err != nil {
		t.Fatal(err)
	}
	if err := reissueFile(ca, crt); err != nil {
		t.Fatal(err)
	}
	old, _ := certutil.ParseCertsPEM(p.CertPEM)
	cs, err := certutil.CertsFromFile(crt)
	if err != nil {
		t.Fatal(err)
	}
	c := cs[0]
	if c.SerialNumber.Cmp(old[0].SerialNumber) == 0 || c.Subject.CommonName != "n1" || strings.Join(c.DNSNames, ",") != "n1,localhost" ||
		len(c.ExtKeyUsage) != 2 || c.NotAfter.Sub(c.NotBefore) != old[0].NotAfter.Sub(old[0].NotBefore) || c.CheckSignatureFrom(ca.Cert) != nil {
		t.Errorf("re-issued certificate differs: %+v", c)
	}
	if keyPEM, _ := os.ReadFile(key); string(keyPEM) == string(p.KeyPEM) {
		t.Error("the key was not renewed")
	}
	if err := reissueFile(ca, filepath.Join(dir, "none.pem")); err == nil {
		t.Error("no error for a missing certificate")
	}
}

// The restart script is valid shell; with a stacked etcd the API server is parked while etcd
// restarts, and it is ready again before the next component.
func TestRestartScript(t *testing.T) {
	s := KubeadmRenewScript("https://[fd00::11]:6443")
	if _, err := exec.LookPath("sh"); err == nil {
		if out, err := exec.Command("sh", "-n", "-c", s).CombinedOutput(); err != nil {
			t.Fatalf("sh -n: %v: %s", err, out)
		}
	}
	order := []string{"kubeadm certs renew all", "unpark kube-apiserver", "park kube-apiserver\n  restart_static etcd\n  etcd_ready\n  unpark kube-apiserver",
		"restart_static kube-apiserver", "api_ready 'https://[fd00::11]:6443'", "stop_static kube-controller-manager\nstop_static kube-scheduler", "wait_new kube-controller-manager", "wait_new kube-scheduler"}
	at := 0
	for _, step := range order {
		i := strings.Index(s[at:], step)
		if i < 0 {
			t.Fatalf("script lacks %q after byte %d:\n%s", step, at, s)
		}
		at += i
	}
	if got := APIServerURL("fd00::11", 6443); got != "https://[fd00::11]:6443" {
		t.Errorf("APIServerURL: %s", got)
	}
}

func TestTimerSpec(t *testing.T) {
	c := &config.Cluster{Hosts: []*config.Host{
		{Name: "n1", Roles: []config.Role{config.RoleControlPlane, config.RoleEtcd}},
		{Name: "n2", Roles: []config.Role{config.RoleEtcd}, Arch: "ppc64le"},
		{Name: "n3", Roles: []config.Role{config.RoleWorker}, Arch: "ppc64le"},
	}}
	c.Kubernetes.AutoRenewCerts = true
	c.Kubernetes.CertificateValidity = 3 * time.Hour
	c.Etcd.Type = config.EtcdKubeKey
	es := etcd.Spec{Type: config.EtcdKubeKey, Members: []etcd.Member{{Name: "n1"}, {Name: "n2"}}, CAKey: []byte("KEY")}
	s, err := NewTimerSpec(c, es, map[string]string{"n1": "https://10.0.0.11:6443"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Period() != 45*time.Minute {
		t.Errorf("period %s for 3-hour certificates, want 45m", s.Period())
	}
	if w := s.Warnings(); len(w) != 1 || !strings.Contains(w[0], "n2 is ppc64le") {
		t.Errorf("warnings %q, want n2's architecture (n3 has no certificates)", w)
	}
	files, err := s.files("n1")
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]string{}
	for _, f := range files {
		byPath[f.Path] = string(f.Data)
	}
	svc := byPath[serviceFile]
	for _, want := range []string{"ExecStart=" + Binary + " certs renew --local --host n1 --within 2592000s --etcd-type kubekey --etcd-port 2379 --api-server https://10.0.0.11:6443", "After=network-online.target etcd.service kubelet.service"} {
		if !strings.Contains(svc, want) {
			t.Errorf("service lacks %q:\n%s", want, svc)
		}
	}
	if tm := byPath[timerFile]; !strings.Contains(tm, "OnUnitActiveSec=2700s") || !strings.Contains(tm, "RandomizedDelaySec=675s") {
		t.Errorf("timer:\n%s", tm)
	}
	if byPath[etcd.CAKeyFile] != "KEY" {
		t.Error("the etcd member gets no etcd CA key")
	}
	c.Kubernetes.CertificateValidity = 0
	if s, _ = NewTimerSpec(c, etcd.Spec{Type: config.EtcdKubeadm}, nil); s.Period() != 24*time.Hour {
		t.Errorf("period %s for one-year certificates, want daily", s.Period())
	}
	if files, _ = s.files("n1"); len(files) != 2 {
		t.Errorf("%d files with stacked etcd, want the two units", len(files))
	}
}

// answer is a connector whose every command prints out.
type answer struct {
	connectortest.Script
	out string
}

func (a *answer) Exec(ctx context.Context, cmd string, o connector.ExecOptions) (connector.Result, error) {
	r, err := a.Script.Exec(ctx, cmd, o)
	r.Stdout = a.out
	return r, err
}

// create cluster's precheck warns about a CA that expires within a year (the fixture's
// front-proxy-ca, 200 days), naming the host, and changes nothing.
func TestCAExpiryTask(t *testing.T) {
	conn := &answer{out: scriptOutput(fixture(t))}
	var w strings.Builder
	task := CAExpiryTask(config.EtcdKubeadm, &w)
	task.Hosts = pipeline.Named("cp1")
	g, err := pipeline.NewGraph([]pipeline.Task{task},
		[]*pipeline.Host{pipeline.NewHost("cp1", nil, func(context.Context) (connector.Connector, error) { return conn, nil })})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.Run(context.Background(), g, pipeline.Options{Name: "precheck"}); err != nil {
		t.Fatal(err)
	}
	got := w.String()
	if strings.Count(got, "warning:") != 1 || !strings.Contains(got, "host cp1: CA front-proxy-ca") {
		t.Errorf("warnings:\n%s\nwant one, for cp1's front-proxy-ca", got)
	}
}
