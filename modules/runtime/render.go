package runtime

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/templates"
)

// managedMarker is a file kk writes into every registry directory it manages, so that a
// directory whose registry left the configuration is removed on the next run (and one the
// user made is never touched).
const managedMarker = ".kk-managed"

// tlsOptions is how a registry host is reached.
type tlsOptions struct {
	scheme     string // "https", or "http" (plain, or HTTPS first then HTTP with skipVerify)
	skipVerify bool
	ca         []string // file names in the host's certs.d directory
	client     [][2]string
}

// registryDir is one directory under certs.d: a registry host, how it is reached, its mirrors
// and the certificate files kk puts there.
type registryDir struct {
	Host       string
	Server     string
	SkipVerify bool
	CA         []string // absolute paths
	Client     [][2]string
	Mirrors    []mirrorHost
	files      []connector.File
}

type mirrorHost struct {
	URL        string
	SkipVerify bool
	CA         []string
	Client     [][2]string
}

// insecure maps a normalised registry host to how it was written: "http", "https" or ""
// (bare host).
func (s Spec) insecure() map[string]string {
	m := map[string]string{}
	for _, r := range s.InsecureRegistries {
		scheme := ""
		switch {
		case strings.HasPrefix(r, "http://"):
			scheme = "http"
		case strings.HasPrefix(r, "https://"):
			scheme = "https"
		}
		m[registryHost(r)] = scheme
	}
	return m
}

