// Package etcd runs the cluster's etcd when kk manages it (etcd type "kubekey"): etcd, etcdctl
// and etcdutl as binaries with a systemd unit on every host with role etcd, mutual TLS with
// certificates from kk's own CA, a periodic snapshot backup, and a health check that names the
// unhealthy member. It follows KubeKey's layout: certificates under /etc/ssl/etcd/ssl, the
// configuration in /etc/etcd.env, the unit etcd.service, data in the cluster's etcd data dir.
//
// For etcd type "kubeadm" (stacked static pods) kubeadm runs etcd and Tasks returns nothing;
// for type "external" Tasks returns nothing and ClientTasks only puts the user's client
// certificates on the control planes.
package etcd

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/modules/pki"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

// Paths on the hosts.
const (
	// CertDir holds every etcd certificate on members and control planes.
	CertDir = "/etc/ssl/etcd/ssl"
	// ClientCAFile, ClientCertFile and ClientKeyFile are, on every control-plane host, the
	// etcd CA and the client certificate and key kube-apiserver uses to reach etcd (for etcd
	// type kubekey and for type external with TLS files).
	ClientCAFile   = CertDir + "/ca.pem"
	ClientCertFile = CertDir + "/apiserver-etcd-client.pem"
	ClientKeyFile  = CertDir + "/apiserver-etcd-client-key.pem"

	// EnvFile is each member's configuration (etcd reads ETCD_* variables).
	EnvFile = "/etc/etcd.env"
	// UnitFile is the member's systemd unit, etcd.service.
	UnitFile = "/etc/systemd/system/etcd.service"
	// BinDir holds etcd, etcdctl and etcdutl.
	BinDir = "/usr/local/bin"
	// AppliedFile records the checksum of the configuration, certificates and binary the
	// running etcd was (re)started with, so a member restarts only when one of them changed.
	AppliedFile = "/etc/etcd.kk-applied"

	// BackupUnit is the name of the backup service and timer (backup-etcd.service/.timer).
	BackupUnit = "backup-etcd"

	// ClusterToken is ETCD_INITIAL_CLUSTER_TOKEN.
	ClusterToken = "k8s_etcd"
)

// Task names.
const (
	TaskCerts       = "etcd/certs"
	TaskInstall     = "etcd/install"
	TaskConfig      = "etcd/config"
	TaskService     = "etcd/service"
	TaskHealth      = "etcd/health"
	TaskBackup      = "etcd/backup"
	TaskClientCerts = "etcd/client-certs"
)

// HealthTimeout bounds how long etcd/health waits for every member to be healthy.
var HealthTimeout = 3 * time.Minute

// Programs are the binaries etcd/install puts in BinDir (names as in binaries.Files).
var Programs = []string{"etcd", "etcdctl", "etcdutl"}

// Member is one etcd member (a host with role etcd).
type Member struct {
	// Name is the kk host name, also the etcd member name.
	Name string
	// IP is the internal address peers and clients use (IPv4 when the host has one).
	IP string
	// DNSNames and IPs are the subject alternative names of the member's server and peer
	// certificates: name, hostname (name.<clusterName>), "localhost", every internal and the
	// public (SSH) address, 127.0.0.1 and ::1.
	DNSNames []string
	IPs      []net.IP
	// Arch is the host's architecture from the config (facts decide at install time).
	Arch string
}

// ClientURL is https://IP:port.
func (m Member) ClientURL(port int) string {
	return "https://" + net.JoinHostPort(m.IP, strconv.Itoa(port))
}

// PeerURL is https://IP:peerPort.
func (m Member) PeerURL(peerPort int) string {
	return "https://" + net.JoinHostPort(m.IP, strconv.Itoa(peerPort))
}

