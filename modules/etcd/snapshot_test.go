package etcd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

// Outputs of etcdctl and etcdutl v3.6.5 (-w json) for a three-member cluster.
const (
	memberListJSON = `{"header":{"cluster_id":8882202776940605188,"member_id":9116152503118773340,"raft_term":2},"members":[` +
		`{"ID":9116152503118773340,"name":"n1","peerURLs":["https://10.0.0.1:2380"],"clientURLs":["https://10.0.0.1:2379"]},` +
		`{"ID":1,"name":"n3","peerURLs":["https://10.0.0.3:2380"],"clientURLs":["https://10.0.0.3:2379"]},` +
		`{"ID":2,"name":"n2","peerURLs":["https://10.0.0.2:2380"],"clientURLs":["https://10.0.0.2:2379"]}]}`
	endpointStatusJSON = `[{"Endpoint":"https://127.0.0.1:2379","Status":{"header":{"cluster_id":8882202776940605188,"member_id":9116152503118773340,"revision":2,"raft_term":2},` +
		`"version":"3.6.5","dbSize":20480,"leader":9116152503118773340,"raftIndex":5,"raftTerm":2,"raftAppliedIndex":5,"dbSizeInUse":16384,"storageVersion":"3.6.0","downgradeInfo":{}}}]`
	snapshotStatusJSON = `{"hash":809916734,"revision":2,"totalKey":1,"totalSize":20480,"version":"3.6.0"}`
	clusterID          = "7b43ec5d9e886f04" // 8882202776940605188
)

func maintSpec(t *testing.T) (*config.Cluster, Spec) {
	t.Helper()
	c := testCluster()
	s, err := MaintenanceSpec(c)
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

func TestMaintenanceSpecNeedsNoPKI(t *testing.T) {
	_, s := maintSpec(t)
	var names []string
	for _, m := range s.Members {
		names = append(names, m.Name+"="+m.PeerURL(2380))
	}
	if want := []string{"n1=https://10.0.0.1:2380", "n2=https://10.0.0.2:2380", "n3=https://10.0.0.3:2380"}; !slices.Equal(names, want) {
		t.Errorf("members %v, want %v", names, want)
	}
	if s.CA != nil || s.Server != nil || s.Files.Check([]string{"amd64"}, Programs) == nil {
		t.Error("MaintenanceSpec issued certificates or carries programs")
	}
	c := testCluster()
	c.Etcd.Type = "etcd3"
	if _, err := MaintenanceSpec(c); err == nil {
		t.Error("unknown etcd type accepted")
	}
}

func TestBuildMeta(t *testing.T) {
	m, err := buildMeta(memberListJSON, endpointStatusJSON, snapshotStatusJSON)
	if err != nil {
		t.Fatal(err)
	}
	if m.ClusterID != clusterID || m.EtcdVersion != "3.6.5" || m.Revision != 2 || m.TotalKeys != 1 || m.Hash != 809916734 || m.TotalSize != 20480 || m.StorageVersion != "3.6.0" {
		t.Errorf("meta %+v", m)
	}
	var names []string
	for _, x := range m.Members {
		names = append(names, x.Name)
	}
	if !slices.Equal(names, []string{"n1", "n2", "n3"}) || m.Members[0].ID != "7e831466f2aebc5c" {
		t.Errorf("members %+v", m.Members)
	}
	if _, err := buildMeta(memberListJSON, strings.Replace(endpointStatusJSON, "8882202776940605188", "1", 1), snapshotStatusJSON); err == nil {
		t.Error("member list and endpoint status of different clusters accepted")
	}
	if _, err := buildMeta(memberListJSON, endpointStatusJSON, "Error: snapshot file corrupt"); err == nil {
		t.Error("bad snapshot status accepted")
	}
}

func goodMeta(t *testing.T, data []byte) SnapshotMeta {
	t.Helper()
	m, err := buildMeta(memberListJSON, endpointStatusJSON, snapshotStatusJSON)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(data)
	m.Cluster, m.EtcdType, m.File, m.SHA256, m.Size = "t", config.EtcdKubeKey, "etcd-snapshot-t-20250101T000000Z.db", hex.EncodeToString(h[:]), int64(len(data))
	m.Time, m.Member = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), "n1"
	return m
}

