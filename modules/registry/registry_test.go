package registry

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/templates"
)

func TestRewrite(t *testing.T) {
	cases := []struct{ ref, reg, ns, want string }{
		{"registry.k8s.io/kube-apiserver:v1.34.4", "dockerhub.kubekey.local", "", "dockerhub.kubekey.local/kube-apiserver:v1.34.4"},
		{"registry.k8s.io/kube-apiserver:v1.34.4", "r.local:5000", "kubesphere", "r.local:5000/kubesphere/kube-apiserver:v1.34.4"},
		{"registry.k8s.io/coredns/coredns:v1.12.0", "r.local/prefix", "", "r.local/prefix/coredns/coredns:v1.12.0"},
		{"docker.io/flannel/flannel:v0.28.1", "10.0.0.1:443", "", "10.0.0.1:443/flannel/flannel:v0.28.1"},
		{"haproxy:2.6", "r.local", "", "r.local/library/haproxy:2.6"},
		{"quay.io/a/b/c:v1", "r.local", "ns/", "r.local/ns/c:v1"},
		{"registry.k8s.io/pause@sha256:" + strings.Repeat("a", 64), "r.local", "", "r.local/pause@sha256:" + strings.Repeat("a", 64)},
	}
	for _, c := range cases {
		got, err := Rewrite(c.ref, c.reg, c.ns)
		if err != nil || got != c.want {
			t.Errorf("Rewrite(%q, %q, %q) = %q, %v; want %q", c.ref, c.reg, c.ns, got, err, c.want)
		}
	}
	if _, err := Rewrite("UPPER/Case::x", "r", ""); err == nil {
		t.Error("Rewrite accepted a bad reference")
	}
}

func TestEndpoint(t *testing.T) {
	cases := []struct {
		pr, endpoint, domain string
		port                 int
		prefix               string
	}{
		{"", DefaultDomain, DefaultDomain, 443, ""},
		{"dockerhub.kubekey.local:5000", "dockerhub.kubekey.local:5000", "dockerhub.kubekey.local", 5000, ""},
		{"reg.example.com/kubesphere", "reg.example.com", "reg.example.com", 443, "kubesphere"},
		{"10.0.0.5:443/a/b", "10.0.0.5", "10.0.0.5", 443, "a/b"},
		{"[fd00::5]:8443", "[fd00::5]:8443", "fd00::5", 8443, ""},
	}
	for _, c := range cases {
		ep, d, p, pre, err := Endpoint(&config.Cluster{Registry: config.Registry{PrivateRegistry: c.pr}})
		if err != nil || ep != c.endpoint || d != c.domain || p != c.port || pre != c.prefix {
			t.Errorf("Endpoint(%q) = %q %q %d %q %v; want %q %q %d %q", c.pr, ep, d, p, pre, err, c.endpoint, c.domain, c.port, c.prefix)
		}
	}
	for _, bad := range []string{"host:0", "host:x", ":5000"} {
		if _, _, _, _, err := Endpoint(&config.Cluster{Registry: config.Registry{PrivateRegistry: bad}}); err == nil {
			t.Errorf("Endpoint(%q) accepted", bad)
		}
	}
}

func TestRenderHosts(t *testing.T) {
	cur := "127.0.0.1 localhost\n# BEGIN kk managed hosts\n10.0.0.1 n1\n# END kk managed hosts"
	once := RenderHosts(cur, "10.0.0.1", "dockerhub.kubekey.local")
	want := cur + "\n# BEGIN kk registry\n10.0.0.1 dockerhub.kubekey.local\n# END kk registry\n"
	if once != want {
		t.Fatalf("got\n%s\nwant\n%s", once, want)
	}
	if twice := RenderHosts(once, "10.0.0.1", "dockerhub.kubekey.local"); twice != once {
		t.Errorf("not stable:\n%s", twice)
	}
	moved := RenderHosts(once, "10.0.0.2", "dockerhub.kubekey.local")
	if strings.Count(moved, "dockerhub.kubekey.local") != 1 || !strings.Contains(moved, "10.0.0.2 dockerhub.kubekey.local") {
		t.Errorf("block not replaced:\n%s", moved)
	}
}

func testCluster(hosts ...string) *config.Cluster {
	c := &config.Cluster{Name: "t"}
	for i, h := range hosts {
		ip := "10.0.0." + string(rune('1'+i))
		c.Hosts = append(c.Hosts, &config.Host{Name: h, Address: ip, InternalAddress: ip, Arch: "amd64", Roles: []config.Role{config.RoleRegistry}})
	}
	return c
}

func testFiles(t *testing.T) binaries.Files {
	p := filepath.Join(t.TempDir(), "registry")
	os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755)
	var f binaries.Files
	f.Add("amd64", Program, p)
	return f
}