// Spec is the etcd cluster kk manages, with its certificates already issued on the kk machine.
type Spec struct {
	// Type is the etcd type (config.EtcdKubeKey, EtcdKubeadm, EtcdExternal).
	Type string
	// Members are the hosts with role etcd in file order (kubekey only).
	Members []Member
	// Etcd is the cluster's etcd configuration (ports, data dir, tuning, backup).
	Etcd config.Etcd
	// Files are the local etcd, etcdctl and etcdutl programs (kubekey only).
	Files binaries.Files

	// PKI (kubekey): the CA certificate, per member the server (Server) and peer (Peer) pairs,
	// the admin client pair etcdctl uses on members, and kube-apiserver's client pair.
	CA []byte
	// CAKey is the CA's key (PEM): it goes to the members only while
	// kubernetes.autoRenewCerts is on (see CAKeyFile).
	CAKey           []byte
	Server, Peer    map[string]pki.Pair
	Admin           pki.Pair
	APIServerClient pki.Pair
	// Issued names the certificates SpecFor created or re-issued (empty on a re-run with
	// current certificates).
	Issued []string
	// Validity is the leaf certificates' lifetime (0: pki's default); Renew is set by
	// RenewSpecFor (kk certs renew: the workdir's certificates replace the hosts').
	Validity time.Duration
	Renew    bool

	// Client holds the files ClientTasks puts on control planes at ClientCAFile, ClientCertFile
	// and ClientKeyFile: the issued ones for kubekey, the user's for external (nil when unset).
	ClientCA, ClientCert, ClientKey []byte
}

// PKIDir is where SpecFor keeps the etcd CA and certificates on the kk machine.
func PKIDir(workdir string) string { return path.Join(workdir, "pki", "etcd") }

// SpecFor derives the etcd spec from the cluster. For type kubekey it loads or creates the
// etcd CA under <workdir>/pki/etcd and issues the member, admin and kube-apiserver client
// certificates there (re-issued only when stale), and checks that files holds etcd, etcdctl
// and etcdutl for every member's arch. For type external it reads the user's TLS files.
func SpecFor(c *config.Cluster, workdir string, files binaries.Files) (Spec, error) {
	return specFor(c, workdir, files, false)
}

// RenewSpecFor is SpecFor for kk certs renew: every leaf certificate of kk's etcd PKI is
// re-issued from the existing etcd CA (an error when there is none) with the cluster's
// certificate lifetime. The tasks of the returned spec then push them and restart the
// members one at a time.
func RenewSpecFor(c *config.Cluster, workdir string, files binaries.Files) (Spec, error) {
	return specFor(c, workdir, files, true)
}

func specFor(c *config.Cluster, workdir string, files binaries.Files, renew bool) (Spec, error) {
	s := Spec{Type: c.Etcd.Type, Etcd: c.Etcd, Files: files}
	if _, err := ExtraArgs(c.Etcd); err != nil {
		return s, err
	}
	switch c.Etcd.Type {
	case config.EtcdKubeadm:
		return s, nil
	case config.EtcdExternal:
		ext := c.Etcd.External
		for _, f := range []struct {
			path string
			dst  *[]byte
			what string
		}{{ext.CAFile, &s.ClientCA, "caFile"}, {ext.CertFile, &s.ClientCert, "certFile"}, {ext.KeyFile, &s.ClientKey, "keyFile"}} {
			if f.path == "" {
				continue
			}
			b, err := os.ReadFile(f.path)
			if err != nil {
				return s, fmt.Errorf("external etcd %s %s: %w", f.what, f.path, err)
			}
			*f.dst = b
		}
		return s, nil
	case config.EtcdKubeKey:
	default:
		return s, fmt.Errorf("etcd type %q is not one of kubekey, kubeadm, external", c.Etcd.Type)
	}

	hosts := c.HostsWithRole(config.RoleEtcd)
	if len(hosts) == 0 {
		return s, fmt.Errorf("etcd type kubekey needs at least one host with role etcd")
	}
	var arches []string
	for _, h := range hosts {
		m := memberOf(h, c.Kubernetes.ClusterName)
		if m.IP == "" {
			return s, fmt.Errorf("etcd member %s has no internal IP address", h.Name)
		}
		s.Members = append(s.Members, m)
		if !slices.Contains(arches, m.Arch) {
			arches = append(arches, m.Arch)
		}
	}
	if !renew { // a renewal installs nothing
		if err := files.Check(arches, Programs); err != nil {
			return s, fmt.Errorf("etcd: %w", err)
		}
	}
	if err := s.issue(PKIDir(workdir), c.Kubernetes.CertificateValidity, renew); err != nil {
		return s, err
	}
	s.ClientCA, s.ClientCert, s.ClientKey = s.CA, s.APIServerClient.CertPEM, s.APIServerClient.KeyPEM
	return s, nil
}

