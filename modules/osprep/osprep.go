// Package osprep prepares a host's operating system for Kubernetes (`kk init os`): hostname,
// /etc/hosts entries for every node, swap off for good, kernel modules, sysctl, and the
// packages a node needs; and what the Cluster file's spec.system asks for: chrony syncing from
// ntpServers, the timezone, extra debs/rpms. Every task checks before it acts, so a second run
// changes nothing.
//
// spec.system.skipConfigureOS leaves the OS to the user as KubeKey does (hostname, swap,
// kernel modules, sysctl, node names in /etc/hosts, NTP, timezone): those tasks stay in the
// plan, skipped with the reason. What Kubernetes cannot run without stays: the commands a node
// needs, the extra packages asked for, and the API server's domain in /etc/hosts.
package osprep

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/templates"
)

// HostEntry is one line kk keeps in every node's /etc/hosts.
type HostEntry struct {
	Address string
	Names   []string
}

// Sysctl is one kernel parameter.
type Sysctl struct{ Key, Value string }

// Spec is what the OS of every node must look like.
type Spec struct {
	// Hostnames maps kk host name -> hostname to set (normally the same).
	Hostnames map[string]string
	Hosts     []HostEntry
	Modules   []string
	Sysctls   []Sysctl
	// Packages maps a required command to the package that provides it, per package manager.
	Packages []Package
	// PerHost adds entries for one host (by kk host name), e.g. the API server's domain on
	// 127.0.0.1 where a local load balancer listens.
	PerHost map[string][]HostEntry
	// APIDomain is the API server's domain: its /etc/hosts lines are kept even when
	// SkipConfigure is set ("" when the cluster has none).
	APIDomain string

	// NTP is where chrony takes time from (spec.system.ntpServers); none leaves time alone.
	NTP []NTPServer
	// Timezone is set on every node when not empty (spec.system.timezone).
	Timezone string
	// Debs and Rpms are extra packages for Debian-like and RHEL-like hosts (spec.system).
	Debs, Rpms []string
	// SkipConfigure is spec.system.skipConfigureOS (see the package doc).
	SkipConfigure bool
}

// HostsFor is the /etc/hosts block of host name: the common entries, then its own.
func (s Spec) HostsFor(name string) []HostEntry {
	return append(slices.Clone(s.Hosts), s.PerHost[name]...)
}

// Package is a command a node needs and where it comes from.
type Package struct {
	Command string
	Apt     string
	RPM     string // dnf / yum / zypper
}

// DefaultModules, DefaultSysctls and DefaultPackages are what a Kubernetes node needs.
var (
	DefaultModules = []string{"overlay", "br_netfilter"}
	DefaultSysctls = []Sysctl{
		{"net.ipv4.ip_forward", "1"},
		{"net.bridge.bridge-nf-call-iptables", "1"},
		{"net.bridge.bridge-nf-call-ip6tables", "1"},
		{"net.ipv4.conf.all.rp_filter", "0"},
	}
	DefaultPackages = []Package{
		{"iptables", "iptables", "iptables"},
		{"ip", "iproute2", "iproute"},
		{"conntrack", "conntrack", "conntrack-tools"},
		{"socat", "socat", "socat"},
		{"ebtables", "ebtables", "ebtables"},
		{"ethtool", "ethtool", "ethtool"},
		{"ipset", "ipset", "ipset"},
		{"tar", "tar", "tar"},
		{"nsenter", "util-linux", "util-linux"},
	}
)

const (
	sysctlFile  = "/etc/sysctl.d/99-kubernetes-kk.conf"
	modulesFile = "/etc/modules-load.d/kubernetes-kk.conf"
	hostsBegin  = "# BEGIN kk managed hosts"
	hostsEnd    = "# END kk managed hosts"
)

// Names of the tasks of spec.system.
const (
	TaskEtcHosts       = "os/etc-hosts"
	TaskNTP            = "os/ntp"
	TaskTimezone       = "os/timezone"
	TaskSystemPackages = "os/system-packages"
)

// skipReason is why a task is left out under spec.system.skipConfigureOS.
func skipReason(what string) string {
	return "spec.system.skipConfigureOS is true: " + what + " left as the host has it"
}

