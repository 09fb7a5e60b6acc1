package etcd

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path"
	"strings"
	"time"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/pki"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
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

// File names (without .crt/.key) of the leaf certificates in PKIDir: per member its server
// and peer pair, then the admin (etcdctl on members) and kube-apiserver client pairs.
func ServerName(member string) string { return "member-" + member }
func PeerName(member string) string   { return "peer-" + member }

const (
	AdminName           = "admin"
	APIServerClientName = "apiserver-etcd-client"
)

// leaf is one leaf certificate of the etcd PKI: its file name, what it holds, and where the
// Spec keeps its pair.
type leaf struct {
	name string
	spec pki.Spec
	set  func(pki.Pair)
}

// leaves are every leaf certificate of s, each issued for validity (0: pki's default).
func (s *Spec) leaves(validity time.Duration) []leaf {
	var out []leaf
	for _, m := range s.Members {
		spec := MemberCertSpec(m)
		spec.Validity = validity
		out = append(out,
			leaf{ServerName(m.Name), spec, func(p pki.Pair) { s.Server[m.Name] = p }},
			leaf{PeerName(m.Name), spec, func(p pki.Pair) { s.Peer[m.Name] = p }})
	}
	client := func(cn string) pki.Spec {
		return pki.Spec{CommonName: cn, Organization: []string{"system:masters"},
			Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Validity: validity}
	}
	return append(out,
		leaf{AdminName, client(AdminCN), func(p pki.Pair) { s.Admin = p }},
		leaf{APIServerClientName, client(APIServerClientCN), func(p pki.Pair) { s.APIServerClient = p }})
}

// issue loads or creates the etcd CA in dir and makes sure every leaf certificate exists and
// is current (pki re-issues only stale ones); with renew, every leaf is re-issued from the
// existing CA (kk certs renew), which must then exist already: a CA is never re-issued.
func (s *Spec) issue(dir string, validity time.Duration, renew bool) error {
	var ca *pki.CA
	var err error
	if renew {
		ca, err = pki.LoadCA(path.Join(dir, "ca.crt"), path.Join(dir, "ca.key"))
	} else {
		var created bool
		ca, created, err = pki.LoadOrCreateCA(dir, "ca", "etcd-ca")
		if created {
			s.Issued = append(s.Issued, "ca")
		}
	}
	if err != nil {
		return fmt.Errorf("etcd CA: %w", err)
	}
	s.CA, s.Validity, s.Renew = ca.CertPEM, validity, renew
	s.Server, s.Peer = map[string]pki.Pair{}, map[string]pki.Pair{}
	if s.CAKey, err = os.ReadFile(path.Join(dir, "ca.key")); err != nil {
		return fmt.Errorf("etcd CA key: %w", err)
	}
	for _, l := range s.leaves(validity) {
		var p pki.Pair
		issued := true
		if renew {
			p, err = ca.Reissue(dir, l.name, l.spec)
		} else {
			p, issued, err = ca.Ensure(dir, l.name, l.spec)
		}
		if err != nil {
			return fmt.Errorf("etcd certificate %s: %w", l.name, err)
		}
		if issued {
			s.Issued = append(s.Issued, l.name)
		}
		l.set(p)
	}
	return nil
}

// CAKeyFile is the etcd CA's key on the members, put there only while
// kubernetes.autoRenewCerts is on (kk-certs-renew re-issues the member's certificates on the
// host with it); KubeKey's layout.
const CAKeyFile = CertDir + "/ca-key.pem"

// LocalRestartScript restarts this host's member after its certificates were renewed on the
// host, once every member of the cluster is healthy (so that two members renewing at the
// same moment never both go down), records what it runs with (AppliedFile, so that kk's
// next run does not restart it again for that) and waits until it is healthy.
func LocalRestartScript(name string, e config.Etcd) string {
	local := []string{localEndpoint(e)}
	health := etcdctlCmd(local, "endpoint", "health", "--cluster")
	s := Spec{}
	return `set -e
i=0
until ` + health + ` >/dev/null 2>&1; do
  i=$((i+1)); [ $i -ge 60 ] && { echo "not every etcd member is healthy: not restarting this one" >&2; exit 1; }
  sleep 5
done
` + s.inputsSum(name) + ` > ` + AppliedFile + `
systemctl restart etcd
i=0
until ` + etcdctlCmd(local, "endpoint", "health") + ` >/dev/null 2>&1; do
  i=$((i+1)); [ $i -ge 90 ] && { echo "etcd is not healthy 3 minutes after its restart" >&2; exit 1; }
  sleep 2
done
`
}

// hostCurrent reports whether the etcd files on the host, although not those of kk's workdir,
// are current: the same CA, and each certificate signed by it, covering what the workdir's
// covers with its lifetime and not due for renewal (kk-certs-renew.timer renewed it there),
// its key beside it. kk then leaves them: pushing the workdir's older copies back would
// restart the member for nothing. Never with kk certs renew, which pushes its own.
func (s *Spec) hostCurrent(ctx context.Context, t *pipeline.Target, files []connector.File) (bool, error) {
	if s.Renew || len(s.CA) == 0 {
		return false, nil
	}
	specs := map[string]pki.Spec{}
	for _, l := range s.leaves(s.Validity) {
		specs[l.name] = l.spec
	}
	var keys []string
	for _, f := range files {
		if f.Path == caFile {
			if ok, err := t.Test(ctx, sameFiles([]connector.File{f})); err != nil || !ok {
				return false, err
			}
			continue
		}
		name, isCert := strings.CutSuffix(path.Base(f.Path), ".pem")
		if !isCert || strings.HasSuffix(name, "-key") {
			keys = append(keys, "[ -s "+connector.Quote(f.Path)+" ]")
			continue
		}
		spec, ok := specs[name]
		if !ok {
			return false, nil
		}
		data, err := t.Fetch(ctx, f.Path)
		if err != nil {
			return false, nil // not there: pushed by Run
		}
		if why := pki.Current(s.CA, data, spec); why != "" {
			return false, nil
		}
	}
	if len(keys) == 0 {
		return true, nil
	}
	return t.Test(ctx, strings.Join(keys, " && "))
}
