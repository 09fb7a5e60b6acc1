package osprep

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/pipeline/connector/connectortest"
)

// runOn runs tasks on one host n1 with facts already gathered (package manager pm), through
// the engine, against a scripted connector.
func runOn(t *testing.T, conn *connectortest.Script, pm string, dry bool, tasks ...pipeline.Task) (*pipeline.Report, error) {
	t.Helper()
	return runWith(t, conn, &pipeline.Facts{PackageManager: pm, Commands: map[string]bool{}}, dry, tasks...)
}

// runWith is runOn with the host's facts.
func runWith(t *testing.T, conn *connectortest.Script, f *pipeline.Facts, dry bool, tasks ...pipeline.Task) (*pipeline.Report, error) {
	t.Helper()
	h := pipeline.NewHost("n1", []string{"worker"}, func(context.Context) (connector.Connector, error) { return conn, nil })
	h.SetFacts(f)
	for i := range tasks {
		tasks[i].After = nil
	}
	g, err := pipeline.NewGraph(tasks, []*pipeline.Host{h})
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Run(context.Background(), g, pipeline.Options{DryRun: dry})
}

func taskNamed(t *testing.T, ts []pipeline.Task, name string) pipeline.Task {
	t.Helper()
	for _, x := range ts {
		if x.Name == name {
			return x
		}
	}
	t.Fatalf("no task %s", name)
	return pipeline.Task{}
}

func testCluster(system config.System) *config.Cluster {
	return &config.Cluster{
		Hosts: []*config.Host{
			{Name: "n1", Address: "192.168.0.11", InternalAddress: "10.0.0.11", Roles: []config.Role{config.RoleControlPlane}},
			{Name: "n2", Address: "192.168.0.12", InternalAddress: "10.0.0.12", Roles: []config.Role{config.RoleWorker}},
		},
		System: system,
	}
}

func TestNTPServersNamingHostsAreTheirInternalAddress(t *testing.T) {
	c := testCluster(config.System{NTPServers: []string{"n1", "time.example.com", "10.0.0.11", " \"pool.example.org\""}})
	got := NTPServersFor(c)
	want := []NTPServer{{"10.0.0.11", "n1"}, {"time.example.com", ""}, {"pool.example.org", ""}}
	if !slices.Equal(got, want) {
		t.Fatalf("servers %v, want %v", got, want)
	}
	s := SpecFor(c)
	server, err := s.ChronyConfig("n1")
	if err != nil {
		t.Fatal(err)
	}
	client, err := s.ChronyConfig("n2")
	if err != nil {
		t.Fatal(err)
	}
	// n1 serves the others and does not sync from itself
	for _, want := range []string{"server time.example.com iburst\n", "server pool.example.org iburst\n", "allow 0.0.0.0/0\n", "local stratum 10\n"} {
		if !strings.Contains(string(server), want) {
			t.Errorf("n1's chrony.conf lacks %q:\n%s", want, server)
		}
	}
	if strings.Contains(string(server), "10.0.0.11") {
		t.Errorf("n1 syncs from itself:\n%s", server)
	}
	if !strings.HasPrefix(string(client), "# Managed by kk") || !strings.Contains(string(client), "\nserver 10.0.0.11 iburst\nserver time.example.com iburst\n") ||
		strings.Contains(string(client), "allow") || strings.Contains(string(client), "local stratum") {
		t.Errorf("n2's chrony.conf:\n%s", client)
	}
}

func TestNTPTask(t *testing.T) {
	s := SpecFor(testCluster(config.System{NTPServers: []string{"n2"}}))
	want, err := s.ChronyConfig("n1")
	if err != nil {
		t.Fatal(err)
	}

	// configured already: the check compares the exact file and the service, nothing runs
	conn := &connectortest.Script{}
	rep, err := runOn(t, conn, "apt-get", false, taskNamed(t, Tasks(s), TaskNTP))
	if err != nil || rep.Count(pipeline.StatusOK) != 1 {
		t.Fatalf("converged host: %v %s", err, rep.Totals())
	}
	check := conn.Commands()[0]
	for _, part := range []string{"/etc/chrony/chrony.conf", sha256hex(want), "systemctl is-enabled -q chrony"} {
		if !strings.Contains(check, part) {
			t.Errorf("check lacks %q: %s", part, check)
		}
	}

	// chrony installed, config differs: write, enable, restart (RHEL-like names)
	conn = &connectortest.Script{Fail: []string{"sha256sum"}}
	rep, err = runOn(t, conn, "dnf", false, taskNamed(t, Tasks(s), TaskNTP))
	if err != nil || rep.Count(pipeline.StatusChanged) != 1 {
		t.Fatalf("change: %v %s", err, rep.Totals())
	}
	if got := string(conn.Files()["/etc/chrony.conf"]); got != string(want) {
		t.Errorf("uploaded chrony.conf:\n%s\nwant:\n%s", got, want)
	}
	cmds := strings.Join(conn.Commands(), "\n")
	if !strings.Contains(cmds, "systemctl enable chronyd && systemctl restart chronyd") || strings.Contains(cmds, "install") {
		t.Errorf("commands:\n%s", cmds)
	}
}