// auth returns the auth entry of a registry host (keys may be written as URLs).
func (s Spec) auth(host string) config.RegistryAuth {
	for k, v := range s.Auths {
		if registryHost(k) == host {
			return v
		}
	}
	return config.RegistryAuth{}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// certFiles reads the certificate files kk puts in host's directory: RegistryCA as ca.crt for
// the private registry, and every *.crt, *.cert and *.key of the auth entry's CertsPath.
func (s Spec) certFiles(host string) ([]connector.File, tlsOptions, error) {
	var files []connector.File
	var t tlsOptions
	if s.PrivateRegistry != "" && registryHost(s.PrivateRegistry) == host && len(s.RegistryCA) > 0 {
		files = append(files, connector.File{Path: "ca.crt", Data: s.RegistryCA, Mode: 0o644})
		t.ca = append(t.ca, "ca.crt")
	}
	a := s.auth(host)
	if a.CertsPath != "" {
		ents, err := os.ReadDir(a.CertsPath)
		if err != nil {
			return nil, t, fmt.Errorf("registry %s: certsPath: %w", host, err)
		}
		names := map[string]bool{}
		for _, e := range ents {
			names[e.Name()] = true
		}
		for _, e := range ents {
			n := e.Name()
			ext := filepath.Ext(n)
			if e.IsDir() || (ext != ".crt" && ext != ".cert" && ext != ".key") || slices.ContainsFunc(files, func(f connector.File) bool { return f.Path == n }) {
				continue
			}
			data, err := os.ReadFile(filepath.Join(a.CertsPath, n))
			if err != nil {
				return nil, t, fmt.Errorf("registry %s: certsPath: %w", host, err)
			}
			mode := os.FileMode(0o644)
			if ext == ".key" {
				mode = 0o600
			}
			files = append(files, connector.File{Path: n, Data: data, Mode: mode})
			switch ext {
			case ".crt":
				t.ca = append(t.ca, n)
			case ".cert":
				key := strings.TrimSuffix(n, ".cert") + ".key"
				if !names[key] {
					return nil, t, fmt.Errorf("registry %s: certsPath %s: client certificate %s has no key %s", host, a.CertsPath, n, key)
				}
				t.client = append(t.client, [2]string{n, key})
			}
		}
	}
	return files, t, nil
}

// tls says how host is reached.
func (s Spec) tls(host string) ([]connector.File, tlsOptions, error) {
	files, t, err := s.certFiles(host)
	if err != nil {
		return nil, t, err
	}
	t.scheme = "https"
	a := s.auth(host)
	if scheme, ok := s.insecure()[host]; ok {
		switch scheme {
		case "http":
			t.scheme = "http"
		case "https":
			t.skipVerify = true
		default: // like Docker: HTTPS without verification, then plain HTTP
			t.scheme, t.skipVerify = "http", true
		}
	}
	if a.SkipTLSVerify {
		t.skipVerify = true
	}
	if a.PlainHTTP {
		t.scheme, t.skipVerify = "http", false
	}
	return files, t, nil
}

// registryDirs computes every registry directory under base (certs.d) with its files.
func (s Spec) registryDirs(base string) ([]registryDir, error) {
	hosts := map[string]bool{}
	for h := range s.Mirrors {
		hosts[registryHost(h)] = true
	}
	for h := range s.insecure() {
		hosts[h] = true
	}
	if s.PrivateRegistry != "" {
		hosts[registryHost(s.PrivateRegistry)] = true
	}
	for h := range s.Auths {
		hosts[registryHost(h)] = true
	}
	names := make([]string, 0, len(hosts))
	for h := range hosts {
		if h != "" {
			names = append(names, h)
		}
	}
	sort.Strings(names)
	abs := func(host string, files []string) []string {
		var out []string
		for _, f := range files {
			out = append(out, path.Join(base, host, f))
		}
		return out
	}
	absPairs := func(host string, pairs [][2]string) [][2]string {
		var out [][2]string
		for _, p := range pairs {
			out = append(out, [2]string{path.Join(base, host, p[0]), path.Join(base, host, p[1])})
		}
		return out
	}
	var dirs []registryDir
	for _, h := range names {
		files, t, err := s.tls(h)
		if err != nil {
			return nil, err
		}
		d := registryDir{Host: h, Server: t.scheme + "://" + h, SkipVerify: t.skipVerify, CA: abs(h, t.ca), Client: absPairs(h, t.client)}
		if h == "docker.io" {
			d.Server = "https://registry-1.docker.io"
		}
		var mirrors []string
		for k, v := range s.Mirrors {
			if registryHost(k) == h {
				mirrors = append(mirrors, v...)
			}
		}
		for _, m := range mirrors {
			mh := registryHost(m)
			_, mt, err := s.tls(mh)
			if err != nil {
				return nil, err
			}
			mirror := mirrorHost{SkipVerify: mt.skipVerify, CA: abs(mh, mt.ca), Client: absPairs(mh, mt.client)}
			switch {
			case strings.HasPrefix(m, "http://"):
				mirror.URL, mirror.SkipVerify = m, false // plain HTTP, as written
			case strings.HasPrefix(m, "https://"):
				mirror.URL = m
			default:
				mirror.URL = mt.scheme + "://" + m
			}
			d.Mirrors = append(d.Mirrors, mirror)
		}
		for _, f := range files {
			f.Path = path.Join(base, h, f.Path)
			d.files = append(d.files, f)
		}
		dirs = append(dirs, d)
	}
	return dirs, nil
}

// RegistryFiles are the files kk writes under /etc/containerd/certs.d: for each registry host
// with mirrors, TLS options or certificates, a hosts.toml and the certificates it names, plus
// the marker of a kk-managed directory. It returns them with the managed directories.
func RegistryFiles(s Spec) (files []connector.File, dirs []string, err error) {
	rd, err := s.registryDirs(CertsDir)
	if err != nil {
		return nil, nil, err
	}
	for _, d := range rd {
		b, err := templates.Render("containerd/hosts.toml", d)
		if err != nil {
			return nil, nil, err
		}
		dir := path.Join(CertsDir, d.Host)
		dirs = append(dirs, dir)
		files = append(files, connector.File{Path: path.Join(dir, "hosts.toml"), Data: b, Mode: 0o644})
		files = append(files, d.files...)
		files = append(files, connector.File{Path: path.Join(dir, managedMarker), Data: []byte("written by kk\n"), Mode: 0o644})
	}
	return files, dirs, nil
}

// DockerRegistryFiles are the certificate files under /etc/docker/certs.d (Docker reads *.crt
// as CAs and *.cert/*.key as client pairs there) with kk's marker, and the managed directories.
func DockerRegistryFiles(s Spec) (files []connector.File, dirs []string, err error) {
	rd, err := s.registryDirs(DockerCertsDir)
	if err != nil {
		return nil, nil, err
	}
	for _, d := range rd {
		if len(d.files) == 0 {
			continue
		}
		dir := path.Join(DockerCertsDir, d.Host)
		dirs = append(dirs, dir)
		files = append(files, d.files...)
		files = append(files, connector.File{Path: path.Join(dir, managedMarker), Data: []byte("written by kk\n"), Mode: 0o644})
	}
	return files, dirs, nil
}

type authEntry struct{ Host, Username, Password string }

type containerdConfig struct {
	Root, State, Socket, SandboxImage, CertsDir, Runc, CNIBinDir, CNIConfDir, DropIns string
	RestrictOOMScoreAdj                                                               bool
	Auths                                                                             []authEntry
}

func (s Spec) auths() []authEntry {
	var out []authEntry
	keys := make([]string, 0, len(s.Auths))
	for k := range s.Auths {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		a := s.Auths[k]
		if a.Username == "" && a.Password == "" {
			continue
		}
		h := registryHost(k)
		out = append(out, authEntry{h, a.Username, a.Password})
		if h == "docker.io" { // containerd asks for the endpoint's credentials
			out = append(out, authEntry{"registry-1.docker.io", a.Username, a.Password})
		}
	}
	return out
}

// RenderContainerdConfig renders /etc/containerd/config.toml (containerd 2.x, config version 3)
// for a host; inContainer (the host's facts name a container technology) turns on
// restrict_oom_score_adj, as kind does, since such a host cannot lower oom_score_adj.
func RenderContainerdConfig(s Spec, inContainer bool) ([]byte, error) {
	return templates.Render("containerd/config.toml", containerdConfig{
		Root: s.Root(), State: "/run/containerd", Socket: strings.TrimPrefix(ContainerdSocket, "unix://"),
		SandboxImage: s.SandboxImage, CertsDir: CertsDir, Runc: RuncPath, CNIBinDir: CNIBinDir, CNIConfDir: CNIConfDir,
		DropIns: ContainerdDropIns + "/*.toml", RestrictOOMScoreAdj: inContainer, Auths: s.auths(),
	})
}

type unitData struct {
	InContainer                  bool
	BinDir, Socket, SandboxImage string
	CNIBinDir, CNIConfDir        string
}

// RenderContainerdUnit renders containerd.service. On a host that runs in a container the
// unit leaves oom_score_adj and resource limits alone (the host may not raise them).
func RenderContainerdUnit(inContainer bool) ([]byte, error) {
	return templates.Render("containerd/containerd.service", unitData{InContainer: inContainer, BinDir: BinDir})
}

// RenderCrictl renders /etc/crictl.yaml pointing crictl at the spec's CRI socket.
func RenderCrictl(s Spec) ([]byte, error) {
	return templates.Render("containerd/crictl.yaml", struct{ Socket string }{s.CRISocket})
}

// RenderDockerDaemon renders /etc/docker/daemon.json: systemd cgroups, bounded json-file
// logs, registry mirrors (Docker only mirrors docker.io), insecure registries, data root and
// bridge address.
func RenderDockerDaemon(s Spec) ([]byte, error) {
	d := map[string]any{
		"exec-opts":  []string{"native.cgroupdriver=systemd"},
		"log-driver": "json-file",
		"log-opts":   map[string]string{"max-size": "100m", "max-file": "5"},
	}
	if s.DataRoot != "" {
		d["data-root"] = s.DataRoot
	}
	if s.BridgeIP != "" {
		d["bip"] = s.BridgeIP
	}
	var mirrors []string
	for k, v := range s.Mirrors {
		if registryHost(k) == "docker.io" {
			mirrors = append(mirrors, v...)
		}
	}
	if len(mirrors) > 0 {
		d["registry-mirrors"] = mirrors
	}
	var insecure []string
	for h := range s.insecure() {
		insecure = append(insecure, h)
	}
	for k, a := range s.Auths {
		if (a.SkipTLSVerify || a.PlainHTTP) && !slices.Contains(insecure, registryHost(k)) {
			insecure = append(insecure, registryHost(k))
		}
	}
	sort.Strings(insecure)
	if len(insecure) > 0 {
		d["insecure-registries"] = insecure
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// RenderDockerAuth renders root's ~/.docker/config.json with the registries' credentials
// (cri-dockerd reads them for pulls), or nil when no registry has credentials.
func RenderDockerAuth(s Spec) ([]byte, error) {
	auths := map[string]map[string]string{}
	for _, a := range s.auths() {
		if a.Host == "registry-1.docker.io" {
			continue
		}
		key := a.Host
		if key == "docker.io" {
			key = "https://index.docker.io/v1/"
		}
		auths[key] = map[string]string{"auth": b64(a.Username + ":" + a.Password)}
	}
	if len(auths) == 0 {
		return nil, nil
	}
	b, err := json.MarshalIndent(map[string]any{"auths": auths}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// RenderDockerUnit renders docker.service.
func RenderDockerUnit(inContainer bool) ([]byte, error) {
	return templates.Render("docker/docker.service", unitData{InContainer: inContainer, BinDir: BinDir})
}

// RenderCriDockerdUnit renders cri-docker.service: cri-dockerd serving the spec's CRI socket
// with the CNI network plugin and the spec's sandbox image.
func RenderCriDockerdUnit(s Spec) ([]byte, error) {
	return templates.Render("docker/cri-docker.service", unitData{
		BinDir: BinDir, Socket: s.CRISocket, SandboxImage: s.SandboxImage, CNIBinDir: CNIBinDir, CNIConfDir: CNIConfDir,
	})
}
