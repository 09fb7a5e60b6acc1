// Package certs reads the certificates of a running cluster on its control-plane and etcd
// hosts and says when each expires: kubeadm's under /etc/kubernetes/pki, the client
// certificates embedded in kubeadm's kubeconfigs, the kubelet's client certificate, and kk's
// own etcd PKI (etcd type kubekey, under etcd.CertDir). It only reads: one command per host
// prints the certificates (never a key), and the parsing here is pure.
package certs

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/etcd"
)

// Paths on the hosts.
const (
	// KubeadmPKIDir holds the certificates kubeadm manages.
	KubeadmPKIDir = "/etc/kubernetes/pki"
	// KubeconfigDir holds kubeadm's kubeconfigs.
	KubeconfigDir = "/etc/kubernetes"
	// KubeletClientCert is the kubelet's current client certificate (and key: only the
	// certificate is read).
	KubeletClientCert = "/var/lib/kubelet/pki/kubelet-client-current.pem"
	// TimerUnit is the systemd timer that renews the certificates automatically.
	TimerUnit = "kk-certs-renew.timer"
)

// Thresholds of the report.
const (
	// Soon is how close to expiry a certificate is highlighted.
	Soon = 30 * 24 * time.Hour
	// CAWarning is how close to expiry a CA is warned about (a CA is never renewed by kk).
	CAWarning = 365 * 24 * time.Hour
)

// file is one certificate file kubeadm manages and its short name (kubeadm's).
type file struct{ path, name string }

// kubeadmFiles are kubeadm's certificates, leaves first, in kubeadm's order.
var kubeadmFiles = []file{
	{KubeadmPKIDir + "/apiserver.crt", "apiserver"},
	{KubeadmPKIDir + "/apiserver-etcd-client.crt", "apiserver-etcd-client"},
	{KubeadmPKIDir + "/apiserver-kubelet-client.crt", "apiserver-kubelet-client"},
	{KubeadmPKIDir + "/front-proxy-client.crt", "front-proxy-client"},
	{KubeadmPKIDir + "/etcd/healthcheck-client.crt", "etcd-healthcheck-client"},
	{KubeadmPKIDir + "/etcd/peer.crt", "etcd-peer"},
	{KubeadmPKIDir + "/etcd/server.crt", "etcd-server"},
	{KubeadmPKIDir + "/ca.crt", "ca"},
	{KubeadmPKIDir + "/front-proxy-ca.crt", "front-proxy-ca"},
	{KubeadmPKIDir + "/etcd/ca.crt", "etcd-ca"},
}

// kubeconfigs are kubeadm's kubeconfigs whose embedded client certificate is reported.
var kubeconfigs = []string{"admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf"}

// KubeletClientName is the short name of the kubelet's client certificate (which the kubelet
// rotates itself: kk does not renew it).
const KubeletClientName = "kubelet-client"

// Row is one certificate on one host.
type Row struct {
	Host        string `json:"host"`
	Certificate string `json:"certificate"` // short name: apiserver, admin.conf, etcd-member, ...
	Path        string `json:"path"`
	Subject     string `json:"subject"` // the subject's common name
	// Expires is NotAfter, in UTC.
	Expires time.Time `json:"expires"`
	// Residual is the time left, as kubeadm shows it (364d, 5h, "expired").
	Residual        string `json:"residual"`
	ResidualSeconds int64  `json:"residualSeconds"` // negative once expired
	// CA names the CA certificate (on the same host) that signed it; "-" for a CA; the
	// issuer's common name in parentheses when no CA on the host signed it.
	CA   string `json:"ca"`
	IsCA bool   `json:"isCA"`
	// Renews says whether kk certs renew renews it: every leaf but the kubelet's client
	// certificate and external etcd's, never a CA.
	Renews bool `json:"renews"`
	// ExpiresSoon is true within Soon (30 days), and once expired.
	ExpiresSoon bool `json:"expiresSoon"`
	Expired     bool `json:"expired"`
}

