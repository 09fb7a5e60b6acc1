package osprep

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/templates"
)

// NTPServer is one time source of spec.system.ntpServers.
type NTPServer struct {
	// Address is what chrony connects to: the name or address as written, or the internal
	// address of the cluster's host it names.
	Address string
	// Host is the kk host name when the server is a host of the cluster ("" otherwise): that
	// host serves time to the other nodes, as with KubeKey.
	Host string
}

// NTPServersFor resolves spec.system.ntpServers: a server written as a host's name or internal
// address is that host (on its internal address); others are kept as written.
func NTPServersFor(c *config.Cluster) []NTPServer {
	var out []NTPServer
	for _, raw := range c.System.NTPServers {
		name := strings.Trim(raw, " \"")
		srv := NTPServer{Address: name}
		for _, h := range c.Hosts {
			if name == h.Name || (name != "" && (name == h.InternalIPv4() || name == h.InternalIPv6())) {
				srv = NTPServer{Address: h.InternalIP(), Host: h.Name}
				break
			}
		}
		if name != "" && !slices.Contains(out, srv) {
			out = append(out, srv)
		}
	}
	return out
}

// ChronyConfig is host's chrony.conf: every server but the host itself; a host that is one of
// the servers also serves the others (and its own clock when no other source answers).
func (s Spec) ChronyConfig(host string) ([]byte, error) {
	var data struct {
		Servers []string
		Serve   bool
	}
	for _, srv := range s.NTP {
		if srv.Host != "" && srv.Host == host {
			data.Serve = true
			continue
		}
		data.Servers = append(data.Servers, srv.Address)
	}
	return templates.Render("os/chrony.conf", data)
}

// chrony is where a host's chrony lives: Debian and Ubuntu name it differently.
type chrony struct{ conf, service string }

func chronyOf(t *pipeline.Target) chrony {
	if f := t.Facts(); f != nil && f.PackageManager == "apt-get" {
		return chrony{conf: "/etc/chrony/chrony.conf", service: "chrony"}
	}
	return chrony{conf: "/etc/chrony.conf", service: "chronyd"}
}

// chronyInstalled is a shell test for chronyd.
const chronyInstalled = `{ command -v chronyd >/dev/null 2>&1 || [ -x /usr/sbin/chronyd ]; }`

// serviceUp is a shell test that unit is enabled and running, or enabled and held back by its
// own condition (chrony needs CAP_SYS_TIME, which a container may lack): a re-run then changes
// nothing either way.
func serviceUp(unit string) string {
	u := connector.Quote(unit)
	return fmt.Sprintf(`systemctl is-enabled -q %[1]s && { systemctl is-active -q %[1]s || { [ "$(systemctl show -p ConditionResult --value %[1]s)" = no ] && [ "$(systemctl show -p ConditionTimestampMonotonic --value %[1]s)" != 0 ]; }; }`, u)
}

// ntpTask makes chrony sync from spec.system.ntpServers. chrony is installed from the host's
// package manager when missing; when that fails (an air-gapped host without chrony) the task
// fails before it wrote anything.
func ntpTask(s Spec, after []string) pipeline.Task {
	var addrs []string
	for _, srv := range s.NTP {
		addrs = append(addrs, srv.Address)
	}
	return pipeline.Task{
		Name: TaskNTP, Desc: "chrony syncs from " + strings.Join(addrs, ", "), Hosts: pipeline.AllHosts(), After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			conf, err := s.ChronyConfig(t.Name)
			if err != nil {
				return false, err
			}
			ch := chronyOf(t)
			return t.Test(ctx, chronyInstalled+" && "+fileIs(ch.conf, conf)+" && "+serviceUp(ch.service))
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			conf, err := s.ChronyConfig(t.Name)
			if err != nil {
				return false, err
			}
			ch := chronyOf(t)
			present, err := t.Test(ctx, chronyInstalled)
			if err != nil {
				return false, err
			}
			if !present {
				if err := Install(ctx, t, []string{"chrony"}); err != nil {
					return false, fmt.Errorf("spec.system.ntpServers needs chrony, which is not installed; nothing was changed: %w", err)
				}
			}
			if _, err := t.Upload(ctx, connector.File{Path: ch.conf, Data: conf, Mode: 0o644}); err != nil {
				return true, err
			}
			if _, err := t.Sudo(ctx, connector.Cmd("systemctl", "enable", ch.service)+" && "+connector.Cmd("systemctl", "restart", ch.service)); err != nil {
				return true, fmt.Errorf("start chrony with %s: %w", ch.conf, err)
			}
			if up, err := t.Test(ctx, "systemctl is-active -q "+connector.Quote(ch.service)); err == nil && !up {
				t.Log.Warn("chrony is configured but not running: its unit's condition is unmet (a container without CAP_SYS_TIME?)", "unit", ch.service)
			}
			return true, nil
		},
	}
}