func memberOf(h *config.Host, domain string) Member {
	m := Member{Name: h.Name, IP: h.InternalIP(), Arch: h.Arch}
	if m.Arch == "" {
		m.Arch = "amd64"
	}
	addDNS := func(n string) {
		if n != "" && !slices.Contains(m.DNSNames, n) {
			m.DNSNames = append(m.DNSNames, n)
		}
	}
	addIP := func(a string) {
		ip := net.ParseIP(a)
		if ip != nil && !slices.ContainsFunc(m.IPs, ip.Equal) {
			m.IPs = append(m.IPs, ip)
		}
	}
	addDNS(h.Name)
	if domain != "" {
		addDNS(h.Name + "." + domain)
	}
	addDNS("localhost")
	addIP(h.InternalIPv4())
	addIP(h.InternalIPv6())
	if net.ParseIP(h.Address) != nil {
		addIP(h.Address)
	} else {
		addDNS(h.Address)
	}
	addIP("127.0.0.1")
	addIP("::1")
	return m
}

// Endpoints are the client URLs kube-apiserver uses: https://<internal address>:<port> of
// every etcd host for type kubekey, the configured endpoints for external, nil for kubeadm
// (stacked etcd is local to each control plane).
func Endpoints(c *config.Cluster) []string {
	switch c.Etcd.Type {
	case config.EtcdKubeKey:
		var out []string
		for _, h := range c.HostsWithRole(config.RoleEtcd) {
			out = append(out, memberOf(h, "").ClientURL(ClientPort(c.Etcd)))
		}
		return out
	case config.EtcdExternal:
		return slices.Clone(c.Etcd.External.Endpoints)
	}
	return nil
}

// MonitoringClient is how a scraper reaches every etcd member of cluster c (the platform's
// Prometheus): the members' addresses (kubekey: the etcd hosts; kubeadm: the control planes;
// external: the endpoints' hosts, which must be IP addresses), their client port, and, on the
// control-plane hosts, the CA and a client certificate and key (all "" for an external etcd
// without TLS).
func MonitoringClient(c *config.Cluster) (addresses []string, port int, ca, cert, key string, err error) {
	port = ClientPort(c.Etcd)
	switch c.Etcd.Type {
	case config.EtcdKubeKey, config.EtcdKubeadm:
		role := config.RoleEtcd
		ca, cert, key = ClientFiles(c)
		if c.Etcd.Type == config.EtcdKubeadm {
			role = config.RoleControlPlane
			ca, cert, key = KubeadmCA, KubeadmHealthCert, KubeadmHealthKey
		}
		for _, h := range c.HostsWithRole(role) {
			ip := h.InternalIPv4()
			if ip == "" {
				return nil, 0, "", "", "", fmt.Errorf("host %s: Prometheus scrapes etcd at an IPv4 address, and it has none (spec.etcd.monitoring)", h.Name)
			}
			addresses = append(addresses, ip)
		}
	case config.EtcdExternal:
		ports := map[string]bool{}
		for _, e := range c.Etcd.External.Endpoints {
			u, perr := url.Parse(e)
			if ip := net.ParseIP(u.Hostname()); perr != nil || ip == nil || ip.To4() == nil {
				return nil, 0, "", "", "", fmt.Errorf("external etcd endpoint %q: its host must be an IPv4 address for Prometheus to scrape it (spec.etcd.monitoring)", e)
			}
			addresses = append(addresses, u.Hostname())
			if u.Port() != "" {
				ports[u.Port()] = true
				port, _ = strconv.Atoi(u.Port())
			}
		}
		if len(ports) > 1 {
			return nil, 0, "", "", "", fmt.Errorf("external etcd endpoints %v: one client port for all of them, for Prometheus to scrape them (spec.etcd.monitoring)", c.Etcd.External.Endpoints)
		}
		ca, cert, key = ClientFiles(c)
	default:
		return nil, 0, "", "", "", fmt.Errorf("etcd type %q is not one of kubekey, kubeadm, external", c.Etcd.Type)
	}
	return addresses, port, ca, cert, key, nil
}