func TestWriteSnapshotAndParseMeta(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "backups", "etcd")
	data := []byte("snapshot bytes")
	meta := goodMeta(t, data)
	p, err := WriteSnapshot(dir, data, meta)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(p) != meta.File {
		t.Errorf("path %s", p)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("snapshot mode %v, want 0600", st.Mode())
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", st.Mode())
	}
	sum, err := os.ReadFile(p + ".sha256")
	if err != nil || string(sum) != meta.SHA256+"  "+meta.File+"\n" {
		t.Errorf(".sha256 %q %v", sum, err)
	}
	if got, err := VerifySnapshot(p); err != nil || got != meta.SHA256 {
		t.Errorf("VerifySnapshot: %s %v", got, err)
	}
	b, err := os.ReadFile(MetaPath(p))
	if err != nil || MetaPath(p) != strings.TrimSuffix(p, ".db")+".json" {
		t.Fatal(err)
	}
	back, err := ParseSnapshotMeta(b)
	if err != nil || back.ClusterID != clusterID || back.SHA256 != meta.SHA256 || !back.Time.Equal(meta.Time) || len(back.Members) != 3 {
		t.Errorf("parsed %+v, %v", back, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("dir holds %d files, want the snapshot, its .sha256 and .json", len(entries))
	}

	for _, c := range []struct {
		name string
		edit func(*SnapshotMeta)
		want string
	}{
		{"other format", func(m *SnapshotMeta) { m.Format = "x" }, "format"},
		{"no cluster ID", func(m *SnapshotMeta) { m.ClusterID = "" }, "no clusterID"},
		{"no members", func(m *SnapshotMeta) { m.Members = nil }, "no members"},
		{"unstarted member", func(m *SnapshotMeta) { m.Members[1].Name = "" }, "never started"},
		{"bad sha256", func(m *SnapshotMeta) { m.SHA256 = "abc" }, "not a SHA-256"},
	} {
		m := goodMeta(t, data)
		c.edit(&m)
		p, err := WriteSnapshot(t.TempDir(), data, m)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(MetaPath(p))
		if _, err := ParseSnapshotMeta(b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := ParseSnapshotMeta([]byte("not json")); err == nil {
		t.Error("garbage accepted")
	}
}

func TestVerifySnapshotRefusesABadFile(t *testing.T) {
	dir := t.TempDir()
	data := []byte("0123456789 etcd snapshot")
	p, err := WriteSnapshot(dir, data, goodMeta(t, data))
	if err != nil {
		t.Fatal(err)
	}
	// one byte flipped, the old .sha256 kept
	b, _ := os.ReadFile(p)
	b[3] ^= 0xff
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = VerifySnapshot(p)
	if !errors.Is(err, ErrBadChecksum) || !strings.Contains(err.Error(), "bad checksum") {
		t.Errorf("flipped byte: %v", err)
	}
	// no .sha256
	os.Remove(p + ".sha256")
	if _, err := VerifySnapshot(p); !errors.Is(err, ErrBadChecksum) {
		t.Errorf("no .sha256: %v", err)
	}
	// a .sha256 that is not one
	os.WriteFile(p+".sha256", []byte("hello world\n"), 0o644)
	if _, err := VerifySnapshot(p); !errors.Is(err, ErrBadChecksum) {
		t.Errorf("garbage .sha256: %v", err)
	}
	// sha256sum's binary-mode marker is read
	sum, name, err := ParseSHA256Sum([]byte(strings.Repeat("AB", 32) + " *x.db\n"))
	if err != nil || sum != strings.Repeat("ab", 32) || name != "x.db" {
		t.Errorf("ParseSHA256Sum: %s %s %v", sum, name, err)
	}
}

func TestCheckMembers(t *testing.T) {
	_, s := maintSpec(t)
	m := goodMeta(t, nil)
	if err := s.CheckMembers(m); err != nil {
		t.Fatalf("same members refused: %v", err)
	}
	for _, c := range []struct {
		name string
		edit func(*SnapshotMeta)
		want string
	}{
		{"member gone", func(m *SnapshotMeta) { m.Members = m.Members[:2] }, "n3 is not a member in the snapshot"},
		{"member more", func(m *SnapshotMeta) {
			m.Members = append(m.Members, SnapshotMember{Name: "n4", PeerURLs: []string{"https://10.0.0.4:2380"}})
		}, "n4 (https://10.0.0.4:2380) is a member in the snapshot, not an etcd host"},
		{"peer moved", func(m *SnapshotMeta) { m.Members[1].PeerURLs = []string{"https://10.0.0.20:2380"} },
			"n2 has peer URL https://10.0.0.20:2380 in the snapshot, https://10.0.0.2:2380 in the Cluster file"},
	} {
		m := goodMeta(t, nil)
		c.edit(&m)
		if err := s.CheckMembers(m); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func TestCheckIdentity(t *testing.T) {
	if err := checkIdentity("aa", map[string]string{"n1": "aa", "n2": "aa"}, nil); err != nil {
		t.Errorf("live match: %v", err)
	}
	// the cluster got a new ID from an earlier restore: its IdentityFile knows the old one
	if err := checkIdentity("aa", map[string]string{"n1": "bb"}, map[string][]string{"n2": {"aa", "bb"}}); err != nil {
		t.Errorf("recorded match: %v", err)
	}
	// every member stopped (an interrupted restore): the recorded IDs decide
	if err := checkIdentity("aa", nil, map[string][]string{"n1": {"aa"}}); err != nil {
		t.Errorf("recorded match, no member up: %v", err)
	}
	err := checkIdentity("aa", map[string]string{"n1": "bb", "n2": "bb"}, map[string][]string{"n1": {"bb"}})
	if err == nil || !strings.Contains(err.Error(), "foreign snapshot: it is of etcd cluster aa, the live cluster is bb") {
		t.Errorf("foreign: %v", err)
	}
	if err := checkIdentity("aa", nil, map[string][]string{"n1": {"cc"}}); err == nil || !strings.Contains(err.Error(), "foreign snapshot") || !strings.Contains(err.Error(), "cc") {
		t.Errorf("foreign, no member up: %v", err)
	}
	if err := checkIdentity("aa", nil, map[string][]string{"n1": nil}); err == nil || !strings.Contains(err.Error(), "no etcd member answers") {
		t.Errorf("nothing known: %v", err)
	}
}

func TestRestoreCommandPerMember(t *testing.T) {
	_, s := maintSpec(t)
	want := map[string]string{}
	for _, n := range []string{"1", "2", "3"} {
		want["n"+n] = "/usr/local/bin/etcdutl snapshot restore /var/lib/kk-restore/snapshot.db --name=n" + n +
			" --initial-cluster=n1=https://10.0.0.1:2380,n2=https://10.0.0.2:2380,n3=https://10.0.0.3:2380" +
			" --initial-cluster-token=k8s_etcd --initial-advertise-peer-urls=https://10.0.0." + n + ":2380" +
			" --data-dir=/var/lib/etcd --bump-revision=1000000000 --mark-compacted"
	}
	for _, m := range s.Members {
		if got := s.RestoreCommand(m); got != want[m.Name] {
			t.Errorf("%s:\n got %s\nwant %s", m.Name, got, want[m.Name])
		}
	}
	// extraArgs that move the data and WAL dirs or change the token are followed
	c := testCluster()
	c.Etcd.DataDir = "/data/etcd/"
	c.Etcd.ExtraArgs = map[string]string{"--wal-dir": "/wal/etcd", "initial-cluster-token": "tok"}
	s2, err := MaintenanceSpec(c)
	if err != nil {
		t.Fatal(err)
	}
	got := s2.RestoreCommand(s2.Members[1])
	for _, w := range []string{"--data-dir=/data/etcd ", "--wal-dir=/wal/etcd ", "--initial-cluster-token=tok ", "--name=n2 "} {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q", got, w)
		}
	}
}

func TestRestoreScript(t *testing.T) {
	c, s := maintSpec(t)
	r := &Restore{Spec: s, Stamp: "20250101T000000Z"}
	_ = c
	sc := r.restoreScript(s.Members[0], "/var/lib/etcd", "")
	for _, w := range []string{
		"set -e\n",
		"etcd.service is not stopped",
		"own=$(stat -c %u:%g /var/lib/etcd); mode=$(stat -c %a /var/lib/etcd)",
		"if [ -e /var/lib/etcd.kk-restore-20250101T000000Z ]; then", // never over an earlier copy
		"mv -- /var/lib/etcd /var/lib/etcd.kk-restore-20250101T000000Z\n",
		s.RestoreCommand(s.Members[0]) + "\n",
		`chown -R "$own" /var/lib/etcd && chmod "$mode" /var/lib/etcd`,
	} {
		if !strings.Contains(sc, w) {
			t.Errorf("restore script lacks %q:\n%s", w, sc)
		}
	}
	if strings.Contains(sc, "rm ") {
		t.Errorf("the restore script deletes something:\n%s", sc)
	}
	if i, j := strings.Index(sc, "mv -- "), strings.Index(sc, "etcdutl"); i < 0 || j < i {
		t.Error("the data dir is not moved aside before the restore")
	}
	if r.AsideDir() != "/var/lib/etcd.kk-restore-20250101T000000Z" {
		t.Errorf("AsideDir %s", r.AsideDir())
	}
}

func TestParseListing(t *testing.T) {
	out := "timer active\n" +
		"etcd-snapshot-20250101T000000.000000000Z.db 20480 1735689600\n" +
		"etcd-snapshot-20250102T000000.000000000Z.db 40960 1735776000\n" +
		"garbage\n"
	ms := parseListing(out)
	if ms.Timer != "active" || len(ms.Snapshots) != 2 || ms.Snapshots[0].Size != 40960 || ms.Snapshots[0].Time.Unix() != 1735776000 {
		t.Errorf("%+v", ms)
	}
	if ms := parseListing("timer\n"); ms.Timer != "unknown" || len(ms.Snapshots) != 0 {
		t.Errorf("%+v", ms)
	}
	if cmd := listCmd("/var/backups/kube_etcd"); strings.Contains(cmd, "rm ") || !strings.Contains(cmd, "etcd-snapshot-*.db") {
		t.Errorf("list command: %s", cmd)
	}
}

func TestNewRestoreRefuses(t *testing.T) {
	c, s := maintSpec(t)
	dir := t.TempDir()
	data := []byte("etcd snapshot")
	p, err := WriteSnapshot(dir, data, goodMeta(t, data))
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRestore(c, s, p, time.Date(2025, 2, 3, 4, 5, 6, 0, time.UTC))
	if err != nil {
		t.Fatalf("good snapshot refused: %v", err)
	}
	if r.Stamp != "20250203T040506Z" || r.APIServerPort != 6443 || r.Meta.ClusterID != clusterID {
		t.Errorf("restore %+v", r)
	}

	for _, typ := range []string{config.EtcdKubeadm, config.EtcdExternal} {
		c2 := testCluster()
		c2.Etcd.Type = typ
		s2, _ := MaintenanceSpec(c2)
		if _, err := NewRestore(c2, s2, p, time.Now()); err == nil || !strings.Contains(err.Error(), "etcd type "+typ) {
			t.Errorf("%s: %v", typ, err)
		}
	}
	if _, err := NewRestore(c, s, filepath.Join(dir, "none.db"), time.Now()); err == nil {
		t.Error("missing file accepted")
	}

	// metadata of another snapshot
	other := goodMeta(t, []byte("other"))
	other.File = "x.db"
	px, _ := WriteSnapshot(t.TempDir(), []byte("other"), other)
	os.Rename(MetaPath(px), MetaPath(p)+".other")
	b, _ := os.ReadFile(MetaPath(p) + ".other")
	p2 := filepath.Join(t.TempDir(), "s.db")
	os.WriteFile(p2, data, 0o600)
	os.WriteFile(p2+".sha256", []byte(goodMeta(t, data).SHA256+"  s.db\n"), 0o644)
	os.WriteFile(MetaPath(p2), b, 0o644)
	if _, err := NewRestore(c, s, p2, time.Now()); err == nil || !strings.Contains(err.Error(), "metadata of another snapshot") {
		t.Errorf("other metadata: %v", err)
	}
	os.Remove(MetaPath(p2))
	if _, err := NewRestore(c, s, p2, time.Now()); err == nil || !strings.Contains(err.Error(), "metadata") {
		t.Errorf("no metadata: %v", err)
	}

	// other members
	c3 := testCluster()
	c3.Hosts[2].Roles = nil
	s3, _ := MaintenanceSpec(c3)
	if _, err := NewRestore(c3, s3, p, time.Now()); err == nil || !strings.Contains(err.Error(), "n3 (https://10.0.0.3:2380) is a member in the snapshot") {
		t.Errorf("other members: %v", err)
	}
}

// ---- the steps on scripted hosts ----

// fakeHost answers commands by the first rule whose key the command contains.
type fakeHost struct {
	name  string
	mu    sync.Mutex
	rules []rule
	cmds  []string
	files map[string][]byte
}

type rule struct {
	has  string
	out  string
	code int
}

func (f *fakeHost) Exec(_ context.Context, cmd string, _ connector.ExecOptions) (connector.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, cmd)
	for _, r := range f.rules {
		if strings.Contains(cmd, r.has) {
			return connector.Result{Cmd: cmd, Stdout: r.out, ExitCode: r.code}, nil
		}
	}
	return connector.Result{Cmd: cmd}, nil
}

func (f *fakeHost) Upload(_ context.Context, file connector.File) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, "UPLOAD "+file.Path)
	return true, nil
}