// zoneRE is a tz database name such as UTC, Asia/Shanghai or America/Argentina/Buenos_Aires.
var zoneRE = regexp.MustCompile(`^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$`)

// timezoneTask sets spec.system.timezone: timedatectl (as KubeKey does) where systemd-timedated
// answers, else the /etc/localtime link (and Debian's /etc/timezone) that timedatectl writes.
// In a container only the link is written: the clock is the host kernel's, and timedated's
// first settimeofday there can shift the host's clock by the zone's offset (a kernel that
// keeps its RTC in local time "warps" the clock once).
func timezoneTask(s Spec, after []string) pipeline.Task {
	tz := s.Timezone
	zone := "/usr/share/zoneinfo/" + tz
	z, q := connector.Quote(zone), connector.Quote(tz)
	check := fmt.Sprintf(`[ "$(readlink -f /etc/localtime)" = "$(readlink -f %[1]s)" ] && { [ ! -f /etc/timezone ] || [ "$(cat /etc/timezone)" = %[2]s ]; }`, z, q)
	link := "ln -sfn " + z + " /etc/localtime"
	return pipeline.Task{
		Name: TaskTimezone, Desc: "timezone " + tz, Hosts: pipeline.AllHosts(), After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if !zoneRE.MatchString(tz) {
				return false, fmt.Errorf("spec.system.timezone %q is not a timezone name (such as UTC or Asia/Shanghai)", tz)
			}
			return t.Test(ctx, check)
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			set := "timedatectl set-timezone " + q + " 2>/dev/null || " + link
			if f := t.Facts(); f != nil && f.Container != "" {
				set = link
			}
			cmd := fmt.Sprintf(`[ -f %[1]s ] || { echo "unknown timezone %[2]s: %[1]s does not exist (is tzdata installed?)" >&2; exit 1; }
%[3]s
if [ -f /etc/timezone ]; then echo %[2]s > /etc/timezone; fi`, z, q, set)
			_, err := t.Sudo(ctx, cmd)
			return true, err
		},
	}
}

// systemPackagesTask installs spec.system.debs on Debian-like hosts and spec.system.rpms on
// RHEL-like ones (by the host's package manager); the other family's list is skipped with a
// line in the host's log.
func systemPackagesTask(s Spec, after []string) pipeline.Task {
	// pick returns the host's list, the shell test of one installed package (%s), and what
	// is skipped.
	pick := func(t *pipeline.Target) (pkgs []string, installed, skipped string) {
		pm := ""
		if f := t.Facts(); f != nil {
			pm = f.PackageManager
		}
		switch pm {
		case "apt-get":
			pkgs, installed = s.Debs, `dpkg-query -W -f='${Status}' %s 2>/dev/null | grep -q 'install ok installed'`
			if len(s.Rpms) > 0 {
				skipped = "spec.system.rpms (" + strings.Join(s.Rpms, ", ") + "): this host uses apt-get"
			}
		case "dnf", "yum", "zypper":
			pkgs, installed = s.Rpms, `rpm -q %s >/dev/null 2>&1`
			if len(s.Debs) > 0 {
				skipped = "spec.system.debs (" + strings.Join(s.Debs, ", ") + "): this host uses " + pm
			}
		default:
			pkgs = append(slices.Clone(s.Debs), s.Rpms...)
		}
		return pkgs, installed, skipped
	}
	// missing lists the packages of the host's family that are not installed.
	missing := func(ctx context.Context, t *pipeline.Target) ([]string, error) {
		pkgs, installed, _ := pick(t)
		if len(pkgs) == 0 || installed == "" {
			return pkgs, nil
		}
		var out []string
		for _, p := range pkgs {
			ok, err := t.Test(ctx, fmt.Sprintf(installed, connector.Quote(p)))
			if err != nil {
				return nil, err
			}
			if !ok {
				out = append(out, p)
			}
		}
		return out, nil
	}
	return pipeline.Task{
		Name: TaskSystemPackages, Desc: "spec.system.debs / rpms installed", Hosts: pipeline.AllHosts(), After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if _, _, skipped := pick(t); skipped != "" {
				t.Log.Info("skipped " + skipped)
			}
			m, err := missing(ctx, t)
			return len(m) == 0, err
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			m, err := missing(ctx, t)
			if err != nil || len(m) == 0 {
				return false, err
			}
			if err := Install(ctx, t, m); err != nil {
				return false, fmt.Errorf("spec.system packages %s: %w", strings.Join(m, ", "), err)
			}
			return true, nil
		},
	}
}
