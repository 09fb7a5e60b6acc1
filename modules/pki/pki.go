// Package pki is the certificate authority kk runs on the machine it works from: it creates CAs
// and issues server, peer and client certificates (etcd, the registry) with every address of
// the hosts that serve them, keeps them under <workdir>/pki, and re-issues one only when what it
// must cover changed or it is about to expire — so a re-run uploads nothing new.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

const (
	// CAValidity is how long a CA kk creates is valid.
	CAValidity = 10 * 365 * 24 * time.Hour
	// CertValidity is how long an issued certificate is valid.
	CertValidity = 365 * 24 * time.Hour
	// RenewBefore is how close to expiry a certificate is re-issued (a third of its lifetime
	// for certificates that live shorter than 90 days: see RenewWithin).
	RenewBefore = 30 * 24 * time.Hour
)

// RenewWithin is how close to its expiry a certificate valid from notBefore to notAfter is
// due for renewal: RenewBefore, or a third of its lifetime when that is shorter (a
// certificate that lives 4 hours is renewed in its last 80 minutes, not always).
func RenewWithin(notBefore, notAfter time.Time) time.Duration {
	return min(RenewBefore, notAfter.Sub(notBefore)/3)
}

// CA signs certificates.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
}

// Spec says what one certificate must hold.
type Spec struct {
	CommonName   string
	Organization []string
	DNSNames     []string
	IPs          []net.IP
	Usages       []x509.ExtKeyUsage // ServerAuth, ClientAuth
	// Validity is the certificate's lifetime (0: CertValidity).
	Validity time.Duration
}

func (s Spec) validity() time.Duration {
	if s.Validity > 0 {
		return s.Validity
	}
	return CertValidity
}

// backdate is how long before its issue a certificate becomes valid (clock skew between
// hosts).
const backdate = 5 * time.Minute

// Pair is a certificate and its key, PEM encoded.
type Pair struct {
	CertPEM []byte
	KeyPEM  []byte
}

func newKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return key, pemBlock(keyutil.ECPrivateKeyBlockType, der), nil
}

// LoadOrCreateCA reads <dir>/<name>.crt and .key, or creates a new CA with common name cn.
// created says whether a new CA was made.
func LoadOrCreateCA(dir, name, cn string) (ca *CA, created bool, err error) {
	crt, key := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if _, err := os.Stat(crt); err == nil {
		ca, err := LoadCA(crt, key)
		return ca, false, err
	}
	k, keyPEM, err := newKey()
	if err != nil {
		return nil, false, fmt.Errorf("CA %s: %w", name, err)
	}
	cert, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: cn}, k)
	if err != nil {
		return nil, false, fmt.Errorf("CA %s: %w", name, err)
	}
	certPEM := pemBlock(certutil.CertificateBlockType, cert.Raw)
	if err := write(dir, name, Pair{certPEM, keyPEM}); err != nil {
		return nil, false, err
	}
	return &CA{Cert: cert, Key: k, CertPEM: certPEM}, true, nil
}

// LoadCA reads a CA from its certificate and key files.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certs, err := certutil.CertsFromFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("CA certificate %s: %w", certFile, err)
	}
	k, err := keyutil.PrivateKeyFromFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("CA key %s: %w", keyFile, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("CA key %s: not a signing key", keyFile)
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: certs[0], Key: signer, CertPEM: certPEM}, nil
}