func (f *fakeHost) Fetch(_ context.Context, p string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, "FETCH "+p)
	return f.files[p], nil
}

func (f *fakeHost) Close() error { return nil }

func (f *fakeHost) ran(sub string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.cmds, func(c string) bool { return strings.Contains(c, sub) })
}

func runner(c *config.Cluster, hosts map[string]*fakeHost) Runner {
	return func(ctx context.Context, name string, tasks []pipeline.Task) (*pipeline.Report, error) {
		var hs []*pipeline.Host
		for _, h := range c.Hosts {
			roles := make([]string, len(h.Roles))
			for i, r := range h.Roles {
				roles[i] = string(r)
			}
			fh := hosts[h.Name]
			if fh == nil {
				fh = &fakeHost{name: h.Name}
				hosts[h.Name] = fh
			}
			hs = append(hs, pipeline.NewHost(h.Name, roles, func(context.Context) (connector.Connector, error) { return fh, nil }))
		}
		g, err := pipeline.NewGraph(tasks, hs)
		if err != nil {
			return nil, err
		}
		return pipeline.Run(ctx, g, pipeline.Options{Name: name})
	}
}

func TestRunBackupOnFirstHealthyMember(t *testing.T) {
	c, s := maintSpec(t)
	data := []byte("the snapshot")
	h := sha256.Sum256(data)
	sum := hex.EncodeToString(h[:])
	hosts := map[string]*fakeHost{
		"n1": {rules: []rule{{has: "endpoint health", code: 1}}}, // unhealthy: passed over
	}
	n2 := &fakeHost{rules: []rule{
		{has: "snapshot status", out: snapshotStatusJSON},
		{has: "sha256sum", out: sum + "  /x\n"},
		{has: "member list", out: memberListJSON},
		{has: "endpoint status", out: endpointStatusJSON},
	}, files: map[string][]byte{}}
	hosts["n2"] = n2
	dir := t.TempDir()
	b, err := NewBackup(c, s, dir)
	if err != nil {
		t.Fatal(err)
	}
	b.Now = func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC) }
	tmp := "/var/backups/kube_etcd/kk-backup-20250102T030405Z.db"
	n2.files[tmp] = data
	res, _, err := RunBackup(context.Background(), runner(c, hosts), b)
	if err != nil {
		t.Fatal(err)
	}
	if res.Meta.Member != "n2" || res.Meta.SHA256 != sum || res.Meta.ClusterID != clusterID || filepath.Base(res.Path) != "etcd-snapshot-t-20250102T030405Z.db" {
		t.Errorf("result %+v", res)
	}
	if len(res.Unhealthy) != 1 || !strings.HasPrefix(res.Unhealthy[0], "n1: unhealthy") {
		t.Errorf("unhealthy %v", res.Unhealthy)
	}
	if got, err := VerifySnapshot(res.Path); err != nil || got != sum {
		t.Errorf("written snapshot: %v", err)
	}
	if hosts["n1"].ran("snapshot save") || hosts["n3"].ran("snapshot save") {
		t.Error("a snapshot was taken on another member too")
	}
	for _, w := range []string{"--command-timeout=1h snapshot save " + tmp, "FETCH " + tmp, "rm -f -- " + tmp, "grep -qsxF -- " + clusterID + " " + IdentityFile} {
		if !n2.ran(w) {
			t.Errorf("n2 did not run %q: %q", w, n2.cmds)
		}
	}

	// a fetched snapshot that is not what the host hashed is refused, nothing is written
	n2.files[tmp] = []byte("damaged in transit")
	dir2 := t.TempDir()
	b2, _ := NewBackup(c, s, dir2)
	b2.Now = b.Now
	if _, _, err := RunBackup(context.Background(), runner(c, hosts), b2); err == nil || !strings.Contains(err.Error(), "bad checksum") {
		t.Errorf("damaged fetch: %v", err)
	}
	if entries, _ := os.ReadDir(dir2); len(entries) != 0 {
		t.Errorf("files written for a damaged snapshot: %v", entries)
	}

	// no healthy member
	all := map[string]*fakeHost{}
	for _, n := range []string{"n1", "n2", "n3"} {
		all[n] = &fakeHost{rules: []rule{{has: "endpoint health", code: 1}}}
	}
	b3, _ := NewBackup(c, s, t.TempDir())
	if _, _, err := RunBackup(context.Background(), runner(c, all), b3); err == nil || !strings.Contains(err.Error(), "no etcd member is healthy") {
		t.Errorf("none healthy: %v", err)
	}

	c.Etcd.Type = config.EtcdExternal
	if _, err := NewBackup(c, Spec{Type: config.EtcdExternal}, dir); err == nil || !strings.Contains(err.Error(), "kk does not run this etcd") {
		t.Errorf("external: %v", err)
	}
}