// Tasks returns the OS preparation tasks; they run after facts are gathered.
func Tasks(s Spec) []pipeline.Task {
	after := []string{facts.TaskName}
	ts := []pipeline.Task{
		hostnameTask(s, after),
		hostsTask(s, after),
		swapTask(after),
		modulesTask(s, after),
		sysctlTask(s, []string{"os/kernel-modules"}),
		packagesTask(s, after),
	}
	if len(s.Debs) > 0 || len(s.Rpms) > 0 {
		ts = append(ts, systemPackagesTask(s, after))
	}
	if len(s.NTP) > 0 {
		// after the packages: chrony's install must not compete with theirs for the package lock
		ts = append(ts, ntpTask(s, []string{"os/packages"}))
	}
	if s.Timezone != "" {
		ts = append(ts, timezoneTask(s, after))
	}
	if !s.SkipConfigure {
		return ts
	}
	left := map[string]string{
		"os/hostname": "the hostname is", "os/swap-off": "swap is", "os/kernel-modules": "kernel modules are",
		"os/sysctl": "kernel parameters are", TaskNTP: "time sync (spec.system.ntpServers) is", TaskTimezone: "the timezone is",
	}
	for i := range ts {
		if what, ok := left[ts[i].Name]; ok {
			ts[i].Skip = skipReason(what)
		}
	}
	return ts
}

func hostnameTask(s Spec, after []string) pipeline.Task {
	want := func(t *pipeline.Target) string {
		if n := s.Hostnames[t.Name]; n != "" {
			return n
		}
		return t.Name
	}
	return pipeline.Task{
		Name: "os/hostname", Desc: "set the hostname", Hosts: pipeline.AllHosts(), After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			n := want(t)
			return t.Test(ctx, fmt.Sprintf(`[ "$(hostname)" = %s ] && [ "$(cat /etc/hostname 2>/dev/null)" = %s ]`, connector.Quote(n), connector.Quote(n)))
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			n := want(t)
			if _, err := t.Upload(ctx, connector.File{Path: "/etc/hostname", Data: []byte(n + "\n"), Mode: 0o644}); err != nil {
				return false, err
			}
			_, err := t.Sudo(ctx, connector.Cmd("hostname", n))
			return true, err
		},
	}
}

// RenderHosts returns current with kk's block of entries replaced (or appended).
func RenderHosts(current string, entries []HostEntry) string {
	return RenderBlock(current, hostsBegin, hostsEnd, entries)
}

// RenderBlock returns the hosts file current with the block between the lines begin and end
// replaced by entries (or appended), leaving every other line alone.
func RenderBlock(current, hostsBegin, hostsEnd string, entries []HostEntry) string {
	var block strings.Builder
	block.WriteString(hostsBegin + "\n")
	for _, e := range entries {
		fmt.Fprintf(&block, "%s %s\n", e.Address, strings.Join(e.Names, " "))
	}
	block.WriteString(hostsEnd + "\n")
	lines := strings.SplitAfter(current, "\n")
	var out strings.Builder
	in, done := false, false
	for _, l := range lines {
		trim := strings.TrimSpace(l)
		switch {
		case trim == hostsBegin:
			in = true
			if !done {
				out.WriteString(block.String())
				done = true
			}
		case trim == hostsEnd && in:
			in = false
		case !in:
			out.WriteString(l)
		}
	}
	s := out.String()
	if !done {
		if s != "" && !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		s += block.String()
	}
	return s
}

// entriesFor is the kk block of host name's /etc/hosts: every entry, or under SkipConfigure
// only the API server domain's (nodes reach the API server by it).
func (s Spec) entriesFor(name string) []HostEntry {
	all := s.HostsFor(name)
	if !s.SkipConfigure {
		return all
	}
	var out []HostEntry
	for _, e := range all {
		if s.APIDomain != "" && slices.Contains(e.Names, s.APIDomain) {
			out = append(out, e)
		}
	}
	return out
}

