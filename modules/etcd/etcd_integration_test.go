//go:build integration

package etcd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/e2e/mirror"
	"github.com/kk-project/kk/e2e/testbed"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/etcd"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/pipeline/session"
)

const etcdVersion = "v3.6.5"

// etcdFiles extracts etcd, etcdctl and etcdutl from the local mirror's release tarball.
func etcdFiles(t *testing.T) binaries.Files {
	t.Helper()
	tgz := filepath.Join("/var/tmp/kk-mirror", mirror.EtcdPath(etcdVersion))
	var files binaries.Files
	err := mirror.ExtractFiles(tgz, t.TempDir(), &files, func(base string) string {
		if slices.Contains(etcd.Programs, base) {
			return base
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := files.Check([]string{"amd64"}, etcd.Programs); err != nil {
		t.Fatalf("%s: %v", tgz, err)
	}
	return files
}

func rootSSH(t *testing.T, bed *testbed.Bed, m testbed.Machine, cmd string) string {
	t.Helper()
	out, err := trySSH(bed, m, cmd)
	if err != nil {
		t.Fatalf("%s: %s: %v", m.Name, cmd, err)
	}
	return out
}

func trySSH(bed *testbed.Bed, m testbed.Machine, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := connector.DialSSH(ctx, connector.SSHConfig{Host: m.Name, Address: m.Address, Port: 22, User: "root",
		PrivateKeyPath: bed.KeyPath, KnownHostsPath: bed.KnownHosts})
	if err != nil {
		return "", err
	}
	defer c.Close()
	res, err := c.Exec(ctx, cmd, connector.ExecOptions{})
	if err == nil {
		err = res.Err()
	}
	return res.Stdout, err
}

// run gathers facts and runs the etcd tasks (and the control planes' client certificates).
func run(t *testing.T, c *config.Cluster, bed *testbed.Bed, work string, s etcd.Spec) *pipeline.Report {
	t.Helper()
	var out bytes.Buffer
	sess, err := session.New(c, session.Options{Workdir: work, KnownHosts: bed.KnownHosts, Out: &out, Err: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	tasks := append([]pipeline.Task{facts.Task()}, etcd.Tasks(s)...)
	tasks = append(tasks, etcd.ClientTasks(s)...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rep, err := sess.Run(ctx, "etcd", tasks)
	if err != nil {
		t.Fatalf("etcd run failed: %v\n%s", err, out.String())
	}
	t.Logf("%s", out.String())
	return rep
}

func changedOn(rep *pipeline.Report) []string {
	var out []string
	for _, r := range rep.Results {
		if r.Status == pipeline.StatusChanged {
			out = append(out, r.Task+"@"+r.Host)
		}
	}
	return out
}

const adminFlags = "--cacert=/etc/ssl/etcd/ssl/ca.pem --cert=/etc/ssl/etcd/ssl/admin.pem --key=/etc/ssl/etcd/ssl/admin-key.pem"

// clusterHealth runs etcdctl endpoint health --cluster on m and returns its JSON.
func clusterHealth(t *testing.T, bed *testbed.Bed, m testbed.Machine, c *config.Cluster) string {
	t.Helper()
	return rootSSH(t, bed, m, "etcdctl --endpoints="+strings.Join(etcd.Endpoints(c), ",")+" "+adminFlags+" endpoint health --cluster -w json")
}

func loadCluster(t *testing.T, bed *testbed.Bed, etcdHosts int) *config.Cluster {
	t.Helper()
	c, _, err := v1alpha2.Load(bed.ClusterFile)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range c.Hosts {
		h.Roles = slices.DeleteFunc(h.Roles, func(r config.Role) bool { return r == config.RoleEtcd })
		if i < etcdHosts {
			h.Roles = append([]config.Role{config.RoleEtcd}, h.Roles...)
		}
	}
	c.Etcd.Type = config.EtcdKubeKey
	c.Etcd.KeepBackupNumber = 2
	return c
}

// Three members bootstrap together, converge, re-run with nothing changed, recover a stopped
// member, restart one at a time after a configuration change; then a backup and restores. A
// cluster grown from one member to three (state existing, the data kept) is the e2e HA
// lifecycle's (kk add nodes).
func TestEtcdCluster(t *testing.T) {
	bed := testbed.Require(t, testbed.Options{Name: "etcd"}, 3)
	files := etcdFiles(t)
	c := loadCluster(t, bed, 3)
	work := t.TempDir()
	s, err := etcd.SpecFor(c, work, files)
	if err != nil {
		t.Fatal(err)
	}
	n1, n2, n3 := bed.Machines[0], bed.Machines[1], bed.Machines[2]

	first := run(t, c, bed, work, s)
	if len(changedOn(first)) == 0 {
		t.Fatal("first run changed nothing")
	}
	health := clusterHealth(t, bed, n2, c)
	if strings.Count(health, `"health":true`) != 3 {
		t.Fatalf("want 3 healthy members:\n%s", health)
	}
	for _, m := range bed.Machines {
		if env := rootSSH(t, bed, m, "cat /etc/etcd.env"); !strings.Contains(env, "ETCD_INITIAL_CLUSTER_STATE=new\n") {
			t.Errorf("%s bootstrapped without state new:\n%s", m.Name, env)
		}
	}

	// a put on one member, a get on another
	rootSSH(t, bed, n1, "etcdctl --endpoints=https://127.0.0.1:2379 "+adminFlags+" put /kk/test hello-from-n1")
	if got := rootSSH(t, bed, n3, "etcdctl --endpoints=https://127.0.0.1:2379 "+adminFlags+" get --print-value-only /kk/test"); strings.TrimSpace(got) != "hello-from-n1" {
		t.Errorf("get on n3: %q", got)
	}
	// kube-apiserver's client certificate on the control plane reaches every member
	ca, cert, key := etcd.ClientFiles(c)
	if got := rootSSH(t, bed, n1, "etcdctl --endpoints="+strings.Join(etcd.Endpoints(c), ",")+" --cacert="+ca+" --cert="+cert+" --key="+key+
		" get --print-value-only /kk/test"); strings.TrimSpace(got) != "hello-from-n1" {
		t.Errorf("get with the kube-apiserver client certificate: %q", got)
	}

	// backups: the timer is active on every member; the service writes a snapshot, keeps 2
	for _, m := range bed.Machines {
		rootSSH(t, bed, m, "systemctl is-active backup-etcd.timer && systemctl is-enabled backup-etcd.timer")
	}
	for range 3 {
		rootSSH(t, bed, n2, "systemctl start backup-etcd.service")
	}
	snaps := strings.Fields(rootSSH(t, bed, n2, "ls /var/backups/kube_etcd"))
	if len(snaps) != 2 {
		t.Errorf("want the 2 newest snapshots kept, got %v", snaps)
	} else {
		st := rootSSH(t, bed, n2, "etcdutl snapshot status -w json /var/backups/kube_etcd/"+snaps[len(snaps)-1])
		if !strings.Contains(st, `"revision"`) {
			t.Errorf("snapshot status: %s", st)
		}
	}

	// a second run changes nothing
	if ch := changedOn(run(t, c, bed, work, s)); len(ch) != 0 {
		t.Errorf("second run changed %v", ch)
	}
	// a dry run on the converged cluster plans nothing
	func() {
		var out bytes.Buffer
		sess, err := session.New(c, session.Options{Workdir: work, KnownHosts: bed.KnownHosts, DryRun: true, Out: &out, Err: &out})
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		rep, err := sess.Run(context.Background(), "etcd-plan", append([]pipeline.Task{facts.Task()}, etcd.Tasks(s)...))
		if err != nil || rep.Count(pipeline.StatusPlanned) != 0 {
			t.Errorf("dry run on the converged cluster: %v\n%s", err, out.String())
		}
	}()
	// and a second SpecFor issues no certificate
	s2, err := etcd.SpecFor(c, work, files)
	if err != nil || len(s2.Issued) != 0 {
		t.Errorf("second SpecFor: %v, issued %v", err, s2.Issued)
	}

	// a stopped member: the health check names it and says why
	rootSSH(t, bed, n3, "systemctl stop etcd")
	t.Run("health names the unhealthy member", func(t *testing.T) {
		var health pipeline.Task
		for _, task := range etcd.Tasks(s2) {
			if task.Name == etcd.TaskHealth {
				health = task
			}
		}
		health.After = []string{facts.TaskName}
		saved := etcd.HealthTimeout
		etcd.HealthTimeout = 5 * time.Second
		defer func() { etcd.HealthTimeout = saved }()
		var out bytes.Buffer
		sess, err := session.New(c, session.Options{Workdir: work, KnownHosts: bed.KnownHosts, Out: &out, Err: &out})
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		_, err = sess.Run(context.Background(), "etcd-health", []pipeline.Task{facts.Task(), health})
		want := "n3 (https://" + n3.Address + ":2379): "
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "host n1, task etcd/health") ||
			strings.Contains(err.Error(), "n1 (https://") || strings.Contains(err.Error(), "n2 (https://") {
			t.Errorf("want an error from n1's etcd/health naming only n3 (%q), got %v", want, err)
		} else {
			t.Logf("health error: %v", err)
		}
	})

	// the stopped member is started again and the cluster converges
	rep := run(t, c, bed, work, s2)
	if ch := changedOn(rep); !slices.Equal(ch, []string{etcd.TaskService + "@n3"}) {
		t.Errorf("after stopping n3: changed %v, want only etcd/service on n3", ch)
	}
	rootSSH(t, bed, n3, "systemctl is-active etcd")
	if health := clusterHealth(t, bed, n1, c); strings.Count(health, `"health":true`) != 3 {
		t.Errorf("after recovery want 3 healthy members:\n%s", health)
	}

	// a configuration change restarts every member (one at a time), the data survives
	inv := func(m testbed.Machine) string {
		return rootSSH(t, bed, m, "systemctl show -p InvocationID --value etcd")
	}
	before := map[string]string{}
	for _, m := range bed.Machines {
		before[m.Name] = inv(m)
	}
	c.Etcd.LogLevel = "warn"
	s3, err := etcd.SpecFor(c, work, files)
	if err != nil {
		t.Fatal(err)
	}
	ch := changedOn(run(t, c, bed, work, s3))
	for _, m := range bed.Machines {
		if !slices.Contains(ch, etcd.TaskService+"@"+m.Name) || inv(m) == before[m.Name] {
			t.Errorf("%s was not restarted after its configuration changed (changed %v)", m.Name, ch)
		}
		if env := rootSSH(t, bed, m, "cat /etc/etcd.env"); !strings.Contains(env, "ETCD_LOG_LEVEL=warn\n") {
			t.Errorf("%s env lacks the new log level", m.Name)
		}
	}
	if got := rootSSH(t, bed, n2, "etcdctl --endpoints=https://127.0.0.1:2379 "+adminFlags+" get --print-value-only /kk/test"); strings.TrimSpace(got) != "hello-from-n1" {
		t.Errorf("data after rolling restart: %q", got)
	}
	if ch := changedOn(run(t, c, bed, work, s3)); len(ch) != 0 {
		t.Errorf("run after the restart changed %v", ch)
	}

	t.Run("backup and restore", func(t *testing.T) { backupAndRestore(t, bed, c, work, s3) })
}

// sessionRunner runs tasks through a session on the bed, as kk etcd backup and restore do.
func sessionRunner(t *testing.T, c *config.Cluster, bed *testbed.Bed, work string) etcd.Runner {
	return func(ctx context.Context, name string, tasks []pipeline.Task) (*pipeline.Report, error) {
		var out bytes.Buffer
		sess, err := session.New(c, session.Options{Workdir: work, KnownHosts: bed.KnownHosts, Out: &out, Err: &out})
		if err != nil {
			return nil, err
		}
		defer sess.Close()
		rep, err := sess.Run(ctx, name, tasks)
		t.Logf("%s", out.String())
		return rep, err
	}
}

// A snapshot taken by kk etcd backup brings back the data of its time on every member; a
// damaged or foreign snapshot is refused before anything stops; a restore interrupted with
// every member stopped converges when run again; kk's etcd tasks change nothing afterwards.
func backupAndRestore(t *testing.T, bed *testbed.Bed, c *config.Cluster, work string, s etcd.Spec) {
	start := time.Now()
	n1 := bed.Machines[0]
	ctl := "etcdctl --endpoints=https://127.0.0.1:2379 " + adminFlags + " "
	get := func(m testbed.Machine, key string) string {
		return strings.TrimSpace(rootSSH(t, bed, m, ctl+"get --print-value-only "+key))
	}
	rootSSH(t, bed, n1, ctl+"put /kk/restore before-backup")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	runner := sessionRunner(t, c, bed, work)
	ms, err := etcd.MaintenanceSpec(c)
	if err != nil {
		t.Fatal(err)
	}

	// backup
	dir := filepath.Join(work, "backups", "etcd")
	b, err := etcd.NewBackup(c, ms, dir)
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := etcd.RunBackup(ctx, runner, b)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	t.Logf("snapshot %s: %+v", res.Path, res.Meta)
	if res.Meta.Member != "n1" || len(res.Meta.Members) != 3 || res.Meta.Revision == 0 || res.Meta.TotalKeys < 2 || res.Meta.EtcdVersion != strings.TrimPrefix(etcdVersion, "v") {
		t.Errorf("metadata %+v", res.Meta)
	}
	if sum, err := etcd.VerifySnapshot(res.Path); err != nil || sum != res.Meta.SHA256 {
		t.Errorf("the snapshot written does not match its .sha256: %v", err)
	}
	if left := rootSSH(t, bed, n1, "ls -a /var/backups/kube_etcd"); strings.Contains(left, "kk-backup") {
		t.Errorf("the snapshot was left on n1: %s", left)
	}

	// the cluster moves on
	rootSSH(t, bed, n1, ctl+"put /kk/restore after-backup && "+ctl+"put /kk/new x && "+ctl+"del /kk/test")
	inv := func() map[string]string {
		out := map[string]string{}
		for _, m := range bed.Machines {
			out[m.Name] = rootSSH(t, bed, m, "systemctl show -p InvocationID --value etcd")
		}
		return out
	}
	before := inv()
	untouched := func(what string) {
		t.Helper()
		after := inv()
		for _, m := range bed.Machines {
			if after[m.Name] != before[m.Name] {
				t.Errorf("%s: etcd on %s was restarted", what, m.Name)
			}
			if out := rootSSH(t, bed, m, "ls -d /var/lib/etcd.kk-restore-* 2>/dev/null || true"); strings.TrimSpace(out) != "" {
				t.Errorf("%s: a data dir was moved aside on %s: %s", what, m.Name, out)
			}
		}
		if got := get(n1, "/kk/restore"); got != "after-backup" {
			t.Errorf("%s: the data changed: %q", what, got)
		}
	}
	copyTo := func(edit func(data []byte, meta *etcd.SnapshotMeta)) string {
		t.Helper()
		data, err := os.ReadFile(res.Path)
		if err != nil {
			t.Fatal(err)
		}
		meta := res.Meta
		edit(data, &meta)
		p, err := etcd.WriteSnapshot(t.TempDir(), data, meta)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	// a damaged snapshot (one byte flipped, the old .sha256 kept) is refused
	bad := copyTo(func(data []byte, _ *etcd.SnapshotMeta) {})
	data, _ := os.ReadFile(bad)
	data[len(data)/2] ^= 0x01
	if err := os.WriteFile(bad, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := etcd.NewRestore(c, ms, bad, time.Now()); !errors.Is(err, etcd.ErrBadChecksum) {
		t.Errorf("damaged snapshot: %v", err)
	} else {
		t.Logf("damaged snapshot refused: %v", err)
	}
	untouched("damaged snapshot")

	// a snapshot of another cluster is refused once the members are asked
	foreign := copyTo(func(_ []byte, m *etcd.SnapshotMeta) { m.ClusterID = "1234abcd" })
	rf, err := etcd.NewRestore(c, ms, foreign, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_, err = etcd.RunRestore(ctx, runner, rf, func() error { t.Error("confirmation asked for a foreign snapshot"); return nil })
	if err == nil || !strings.Contains(err.Error(), "foreign snapshot: it is of etcd cluster 1234abcd, the live cluster is "+res.Meta.ClusterID) {
		t.Errorf("foreign snapshot: %v", err)
	}
	untouched("foreign snapshot")

	restore := func(what string) {
		t.Helper()
		r, err := etcd.NewRestore(c, ms, res.Path, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if _, err := etcd.RunRestore(ctx, runner, r, func() error { return nil }); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s took %v", what, time.Since(t0).Round(time.Second))
		for _, m := range bed.Machines {
			if got := get(m, "/kk/restore"); got != "before-backup" {
				t.Errorf("%s: /kk/restore on %s is %q, want before-backup", what, m.Name, got)
			}
			if got := get(m, "/kk/test"); got != "hello-from-n1" {
				t.Errorf("%s: the deleted /kk/test on %s is %q", what, m.Name, got)
			}
			if got := get(m, "/kk/new"); got != "" {
				t.Errorf("%s: /kk/new, written after the backup, is on %s: %q", what, m.Name, got)
			}
			if out := rootSSH(t, bed, m, "ls -d "+r.AsideDir()+"/member"); !strings.Contains(out, r.AsideDir()) {
				t.Errorf("%s: the old data dir is not kept on %s", what, m.Name)
			}
		}
		if h := clusterHealth(t, bed, n1, c); strings.Count(h, `"health":true`) != 3 {
			t.Errorf("%s: want 3 healthy members:\n%s", what, h)
		}
		st := rootSSH(t, bed, n1, ctl+"endpoint status -w json")
		var es []struct {
			Status struct {
				Header struct {
					Revision int64 `json:"revision"`
				} `json:"header"`
			} `json:"Status"`
		}
		if err := json.Unmarshal([]byte(st), &es); err != nil || len(es) != 1 || es[0].Status.Header.Revision < res.Meta.Revision+etcd.BumpRevision {
			t.Errorf("%s: the revision was not bumped by %d from %d: %s", what, etcd.BumpRevision, res.Meta.Revision, st)
		}
		// kk create cluster's etcd tasks see nothing to do: no restart
		if ch := changedOn(run(t, c, bed, work, s)); len(ch) != 0 {
			t.Errorf("%s: the etcd tasks changed %v after the restore", what, ch)
		}
		time.Sleep(time.Second) // the next restore's aside dirs get another name
	}
	restore("restore")
	if ids := rootSSH(t, bed, n1, "cat "+etcd.IdentityFile); !strings.Contains(ids, res.Meta.ClusterID) {
		t.Errorf("%s: %q lacks %s", etcd.IdentityFile, ids, res.Meta.ClusterID)
	}

	// interrupted with every member stopped: nothing answers, the recorded ID says whose
	// the snapshot is, and a second run converges
	rootSSH(t, bed, n1, ctl+"put /kk/restore after-restore")
	for _, m := range bed.Machines {
		rootSSH(t, bed, m, "systemctl stop etcd")
	}
	restore("restore after an interruption")

	for _, m := range bed.Machines {
		rootSSH(t, bed, m, "rm -rf /var/lib/etcd.kk-restore-* "+etcd.RestoreDir+" "+etcd.IdentityFile)
	}
	t.Logf("backup and restore: %v", time.Since(start).Round(time.Second))
}
