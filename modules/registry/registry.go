// Package registry deploys kk's private image registry (`kk init registry`): the CNCF
// distribution registry on the host with role registry, served over TLS with a certificate
// from a kk CA (<workdir>/pki/registry), optionally behind htpasswd auth, run by systemd; and
// makes every node trust that CA (containerd's certs.d and the system trust store) and
// resolve the registry's domain. It also pushes the images of an offline bundle to a
// registry (Push) under the names nodes pull them by (Rewrite).
//
// Every task checks before it acts, so a second run changes nothing.
package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/catalog"
	"github.com/kk-project/kk/artifacts/download"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/modules/pki"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/templates"
)

const (
	// DefaultVersion is the distribution release kk installs when the bundle names none.
	DefaultVersion = "v3.0.0"
	// DefaultDomain is the registry's name when spec.registry.privateRegistry is empty
	// (KubeKey's default); nodes resolve it through /etc/hosts.
	DefaultDomain = "dockerhub.kubekey.local"
	// DefaultPort is the HTTPS port the registry listens on when privateRegistry names none.
	DefaultPort = 443
	// DefaultDataDir holds the registry's storage (filesystem driver).
	DefaultDataDir = "/var/lib/registry"

	// Component is the catalogue name of the registry program; Program its name in
	// binaries.Files.
	Component = "registry"
	Program   = "registry"

	BinDir       = "/usr/local/bin"
	ConfigDir    = "/etc/registry"
	ConfigFile   = ConfigDir + "/config.yml"
	CertFile     = ConfigDir + "/certs/registry.crt"
	KeyFile      = ConfigDir + "/certs/registry.key"
	CAFile       = ConfigDir + "/certs/ca.crt"
	HtpasswdFile = ConfigDir + "/htpasswd"
	UnitFile     = "/etc/systemd/system/registry.service"
	// AppliedFile records the SHA-256 of the inputs the running registry was started with.
	AppliedFile = ConfigDir + "/.applied"

	// CertsDRoot is containerd's registry host directory root (config_path).
	CertsDRoot = "/etc/containerd/certs.d"
	// TrustFile is the CA in the Debian/Ubuntu trust store (update-ca-certificates);
	// TrustFileRHEL the one in the RHEL family's (update-ca-trust).
	TrustFile     = "/usr/local/share/ca-certificates/kk-registry.crt"
	TrustFileRHEL = "/etc/pki/ca-trust/source/anchors/kk-registry.crt"

	hostsBegin = "# BEGIN kk registry"
	hostsEnd   = "# END kk registry"

	// HealthTimeout bounds how long registry/service waits for GET /v2/ to answer.
	HealthTimeout = 60 * time.Second
)

// Task names.
const (
	TaskInstall = "registry/install"
	TaskConfig  = "registry/config"
	TaskService = "registry/service"
	TaskTrust   = "registry/trust"
	TaskHosts   = "registry/etc-hosts"
)

// Spec is the registry kk deploys, with its certificate already issued on the kk machine.
type Spec struct {
	// Server is the host with role registry that runs the registry.
	Server string
	// ServerIP is the address nodes reach it on (its internal IP).
	ServerIP string
	// Domain is the name clients use ("dockerhub.kubekey.local", a host name or an IP);
	// Port the HTTPS port; Endpoint is Domain[:Port] as it appears in image names (the port
	// left out when 443); Prefix the path privateRegistry adds before image paths ("" none).
	Domain   string
	Port     int
	Endpoint string
	Prefix   string
	// DataDir is the registry's storage directory on the server (registry.registryDataDir,
	// default DefaultDataDir).
	DataDir string
	// Files holds the registry program for the server's arch.
	Files binaries.Files

	// CA is the kk registry CA certificate (PEM) every node trusts; Cert the server pair.
	CA   []byte
	Cert pki.Pair
	// Htpasswd is the htpasswd file (bcrypt) when spec.registry.auths holds credentials for
	// the registry; nil: no auth.
	Htpasswd []byte
	// Issued names the certificates SpecFor created or re-issued (empty on a re-run).
	Issued []string
}