// Files are what the host command read: path → PEM certificates (for a kubeconfig, a
// kubeconfig holding only its users' client certificates).
type Files map[string][]byte

// Rows parses the certificates read on host and returns one row per certificate, leaves
// first, then the CAs. etcdType (config.EtcdKubeKey, EtcdKubeadm, EtcdExternal) says whose
// files under etcd.CertDir are: kk's for kubekey, the user's for external (not renewed by kk).
// A file that cannot be read as a certificate is a problem naming host and path; the other
// files still give rows.
func Rows(host string, files Files, now time.Time, etcdType string) ([]Row, []error) {
	type found struct {
		file
		order int
		cert  *x509.Certificate
	}
	var certs []found
	var problems []error
	add := func(f file, order int, c *x509.Certificate, err error) {
		if err != nil {
			problems = append(problems, fmt.Errorf("host %s: %s: %w", host, f.path, err))
			return
		}
		certs = append(certs, found{f, order, c})
	}
	order := 0
	for _, f := range kubeadmFiles {
		order++
		if b, ok := files[f.path]; ok {
			c, err := firstCert(b)
			add(f, order, c, err)
		}
	}
	for _, name := range kubeconfigs {
		order++
		p := KubeconfigDir + "/" + name
		if b, ok := files[p]; ok {
			c, err := kubeconfigCert(p, b, files)
			add(file{p, name}, order, c, err)
		}
	}
	order++
	if b, ok := files[KubeletClientCert]; ok {
		c, err := firstCert(b)
		add(file{KubeletClientCert, KubeletClientName}, order, c, err)
	}
	if etcdType == config.EtcdKubeKey || etcdType == config.EtcdExternal {
		var paths []string
		for p := range files {
			if path.Dir(p) == etcd.CertDir {
				paths = append(paths, p)
			}
		}
		sort.Strings(paths)
		for _, p := range paths {
			order++
			name, ok := etcdName(host, p, etcdType)
			if !ok {
				continue
			}
			c, err := firstCert(files[p])
			add(file{p, name}, order, c, err)
		}
	}

	var cas []found
	for _, f := range certs {
		if isCA(f.cert) {
			cas = append(cas, f)
		}
	}
	slices.SortStableFunc(certs, func(a, b found) int {
		if isCA(a.cert) != isCA(b.cert) {
			if isCA(a.cert) {
				return 1
			}
			return -1
		}
		return a.order - b.order
	})
	rows := make([]Row, 0, len(certs))
	for _, f := range certs {
		c := f.cert
		left := c.NotAfter.Sub(now)
		r := Row{
			Host: host, Certificate: f.name, Path: f.path, Subject: c.Subject.CommonName,
			Expires: c.NotAfter.UTC(), Residual: Residual(left), ResidualSeconds: int64(left / time.Second),
			CA: "-", IsCA: isCA(c), ExpiresSoon: left < Soon, Expired: left <= 0,
		}
		if !r.IsCA {
			r.CA = "(" + c.Issuer.CommonName + ")"
			for _, ca := range cas {
				if signedBy(c, ca.cert) {
					r.CA = ca.name
					break
				}
			}
			r.Renews = f.name != KubeletClientName && !(etcdType == config.EtcdExternal && path.Dir(f.path) == etcd.CertDir)
		}
		rows = append(rows, r)
	}
	return rows, problems
}

