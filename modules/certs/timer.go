package certs

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/download"
	"github.com/kk-project/kk/modules/etcd"
	"github.com/kk-project/kk/modules/pki"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/templates"
)

// What the automatic renewal puts on each control-plane and etcd host.
const (
	// TaskAutoRenew installs (autoRenewCerts: true) or removes (false) the timer.
	TaskAutoRenew = "certs/auto-renew"
	// ServiceUnit is the renewal service TimerUnit starts.
	ServiceUnit = "kk-certs-renew.service"
	// Binary is kk itself on the host: the service runs `kk certs renew --local`, the same
	// code that reads the certificates for check-expiration.
	Binary = "/usr/local/lib/kk/kk"
	// RenewWithin is how close to expiry the timer renews a certificate.
	RenewWithin = 30 * 24 * time.Hour
)

const (
	serviceFile = "/etc/systemd/system/" + ServiceUnit
	timerFile   = "/etc/systemd/system/" + TimerUnit
)

// TimerSpec is the automatic renewal of one cluster.
type TimerSpec struct {
	// Enabled is kubernetes.autoRenewCerts.
	Enabled  bool
	EtcdType string
	Etcd     config.Etcd
	// Validity is the leaf certificates' lifetime (0: one year): the timer checks every
	// quarter of it, at most daily.
	Validity time.Duration
	// APIServers maps each control plane to its API server's URL.
	APIServers map[string]string
	// EtcdMembers are the kubekey etcd members, which get EtcdCAKey (the etcd CA's key).
	EtcdMembers []string
	EtcdCAKey   []byte
	// Self is this kk program, uploaded to Binary.
	Self string
	// Skip maps the hosts the timer cannot be installed on to why (another architecture
	// than this kk's): the plan warns about each.
	Skip map[string]string
}

// NewTimerSpec derives the automatic renewal from the cluster; es is its etcd spec (the CA
// key of kubekey etcd) and apiServers each control plane's API server URL.
func NewTimerSpec(c *config.Cluster, es etcd.Spec, apiServers map[string]string) (TimerSpec, error) {
	s := TimerSpec{Enabled: c.Kubernetes.AutoRenewCerts, EtcdType: c.Etcd.Type, Etcd: c.Etcd,
		Validity: c.Kubernetes.CertificateValidity, APIServers: apiServers, Skip: map[string]string{}}
	if es.Type == config.EtcdKubeKey {
		for _, m := range es.Members {
			s.EtcdMembers = append(s.EtcdMembers, m.Name)
		}
		s.EtcdCAKey = es.CAKey
	}
	if !s.Enabled {
		return s, nil
	}
	self, err := os.Executable()
	if err != nil {
		return s, fmt.Errorf("kubernetes.autoRenewCerts: find this kk program to put on the hosts: %w", err)
	}
	s.Self = self
	for _, h := range c.Hosts {
		if !h.Has(config.RoleControlPlane) && !h.Has(config.RoleEtcd) {
			continue
		}
		arch := h.Arch
		if arch == "" {
			arch = "amd64"
		}
		if arch != goruntime.GOARCH {
			s.Skip[h.Name] = fmt.Sprintf("kubernetes.autoRenewCerts: %s is %s and this kk is %s: %s is not installed there (run kk from an %s machine, or kk certs renew before the certificates expire)",
				h.Name, arch, goruntime.GOARCH, TimerUnit, arch)
		}
	}
	return s, nil
}

// Warnings name the hosts the timer cannot go to, by host name.
func (s TimerSpec) Warnings() []string {
	var out []string
	for _, h := range slices.Sorted(maps.Keys(s.Skip)) {
		out = append(out, s.Skip[h])
	}
	return out
}

// Period is how often the timer runs: a quarter of the certificates' lifetime, at most daily.
func (s TimerSpec) Period() time.Duration {
	v := s.Validity
	if v <= 0 {
		v = pki.CertValidity
	}
	return min(24*time.Hour, v/4)
}

func seconds(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) + "s" }

