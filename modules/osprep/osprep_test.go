package osprep

import (
	"strings"
	"testing"

	"github.com/kk-project/kk/templates"
)

func TestRenderHostsReplacesOnlyKKBlock(t *testing.T) {
	entries := []HostEntry{{"10.0.0.11", []string{"n1", "n1.cluster.local"}}, {"10.0.0.12", []string{"n2"}}}
	cur := "127.0.0.1 localhost\n::1 localhost\n"
	got := RenderHosts(cur, entries)
	want := cur + hostsBegin + "\n10.0.0.11 n1 n1.cluster.local\n10.0.0.12 n2\n" + hostsEnd + "\n"
	if got != want {
		t.Fatalf("first render:\n%s\nwant:\n%s", got, want)
	}
	if again := RenderHosts(got, entries); again != got {
		t.Errorf("render is not idempotent:\n%s", again)
	}
	// changed membership replaces the block in place, keeping the user's lines around it
	withUser := got + "192.168.1.5 printer\n"
	next := RenderHosts(withUser, entries[:1])
	if strings.Contains(next, "n2") || !strings.Contains(next, "printer") || !strings.HasPrefix(next, cur) {
		t.Errorf("block replace:\n%s", next)
	}
	if RenderHosts("127.0.0.1 localhost", entries)[len("127.0.0.1 localhost")] != '\n' {
		t.Error("missing newline before appended block")
	}
}

func TestTemplatesRender(t *testing.T) {
	b, err := templates.Render("os/sysctl.conf", DefaultSysctls)
	if err != nil || !strings.Contains(string(b), "net.ipv4.ip_forward = 1\n") {
		t.Errorf("sysctl: %v\n%s", err, b)
	}
	b, err = templates.Render("os/modules-load.conf", DefaultModules)
	if err != nil || !strings.Contains(string(b), "\noverlay\nbr_netfilter\n") {
		t.Errorf("modules: %v\n%q", err, b)
	}
}

func TestTasksFormAValidChain(t *testing.T) {
	ts := Tasks(Spec{Modules: DefaultModules, Sysctls: DefaultSysctls, Packages: DefaultPackages})
	names := map[string]bool{"facts": true}
	for _, x := range ts {
		for _, a := range x.After {
			if !names[a] {
				t.Errorf("%s runs after %s, which is not before it", x.Name, a)
			}
		}
		names[x.Name] = true
		if x.Check == nil {
			t.Errorf("%s has no Check: a re-run could not report 0 changed", x.Name)
		}
	}
}
