package etcd

import (
	"crypto/x509"
	"fmt"
	"net"

	"github.com/kk-project/kk/modules/pki"
)

// Common names of the client certificates.
const (
	AdminCN           = "kk-etcd-admin"
	APIServerClientCN = "kube-apiserver-etcd-client"
)

var both = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}

// MemberCertSpec is what a member's server and peer certificates hold: its names and
// addresses, for server and client use (peers are clients of each other; etcd's gateway
// uses the server certificate as a client).
func MemberCertSpec(m Member) pki.Spec {
	return pki.Spec{
		CommonName: m.Name,
		DNSNames:   m.DNSNames,
		IPs:        append([]net.IP(nil), m.IPs...),
		Usages:     both,
	}
}

// issue loads or creates the etcd CA in dir and makes sure every certificate exists and is
// current (pki re-issues only stale ones).
func (s *Spec) issue(dir string) error {
	ca, created, err := pki.LoadOrCreateCA(dir, "ca", "etcd-ca")
	if err != nil {
		return fmt.Errorf("etcd CA: %w", err)
	}
	if created {
		s.Issued = append(s.Issued, "ca")
	}
	s.CA = ca.CertPEM
	s.Server, s.Peer = map[string]pki.Pair{}, map[string]pki.Pair{}
	ensure := func(name string, spec pki.Spec) (pki.Pair, error) {
		p, issued, err := ca.Ensure(dir, name, spec)
		if err != nil {
			return p, fmt.Errorf("etcd certificate %s: %w", name, err)
		}
		if issued {
			s.Issued = append(s.Issued, name)
		}
		return p, nil
	}
	for _, m := range s.Members {
		spec := MemberCertSpec(m)
		if s.Server[m.Name], err = ensure("member-"+m.Name, spec); err != nil {
			return err
		}
		if s.Peer[m.Name], err = ensure("peer-"+m.Name, spec); err != nil {
			return err
		}
	}
	if s.Admin, err = ensure("admin", pki.Spec{CommonName: AdminCN, Organization: []string{"system:masters"},
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return err
	}
	s.APIServerClient, err = ensure("apiserver-etcd-client", pki.Spec{CommonName: APIServerClientCN,
		Organization: []string{"system:masters"}, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err
}
