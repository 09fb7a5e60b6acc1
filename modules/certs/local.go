package certs

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	certutil "k8s.io/client-go/util/cert"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/etcd"
	"github.com/kk-project/kk/modules/pki"
)

// LocalOptions configure a renewal on the host itself (kk-certs-renew.service runs kk there).
type LocalOptions struct {
	// Host names the host in what it prints.
	Host string
	// EtcdType is the cluster's etcd type; Etcd its ports (kubekey).
	EtcdType string
	Etcd     config.Etcd
	// Within: certificates that expire within it are renewed.
	Within time.Duration
	// APIServer is this control plane's API server URL ("" on an etcd-only host).
	APIServer string
	// Shell runs a script as root on this host and returns its standard output.
	Shell func(ctx context.Context, script string) (string, error)
	// Now is the time (time.Now when nil).
	Now func() time.Time
}

// RenewLocal renews, on this host, every leaf certificate that expires within o.Within and
// restarts what uses it: kk's etcd certificates (etcd type kubekey) re-issued with the etcd
// CA's key beside them, each the same as before (names, addresses, usages, lifetime), then
// the member restarted once every member is healthy; kubeadm's through kubeadm certs renew
// all, then the control plane's static pods (RestartScript). It returns the certificates it
// renewed; none when nothing is due.
func RenewLocal(ctx context.Context, o LocalOptions, log io.Writer) ([]string, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	out, err := o.Shell(ctx, Script(o.EtcdType))
	if err != nil {
		return nil, fmt.Errorf("read the certificates: %w", err)
	}
	files, _ := ParseOutput(out)
	rows, _ := Rows(o.Host, files, now(), o.EtcdType)
	var kubeadmDue, etcdDue []Row
	for _, r := range rows {
		if !r.Renews || time.Duration(r.ResidualSeconds)*time.Second >= o.Within {
			continue
		}
		if path.Dir(r.Path) == etcd.CertDir {
			etcdDue = append(etcdDue, r)
		} else {
			kubeadmDue = append(kubeadmDue, r)
		}
	}
	if len(kubeadmDue)+len(etcdDue) == 0 {
		fmt.Fprintf(log, "%s: no certificate expires within %s\n", o.Host, o.Within)
		return nil, nil
	}
	var renewed []string
	restartMember, restartAPI := false, false
	if len(etcdDue) > 0 {
		ca, err := pki.LoadCA(etcd.ClientCAFile, etcd.CAKeyFile)
		if err != nil {
			return nil, fmt.Errorf("renew kk's etcd certificates here: %w (kk certs renew from kk's machine renews them with the CA in its workdir)", err)
		}
		for _, r := range etcdDue {
			if err := reissueFile(ca, r.Path); err != nil {
				return renewed, err
			}
			renewed = append(renewed, r.Certificate)
			fmt.Fprintf(log, "%s: renewed %s (%s)\n", o.Host, r.Certificate, r.Path)
			switch {
			case r.Path == etcd.ClientCertFile:
				restartAPI = true
			case strings.HasPrefix(r.Certificate, "etcd-member"):
				restartMember = true
			}
		}
		if restartMember {
			fmt.Fprintf(log, "%s: restarting etcd\n", o.Host)
			out, err := o.Shell(ctx, etcd.LocalRestartScript(o.Host, o.Etcd))
			fmt.Fprint(log, out)
			if err != nil {
				return renewed, fmt.Errorf("restart etcd after its certificates were renewed: %w", err)
			}
		}
	}
	switch {
	case len(kubeadmDue) > 0:
		fmt.Fprintf(log, "%s: kubeadm certs renew all, then the control plane's static pods restart\n", o.Host)
		out, err := o.Shell(ctx, KubeadmRenewScript(o.APIServer))
		fmt.Fprint(log, out)
		if err != nil {
			return renewed, fmt.Errorf("renew kubeadm's certificates: %w", err)
		}
		for _, r := range kubeadmDue {
			renewed = append(renewed, r.Certificate)
		}
	case restartAPI && o.APIServer != "":
		fmt.Fprintf(log, "%s: restarting the control plane's static pods (new etcd client certificate)\n", o.Host)
		out, err := o.Shell(ctx, RestartScript(o.APIServer))
		fmt.Fprint(log, out)
		if err != nil {
			return renewed, fmt.Errorf("restart the control plane: %w", err)
		}
	}
	return renewed, nil
}

// reissueFile issues the certificate at certFile (kk's etcd layout: its key is
// <name>-key.pem beside it) again from ca, with what it held, and writes both in place.
func reissueFile(ca *pki.CA, certFile string) error {
	cs, err := certutil.CertsFromFile(certFile)
	if err != nil {
		return fmt.Errorf("read %s: %w", certFile, err)
	}
	p, err := ca.Issue(pki.SpecOf(cs[0]))
	if err != nil {
		return fmt.Errorf("re-issue %s: %w", certFile, err)
	}
	keyFile := strings.TrimSuffix(certFile, ".pem") + "-key.pem"
	if _, err := os.Stat(keyFile); err != nil {
		return fmt.Errorf("re-issue %s: its key: %w", certFile, err)
	}
	if err := pki.WriteFiles(p, certFile, keyFile); err != nil {
		return fmt.Errorf("write %s: %w", certFile, err)
	}
	return nil
}