func TestNTPOnAirGappedHostWithoutChronyFailsBeforeChangingAnything(t *testing.T) {
	s := SpecFor(testCluster(config.System{NTPServers: []string{"time.example.com"}}))
	conn := &connectortest.Script{Fail: []string{"command -v chronyd", "apt-get install"}}
	_, err := runOn(t, conn, "apt-get", false, taskNamed(t, Tasks(s), TaskNTP))
	var te *pipeline.TaskError
	if !errors.As(err, &te) || te.Host != "n1" || te.Task != TaskNTP {
		t.Fatalf("error %v does not name host n1 and task %s", err, TaskNTP)
	}
	for _, want := range []string{"needs chrony", "nothing was changed", "installing packages chrony failed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if len(conn.Files()) != 0 {
		t.Errorf("files written: %v", conn.Files())
	}
	for _, c := range conn.Commands() {
		if strings.Contains(c, "systemctl enable") {
			t.Errorf("ran %s", c)
		}
	}
	// with the mirror reachable, chrony is installed first
	conn = &connectortest.Script{Fail: []string{"command -v chronyd"}}
	if _, err := runOn(t, conn, "apt-get", false, taskNamed(t, Tasks(s), TaskNTP)); err != nil {
		t.Fatal(err)
	}
	if cmds := strings.Join(conn.Commands(), "\n"); !strings.Contains(cmds, "apt-get install -y -q --no-install-recommends chrony") {
		t.Errorf("chrony not installed:\n%s", cmds)
	}
}

func TestTimezoneTask(t *testing.T) {
	s := SpecFor(testCluster(config.System{Timezone: "Asia/Shanghai"}))
	conn := &connectortest.Script{Fail: []string{"readlink -f /etc/localtime"}}
	rep, err := runOn(t, conn, "apt-get", false, taskNamed(t, Tasks(s), TaskTimezone))
	if err != nil || rep.Count(pipeline.StatusChanged) != 1 {
		t.Fatalf("%v %s", err, rep.Totals())
	}
	run := conn.Commands()[1]
	for _, part := range []string{"timedatectl set-timezone Asia/Shanghai", "ln -sfn /usr/share/zoneinfo/Asia/Shanghai /etc/localtime", "echo Asia/Shanghai > /etc/timezone"} {
		if !strings.Contains(run, part) {
			t.Errorf("run lacks %q:\n%s", part, run)
		}
	}
	// in a container only the link: timedated would set the host kernel's timezone
	conn = &connectortest.Script{Fail: []string{"readlink -f /etc/localtime"}}
	if _, err := runWith(t, conn, &pipeline.Facts{PackageManager: "apt-get", Container: "systemd-nspawn"}, false, taskNamed(t, Tasks(s), TaskTimezone)); err != nil {
		t.Fatal(err)
	}
	if run := conn.Commands()[1]; strings.Contains(run, "timedatectl") || !strings.Contains(run, "ln -sfn /usr/share/zoneinfo/Asia/Shanghai /etc/localtime") {
		t.Errorf("container run:\n%s", run)
	}
	// a name that is not a zone fails before any command
	s.Timezone = "../../etc/passwd"
	conn = &connectortest.Script{}
	if _, err := runOn(t, conn, "apt-get", false, taskNamed(t, Tasks(s), TaskTimezone)); err == nil || !strings.Contains(err.Error(), "not a timezone name") {
		t.Errorf("bad zone: %v", err)
	}
	if len(conn.Commands()) != 0 {
		t.Errorf("ran %v", conn.Commands())
	}
}