// PKIDir is where the registry CA and server certificate live on the kk machine.
func PKIDir(workdir string) string { return filepath.Join(workdir, "pki", "registry") }

// CAPEM returns the registry CA certificate kk created under workdir (kk init registry), or
// an error wrapping os.ErrNotExist when there is none yet.
func CAPEM(workdir string) ([]byte, error) {
	return os.ReadFile(filepath.Join(PKIDir(workdir), "ca.crt"))
}

// Endpoint parses spec.registry.privateRegistry ("HOST[:PORT][/PREFIX]"; DefaultDomain when
// empty) into the registry's domain, port and path prefix, and returns the endpoint as image
// names carry it: domain, or domain:port when the port is not 443.
func Endpoint(c *config.Cluster) (endpoint, domain string, port int, prefix string, err error) {
	pr := strings.TrimSpace(c.Registry.PrivateRegistry)
	if pr == "" {
		pr = DefaultDomain
	}
	hostport, prefix, _ := strings.Cut(pr, "/")
	prefix = strings.Trim(prefix, "/")
	domain, port = hostport, DefaultPort
	if strings.HasPrefix(hostport, "[") || strings.Count(hostport, ":") == 1 {
		h, p, serr := net.SplitHostPort(hostport)
		if serr != nil {
			return "", "", 0, "", fmt.Errorf("spec.registry.privateRegistry %q: %w", pr, serr)
		}
		n, perr := strconv.Atoi(p)
		if perr != nil || n <= 0 || n > 65535 {
			return "", "", 0, "", fmt.Errorf("spec.registry.privateRegistry %q: bad port %q", pr, p)
		}
		domain, port = h, n
	}
	if domain == "" {
		return "", "", 0, "", fmt.Errorf("spec.registry.privateRegistry %q: no host", pr)
	}
	return endpointOf(domain, port), domain, port, prefix, nil
}

func endpointOf(domain string, port int) string {
	if port == DefaultPort {
		if strings.Contains(domain, ":") {
			return "[" + domain + "]"
		}
		return domain
	}
	return net.JoinHostPort(domain, strconv.Itoa(port))
}

// CertsDir is containerd's host directory for the registry: /etc/containerd/certs.d/<endpoint>.
func (s Spec) CertsDir() string {
	return path.Join(CertsDRoot, strings.NewReplacer("[", "", "]", "").Replace(s.Endpoint))
}

// Server returns the host with role registry; kk deploys one registry.
func Server(c *config.Cluster) (*config.Host, error) {
	hosts := c.HostsWithRole(config.RoleRegistry)
	switch len(hosts) {
	case 0:
		return nil, fmt.Errorf("%s: no host has role registry (add one to roleGroups.registry)", c)
	case 1:
		return hosts[0], nil
	}
	var names []string
	for _, h := range hosts {
		names = append(names, h.Name)
	}
	return nil, fmt.Errorf("%s: kk deploys one registry, but %d hosts have role registry: %s", c, len(hosts), strings.Join(names, ", "))
}

// AuthFor returns spec.registry.auths' entry for the registry, looked up by endpoint, then
// domain:port, then domain, then privateRegistry as written.
func AuthFor(c *config.Cluster, endpoint, domain string, port int) (config.RegistryAuth, bool) {
	for _, k := range []string{endpoint, net.JoinHostPort(domain, strconv.Itoa(port)), domain, c.Registry.PrivateRegistry} {
		if a, ok := c.Registry.Auths[k]; ok && k != "" {
			return a, true
		}
	}
	return config.RegistryAuth{}, false
}