// Issue signs a new certificate for spec.
func (ca *CA) Issue(s Spec) (Pair, error) {
	k, keyPEM, err := newKey()
	if err != nil {
		return Pair{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return Pair{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: s.CommonName, Organization: s.Organization},
		DNSNames:     s.DNSNames,
		IPAddresses:  s.IPs,
		NotBefore:    now.Add(-backdate).UTC(),
		NotAfter:     now.Add(s.validity()).UTC(),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  s.Usages,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, k.Public(), ca.Key)
	if err != nil {
		return Pair{}, fmt.Errorf("sign %s: %w", s.CommonName, err)
	}
	return Pair{CertPEM: pemBlock(certutil.CertificateBlockType, der), KeyPEM: keyPEM}, nil
}

// Ensure returns <dir>/<name>.crt/.key, issuing (and writing) a new pair only when there is
// none, it was not signed by ca, it does not cover spec's names, IPs and usages, or it expires
// within RenewBefore. issued says whether a new pair was made.
func (ca *CA) Ensure(dir, name string, s Spec) (p Pair, issued bool, err error) {
	crt, key := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if certPEM, err := os.ReadFile(crt); err == nil {
		if keyPEM, err := os.ReadFile(key); err == nil {
			if why := ca.stale(certPEM, s); why == "" {
				return Pair{certPEM, keyPEM}, false, nil
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return Pair{}, false, err
	}
	p, err = ca.Reissue(dir, name, s)
	return p, err == nil, err
}

// Reissue issues a new pair for spec and writes it as <dir>/<name>.crt/.key, whatever is
// there (kk certs renew).
func (ca *CA) Reissue(dir, name string, s Spec) (Pair, error) {
	p, err := ca.Issue(s)
	if err != nil {
		return Pair{}, fmt.Errorf("certificate %s: %w", name, err)
	}
	return p, write(dir, name, p)
}

// Current says why certPEM is not a current certificate of spec signed by the CA whose
// certificate is caPEM ("" when it is): kk keeps such a certificate found on a host.
func Current(caPEM, certPEM []byte, s Spec) string {
	cas, err := certutil.ParseCertsPEM(caPEM)
	if err != nil || len(cas) == 0 {
		return "unreadable CA"
	}
	return (&CA{Cert: cas[0]}).stale(certPEM, s)
}

// stale says why an existing certificate must be re-issued, or "".
func (ca *CA) stale(certPEM []byte, s Spec) string {
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil || len(certs) == 0 {
		return "unreadable"
	}
	c := certs[0]
	if err := c.CheckSignatureFrom(ca.Cert); err != nil {
		return "signed by another CA"
	}
	if time.Until(c.NotAfter) < RenewWithin(c.NotBefore, c.NotAfter) {
		return "expires soon"
	}
	if d := c.NotAfter.Sub(c.NotBefore) - backdate - s.validity(); d > time.Minute || d < -time.Minute {
		return "lifetime changed"
	}
	if c.Subject.CommonName != s.CommonName {
		return "common name changed"
	}
	for _, d := range s.DNSNames {
		if !slices.Contains(c.DNSNames, d) {
			return "missing DNS name " + d
		}
	}
	for _, ip := range s.IPs {
		if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
			return "missing IP " + ip.String()
		}
	}
	for _, u := range s.Usages {
		if !slices.Contains(c.ExtKeyUsage, u) {
			return "missing usage"
		}
	}
	return ""
}

// ExpiresAt returns the NotAfter of the first certificate in certPEM.
func ExpiresAt(certPEM []byte) (time.Time, error) {
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		return time.Time{}, err
	}
	return certs[0].NotAfter, nil
}

func write(dir, name string, p Pair) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki directory: %w", err)
	}
	if err := keyutil.WriteKey(filepath.Join(dir, name+".key"), p.KeyPEM); err != nil {
		return fmt.Errorf("write key %s: %w", name, err)
	}
	if err := certutil.WriteCert(filepath.Join(dir, name+".crt"), p.CertPEM); err != nil {
		return fmt.Errorf("write certificate %s: %w", name, err)
	}
	return nil
}

// SpecOf is what an existing certificate holds, with its lifetime: a renewal issues the same
// certificate again (kk-certs-renew on the hosts, which has no Cluster file to derive it from).
func SpecOf(c *x509.Certificate) Spec {
	return Spec{
		CommonName: c.Subject.CommonName, Organization: c.Subject.Organization,
		DNSNames: c.DNSNames, IPs: c.IPAddresses, Usages: c.ExtKeyUsage,
		Validity: c.NotAfter.Sub(c.NotBefore) - backdate,
	}
}

// WriteFiles writes p's key to keyFile (0600) and certificate to certFile (0644), each
// through a temporary file renamed into place, key first: a reader never sees half a file.
func WriteFiles(p Pair, certFile, keyFile string) error {
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{keyFile, p.KeyPEM, 0o600}, {certFile, p.CertPEM, 0o644}} {
		tmp := f.path + ".kk-new"
		if err := os.WriteFile(tmp, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(tmp, f.mode); err != nil {
			return err
		}
		if err := os.Rename(tmp, f.path); err != nil {
			return err
		}
	}
	return nil
}
