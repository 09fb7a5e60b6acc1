package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// kkSplit runs the root command in-process with stdout and stderr apart.
func kkSplit(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// A bad flag is refused before the Cluster file is read or any host is dialed.
func TestCertsCheckExpirationRefusesBadFlags(t *testing.T) {
	f := write(t, "cluster.yaml", head+"  hosts:\n  - {name: n1, address: 127.0.0.2, password: x}\n  roleGroups:\n    etcd: [n1]\n    control-plane: [n1]\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", "yaml"}, `--output "yaml": want table or json`},
		{[]string{"--fail-within", "30x"}, `--fail-within: invalid duration "30x"`},
		{[]string{"--fail-within", "-1d"}, `--fail-within: invalid duration "-1d"`},
	} {
		out, err := kk(t, append([]string{"certs", "check-expiration", "-f", f, "--workdir", t.TempDir()}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
		if strings.Contains(out, "tasks×hosts") || strings.Contains(out, "dial") {
			t.Errorf("%v started a run:\n%s", c.args, out)
		}
	}
	if _, err := kk(t, "certs", "check-expiration"); err == nil || !strings.Contains(err.Error(), "no cluster file") {
		t.Errorf("without -f: %v", err)
	}
}

// On this machine (a local host): the run reads what is there, prints the table or a JSON
// array alone on stdout, and the timer line.
func TestCertsCheckExpirationLocal(t *testing.T) {
	f := write(t, "cluster.yaml", head+"  hosts:\n  - {name: n1, address: 127.0.0.1}\n  roleGroups:\n    etcd: [n1]\n    control-plane: [n1]\n")
	out, errOut, err := kkSplit(t, "certs", "check-expiration", "-f", f, "--workdir", t.TempDir())
	if err != nil && strings.Contains(err.Error(), "sudo") {
		t.Skipf("no root here: %v", err)
	}
	if err != nil {
		t.Fatalf("%v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out, "HOST  CERTIFICATE ") && !strings.Contains(out, "no certificate found on the control-plane and etcd hosts") {
		t.Errorf("no table:\n%s", out)
	}
	if !strings.Contains(out, "n1: auto-renew timer kk-certs-renew.timer: ") {
		t.Errorf("no timer line:\n%s", out)
	}

	out, errOut, err = kkSplit(t, "certs", "check-expiration", "-f", f, "--workdir", t.TempDir(), "-o", "json")
	if err != nil {
		t.Fatalf("%v\n%s%s", err, out, errOut)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("stdout is not a JSON array: %v\n%s", err, out)
	}
	if !strings.Contains(errOut, "n1: auto-renew timer") {
		t.Errorf("the notes are not on stderr:\n%s", errOut)
	}
	if len(rows) == 0 { // no cluster on this machine: nothing expires
		if _, _, err := kkSplit(t, "certs", "check-expiration", "-f", f, "--workdir", t.TempDir(), "--fail-within", "3650d"); err != nil {
			t.Errorf("--fail-within with no certificate: %v", err)
		}
	}
}