// SpecFor derives the registry spec from the cluster. It loads or creates the registry CA
// under <workdir>/pki/registry and issues the server certificate there (re-issued only when
// stale), for the registry host's name and addresses and the registry's domain; it writes the
// htpasswd file there when spec.registry.auths holds a username and password for the registry
// (kept while the password still matches, so a re-run uploads nothing); and it checks that
// files holds the registry program for the server's arch.
func SpecFor(c *config.Cluster, workdir string, files binaries.Files) (Spec, error) {
	h, err := Server(c)
	if err != nil {
		return Spec{}, err
	}
	s := Spec{Server: h.Name, ServerIP: h.InternalIP(), DataDir: DefaultDataDir, Files: files}
	if d := c.Registry.RegistryDataDir; d != "" {
		if !path.IsAbs(d) {
			return s, fmt.Errorf("registry.registryDataDir %q is not an absolute path", d)
		}
		s.DataDir = path.Clean(d)
	}
	if s.Endpoint, s.Domain, s.Port, s.Prefix, err = Endpoint(c); err != nil {
		return s, err
	}
	if s.ServerIP == "" {
		return s, fmt.Errorf("registry host %s has no internal address", h.Name)
	}
	arch := h.Arch
	if arch == "" {
		arch = "amd64"
	}
	if err := files.Check([]string{arch}, []string{Program}); err != nil {
		return s, fmt.Errorf("registry: %w", err)
	}

	dir := PKIDir(workdir)
	ca, created, err := pki.LoadOrCreateCA(dir, "ca", "kk registry CA")
	if err != nil {
		return s, fmt.Errorf("registry CA in %s: %w", dir, err)
	}
	if created {
		s.Issued = append(s.Issued, "registry CA")
	}
	s.CA = ca.CertPEM
	cs := pki.Spec{CommonName: s.Domain, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	addName := func(n string) {
		if n == "" {
			return
		}
		if ip := net.ParseIP(n); ip != nil {
			if !slices.ContainsFunc(cs.IPs, ip.Equal) {
				cs.IPs = append(cs.IPs, ip)
			}
		} else if !slices.Contains(cs.DNSNames, n) {
			cs.DNSNames = append(cs.DNSNames, n)
		}
	}
	for _, n := range []string{s.Domain, h.Name, h.Address, h.InternalIPv4(), h.InternalIPv6()} {
		addName(n)
	}
	pair, issued, err := ca.Ensure(dir, "registry", cs)
	if err != nil {
		return s, fmt.Errorf("registry certificate in %s: %w", dir, err)
	}
	if issued {
		s.Issued = append(s.Issued, "registry server certificate")
	}
	s.Cert = pair

	if a, ok := AuthFor(c, s.Endpoint, s.Domain, s.Port); ok && a.Username != "" && a.Password != "" {
		if s.Htpasswd, err = ensureHtpasswd(filepath.Join(dir, "htpasswd"), a.Username, a.Password); err != nil {
			return s, fmt.Errorf("registry htpasswd: %w", err)
		}
	}
	return s, nil
}

// ensureHtpasswd returns the htpasswd file at p, rewritten only when it does not hold user
// with a bcrypt hash of password (bcrypt salts each hash: a new one every run would restart
// the registry every run).
func ensureHtpasswd(p, user, password string) ([]byte, error) {
	if strings.ContainsAny(user, ":\n") {
		return nil, fmt.Errorf("username %q: may not contain ':' or a newline", user)
	}
	if old, err := os.ReadFile(p); err == nil {
		if u, hash, ok := strings.Cut(strings.TrimSpace(string(old)), ":"); ok && u == user && !strings.Contains(hash, "\n") &&
			bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil {
			return old, nil
		}
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return nil, err
	}
	data := []byte(user + ":" + string(hash) + "\n")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return nil, err
	}
	return data, os.Rename(tmp, p)
}