// ClientFiles are the paths, on control-plane hosts, of the etcd CA and kube-apiserver's
// client certificate and key: the constants for type kubekey; for external those whose
// local file is configured ("" otherwise: no TLS); all "" for kubeadm.
func ClientFiles(c *config.Cluster) (ca, cert, key string) {
	switch c.Etcd.Type {
	case config.EtcdKubeKey:
		return ClientCAFile, ClientCertFile, ClientKeyFile
	case config.EtcdExternal:
		e := c.Etcd.External
		if e.CAFile != "" {
			ca = ClientCAFile
		}
		if e.CertFile != "" {
			cert = ClientCertFile
		}
		if e.KeyFile != "" {
			key = ClientKeyFile
		}
	}
	return ca, cert, key
}

// ClientPort is etcd's client port (etcd.port, 2379 when unset).
func ClientPort(e config.Etcd) int {
	if e.Port == 0 {
		return 2379
	}
	return e.Port
}

func peerPort(e config.Etcd) int {
	if e.PeerPort == 0 {
		return 2380
	}
	return e.PeerPort
}

func dataDir(e config.Etcd) string {
	if e.DataDir == "" {
		return "/var/lib/etcd"
	}
	return e.DataDir
}

// Member-side paths of a member's certificates.
// (the PKIDir names with .pem and -key.pem, as KubeKey names them).
func serverCert(name string) string { return CertDir + "/" + ServerName(name) + ".pem" }
func serverKey(name string) string  { return CertDir + "/" + ServerName(name) + "-key.pem" }
func peerCert(name string) string   { return CertDir + "/" + PeerName(name) + ".pem" }
func peerKey(name string) string    { return CertDir + "/" + PeerName(name) + "-key.pem" }

const (
	caFile    = CertDir + "/ca.pem"
	adminCert = CertDir + "/" + AdminName + ".pem"
	adminKey  = CertDir + "/" + AdminName + "-key.pem"
	etcdctl   = BinDir + "/etcdctl"
)

func (s Spec) member(name string) (Member, bool) {
	for _, m := range s.Members {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// Tasks returns the tasks that install and run etcd on the etcd hosts (type kubekey); nil
// for the other types. They run after facts.TaskName.
func Tasks(s Spec) []pipeline.Task {
	if s.Type != config.EtcdKubeKey || len(s.Members) == 0 {
		return nil
	}
	after := []string{facts.TaskName}
	sel := pipeline.Role(string(config.RoleEtcd))
	return []pipeline.Task{
		certsTask(s, sel, after),
		binaries.Task(TaskInstall, "install etcd, etcdctl and etcdutl", sel, after, s.Files, binaries.To(BinDir, Programs...)),
		configTask(s, sel),
		serviceTask(s, sel),
		healthTask(s),
		backupTask(s, sel),
	}
}

// RenewTasks are the tasks of kk certs renew for the spec RenewSpecFor returned: the
// re-issued certificates on every member, the members restarted one at a time (each healthy
// before the next), the cluster's health, and kube-apiserver's client certificate on the
// control planes. Nil for types other than kubekey.
func RenewTasks(s Spec) []pipeline.Task {
	if s.Type != config.EtcdKubeKey || len(s.Members) == 0 {
		return nil
	}
	var out []pipeline.Task
	for _, t := range append(Tasks(s), ClientTasks(s)...) {
		switch t.Name {
		case TaskCerts, TaskService, TaskHealth, TaskClientCerts:
		default:
			continue
		}
		var after []string
		for _, a := range t.After {
			if a != TaskInstall && a != TaskConfig {
				after = append(after, a)
			}
		}
		t.After = after
		if t.Name == TaskClientCerts {
			t.After = append(t.After, TaskHealth)
		}
		out = append(out, t)
	}
	return out
}

// ClientTasks returns the task that puts the etcd CA and kube-apiserver's client certificate
// and key on every control-plane host (type kubekey, and external with TLS files); nil
// otherwise.
func ClientTasks(s Spec) []pipeline.Task {
	var files []connector.File
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{ClientCAFile, s.ClientCA, 0o644}, {ClientCertFile, s.ClientCert, 0o644}, {ClientKeyFile, s.ClientKey, 0o600}} {
		if f.data != nil {
			files = append(files, connector.File{Path: f.path, Data: f.data, Mode: f.mode})
		}
	}
	if s.Type == config.EtcdKubeadm || len(files) == 0 {
		return nil
	}
	return []pipeline.Task{{
		Name: TaskClientCerts, Desc: "etcd CA and kube-apiserver's etcd client certificate on the control planes",
		Hosts: pipeline.Role(string(config.RoleControlPlane)), After: []string{facts.TaskName},
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if ok, err := t.Test(ctx, sameFiles(files)); err != nil || ok || s.Type != config.EtcdKubeKey {
				return ok, err
			}
			return s.hostCurrent(ctx, t, files)
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			return t.UploadAll(ctx, files)
		},
	}}
}