func restoreFixture(t *testing.T) (*config.Cluster, *Restore) {
	t.Helper()
	c, s := maintSpec(t)
	data := []byte("etcd snapshot")
	p, err := WriteSnapshot(t.TempDir(), data, goodMeta(t, data))
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRestore(c, s, p, time.Date(2025, 2, 3, 4, 5, 6, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	r.StopTimeout, r.ReadyTimeout = time.Second, time.Second
	return c, r
}

func memberRules(r *Restore, id string) []rule {
	return []rule{
		{has: "etcdutl snapshot restore"}, // the restore script, which checks etcd is stopped
		{has: "ActiveState", code: 1},     // etcd runs until stopped
		{has: "endpoint status", out: strings.Replace(endpointStatusJSON, "8882202776940605188", id, 1)},
		{has: "sha256sum", out: r.SHA256 + "  " + RestoreSnapshot + "\n"},
		{has: "snapshot status", out: snapshotStatusJSON},
		{has: "endpoint health", out: `[{"endpoint":"https://10.0.0.1:2379","health":true},{"endpoint":"https://10.0.0.2:2379","health":true},{"endpoint":"https://10.0.0.3:2379","health":true}]`},
	}
}

// The order of the steps, the no-op on a control plane without kube-apiserver, and a stop
// before anything else after a failure.
func TestRunRestoreSteps(t *testing.T) {
	c, r := restoreFixture(t)
	hosts := map[string]*fakeHost{}
	for _, n := range []string{"n1", "n2", "n3"} {
		hosts[n] = &fakeHost{rules: memberRules(r, "8882202776940605188")}
	}
	// n1 is a control plane without a kube-apiserver manifest: the Check of the stop step passes
	asked := false
	if _, err := RunRestore(context.Background(), runner(c, hosts), r, func() error { asked = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if !asked {
		t.Error("no confirmation asked")
	}
	n2 := hosts["n2"]
	var order []string
	for _, cmd := range n2.cmds {
		for _, step := range []string{"UPLOAD " + RestoreSnapshot, "systemctl stop etcd", "etcdutl snapshot restore", "systemctl start --no-block etcd", "endpoint health --cluster"} {
			if strings.Contains(cmd, step) && !slices.Contains(order, step) {
				order = append(order, step)
			}
		}
	}
	if want := []string{"UPLOAD " + RestoreSnapshot, "systemctl stop etcd", "etcdutl snapshot restore", "systemctl start --no-block etcd", "endpoint health --cluster"}; !slices.Equal(order, want) {
		t.Errorf("n2 ran %v, want %v", order, want)
	}
	if !n2.ran("--name=n2 ") || !n2.ran(r.AsideDir()) || !n2.ran(" > "+AppliedFile) {
		t.Errorf("n2's restore: %q", n2.cmds)
	}
	if hosts["n1"].ran("mv -f " + ManifestsDir) {
		t.Error("a manifest was moved on a host that has none")
	}

	// a foreign snapshot: refused before the confirmation, nothing stops
	for _, n := range []string{"n1", "n2", "n3"} {
		hosts[n] = &fakeHost{rules: memberRules(r, "1")}
	}
	asked = false
	_, err := RunRestore(context.Background(), runner(c, hosts), r, func() error { asked = true; return nil })
	if err == nil || !strings.Contains(err.Error(), "foreign snapshot: it is of etcd cluster "+clusterID+", the live cluster is 1") || !strings.Contains(err.Error(), "nothing was stopped") {
		t.Errorf("foreign: %v", err)
	}
	for _, h := range hosts {
		if asked || h.ran("systemctl stop") || h.ran("UPLOAD") {
			t.Errorf("%v: uploaded, asked or stopped for a foreign snapshot", h.cmds)
		}
	}

	// the upload is damaged on n3: nothing stops anywhere
	for _, n := range []string{"n1", "n2", "n3"} {
		hosts[n] = &fakeHost{rules: memberRules(r, "8882202776940605188")}
	}
	hosts["n3"].rules = append([]rule{{has: "sha256sum", out: strings.Repeat("0", 64) + "  x\n"}}, hosts["n3"].rules...)
	_, err = RunRestore(context.Background(), runner(c, hosts), r, func() error { asked = true; return nil })
	if err == nil || !strings.Contains(err.Error(), "bad checksum") || !strings.Contains(err.Error(), "host n3") {
		t.Errorf("damaged upload: %v", err)
	}
	for _, h := range hosts {
		if h.ran("systemctl stop") || h.ran("kube-apiserver.yaml /etc") {
			t.Errorf("something stopped after a failed verification: %q", h.cmds)
		}
	}

	// the restore fails on n2: no member starts, the error says how to go on
	for _, n := range []string{"n1", "n2", "n3"} {
		hosts[n] = &fakeHost{rules: memberRules(r, "8882202776940605188")}
	}
	hosts["n2"].rules = append([]rule{{has: "etcdutl snapshot restore", code: 1}}, hosts["n2"].rules...)
	_, err = RunRestore(context.Background(), runner(c, hosts), r, func() error { return nil })
	if err == nil || !strings.Contains(err.Error(), "host n2, task "+TaskRestoreData) || !strings.Contains(err.Error(), "Running kk etcd restore again") {
		t.Errorf("failed restore: %v", err)
	}
	for n, h := range hosts {
		if h.ran("systemctl start") {
			t.Errorf("%s started etcd after the restore failed on n2", n)
		}
	}
}

func TestGuardStopsAfterAFailure(t *testing.T) {
	_, r := restoreFixture(t)
	r.fail(TaskRestoreStopEtcd, "n3")
	task := r.guarded(pipeline.Task{Name: "x", Run: func(context.Context, *pipeline.Target) (bool, error) {
		return false, fmt.Errorf("must not run")
	}})
	if !task.Barrier {
		t.Error("a restore step is not a barrier")
	}
	if _, err := task.Check(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "not run: etcd/restore-stop-etcd failed on n3") {
		t.Errorf("check: %v", err)
	}
	if _, err := task.Run(context.Background(), nil); err == nil || strings.Contains(err.Error(), "must not run") {
		t.Errorf("run: %v", err)
	}
}