// Programs extracts the registry program from a download cache (<workdir>/cache, or an
// imported bundle's Files()) holding the release archive of version for each arch.
func Programs(ctx context.Context, cache, version string, arches []string) (binaries.Files, error) {
	var f binaries.Files
	for _, arch := range arches {
		art, err := (catalog.Resolver{}).Resolve(catalog.Component{Name: Component, Version: version, Arch: arch})
		if err != nil {
			return f, err
		}
		members, err := download.Extract(ctx, cache, art)
		if err != nil {
			return f, err
		}
		for _, m := range members {
			if path.Base(m) == Program {
				f.Add(arch, Program, filepath.Join(cache, filepath.FromSlash(m)))
			}
		}
		if !f.Has(arch, Program) {
			return f, fmt.Errorf("%s: archive %s holds no %s program", art.Component, art.File, Program)
		}
	}
	return f, nil
}

// Tasks returns the registry tasks; they run after facts are gathered.
func Tasks(s Spec) []pipeline.Task {
	server := pipeline.Named(s.Server)
	after := []string{facts.TaskName}
	ts := []pipeline.Task{
		binaries.Task(TaskInstall, "the registry program in "+BinDir, server, after, s.Files, binaries.To(BinDir, Program)),
		configTask(s, server, after),
		serviceTask(s, server),
		trustTask(s, after),
	}
	if net.ParseIP(s.Domain) == nil {
		ts = append(ts, hostsTask(s, after))
	}
	return ts
}

// serverFiles are the files of the registry host besides the program.
func (s Spec) serverFiles() ([]connector.File, error) {
	cfg, err := templates.Render("registry/config.yml", struct {
		DataDir, CertFile, KeyFile, HtpasswdFile string
		Port                                     int
	}{s.DataDir, CertFile, KeyFile, htpasswdPath(s), s.Port})
	if err != nil {
		return nil, err
	}
	unit, err := templates.Render("registry/registry.service", struct{ Binary, ConfigFile string }{BinDir + "/" + Program, ConfigFile})
	if err != nil {
		return nil, err
	}
	files := []connector.File{
		{Path: ConfigFile, Data: cfg, Mode: 0o644},
		{Path: UnitFile, Data: unit, Mode: 0o644},
		{Path: CAFile, Data: s.CA, Mode: 0o644},
		{Path: CertFile, Data: s.Cert.CertPEM, Mode: 0o644},
		{Path: KeyFile, Data: s.Cert.KeyPEM, Mode: 0o600},
	}
	if s.Htpasswd != nil {
		files = append(files, connector.File{Path: HtpasswdFile, Data: s.Htpasswd, Mode: 0o600})
	}
	return files, nil
}

func htpasswdPath(s Spec) string {
	if s.Htpasswd == nil {
		return ""
	}
	return HtpasswdFile
}

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// sameFiles is a shell test that every file exists with exactly its content.
func sameFiles(files []connector.File) string {
	var sums []string
	for _, f := range files {
		sums = append(sums, connector.Quote(sha256hex(f.Data)+"  "+f.Path))
	}
	return "printf '%s\\n' " + strings.Join(sums, " ") + " | sha256sum -c --status - 2>/dev/null"
}

func configTask(s Spec, sel pipeline.Selector, after []string) pipeline.Task {
	return pipeline.Task{
		Name: TaskConfig, Desc: "registry config.yml, TLS certificate, htpasswd and systemd unit", Hosts: sel, After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			files, err := s.serverFiles()
			if err != nil {
				return false, err
			}
			cmd := sameFiles(files) + " && [ -d " + connector.Quote(s.DataDir) + " ]"
			if s.Htpasswd == nil {
				cmd += " && [ ! -e " + HtpasswdFile + " ]"
			}
			return t.Test(ctx, cmd)
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			files, err := s.serverFiles()
			if err != nil {
				return false, err
			}
			if _, err := t.Sudo(ctx, "mkdir -p "+connector.Quote(s.DataDir)+" "+ConfigDir+"/certs && chmod 0700 "+ConfigDir+"/certs"); err != nil {
				return false, err
			}
			changed, err := t.UploadAll(ctx, files)
			if err != nil {
				return changed, err
			}
			if s.Htpasswd == nil {
				// auth was turned off: the config no longer names the file
				if _, err := t.Sudo(ctx, "rm -f "+HtpasswdFile); err != nil {
					return changed, err
				}
			}
			return true, nil
		},
	}
}