// memberFiles are the certificates and keys one member holds.
func (s Spec) memberFiles(name string) ([]connector.File, error) {
	srv, ok1 := s.Server[name]
	peer, ok2 := s.Peer[name]
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("no etcd certificates were issued for %s (not an etcd host in the config)", name)
	}
	return []connector.File{
		{Path: caFile, Data: s.CA, Mode: 0o644},
		{Path: serverCert(name), Data: srv.CertPEM, Mode: 0o644},
		{Path: serverKey(name), Data: srv.KeyPEM, Mode: 0o600},
		{Path: peerCert(name), Data: peer.CertPEM, Mode: 0o644},
		{Path: peerKey(name), Data: peer.KeyPEM, Mode: 0o600},
		{Path: adminCert, Data: s.Admin.CertPEM, Mode: 0o644},
		{Path: adminKey, Data: s.Admin.KeyPEM, Mode: 0o600},
	}, nil
}

func certsTask(s Spec, sel pipeline.Selector, after []string) pipeline.Task {
	return pipeline.Task{
		Name: TaskCerts, Desc: "the etcd CA, the member's server and peer certificates and the admin client certificate",
		Hosts: sel, After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			files, err := s.memberFiles(t.Name)
			if err != nil {
				return false, err
			}
			if ok, err := t.Test(ctx, sameFiles(files)); err != nil || ok {
				return ok, err
			}
			return s.hostCurrent(ctx, t, files)
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			files, err := s.memberFiles(t.Name)
			if err != nil {
				return false, err
			}
			return t.UploadAll(ctx, files)
		},
	}
}

// sameFiles is a shell test that every file exists with exactly its content.
func sameFiles(files []connector.File) string {
	var sums []string
	for _, f := range files {
		sums = append(sums, connector.Quote(sha256hex(f.Data)+"  "+f.Path))
	}
	return "printf '%s\\n' " + strings.Join(sums, " ") + " | sha256sum -c --status - 2>/dev/null"
}

// etcdctlCmd is an etcdctl command line with the admin certificate against endpoints.
func etcdctlCmd(endpoints []string, args ...string) string {
	base := []string{etcdctl, "--endpoints=" + strings.Join(endpoints, ","),
		"--cacert=" + caFile, "--cert=" + adminCert, "--key=" + adminKey,
		"--dial-timeout=3s", "--command-timeout=10s"}
	return connector.Cmd(append(base, args...)...)
}

func (s Spec) endpoints() []string {
	var out []string
	for _, m := range s.Members {
		out = append(out, m.ClientURL(ClientPort(s.Etcd)))
	}
	return out
}

// ---- etcd/service ----

// inputs are the files whose content a running member must have been started with.
func (s Spec) inputs(name string) []string {
	return []string{EnvFile, UnitFile, caFile, serverCert(name), serverKey(name), peerCert(name), peerKey(name), BinDir + "/etcd"}
}

func (s Spec) inputsSum(name string) string {
	return "cat " + connector.Cmd(s.inputs(name)...) + " | sha256sum | cut -d' ' -f1"
}

