package pki

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
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