// inputs are the files whose content the running registry must have been started with.
func (s Spec) inputs() []string {
	in := []string{UnitFile, ConfigFile, CertFile, KeyFile, BinDir + "/" + Program}
	if s.Htpasswd != nil {
		in = append(in, HtpasswdFile)
	}
	return in
}

func (s Spec) inputsSum() string {
	return "cat " + connector.Cmd(s.inputs()...) + " | sha256sum | cut -d' ' -f1"
}

// Probe is a shell command, run on the registry host, that succeeds when the registry
// answers GET /v2/ over TLS verified with the kk CA (200, or 401 behind auth): with curl
// when the host has it, else with openssl s_client.
func (s Spec) Probe() string {
	port := strconv.Itoa(s.Port)
	url := "https://" + endpointOf(s.Domain, s.Port) + "/v2/"
	connectTo := bracket(s.Domain) + ":" + port + ":127.0.0.1:" + port
	sni := ""
	if net.ParseIP(s.Domain) == nil {
		sni = " -servername " + connector.Quote(s.Domain)
	}
	curl := "code=$(timeout 10 curl -s -o /dev/null -w '%{http_code}' --cacert " + CAFile +
		" --connect-to " + connector.Quote(connectTo) + " " + connector.Quote(url) + "); [ \"$code\" = 200 ] || [ \"$code\" = 401 ]"
	ossl := "printf 'GET /v2/ HTTP/1.1\\r\\nHost: %s\\r\\nConnection: close\\r\\n\\r\\n' " + connector.Quote(endpointOf(s.Domain, s.Port)) +
		" | timeout 10 openssl s_client -quiet -verify_return_error -CAfile " + CAFile + sni +
		" -connect 127.0.0.1:" + port + " 2>/dev/null | head -n1 | grep -Eq '^HTTP/[0-9.]+ (200|401)'"
	return "if command -v curl >/dev/null 2>&1; then " + curl + "; else " + ossl + "; fi"
}

func bracket(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

func serviceTask(s Spec, sel pipeline.Selector) pipeline.Task {
	applied := `[ "$(` + s.inputsSum() + `)" = "$(cat ` + AppliedFile + ` 2>/dev/null)" ]`
	return pipeline.Task{
		Name: TaskService, Desc: "registry.service enabled, running and answering GET /v2/; restarted when its config, certificate or program changed",
		Hosts: sel, After: []string{TaskInstall, TaskConfig},
		Timeout: HealthTimeout + time.Minute,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			return t.Test(ctx, "systemctl is-enabled --quiet registry && systemctl is-active --quiet registry && "+applied+" && { "+s.Probe()+"; }")
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if _, err := t.Sudo(ctx, "systemctl daemon-reload && systemctl enable registry"); err != nil {
				return false, err
			}
			if _, err := t.Sudo(ctx, s.inputsSum()+" > "+AppliedFile+" && systemctl reset-failed registry 2>/dev/null; systemctl restart registry"); err != nil {
				return true, err
			}
			return true, waitHealthy(ctx, t, s)
		},
	}
}