func serviceTask(s Spec, sel pipeline.Selector) pipeline.Task {
	// restarts of running members take this lock so that only one member is down at a time
	var restart sync.Mutex
	local := []string{localEndpoint(s.Etcd)}
	return pipeline.Task{
		Name: TaskService, Desc: "etcd.service enabled and running (a new cluster's members start together; new members join, and changed ones restart, one at a time)",
		Hosts: sel, After: []string{TaskCerts, TaskInstall, TaskConfig},
		// a new cluster needs a quorum of members to start: every member starts in this one step
		Barrier: true,
		Timeout: HealthTimeout + time.Minute,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			return t.Test(ctx, `systemctl is-enabled --quiet etcd && systemctl is-active --quiet etcd && `+
				`[ "$(`+s.inputsSum(t.Name)+`)" = "$(cat `+AppliedFile+` 2>/dev/null)" ]`)
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			m, ok := s.member(t.Name)
			if !ok {
				return false, fmt.Errorf("%s is not an etcd member of the config", t.Name)
			}
			enabled, err := t.Test(ctx, "systemctl is-enabled --quiet etcd")
			if err != nil {
				return false, err
			}
			if _, err := t.Sudo(ctx, "systemctl daemon-reload && systemctl enable etcd"); err != nil {
				return false, err
			}
			active, err := t.Test(ctx, "systemctl is-active --quiet etcd")
			if err != nil {
				return false, err
			}
			stamp := s.inputsSum(t.Name) + " > " + AppliedFile
			start := stamp + " && { systemctl reset-failed etcd 2>/dev/null; systemctl start --no-block etcd; }"
			if !active {
				joining, err := t.Test(ctx, "! "+s.hasData()+" && grep -qx ETCD_INITIAL_CLUSTER_STATE="+StateExisting+" "+EnvFile)
				if err != nil {
					return false, err
				}
				if !joining {
					// not running (first start, or stopped): start without waiting, so that every
					// member of a new cluster starts at once; etcd/health waits for the quorum
					_, err := t.Sudo(ctx, start)
					return true, err
				}
				// a new member of a running cluster: added and started one at a time (etcd
				// refuses to add a member while an added one has not started)
				restart.Lock()
				defer restart.Unlock()
				initialCluster, err := s.join(ctx, t, m)
				if err != nil {
					return false, err
				}
				env, err := s.renderEnv(m.Name, StateExisting, initialCluster)
				if err != nil {
					return false, err
				}
				if _, err := t.Upload(ctx, connector.File{Path: EnvFile, Data: env, Mode: 0o644}); err != nil {
					return false, err
				}
				if _, err := t.Sudo(ctx, start); err != nil {
					return true, err
				}
				if err := waitHealthy(ctx, t, local, HealthTimeout); err != nil {
					return true, fmt.Errorf("etcd on %s did not join the cluster: %w", t.Name, err)
				}
				return true, nil
			}
			if ok, err := t.Test(ctx, `[ "$(`+s.inputsSum(t.Name)+`)" = "$(cat `+AppliedFile+` 2>/dev/null)" ]`); err != nil || ok {
				return !enabled, err
			}
			restart.Lock()
			defer restart.Unlock()
			// quorum: a member restarts only while every member is healthy (the one before it
			// may have failed to come back)
			if err := waitHealthy(ctx, t, s.endpoints(), HealthTimeout); err != nil {
				return false, fmt.Errorf("not restarting etcd on %s: not every member is healthy: %w", t.Name, err)
			}
			t.Log.Info("restarting etcd: its configuration, certificates or binary changed")
			if _, err := t.Sudo(ctx, stamp+" && systemctl restart --no-block etcd"); err != nil {
				return true, err
			}
			if err := waitHealthy(ctx, t, local, HealthTimeout); err != nil {
				return true, fmt.Errorf("etcd on %s is not healthy after its restart: %w", t.Name, err)
			}
			return true, nil
		},
	}
}

// waitHealthy polls `etcdctl endpoint health` on endpoints until it succeeds or timeout.
func waitHealthy(ctx context.Context, t *pipeline.Target, endpoints []string, timeout time.Duration) error {
	var last connector.Result
	ok, err := poll(ctx, timeout, 2*time.Second, func() (bool, error) {
		res, err := t.Exec(ctx, etcdctlCmd(endpoints, "endpoint", "health"), connector.ExecOptions{Sudo: true})
		last = res
		return err == nil && res.ExitCode == 0, err
	})
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("still unhealthy after %s: %s", timeout, strings.TrimSpace(last.Stderr+" "+last.Stdout))
	}
	return nil
}