// files are the units (and, on kubekey etcd members, the etcd CA key) of host; the binary is
// apart (Self).
func (s TimerSpec) files(host string) ([]connector.File, error) {
	data := map[string]any{
		"Binary": Binary, "Host": host, "Within": seconds(RenewWithin), "EtcdType": s.EtcdType,
		"EtcdPort": etcd.ClientPort(s.Etcd), "APIServer": s.APIServers[host], "Etcd": s.EtcdType == config.EtcdKubeKey,
		"Period": seconds(s.Period()), "Delay": seconds(min(time.Hour, s.Period()/4)),
	}
	svc, err := templates.Render("certs/kk-certs-renew.service", data)
	if err != nil {
		return nil, err
	}
	timer, err := templates.Render("certs/kk-certs-renew.timer", data)
	if err != nil {
		return nil, err
	}
	out := []connector.File{{Path: serviceFile, Data: svc, Mode: 0o644}, {Path: timerFile, Data: timer, Mode: 0o644}}
	for _, m := range s.EtcdMembers {
		if m == host && len(s.EtcdCAKey) > 0 {
			out = append(out, connector.File{Path: etcd.CAKeyFile, Data: s.EtcdCAKey, Mode: 0o600})
		}
	}
	return out, nil
}

// AutoRenewTask installs the renewal timer on every control-plane and etcd host (with
// Enabled), or removes it and what it needs (without).
func AutoRenewTask(s TimerSpec, after []string) pipeline.Task {
	var once sync.Once
	var selfSum string
	var sumErr error
	sum := func() (string, error) {
		once.Do(func() { selfSum, _, sumErr = download.FileSHA256(context.Background(), s.Self) })
		return selfSum, sumErr
	}
	absent := "! [ -e " + serviceFile + " ] && ! [ -e " + timerFile + " ] && ! [ -e " + path.Dir(Binary) + " ] && ! [ -e " + etcd.CAKeyFile + " ]"
	installed := func(host string) (string, error) {
		files, err := s.files(host)
		if err != nil {
			return "", err
		}
		sum, err := sum()
		if err != nil {
			return "", err
		}
		return sameFiles(files) + " && [ \"$(sha256sum < " + Binary + " | cut -d' ' -f1)\" = " + sum + " ]" +
			" && systemctl is-enabled --quiet " + TimerUnit + " && systemctl is-active --quiet " + TimerUnit, nil
	}
	desc := "remove " + TimerUnit + " (kubernetes.autoRenewCerts is false)"
	if s.Enabled {
		desc = TimerUnit + ": renew the certificates within " + Residual(RenewWithin) + " of expiry, checked every " + s.Period().String()
	}
	return pipeline.Task{
		Name: TaskAutoRenew, Desc: desc,
		Hosts: pipeline.Role(string(config.RoleControlPlane), string(config.RoleEtcd)), After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if !s.Enabled {
				return t.Test(ctx, absent)
			}
			if _, skip := s.Skip[t.Name]; skip {
				return true, nil // warned about by the plan
			}
			test, err := installed(t.Name)
			if err != nil {
				return false, err
			}
			return t.Test(ctx, test)
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if !s.Enabled {
				_, err := t.Sudo(ctx, "systemctl disable --now "+TimerUnit+" >/dev/null 2>&1; rm -f "+
					connector.Cmd(serviceFile, timerFile, Binary, etcd.CAKeyFile)+" && rmdir "+path.Dir(Binary)+" 2>/dev/null; systemctl daemon-reload")
				return true, err
			}
			files, err := s.files(t.Name)
			if err != nil {
				return false, err
			}
			if _, err := t.Sudo(ctx, "mkdir -p "+path.Dir(Binary)); err != nil {
				return false, err
			}
			files = append(files, connector.File{Path: Binary, LocalPath: s.Self, Mode: 0o755})
			if _, err := t.UploadAll(ctx, files); err != nil {
				return true, err
			}
			_, err = t.Sudo(ctx, "systemctl daemon-reload && systemctl enable "+TimerUnit+" >/dev/null 2>&1 && systemctl restart "+TimerUnit)
			return true, err
		},
	}
}

// sameFiles is a shell test that every file exists with exactly its content and mode.
func sameFiles(files []connector.File) string {
	tests := make([]string, len(files))
	for i, f := range files {
		tests[i] = connector.FileTest(f)
	}
	return strings.Join(tests, " && ")
}