func hostsTask(s Spec, after []string) pipeline.Task {
	desired := func(ctx context.Context, t *pipeline.Target) (cur, want string, err error) {
		data, err := t.Fetch(ctx, "/etc/hosts")
		if err != nil {
			return "", "", fmt.Errorf("read /etc/hosts: %w", err)
		}
		return string(data), RenderHosts(string(data), s.entriesFor(t.Name)), nil
	}
	desc, skip := "every node's name in /etc/hosts", ""
	if s.SkipConfigure {
		desc = "the API server's domain in /etc/hosts"
		apiLines := false
		for name := range s.Hostnames {
			apiLines = apiLines || len(s.entriesFor(name)) > 0
		}
		if !apiLines {
			skip = skipReason("/etc/hosts is")
		}
	}
	return pipeline.Task{
		Name: TaskEtcHosts, Desc: desc, Skip: skip, Hosts: pipeline.AllHosts(), After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			cur, want, err := desired(ctx, t)
			return cur == want, err
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			_, want, err := desired(ctx, t)
			if err != nil {
				return false, err
			}
			return t.Upload(ctx, connector.File{Path: "/etc/hosts", Data: []byte(want), Mode: 0o644})
		},
	}
}

func swapTask(after []string) pipeline.Task {
	// a swap line in fstab that is not commented out
	const fstabSwap = `awk '$1 !~ /^#/ && $3 == "swap" {found=1} END {exit !found}' /etc/fstab`
	return pipeline.Task{
		Name: "os/swap-off", Desc: "turn swap off now and at boot", Hosts: pipeline.AllHosts(), After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			return t.Test(ctx, `[ "$(awk 'NR>1' /proc/swaps | wc -l)" -eq 0 ] && ! { [ -f /etc/fstab ] && `+fstabSwap+`; }`)
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			_, err := t.Sudo(ctx, `swapoff -a && if [ -f /etc/fstab ] && `+fstabSwap+`; then `+
				`sed -i.kk-bak -E '/^[^#]/ s/^([^[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]].*)$/# disabled by kk: \1/' /etc/fstab; fi`)
			return true, err
		},
	}
}

// moduleLoaded is true for a loaded module and for one built into the kernel.
func moduleLoaded(m string) string {
	q := connector.Quote(m)
	extra := ""
	if m == "br_netfilter" {
		extra = " || [ -d /proc/sys/net/bridge ]"
	}
	return fmt.Sprintf(`{ grep -qw ^%[1]s /proc/modules || [ -d /sys/module/%[1]s ] || grep -qs /%[1]s.ko /lib/modules/$(uname -r)/modules.builtin%[2]s; }`, q, extra)
}

func modulesTask(s Spec, after []string) pipeline.Task {
	return pipeline.Task{
		Name: "os/kernel-modules", Desc: "load " + strings.Join(s.Modules, ", ") + " now and at boot", Hosts: pipeline.AllHosts(), After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			file, err := templates.Render("os/modules-load.conf", s.Modules)
			if err != nil {
				return false, err
			}
			checks := []string{fileIs(modulesFile, file)}
			for _, m := range s.Modules {
				checks = append(checks, moduleLoaded(m))
			}
			return t.Test(ctx, strings.Join(checks, " && "))
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			file, err := templates.Render("os/modules-load.conf", s.Modules)
			if err != nil {
				return false, err
			}
			changed, err := t.Upload(ctx, connector.File{Path: modulesFile, Data: file, Mode: 0o644})
			if err != nil {
				return false, err
			}
			for _, m := range s.Modules {
				// modprobe fails for a module built into the kernel: that is fine
				cmd := fmt.Sprintf(`%s || modprobe %s || { echo "kernel module %s is neither loaded, built in, nor loadable" >&2; exit 1; }`, moduleLoaded(m), connector.Quote(m), m)
				if _, err := t.Sudo(ctx, cmd); err != nil {
					return changed, err
				}
			}
			return true, nil
		},
	}
}

func sysctlTask(s Spec, after []string) pipeline.Task {
	render := func() ([]byte, error) { return templates.Render("os/sysctl.conf", s.Sysctls) }
	return pipeline.Task{
		Name: "os/sysctl", Desc: "kernel parameters for Kubernetes, now and at boot", Hosts: pipeline.AllHosts(), After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			file, err := render()
			if err != nil {
				return false, err
			}
			checks := []string{fileIs(sysctlFile, file)}
			for _, kv := range s.Sysctls {
				checks = append(checks, fmt.Sprintf(`[ "$(sysctl -n %s 2>/dev/null)" = %s ]`, connector.Quote(kv.Key), connector.Quote(kv.Value)))
			}
			return t.Test(ctx, strings.Join(checks, " && "))
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			file, err := render()
			if err != nil {
				return false, err
			}
			if _, err := t.Upload(ctx, connector.File{Path: sysctlFile, Data: file, Mode: 0o644}); err != nil {
				return false, err
			}
			_, err = t.Sudo(ctx, connector.Cmd("sysctl", "-p", sysctlFile))
			return true, err
		},
	}
}

