package pki

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	certutil "k8s.io/client-go/util/cert"
)

func TestCAIssueEnsure(t *testing.T) {
	dir := t.TempDir()
	ca, created, err := LoadOrCreateCA(dir, "etcd-ca", "etcd-ca")
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	again, created, err := LoadOrCreateCA(dir, "etcd-ca", "etcd-ca")
	if err != nil || created || !again.Cert.Equal(ca.Cert) {
		t.Fatalf("reload: created=%v err=%v", created, err)
	}
	spec := Spec{CommonName: "n1", DNSNames: []string{"n1", "localhost"}, IPs: []net.IP{net.ParseIP("10.0.0.11"), net.ParseIP("127.0.0.1")},
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	p, issued, err := ca.Ensure(dir, "member-n1", spec)
	if err != nil || !issued {
		t.Fatalf("issue: %v %v", issued, err)
	}
	if st, _ := os.Stat(filepath.Join(dir, "member-n1.key")); st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", st.Mode().Perm())
	}
	// the pair is a usable TLS key pair that verifies against the CA for its IP
	pair, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "10.0.0.11"}); err != nil {
		t.Errorf("verify: %v", err)
	}
	// same spec: nothing re-issued; a new IP: re-issued
	if _, issued, _ := ca.Ensure(dir, "member-n1", spec); issued {
		t.Error("re-issued an up-to-date certificate")
	}
	spec.IPs = append(spec.IPs, net.ParseIP("10.0.0.99"))
	if _, issued, _ := ca.Ensure(dir, "member-n1", spec); !issued {
		t.Error("did not re-issue for a new IP")
	}
	// another CA's certificate is replaced
	other, _, _ := LoadOrCreateCA(t.TempDir(), "x", "x")
	if _, issued, _ := other.Ensure(dir, "member-n1", spec); !issued {
		t.Error("kept a certificate signed by another CA")
	}
	if _, err := ExpiresAt(p.CertPEM); err != nil {
		t.Error(err)
	}
}

func TestValidityAndRenewWithin(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := LoadOrCreateCA(dir, "ca", "ca")
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{CommonName: "n1", Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: 3 * time.Hour}
	p, issued, err := ca.Ensure(dir, "short", spec)
	if err != nil || !issued {
		t.Fatalf("issue: %v %v", issued, err)
	}
	c, _ := certutil.ParseCertsPEM(p.CertPEM)
	if life := c[0].NotAfter.Sub(c[0].NotBefore); life != 3*time.Hour+backdate {
		t.Errorf("lifetime %s, want 3h (+%s backdated)", life, backdate)
	}
	// a 3-hour certificate is due in its last hour, not always: a re-run keeps it
	if _, issued, _ := ca.Ensure(dir, "short", spec); issued {
		t.Error("re-issued a fresh 3-hour certificate")
	}
	if got := RenewWithin(c[0].NotBefore, c[0].NotAfter); got != (3*time.Hour+backdate)/3 {
		t.Errorf("RenewWithin 3h = %s", got)
	}
	if got := RenewWithin(time.Time{}, time.Time{}.Add(CertValidity)); got != RenewBefore {
		t.Errorf("RenewWithin 1y = %s, want %s", got, RenewBefore)
	}
	// another lifetime in the config: re-issued with it
	spec.Validity = 0
	p2, issued, _ := ca.Ensure(dir, "short", spec)
	if !issued {
		t.Fatal("lifetime changed but not re-issued")
	}
	// SpecOf gives the certificate again, with its lifetime
	c2, _ := certutil.ParseCertsPEM(p2.CertPEM)
	again := SpecOf(c2[0])
	if again.Validity != CertValidity || again.CommonName != "n1" || len(again.Usages) != 1 {
		t.Errorf("SpecOf: %+v", again)
	}
	// Reissue always issues; WriteFiles writes key 0600, certificate 0644
	p3, err := ca.Reissue(dir, "short", again)
	if err != nil || string(p3.CertPEM) == string(p2.CertPEM) {
		t.Fatalf("reissue: %v", err)
	}
	crt, key := filepath.Join(dir, "x.pem"), filepath.Join(dir, "x-key.pem")
	if err := WriteFiles(p3, crt, key); err != nil {
		t.Fatal(err)
	}
	for f, mode := range map[string]os.FileMode{crt: 0o644, key: 0o600} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want mode %v", f, err, st, mode)
		}
	}
}