func TestSpecFor(t *testing.T) {
	work := t.TempDir()
	c := testCluster("n1")
	c.Registry.PrivateRegistry = "dockerhub.kubekey.local:5000"
	c.Registry.Auths = map[string]config.RegistryAuth{"dockerhub.kubekey.local:5000": {Username: "admin", Password: "s3cret"}}
	files := testFiles(t)
	s, err := SpecFor(c, work, files)
	if err != nil {
		t.Fatal(err)
	}
	if s.Server != "n1" || s.ServerIP != "10.0.0.1" || s.Endpoint != "dockerhub.kubekey.local:5000" || s.Port != 5000 || len(s.Issued) != 2 {
		t.Errorf("spec = %+v", s)
	}
	if s.CertsDir() != "/etc/containerd/certs.d/dockerhub.kubekey.local:5000" {
		t.Errorf("certs dir %s", s.CertsDir())
	}
	blk, _ := pem.Decode(s.Cert.CertPEM)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.VerifyHostname("dockerhub.kubekey.local"); err != nil {
		t.Error(err)
	}
	if err := cert.VerifyHostname("n1"); err != nil {
		t.Error(err)
	}
	if err := cert.VerifyHostname("10.0.0.1"); err != nil {
		t.Error(err)
	}
	ca, err := CAPEM(work)
	if err != nil || !bytes.Equal(ca, s.CA) {
		t.Errorf("CAPEM: %v", err)
	}
	if !strings.HasPrefix(string(s.Htpasswd), "admin:$2") {
		t.Errorf("htpasswd %q", s.Htpasswd)
	}

	// a re-run issues nothing and renders the same bytes
	again, err := SpecFor(c, work, files)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Issued) != 0 || !bytes.Equal(again.Cert.CertPEM, s.Cert.CertPEM) || !bytes.Equal(again.Htpasswd, s.Htpasswd) {
		t.Errorf("re-run changed the spec: issued %v", again.Issued)
	}
	f1, _ := s.serverFiles()
	f2, _ := again.serverFiles()
	for i := range f1 {
		if !bytes.Equal(f1[i].Data, f2[i].Data) {
			t.Errorf("%s differs on a re-run", f1[i].Path)
		}
	}
	// a new password re-hashes
	c.Registry.Auths["dockerhub.kubekey.local:5000"] = config.RegistryAuth{Username: "admin", Password: "other"}
	third, err := SpecFor(c, work, files)
	if err != nil || bytes.Equal(third.Htpasswd, s.Htpasswd) {
		t.Errorf("password change kept the old htpasswd (%v)", err)
	}
	// no auth, no htpasswd
	c.Registry.Auths = nil
	if s4, _ := SpecFor(c, work, files); s4.Htpasswd != nil {
		t.Error("htpasswd without credentials")
	}
}

func TestSpecForErrors(t *testing.T) {
	work := t.TempDir()
	if _, err := SpecFor(testCluster(), work, testFiles(t)); err == nil || !strings.Contains(err.Error(), "no host has role registry") {
		t.Errorf("no registry host: %v", err)
	}
	if _, err := SpecFor(testCluster("n1", "n2"), work, testFiles(t)); err == nil || !strings.Contains(err.Error(), "n1, n2") {
		t.Errorf("two registry hosts: %v", err)
	}
	if _, err := SpecFor(testCluster("n1"), work, binaries.Files{}); err == nil || !strings.Contains(err.Error(), "registry") {
		t.Errorf("no program: %v", err)
	}
}

func TestConfigRenders(t *testing.T) {
	s, err := SpecFor(testCluster("n1"), t.TempDir(), testFiles(t))
	if err != nil {
		t.Fatal(err)
	}
	files, err := s.serverFiles()
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(files[0].Data)
	for _, want := range []string{"rootdirectory: /var/lib/registry", `addr: ":443"`, "certificate: " + CertFile, "key: " + KeyFile} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, "htpasswd") {
		t.Errorf("auth without credentials:\n%s", cfg)
	}
	if _, err := templates.Render("registry/registry.service", struct{ Binary, ConfigFile string }{"/usr/local/bin/registry", ConfigFile}); err != nil {
		t.Error(err)
	}
	if !strings.Contains(s.Probe(), "--connect-to 'dockerhub.kubekey.local:443:127.0.0.1:443' 'https://dockerhub.kubekey.local/v2/'") &&
		!strings.Contains(s.Probe(), "--connect-to dockerhub.kubekey.local:443:127.0.0.1:443 https://dockerhub.kubekey.local/v2/") {
		t.Errorf("probe: %s", s.Probe())
	}
	names := []string{}
	for _, tk := range Tasks(s) {
		names = append(names, tk.Name)
	}
	if strings.Join(names, " ") != "registry/install registry/config registry/service registry/trust registry/etc-hosts" {
		t.Errorf("tasks %v", names)
	}
}

// TestRegistryDataDir: registry.registryDataDir is the registry's storage directory (its
// config's rootdirectory); a relative path is refused.
func TestRegistryDataDir(t *testing.T) {
	c := testCluster("n1")
	c.Registry.PrivateRegistry = "dockerhub.kubekey.local"
	s, err := SpecFor(c, t.TempDir(), testFiles(t))
	if err != nil || s.DataDir != DefaultDataDir {
		t.Fatalf("default: %q, %v", s.DataDir, err)
	}
	c.Registry.RegistryDataDir = "/data/registry/"
	if s, err = SpecFor(c, t.TempDir(), testFiles(t)); err != nil {
		t.Fatal(err)
	}
	files, err := s.serverFiles()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range files {
		if strings.HasSuffix(f.Path, "config.yml") {
			found = strings.Contains(string(f.Data), "rootdirectory: /data/registry\n")
		}
	}
	if !found {
		t.Errorf("config.yml does not keep the data in /data/registry: %+v", files)
	}
	c.Registry.RegistryDataDir = "data/registry"
	if _, err := SpecFor(c, t.TempDir(), testFiles(t)); err == nil || !strings.Contains(err.Error(), "registryDataDir") {
		t.Errorf("relative registryDataDir: %v", err)
	}
}