// fileIs is a shell test that path holds exactly content.
func fileIs(path string, content []byte) string {
	return fmt.Sprintf(`[ -f %[1]s ] && [ "$(sha256sum < %[1]s | cut -d' ' -f1)" = %[2]s ]`, connector.Quote(path), sha256hex(content))
}

func packagesTask(s Spec, after []string) pipeline.Task {
	missing := func(t *pipeline.Target) []Package {
		f := t.Facts()
		var out []Package
		for _, p := range s.Packages {
			if f == nil || !f.Commands[p.Command] {
				out = append(out, p)
			}
		}
		return out
	}
	return pipeline.Task{
		Name: "os/packages", Desc: "commands a node needs (installed with the OS package manager when missing)", Hosts: pipeline.AllHosts(), After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			var cmds []string
			for _, p := range s.Packages {
				cmds = append(cmds, "command -v "+connector.Quote(p.Command)+" >/dev/null")
			}
			if len(cmds) == 0 {
				return true, nil
			}
			return t.Test(ctx, strings.Join(cmds, " && "))
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			f := t.Facts()
			pm := ""
			if f != nil {
				pm = f.PackageManager
			}
			var pkgs, cmds []string
			for _, p := range missing(t) {
				name := p.Apt
				if pm != "apt-get" {
					name = p.RPM
				}
				if !slices.Contains(pkgs, name) {
					pkgs = append(pkgs, name)
				}
				cmds = append(cmds, p.Command)
			}
			if len(pkgs) == 0 {
				return false, nil
			}
			if err := Install(ctx, t, pkgs); err != nil {
				return false, fmt.Errorf("commands %s are missing: %w", strings.Join(cmds, ", "), err)
			}
			return true, nil
		},
	}
}

// Install installs packages with the host's package manager (apt-get, dnf, yum or zypper,
// from its facts).
func Install(ctx context.Context, t *pipeline.Target, pkgs []string) error {
	pm := ""
	if f := t.Facts(); f != nil {
		pm = f.PackageManager
	}
	var cmd string
	switch pm {
	case "apt-get":
		cmd = "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends " + connector.Cmd(pkgs...)
	case "dnf", "yum":
		cmd = pm + " install -y " + connector.Cmd(pkgs...)
	case "zypper":
		cmd = "zypper --non-interactive install " + connector.Cmd(pkgs...)
	default:
		return fmt.Errorf("no supported package manager (apt-get, dnf, yum, zypper) was found: install packages %s by hand", strings.Join(pkgs, ", "))
	}
	if _, err := t.Sudo(ctx, cmd); err != nil {
		return fmt.Errorf("installing packages %s failed (an offline host needs them preinstalled or a reachable package mirror): %w", strings.Join(pkgs, ", "), err)
	}
	return nil
}

// SpecFor derives the OS spec of every node from the cluster: each node's name (and its FQDN
// under the cluster's DNS domain) on its internal address, the API server's load-balancer
// domain on its address, the default modules, sysctls and packages, and spec.system.
func SpecFor(c *config.Cluster) Spec {
	s := Spec{Hostnames: map[string]string{}, Modules: DefaultModules, Sysctls: DefaultSysctls, Packages: DefaultPackages,
		NTP: NTPServersFor(c), Timezone: c.System.Timezone, Debs: c.System.Debs, Rpms: c.System.Rpms,
		SkipConfigure: c.System.SkipConfigureOS}
	domain := c.Kubernetes.ClusterName
	for _, h := range c.Hosts {
		s.Hostnames[h.Name] = h.Name
		names := []string{h.Name}
		if domain != "" {
			names = append(names, h.Name+"."+domain)
		}
		if ip := h.InternalIP(); ip != "" {
			s.Hosts = append(s.Hosts, HostEntry{Address: ip, Names: names})
		}
	}
	if addr := c.ControlPlaneAddress(); addr != "" && c.ControlPlaneEndpoint.Domain != "" {
		s.Hosts = append(s.Hosts, HostEntry{Address: addr, Names: []string{c.ControlPlaneEndpoint.Domain}})
		s.APIDomain = c.ControlPlaneEndpoint.Domain
	}
	return s
}