// etcdName names a file under etcd.CertDir; false for a file that is no certificate (a key).
// kk's layout (modules/etcd): ca.pem, member-<host>.pem and peer-<host>.pem on members,
// admin.pem (etcdctl's) on members, apiserver-etcd-client.pem on control planes; for type
// external only ca.pem and apiserver-etcd-client.pem are the user's files.
func etcdName(host, p, etcdType string) (string, bool) {
	base := path.Base(p)
	if !strings.HasSuffix(base, ".pem") || strings.HasSuffix(base, "-key.pem") {
		return "", false
	}
	stem := strings.TrimSuffix(base, ".pem")
	if etcdType == config.EtcdExternal {
		switch p {
		case etcd.ClientCAFile:
			return "external-etcd-ca", true
		case etcd.ClientCertFile:
			return "external-etcd-client", true
		}
		return "", false
	}
	for _, m := range []struct{ prefix, name string }{{etcd.ServerName(""), "etcd-member"}, {etcd.PeerName(""), "etcd-member-peer"}} {
		if member, ok := strings.CutPrefix(stem, m.prefix); ok {
			if member == host {
				return m.name, true
			}
			return m.name + "-" + member, true
		}
	}
	switch p {
	case etcd.ClientCAFile:
		return "kk-etcd-ca", true
	case etcd.ClientCertFile:
		return "kk-apiserver-etcd-client", true
	case etcd.CertDir + "/" + etcd.AdminName + ".pem":
		return "kk-etcd-admin", true
	}
	return "kk-etcd/" + stem, true
}

func isCA(c *x509.Certificate) bool { return c.BasicConstraintsValid && c.IsCA }

// signedBy reports whether ca signed c: key identifiers (when both are set) and issuer name
// must match, and the signature must verify (kubeadm's etcd CA and kk's share a name).
func signedBy(c, ca *x509.Certificate) bool {
	if len(c.AuthorityKeyId) > 0 && len(ca.SubjectKeyId) > 0 && !bytes.Equal(c.AuthorityKeyId, ca.SubjectKeyId) {
		return false
	}
	if !bytes.Equal(c.RawIssuer, ca.RawSubject) {
		return false
	}
	return c.CheckSignatureFrom(ca) == nil
}

// firstCert parses the first CERTIFICATE block of b (a bundle's leaf).
func firstCert(b []byte) (*x509.Certificate, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("no PEM certificate")
		}
		if blk.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse certificate: %w", err)
			}
			return c, nil
		}
	}
}

// kubeconfigCert returns the client certificate of a kubeconfig: its current context's user's,
// else the first user (by name) that has one. A user's client-certificate path (relative to
// the kubeconfig's directory) is looked up in files: the host command reads it too.
func kubeconfigCert(p string, b []byte, files Files) (*x509.Certificate, error) {
	cfg, err := clientcmd.Load(b)
	if err != nil {
		return nil, fmt.Errorf("parse kubeconfig: %w", err)
	}
	var users []string
	if ctx, ok := cfg.Contexts[cfg.CurrentContext]; ok && cfg.AuthInfos[ctx.AuthInfo] != nil {
		users = append(users, ctx.AuthInfo)
	}
	var names []string
	for n := range cfg.AuthInfos {
		names = append(names, n)
	}
	sort.Strings(names)
	users = append(users, names...)
	for _, n := range users {
		u := cfg.AuthInfos[n]
		switch {
		case len(u.ClientCertificateData) > 0:
			return firstCert(u.ClientCertificateData)
		case u.ClientCertificate != "":
			cp := u.ClientCertificate
			if !path.IsAbs(cp) {
				cp = path.Join(path.Dir(p), cp)
			}
			data, ok := files[cp]
			if !ok {
				return nil, fmt.Errorf("client certificate %s not found", cp)
			}
			return firstCert(data)
		}
	}
	return nil, fmt.Errorf("no client certificate in the kubeconfig")
}

// Residual formats the time left as kubeadm does: 45s, 12m, 5h (under two days), 364d (under
// a year), 9y; "expired" once it is not positive.
func Residual(d time.Duration) string {
	switch {
	case d <= 0:
		return "expired"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int64(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int64(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int64(d/time.Hour))
	case d < 365*24*time.Hour:
		return fmt.Sprintf("%dd", int64(d/(24*time.Hour)))
	}
	return fmt.Sprintf("%dy", int64(d/(365*24*time.Hour)))
}
