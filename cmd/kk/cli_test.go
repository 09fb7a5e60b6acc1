package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kk runs the root command in-process and returns its output and error.
func kk(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func write(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const head = "apiVersion: kubekey.kubesphere.io/v1alpha2\nkind: Cluster\nmetadata: {name: t}\nspec:\n"

// Bad input never reaches a host: every case fails while loading the file, with the file and
// line in the message. (The addresses are loopback ones nothing listens on, so a dial would
// show up as a connection error instead.)
func TestBadInputNamesFileAndLineAndTouchesNothing(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"malformed yaml", head + "  hosts:\n  - {name: n1, address: 127.0.0.2\n", ".yaml:6: invalid YAML"}, // the unclosed mapping's line
		{"unknown role", head + "  hosts:\n  - {name: n1, address: 127.0.0.2, password: x}\n  roleGroups:\n    etcd: [n1]\n    control-plane: [n1]\n    boss: [n1]\n",
			`:10: spec.roleGroups.boss: unknown role "boss"`},
		{"host not in hosts", head + "  hosts:\n  - {name: n1, address: 127.0.0.2, password: x}\n  roleGroups:\n    etcd: [n1]\n    control-plane: [n1, n9]\n",
			`:9: spec.roleGroups.control-plane[1]: host "n9" is not in spec.hosts`},
		{"duplicate name", head + "  hosts:\n  - {name: n1, address: 127.0.0.2, password: x}\n  - {name: n1, address: 127.0.0.3, password: x}\n  roleGroups:\n    etcd: [n1]\n    control-plane: [n1]\n",
			":7: spec.hosts[1].name: duplicate host name"},
		{"duplicate address", head + "  hosts:\n  - {name: n1, address: 127.0.0.2, password: x}\n  - {name: n2, address: 127.0.0.2, password: x}\n  roleGroups:\n    etcd: [n1]\n    control-plane: [n1]\n",
			":7: spec.hosts[1].address"},
		{"bad range", head + "  hosts:\n  - {name: n1, address: 127.0.0.2, password: x}\n  roleGroups:\n    etcd: [n1]\n    control-plane: [n1]\n    worker: ['n[3:1]']\n",
			":10: spec.roleGroups.worker[0]"},
		{"missing key file", head + "  hosts:\n  - {name: n1, address: 127.0.0.2, privateKeyPath: /nonexistent/id_ed25519}\n  roleGroups:\n    etcd: [n1]\n    control-plane: [n1]\n",
			"/nonexistent/id_ed25519"},
		{"unsupported arch", head + "  hosts:\n  - {name: n1, address: 127.0.0.2, password: x, arch: sparc}\n  roleGroups:\n    etcd: [n1]\n    control-plane: [n1]\n",
			`:6: spec.hosts[0].arch: unsupported arch "sparc"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := write(t, "cluster.yaml", c.body)
			for _, cmd := range [][]string{{"init", "os", "--yes"}, {"precheck"}} {
				out, err := kk(t, append(cmd, "-f", f, "--workdir", t.TempDir())...)
				if err == nil {
					t.Fatalf("kk %v accepted bad input; output:\n%s", cmd, out)
				}
				if !strings.Contains(err.Error(), f) || !strings.Contains(err.Error(), c.want) {
					t.Errorf("kk %v: error does not name the file and %q:\n%v", cmd, c.want, err)
				}
				if strings.Contains(out+err.Error(), "dial") || strings.Contains(out, "tasks×hosts") {
					t.Errorf("kk %v started a run on bad input:\n%s", cmd, out)
				}
			}
		})
	}
}

func TestCreateConfigWritesALoadableSample(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "c.yaml")
	if _, err := kk(t, "create", "config", "--name", "prod", "--with-kubernetes", "v1.33.5", "-o", f); err != nil {
		t.Fatal(err)
	}
	c, err := loadCluster(f, io.Discard)
	if err != nil {
		t.Fatalf("sample does not load: %v", err)
	}
	if c.Name != "prod" || c.Kubernetes.Version != "v1.33.5" {
		t.Errorf("sample: name %q version %q", c.Name, c.Kubernetes.Version)
	}
	if _, err := kk(t, "create", "config", "-o", f); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("overwrote an existing file: %v", err)
	}
}

func TestInitOSWithoutTerminalNeedsYes(t *testing.T) {
	f := write(t, "c.yaml", head+"  hosts:\n  - {name: n1, address: 127.0.0.2, password: x}\n  roleGroups:\n    etcd: [n1]\n    control-plane: [n1]\n")
	r, w, _ := os.Pipe() // stdin that is not a terminal
	defer r.Close()
	w.Close()
	old := os.Stdin
	os.Stdin = r
	defer func() { os.Stdin = old }()
	_, err := kk(t, "init", "os", "-f", f, "--workdir", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "pass --yes") {
		t.Errorf("err = %v", err)
	}
}

func TestVersion(t *testing.T) {
	out, err := kk(t, "version")
	if err != nil || !strings.HasPrefix(out, "kk v") {
		t.Errorf("version: %q %v", out, err)
	}
}