// waitHealthy polls the probe until it succeeds or HealthTimeout passes; the error then
// carries the unit's state and its last log lines.
func waitHealthy(ctx context.Context, t *pipeline.Target, s Spec) error {
	deadline := time.Now().Add(HealthTimeout)
	for {
		ok, err := t.Test(ctx, s.Probe())
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			res, _ := t.Exec(ctx, "systemctl is-active registry; journalctl -u registry -n 20 --no-pager 2>&1 | tail -n 20", connector.ExecOptions{Sudo: true})
			return fmt.Errorf("registry on %s does not answer GET https://%s/v2/ after %s: %s", t.Name, s.Endpoint, HealthTimeout, strings.TrimSpace(res.Stdout+res.Stderr))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// trustCheck is a shell test that the host trusts the CA: containerd's certs.d, the system
// trust store (with update-ca-certificates having run, when the host has it) and the RHEL
// anchors when the host has that directory.
func (s Spec) trustCheck() string {
	ca := s.CertsDir() + "/ca.crt"
	sum := sha256hex(s.CA)
	same := func(p string) string {
		return "printf '%s\\n' " + connector.Quote(sum+"  "+p) + " | sha256sum -c --status - 2>/dev/null"
	}
	return same(ca) + " && " + same(TrustFile) +
		" && { ! command -v update-ca-certificates >/dev/null 2>&1 || [ -e /etc/ssl/certs/kk-registry.pem ]; }" +
		" && { [ ! -d " + path.Dir(TrustFileRHEL) + " ] || " + same(TrustFileRHEL) + "; }"
}

func trustTask(s Spec, after []string) pipeline.Task {
	return pipeline.Task{
		Name: TaskTrust, Desc: "every node trusts the registry CA (containerd certs.d and the system trust store)",
		Hosts: pipeline.AllHosts(), After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			return t.Test(ctx, s.trustCheck())
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			for _, p := range []string{s.CertsDir() + "/ca.crt", TrustFile} {
				if _, err := t.Sudo(ctx, "mkdir -p "+connector.Quote(path.Dir(p))); err != nil {
					return false, err
				}
				if _, err := t.Upload(ctx, connector.File{Path: p, Data: s.CA, Mode: 0o644}); err != nil {
					return true, err
				}
			}
			if _, err := t.Sudo(ctx, "if command -v update-ca-certificates >/dev/null 2>&1; then update-ca-certificates >/dev/null; fi"); err != nil {
				return true, err
			}
			rhel, err := t.Test(ctx, "[ -d "+path.Dir(TrustFileRHEL)+" ]")
			if err != nil || !rhel {
				return true, err
			}
			if _, err := t.Upload(ctx, connector.File{Path: TrustFileRHEL, Data: s.CA, Mode: 0o644}); err != nil {
				return true, err
			}
			_, err = t.Sudo(ctx, "if command -v update-ca-trust >/dev/null 2>&1; then update-ca-trust extract; fi")
			return true, err
		},
	}
}

// RenderHosts returns current with kk's registry block (the registry's address and domain)
// replaced, or appended when there is none.
func RenderHosts(current, ip, domain string) string {
	block := hostsBegin + "\n" + ip + " " + domain + "\n" + hostsEnd + "\n"
	var out strings.Builder
	in, done := false, false
	for _, l := range strings.SplitAfter(current, "\n") {
		switch trim := strings.TrimSpace(l); {
		case trim == hostsBegin:
			in = true
			if !done {
				out.WriteString(block)
				done = true
			}
		case trim == hostsEnd && in:
			in = false
		case !in:
			out.WriteString(l)
		}
	}
	res := out.String()
	if !done {
		if res != "" && !strings.HasSuffix(res, "\n") {
			res += "\n"
		}
		res += block
	}
	return res
}

func hostsTask(s Spec, after []string) pipeline.Task {
	desired := func(ctx context.Context, t *pipeline.Target) (cur, want []byte, err error) {
		cur, err = t.Fetch(ctx, "/etc/hosts")
		if err != nil {
			return nil, nil, fmt.Errorf("read /etc/hosts: %w", err)
		}
		return cur, []byte(RenderHosts(string(cur), s.ServerIP, s.Domain)), nil
	}
	return pipeline.Task{
		Name: TaskHosts, Desc: "every node resolves " + s.Domain + " to the registry host", Hosts: pipeline.AllHosts(), After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			cur, want, err := desired(ctx, t)
			return bytes.Equal(cur, want), err
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			_, want, err := desired(ctx, t)
			if err != nil {
				return false, err
			}
			return t.Upload(ctx, connector.File{Path: "/etc/hosts", Data: want, Mode: 0o644})
		},
	}
}