func TestSystemPackagesByOSFamily(t *testing.T) {
	s := SpecFor(testCluster(config.System{Debs: []string{"jq", "curl"}, Rpms: []string{"vim-enhanced"}}))
	// Debian: jq missing, curl installed; the rpms are skipped with a log line
	conn := &connectortest.Script{Fail: []string{"dpkg-query -W -f='${Status}' jq "}}
	var logs []string
	h := pipeline.NewHost("n1", nil, func(context.Context) (connector.Connector, error) { return conn, nil })
	h.SetFacts(&pipeline.Facts{PackageManager: "apt-get"})
	task := taskNamed(t, Tasks(s), TaskSystemPackages)
	task.After = nil
	g, err := pipeline.NewGraph([]pipeline.Task{task}, []*pipeline.Host{h})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := pipeline.Run(context.Background(), g, pipeline.Options{Observer: pipeline.ObserverFunc(func(e pipeline.Event) {
		if e.Kind == pipeline.EventLog {
			logs = append(logs, e.Message)
		}
	})})
	if err != nil || rep.Count(pipeline.StatusChanged) != 1 {
		t.Fatalf("%v %s", err, rep.Totals())
	}
	cmds := strings.Join(conn.Commands(), "\n")
	if !strings.Contains(cmds, "apt-get install -y -q --no-install-recommends jq\n") && !strings.HasSuffix(cmds, "--no-install-recommends jq") {
		t.Errorf("jq alone not installed:\n%s", cmds)
	}
	if strings.Contains(cmds, "vim-enhanced") {
		t.Errorf("an rpm on a Debian host:\n%s", cmds)
	}
	if !slices.ContainsFunc(logs, func(l string) bool {
		return strings.Contains(l, "skipped spec.system.rpms (vim-enhanced): this host uses apt-get")
	}) {
		t.Errorf("no skip line in %v", logs)
	}
	// RHEL-like: rpm -q, dnf
	conn = &connectortest.Script{Fail: []string{"rpm -q vim-enhanced"}}
	if _, err := runOn(t, conn, "dnf", false, taskNamed(t, Tasks(s), TaskSystemPackages)); err != nil {
		t.Fatal(err)
	}
	if cmds := strings.Join(conn.Commands(), "\n"); !strings.Contains(cmds, "dnf install -y vim-enhanced") || strings.Contains(cmds, "jq") {
		t.Errorf("dnf:\n%s", cmds)
	}
}

func TestSkipConfigureOSPlan(t *testing.T) {
	c := testCluster(config.System{SkipConfigureOS: true, NTPServers: []string{"n1"}, Timezone: "UTC", Debs: []string{"jq"}})
	c.ControlPlaneEndpoint.Domain = "lb.kubesphere.local"
	c.ControlPlaneEndpoint.Address = "10.0.0.100"
	s := SpecFor(c)
	ts := Tasks(s)
	skipped := map[string]bool{}
	for _, x := range ts {
		if x.Skip != "" {
			skipped[x.Name] = true
		}
	}
	for _, name := range []string{"os/hostname", "os/swap-off", "os/kernel-modules", "os/sysctl", TaskNTP, TaskTimezone} {
		if !skipped[name] {
			t.Errorf("%s not skipped under skipConfigureOS", name)
		}
	}
	for _, name := range []string{"os/packages", TaskSystemPackages, "os/etc-hosts"} {
		if skipped[name] {
			t.Errorf("%s skipped: Kubernetes needs it", name)
		}
	}
	if got := s.entriesFor("n1"); len(got) != 1 || got[0].Names[0] != "lb.kubesphere.local" {
		t.Errorf("hosts entries under skipConfigureOS: %v", got)
	}
	conn := &connectortest.Script{}
	rep, err := runOn(t, conn, "apt-get", true, ts...)
	if err != nil {
		t.Fatal(err)
	}
	var plan strings.Builder
	rep.WritePlan(&plan)
	if !strings.Contains(plan.String(), "- os/swap-off") || !strings.Contains(plan.String(), "skipped: spec.system.skipConfigureOS is true: swap is left as the host has it") {
		t.Errorf("plan:\n%s", plan.String())
	}
	for _, cmd := range conn.Commands() {
		if strings.Contains(cmd, "swap") || strings.Contains(cmd, "hostname") || strings.Contains(cmd, "chrony") {
			t.Errorf("a skipped task was checked: %s", cmd)
		}
	}
	// without an API domain there is nothing left for /etc/hosts
	c.ControlPlaneEndpoint.Domain = ""
	if h := taskNamed(t, Tasks(SpecFor(c)), "os/etc-hosts"); h.Skip == "" {
		t.Error("os/etc-hosts not skipped without an API domain")
	}
}
