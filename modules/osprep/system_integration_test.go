//go:build integration

package osprep_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/e2e/testbed"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/modules/hooks"
	"github.com/kk-project/kk/modules/osprep"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/pipeline/session"
)

// spec.system on two offline test machines (as the login user with a sudo password): the
// timezone, debs already there (the rpms skipped with a log line), a preInstall script on the
// workers and a postInstall one with materials; a second run changes nothing but runs the
// scripts again; ntpServers on machines without chrony and without a package mirror fails
// naming the host and the task, before anything is written; a failing script fails with its
// stderr. (skipConfigureOS's plan is proven by the unit tests.)
func TestSystemOnMachines(t *testing.T) {
	bed := testbed.Require(t, testbed.Options{Name: "kksys"}, 2)
	c, _, err := v1alpha2.Load(bed.ClusterFile)
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	material := filepath.Join(t.TempDir(), "payload.txt")
	if err := os.WriteFile(material, []byte("from the materials\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.System = config.System{
		Timezone: "Asia/Shanghai",
		Debs:     []string{"less", "iproute2"},
		Rpms:     []string{"vim-enhanced"},
		PreInstall: []config.Script{{Name: "mark", Role: "worker",
			Bash: "echo pre-install-ran on $(hostname)\ndate +%s >> /var/tmp/kk-pre-install"}},
		PostInstall: []config.Script{{Name: "use materials", Materials: []string{material},
			Bash: "cp payload.txt /var/tmp/kk-post-install && echo post-install-ran"}},
	}
	s := osprep.SpecFor(c)
	build := func(s osprep.Spec, scripts bool) []pipeline.Task {
		ts := osprep.Tasks(s)
		if !scripts {
			return ts
		}
		pre, err := hooks.Tasks(hooks.PreInstall, c.System.PreInstall, nil)
		if err != nil {
			t.Fatal(err)
		}
		post, err := hooks.Tasks(hooks.PostInstall, c.System.PostInstall, nil)
		if err != nil {
			t.Fatal(err)
		}
		return hooks.Sequence(pre, ts, post)
	}

	first, out, err := run(t, c, bed, work, false, build(s, true))
	if err != nil {
		t.Fatalf("first run: %v\n%s", err, out)
	}
	if first.Count(pipeline.StatusChanged) == 0 {
		t.Errorf("first run changed nothing")
	}
	for _, m := range bed.Machines {
		got := rootSSH(t, bed, m, "readlink -f /etc/localtime; cat /etc/timezone; cat /var/tmp/kk-post-install; wc -l < /var/tmp/kk-pre-install")
		for _, want := range []string{"/usr/share/zoneinfo/Asia/Shanghai\n", "Asia/Shanghai\nfrom the materials\n1\n"} {
			if !strings.Contains(got, want) {
				t.Errorf("%s lacks %q:\n%s", m.Name, want, got)
			}
		}
	}
	logs, _ := filepath.Glob(filepath.Join(work, "logs", "*", bed.Machines[1].Name+".log"))
	var log []byte
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		log = append(log, b...)
	}
	for _, want := range []string{"pre-install-ran on " + bed.Machines[1].Name, "post-install-ran", "skipped spec.system.rpms (vim-enhanced): this host uses apt-get"} {
		if !bytes.Contains(log, []byte(want)) {
			t.Errorf("host log of %s lacks %q", bed.Machines[1].Name, want)
		}
	}

	// a re-run changes nothing but the scripts, which run once more on each of their hosts
	second, out, err := run(t, c, bed, work, false, build(s, true))
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	if got, want := second.Count(pipeline.StatusChanged), 2+2; got != want {
		t.Errorf("second run changed %d, want %d (the scripts only)\n%s", got, want, out)
	}
	if got := rootSSH(t, bed, bed.Machines[1], "wc -l < /var/tmp/kk-pre-install"); got != "2\n" {
		t.Errorf("preInstall ran %q times in two runs", got)
	}

	// ntpServers: the machines are offline and have no chrony; and a failing script (both in
	// one run, going on after the first failure)
	for _, m := range bed.Machines {
		if rootSSH(t, bed, m, "command -v chronyd || echo none") != "none\n" {
			t.Fatalf("%s has chrony: this part needs machines without it", m.Name)
		}
	}
	ntp := s
	ntp.NTP = []osprep.NTPServer{{Address: bed.Machines[0].Address, Host: bed.Machines[0].Name}}
	var failing []pipeline.Task
	for _, x := range osprep.Tasks(ntp) {
		if x.Name == osprep.TaskNTP {
			x.After = []string{facts.TaskName}
			failing = append(failing, x)
		}
	}
	bad, err := hooks.Tasks(hooks.PostClusterInstall, []config.Script{{Name: "bad", Bash: "echo broken-disk >&2; exit 4"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, out, err = run(t, c, bed, work, true, append(failing, bad...))
	if err == nil {
		t.Fatalf("ntp without chrony offline and a failing script: no error\n%s", out)
	}
	for _, want := range []string{"host " + bed.Machines[0].Name + ", task os/ntp", "needs chrony", "installing packages chrony failed",
		"spec.system.postClusterInstall[0]", "exited 4: broken-disk"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if got := rootSSH(t, bed, bed.Machines[0], "ls /etc/chrony /etc/chrony.conf 2>/dev/null | wc -l"); got != "0\n" {
		t.Errorf("chrony config written on a failed install")
	}
}

// run runs facts then tasks on the machines; goOn keeps running after a failure.
func run(t *testing.T, c *config.Cluster, bed *testbed.Bed, work string, goOn bool, tasks []pipeline.Task) (*pipeline.Report, string, error) {
	t.Helper()
	var out bytes.Buffer
	sess, err := session.New(c, session.Options{Workdir: work, KnownHosts: bed.KnownHosts, ContinueOnError: goOn, Out: &out, Err: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	rep, err := sess.Run(ctx, "system", append([]pipeline.Task{facts.Task()}, tasks...))
	t.Logf("run of %d tasks: %v", len(tasks), time.Since(start).Round(time.Millisecond))
	return rep, out.String(), err
}

func rootSSH(t *testing.T, bed *testbed.Bed, m testbed.Machine, cmd string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := connector.DialSSH(ctx, connector.SSHConfig{Host: m.Name, Address: m.Address, Port: 22, User: "root",
		PrivateKeyPath: bed.KeyPath, KnownHostsPath: bed.KnownHosts})
	if err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
	defer conn.Close()
	res, err := conn.Exec(ctx, cmd, connector.ExecOptions{})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		t.Fatalf("%s: %v\nstdout: %s", m.Name, err, res.Stdout)
	}
	return res.Stdout
}
