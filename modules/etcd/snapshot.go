package etcd

// kk etcd backup: an on-demand snapshot of the cluster's etcd, fetched to the kk machine with
// its checksum and a metadata file (cluster ID, members, revision) that kk etcd restore checks
// before it stops anything; and the listing of the snapshots the periodic timer keeps on the
// members.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/download"
	"github.com/kk-project/kk/modules/runtime"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

// Task names of kk etcd backup.
const (
	TaskBackupHealth = "etcd/backup-health"
	TaskBackupSave   = "etcd/backup-save"
	TaskBackupList   = "etcd/backup-list"
)

const (
	// IdentityFile lists, one a line, the etcd cluster IDs (hex) of the cluster this member
	// belongs to: kk etcd backup and restore add to it, kk etcd restore reads it to tell a
	// snapshot of this cluster from a foreign one when no member answers (or after a restore
	// gave the cluster a new ID).
	IdentityFile = "/etc/etcd.kk-cluster-ids"
	// SnapshotFormat is the format field of a snapshot's metadata file.
	SnapshotFormat = "kk-etcd-snapshot/v1"

	etcdutl = BinDir + "/etcdutl"
	crictl  = runtime.BinDir + "/crictl"

	// stacked etcd (kubeadm): its client port on 127.0.0.1 and the health-check client
	// certificate kubeadm issues
	KubeadmEndpoint   = "https://127.0.0.1:2379"
	KubeadmCA         = "/etc/kubernetes/pki/etcd/ca.crt"
	KubeadmHealthCert = "/etc/kubernetes/pki/etcd/healthcheck-client.crt"
	KubeadmHealthKey  = "/etc/kubernetes/pki/etcd/healthcheck-client.key"

	// snapshotTimeout is etcdctl's command timeout for a snapshot save (its default 10s would
	// cut a large database short).
	snapshotTimeout = "--command-timeout=1h"
)

// MaintenanceSpec is the Spec kk etcd backup and restore work with: type, configuration and,
// for type kubekey, the members. Unlike SpecFor it issues no certificate and needs no program:
// both commands use what is installed on the hosts.
func MaintenanceSpec(c *config.Cluster) (Spec, error) {
	s := Spec{Type: c.Etcd.Type, Etcd: c.Etcd}
	if _, err := ExtraArgs(c.Etcd); err != nil {
		return s, err
	}
	switch c.Etcd.Type {
	case config.EtcdKubeKey:
	case config.EtcdKubeadm, config.EtcdExternal:
		return s, nil
	default:
		return s, fmt.Errorf("etcd type %q is not one of kubekey, kubeadm, external", c.Etcd.Type)
	}
	hosts := c.HostsWithRole(config.RoleEtcd)
	if len(hosts) == 0 {
		return s, fmt.Errorf("etcd type kubekey needs at least one host with role etcd")
	}
	for _, h := range hosts {
		m := memberOf(h, c.Kubernetes.ClusterName)
		if m.IP == "" {
			return s, fmt.Errorf("etcd member %s has no internal IP address", h.Name)
		}
		s.Members = append(s.Members, m)
	}
	return s, nil
}

// ---- metadata ----

// SnapshotMember is one member of the cluster a snapshot was taken of.
type SnapshotMember struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	PeerURLs []string `json:"peerURLs"`
}

// SnapshotMeta is <name>.json, written beside <name>.db by kk etcd backup.
type SnapshotMeta struct {
	Format string `json:"format"`
	// Cluster is the name of the kk cluster (metadata.name of the Cluster file), EtcdType its
	// etcd type.
	Cluster  string `json:"cluster"`
	EtcdType string `json:"etcdType"`
	// ClusterID is the etcd cluster ID (hex, as etcd logs it), Members its members then.
	ClusterID string           `json:"clusterID"`
	Members   []SnapshotMember `json:"members"`
	// Revision, TotalKeys, Hash and TotalSize are what etcdutl snapshot status says of the
	// snapshot; StorageVersion is its storage version.
	Revision       int64  `json:"revision"`
	TotalKeys      int64  `json:"totalKeys"`
	Hash           uint32 `json:"hash"`
	TotalSize      int64  `json:"totalSize"`
	StorageVersion string `json:"storageVersion,omitempty"`
	// File is the snapshot's file name, SHA256 and Size its digest and size.
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Time is when it was taken, Member the member it was taken from, EtcdVersion that
	// member's etcd version.
	Time        time.Time `json:"time"`
	Member      string    `json:"member"`
	EtcdVersion string    `json:"etcdVersion"`
}

// ParseSnapshotMeta reads a snapshot's metadata file and checks it holds what kk etcd restore
// needs.
func ParseSnapshotMeta(b []byte) (SnapshotMeta, error) {
	var m SnapshotMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("not a kk etcd snapshot metadata file: %w", err)
	}
	switch {
	case m.Format != SnapshotFormat:
		return m, fmt.Errorf("format %q: want %q (a file written by kk etcd backup)", m.Format, SnapshotFormat)
	case m.ClusterID == "":
		return m, errors.New("no clusterID")
	case len(m.Members) == 0:
		return m, errors.New("no members")
	case !isSHA256(m.SHA256):
		return m, fmt.Errorf("sha256 %q is not a SHA-256 digest", m.SHA256)
	}
	for i, x := range m.Members {
		if x.Name == "" || len(x.PeerURLs) == 0 {
			return m, fmt.Errorf("members[%d]: a member without name or peer URL (it never started): not a snapshot of a settled cluster", i)
		}
	}
	return m, nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// etcdHeader is the response header etcdctl prints with -w json.
type etcdHeader struct {
	ClusterID uint64 `json:"cluster_id"`
	MemberID  uint64 `json:"member_id"`
	Revision  int64  `json:"revision"`
}

// memberListOut is `etcdctl member list -w json`.
type memberListOut struct {
	Header  etcdHeader     `json:"header"`
	Members []listedMember `json:"members"`
}

// endpointStatusOut is `etcdctl endpoint status -w json`.
type endpointStatusOut []struct {
	Endpoint string `json:"Endpoint"`
	Status   struct {
		Header         etcdHeader `json:"header"`
		Version        string     `json:"version"`
		StorageVersion string     `json:"storageVersion"`
	} `json:"Status"`
}

// snapshotStatus is `etcdutl snapshot status -w json`.
type snapshotStatus struct {
	Hash      uint32 `json:"hash"`
	Revision  int64  `json:"revision"`
	TotalKey  int64  `json:"totalKey"`
	TotalSize int64  `json:"totalSize"`
	Version   string `json:"version"`
}

func hexID(id uint64) string { return strconv.FormatUint(id, 16) }

func parseSnapshotStatus(out string) (snapshotStatus, error) {
	var st snapshotStatus
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &st); err != nil {
		return st, fmt.Errorf("read etcdutl snapshot status output: %w", err)
	}
	if st.Revision == 0 && st.TotalSize == 0 {
		return st, fmt.Errorf("etcdutl snapshot status says nothing of the snapshot: %s", strings.TrimSpace(out))
	}
	return st, nil
}

// parseClusterID reads the cluster ID from `etcdctl endpoint status -w json` (one endpoint).
func parseClusterID(out string) (id, version string, err error) {
	var es endpointStatusOut
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &es); err != nil {
		return "", "", fmt.Errorf("read etcdctl endpoint status output: %w", err)
	}
	if len(es) == 0 || es[0].Status.Header.ClusterID == 0 {
		return "", "", fmt.Errorf("etcdctl endpoint status names no cluster: %s", strings.TrimSpace(out))
	}
	return hexID(es[0].Status.Header.ClusterID), es[0].Status.Version, nil
}

// buildMeta assembles a snapshot's metadata from the outputs of `etcdctl member list -w json`,
// `etcdctl endpoint status -w json` (the member it was taken from) and `etcdutl snapshot
// status -w json`.
func buildMeta(memberList, endpointStatus, status string) (SnapshotMeta, error) {
	m := SnapshotMeta{Format: SnapshotFormat}
	var ml memberListOut
	if err := json.Unmarshal([]byte(strings.TrimSpace(memberList)), &ml); err != nil {
		return m, fmt.Errorf("read etcdctl member list output: %w", err)
	}
	id, version, err := parseClusterID(endpointStatus)
	if err != nil {
		return m, err
	}
	if ml.Header.ClusterID != 0 && hexID(ml.Header.ClusterID) != id {
		return m, fmt.Errorf("etcdctl member list says cluster %s, endpoint status %s", hexID(ml.Header.ClusterID), id)
	}
	m.ClusterID, m.EtcdVersion = id, version
	for _, x := range ml.Members {
		m.Members = append(m.Members, SnapshotMember{ID: hexID(x.ID), Name: x.Name, PeerURLs: slices.Clone(x.PeerURLs)})
	}
	slices.SortFunc(m.Members, func(a, b SnapshotMember) int { return strings.Compare(a.Name, b.Name) })
	st, err := parseSnapshotStatus(status)
	if err != nil {
		return m, err
	}
	m.Revision, m.TotalKeys, m.Hash, m.TotalSize, m.StorageVersion = st.Revision, st.TotalKey, st.Hash, st.TotalSize, st.Version
	return m, nil
}

// CheckMembers says whether the snapshot's members are the Cluster file's etcd members: the
// same names with the same peer URLs (a restore gives every member its place in the cluster
// it had).
func (s Spec) CheckMembers(m SnapshotMeta) error {
	want := map[string]string{}
	for _, x := range s.Members {
		want[x.Name] = x.PeerURL(peerPort(s.Etcd))
	}
	got := map[string]string{}
	var problems []string
	for _, x := range m.Members {
		got[x.Name] = strings.Join(x.PeerURLs, ",")
	}
	for _, x := range s.Members {
		g, ok := got[x.Name]
		switch {
		case !ok:
			problems = append(problems, x.Name+" is not a member in the snapshot")
		case g != want[x.Name]:
			problems = append(problems, fmt.Sprintf("%s has peer URL %s in the snapshot, %s in the Cluster file", x.Name, g, want[x.Name]))
		}
	}
	for _, x := range m.Members {
		if _, ok := want[x.Name]; !ok {
			problems = append(problems, x.Name+" ("+strings.Join(x.PeerURLs, ",")+") is a member in the snapshot, not an etcd host of the Cluster file")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("the snapshot's etcd members differ from the Cluster file's: %s", strings.Join(problems, "; "))
	}
	return nil
}

// ---- checksum ----

// ParseSHA256Sum reads the first line of a sha256sum file: the digest and the file name.
func ParseSHA256Sum(b []byte) (sum, name string, err error) {
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 1 || !isSHA256(strings.ToLower(f[0])) {
		return "", "", fmt.Errorf("not a sha256sum line: %q", line)
	}
	if len(f) > 1 {
		name = strings.TrimPrefix(f[1], "*")
	}
	return strings.ToLower(f[0]), name, nil
}

// ErrBadChecksum is returned when a snapshot is not what its .sha256 file says.
var ErrBadChecksum = errors.New("bad checksum")

// VerifySnapshot checks a local snapshot against <file>.sha256 and returns its digest. A
// missing or unreadable .sha256 and a digest that differs are both refused.
func VerifySnapshot(file string) (string, error) {
	want, err := os.ReadFile(file + ".sha256")
	if err != nil {
		return "", fmt.Errorf("%w: %s has no readable checksum file: %v", ErrBadChecksum, file, err)
	}
	sum, _, err := ParseSHA256Sum(want)
	if err != nil {
		return "", fmt.Errorf("%w: %s.sha256: %v", ErrBadChecksum, file, err)
	}
	got, _, err := download.FileSHA256(context.Background(), file)
	if err != nil {
		return "", err
	}
	if got != sum {
		return "", fmt.Errorf("%w: %s has sha256 %s, %s.sha256 says %s (the file is damaged or not the snapshot the checksum was written for)",
			ErrBadChecksum, file, got, filepath.Base(file), sum)
	}
	return got, nil
}

// MetaPath is the metadata file of snapshot file: <name>.json for <name>.db.
func MetaPath(file string) string { return strings.TrimSuffix(file, ".db") + ".json" }

// ---- running etcdctl on a host ----

// etcdAccess runs etcdctl on one host: the installed one with the admin certificate (kubekey),
// or the one in the stacked etcd's container with kubeadm's health-check client (kubeadm).
type etcdAccess struct {
	endpoint  string
	container string // kubeadm: the etcd container's ID
}

func (a etcdAccess) ctl(args ...string) string {
	if a.container == "" {
		return etcdctlCmd([]string{a.endpoint}, args...)
	}
	base := []string{crictl, "exec", a.container, "etcdctl", "--endpoints=" + a.endpoint,
		"--cacert=" + KubeadmCA, "--cert=" + KubeadmHealthCert, "--key=" + KubeadmHealthKey,
		"--dial-timeout=3s", "--command-timeout=10s"}
	return connector.Cmd(append(base, args...)...)
}

// snapshotStatusCmd runs etcdutl snapshot status -w json on a file on the host: the installed
// etcdutl (kubekey); for kubeadm the container's etcdutl, else one on the host, else the
// container's etcdctl (older etcd).
func (a etcdAccess) snapshotStatusCmd(file string) string {
	host := connector.Cmd(etcdutl, "snapshot", "status", "-w", "json", file)
	if a.container == "" {
		return host
	}
	in := connector.Cmd(crictl, "exec", a.container, "etcdutl", "snapshot", "status", "-w", "json", file)
	old := connector.Cmd(crictl, "exec", a.container, "etcdctl", "snapshot", "status", "-w", "json", file)
	return in + " 2>/dev/null || { [ -x " + etcdutl + " ] && " + host + " 2>/dev/null; } || " + old
}

// etcdContainer finds the running stacked etcd container on a control plane ("" if none).
func etcdContainer(ctx context.Context, t *pipeline.Target) (string, error) {
	res, err := t.Exec(ctx, crictl+" ps --state running --name '^etcd$' -q 2>&1", connector.ExecOptions{Sudo: true})
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return "", fmt.Errorf("crictl ps: %s", lastLines(res.Stdout, 3))
	}
	ids := strings.Fields(res.Stdout)
	if len(ids) == 0 {
		return "", nil
	}
	return ids[0], nil
}

// ---- kk etcd backup ----

// Backup is one kk etcd backup: the snapshot is taken on the first host, in file order, whose
// etcd answers healthy, fetched to Dir with its checksum and metadata, and removed from the
// host.
type Backup struct {
	Spec Spec
	// Dir is the local directory the snapshot goes to; Cluster the cluster's name.
	Dir, Cluster string
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	hosts []string
	sel   pipeline.Selector

	mu     sync.Mutex
	health map[string]string // host → "" when healthy, else why not
	result *BackupResult
	err    error
}

// BackupResult is the snapshot kk etcd backup wrote.
type BackupResult struct {
	// Path is the local snapshot file (<Path>.sha256 and MetaPath(Path) beside it).
	Path string
	Meta SnapshotMeta
	// Unhealthy are the hosts passed over, with why.
	Unhealthy []string
}

// NewBackup prepares a backup of c's etcd into dir. External etcd is refused: kk does not run it.
func NewBackup(c *config.Cluster, s Spec, dir string) (*Backup, error) {
	b := &Backup{Spec: s, Dir: dir, Cluster: c.Name, health: map[string]string{}}
	switch s.Type {
	case config.EtcdKubeKey:
		for _, m := range s.Members {
			b.hosts = append(b.hosts, m.Name)
		}
		b.sel = pipeline.Role(string(config.RoleEtcd))
	case config.EtcdKubeadm:
		for _, h := range c.HostsWithRole(config.RoleControlPlane) {
			b.hosts = append(b.hosts, h.Name)
		}
		b.sel = pipeline.Role(string(config.RoleControlPlane))
	case config.EtcdExternal:
		return nil, errors.New("etcd type external: kk does not run this etcd, so it does not back it up; take a snapshot where it runs (etcdctl snapshot save)")
	default:
		return nil, fmt.Errorf("etcd type %q is not one of kubekey, kubeadm, external", s.Type)
	}
	if len(b.hosts) == 0 {
		return nil, fmt.Errorf("etcd type %s: no host to take a snapshot on", s.Type)
	}
	return b, nil
}

func (b *Backup) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// access finds how to run etcdctl on t's host; why is not empty when etcd is not there.
func (b *Backup) access(ctx context.Context, t *pipeline.Target) (a etcdAccess, why string, err error) {
	if b.Spec.Type == config.EtcdKubeadm {
		id, err := etcdContainer(ctx, t)
		if err != nil || id == "" {
			if err == nil {
				err = errors.New("no running etcd container (crictl ps --name etcd)")
			}
			return a, err.Error(), nil
		}
		return etcdAccess{endpoint: KubeadmEndpoint, container: id}, "", nil
	}
	return etcdAccess{endpoint: localEndpoint(b.Spec.Etcd)}, "", nil
}

// localEndpoint is a member's client URL on the loopback address.
func localEndpoint(e config.Etcd) string {
	return "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ClientPort(e)))
}

// chosen is the host the snapshot is taken on: the first healthy one in file order. When
// none is healthy, it is the first host that reported, with failed set.
func (b *Backup) chosen() (host string, failed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	first := ""
	for _, h := range b.hosts {
		why, ok := b.health[h]
		if ok && why == "" {
			return h, false
		}
		if ok && first == "" {
			first = h
		}
	}
	return first, true
}

func (b *Backup) unhealthy() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, h := range b.hosts {
		if why, ok := b.health[h]; ok && why != "" {
			out = append(out, h+": "+why)
		}
	}
	return out
}

// Tasks are the steps of the backup: etcd/backup-health on every host (read-only), then
// etcd/backup-save, which takes, checks and fetches the snapshot on the chosen host.
func (b *Backup) Tasks() []pipeline.Task {
	return []pipeline.Task{{
		Name: TaskBackupHealth, Desc: "which members answer etcdctl endpoint health",
		Hosts: b.sel, ReadOnly: true,
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			a, why, err := b.access(ctx, t)
			if err != nil {
				return false, err
			}
			if why == "" {
				res, err := t.Exec(ctx, a.ctl("endpoint", "health"), connector.ExecOptions{Sudo: true})
				if err != nil {
					return false, err
				}
				if res.ExitCode != 0 {
					why = "unhealthy: " + lastLines(res.Stderr+"\n"+res.Stdout, 2)
				}
			}
			if why != "" {
				t.Log.Info("etcd is not healthy here: the snapshot is taken on another member", "why", why)
			}
			b.mu.Lock()
			b.health[t.Name] = why
			b.mu.Unlock()
			return false, nil
		},
	}, {
		Name: TaskBackupSave, Desc: "etcdctl snapshot save on the first healthy member, checked, fetched, removed from the host",
		Hosts: b.sel, After: []string{TaskBackupHealth}, Barrier: true,
		Timeout: time.Hour,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			h, _ := b.chosen()
			return h != t.Name, nil // nothing to do on the other hosts
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if _, failed := b.chosen(); failed {
				err := fmt.Errorf("no etcd member is healthy: %s", strings.Join(b.unhealthy(), "; "))
				b.setErr(err)
				return false, err
			}
			res, err := b.save(ctx, t)
			if err != nil {
				b.setErr(err)
				return false, err
			}
			res.Unhealthy = b.unhealthy()
			b.mu.Lock()
			b.result = res
			b.mu.Unlock()
			return false, nil
		},
	}}
}

func (b *Backup) setErr(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err = err
}

// Result is the snapshot written, or why there is none.
func (b *Backup) Result() (*BackupResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.result != nil {
		return b.result, nil
	}
	if b.err != nil {
		return nil, b.err
	}
	if len(b.health) == 0 {
		return nil, errors.New("no snapshot was taken: no host was reached")
	}
	return nil, errors.New("no snapshot was taken")
}

// remoteDir is where the snapshot is written on the host: the backup dir (kubekey), or the
// stacked etcd's data dir, which its container mounts at the same path (kubeadm).
func (b *Backup) remoteDir() string {
	if b.Spec.Type == config.EtcdKubeadm {
		return path.Clean(dataDir(b.Spec.Etcd))
	}
	return path.Clean(b.Spec.backupDir())
}

// save takes the snapshot on t's host and fetches it.
func (b *Backup) save(ctx context.Context, t *pipeline.Target) (*BackupResult, error) {
	a, why, err := b.access(ctx, t)
	if err != nil {
		return nil, err
	}
	if why != "" {
		return nil, errors.New(why)
	}
	now := b.now().UTC()
	stamp := now.Format("20060102T150405Z")
	tmp := path.Join(b.remoteDir(), "kk-backup-"+stamp+".db")
	qtmp := connector.Quote(tmp)
	defer func() {
		// removed whatever happened, with a context of its own (ctx may be done)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, err := t.Sudo(cctx, "rm -f -- "+qtmp+" "+connector.Quote(tmp+".part")); err != nil {
			t.Log.Warn("could not remove the snapshot from the host", "path", tmp, "err", err)
		}
	}()
	prep := "rm -f -- " + qtmp + " " + connector.Quote(tmp+".part")
	if b.Spec.Type != config.EtcdKubeadm {
		prep = "mkdir -p -m 0700 -- " + connector.Quote(b.remoteDir()) + " && " + prep
	}
	if _, err := t.Sudo(ctx, prep); err != nil {
		return nil, err
	}
	if _, err := t.Sudo(ctx, a.ctl(snapshotTimeout, "snapshot", "save", tmp)); err != nil {
		return nil, fmt.Errorf("etcdctl snapshot save: %w", err)
	}
	status, err := t.Sudo(ctx, a.snapshotStatusCmd(tmp))
	if err != nil {
		return nil, fmt.Errorf("the snapshot fails etcdutl snapshot status: %w", err)
	}
	sumOut, err := t.Sudo(ctx, "sha256sum -- "+qtmp)
	if err != nil {
		return nil, err
	}
	remoteSum, _, err := ParseSHA256Sum([]byte(sumOut))
	if err != nil {
		return nil, fmt.Errorf("sha256sum on the host: %w", err)
	}
	members, err := t.Sudo(ctx, a.ctl("member", "list", "-w", "json"))
	if err != nil {
		return nil, err
	}
	es, err := t.Sudo(ctx, a.ctl("endpoint", "status", "-w", "json"))
	if err != nil {
		return nil, err
	}
	meta, err := buildMeta(members, es, status)
	if err != nil {
		return nil, err
	}
	if b.Spec.Type == config.EtcdKubeKey {
		if _, err := t.Sudo(ctx, recordIdentityCmd(meta.ClusterID)); err != nil {
			return nil, err
		}
	}
	data, err := t.Fetch(ctx, tmp)
	if err != nil {
		return nil, fmt.Errorf("fetch the snapshot: %w", err)
	}
	h := sha256.Sum256(data)
	if got := hex.EncodeToString(h[:]); got != remoteSum {
		return nil, fmt.Errorf("%w: the fetched snapshot has sha256 %s, on %s it had %s", ErrBadChecksum, got, t.Name, remoteSum)
	}
	name := "etcd-snapshot-" + b.Cluster + "-" + stamp
	if b.Cluster == "" {
		name = "etcd-snapshot-" + stamp
	}
	meta.Cluster, meta.EtcdType = b.Cluster, b.Spec.Type
	meta.File, meta.SHA256, meta.Size = name+".db", remoteSum, int64(len(data))
	meta.Time, meta.Member = now, t.Name
	p, err := WriteSnapshot(b.Dir, data, meta)
	if err != nil {
		return nil, err
	}
	return &BackupResult{Path: p, Meta: meta}, nil
}

// recordIdentityCmd adds cluster ID id to IdentityFile unless it is there.
func recordIdentityCmd(id string) string {
	q := connector.Quote(id)
	return "grep -qsxF -- " + q + " " + IdentityFile + " || echo " + q + " >> " + IdentityFile
}

// WriteSnapshot writes data as dir/<meta.File> (mode 0600: it holds every Secret of the
// cluster) with <meta.File>.sha256 and its metadata file beside it, and returns its path. The
// snapshot is written under a temporary name and renamed: a file of that name is whole.
func WriteSnapshot(dir string, data []byte, meta SnapshotMeta) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	p := filepath.Join(dir, meta.File)
	f, err := os.CreateTemp(dir, "."+meta.File+".tmp-*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return "", err
	}
	j, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(MetaPath(p), append(j, '\n'), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(p+".sha256", []byte(meta.SHA256+"  "+meta.File+"\n"), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, p); err != nil {
		return "", err
	}
	return p, nil
}

// ---- kk etcd backup --list ----

// ListedSnapshot is one snapshot the periodic backup keeps on a member.
type ListedSnapshot struct {
	Name string
	Size int64
	Time time.Time
}

// MemberSnapshots is what one member holds.
type MemberSnapshots struct {
	Host string
	// Read is false when the host was not read (its error is in the run's report).
	Read bool
	// Timer is backup-etcd.timer's state (active, inactive, ...).
	Timer     string
	Snapshots []ListedSnapshot
}

// BackupList lists, read-only, the snapshots of the periodic backup on every member.
type BackupList struct {
	Spec Spec
	mu   sync.Mutex
	got  map[string]MemberSnapshots
}

// NewBackupList prepares the listing (type kubekey: the others have no periodic backup).
func NewBackupList(s Spec) (*BackupList, error) {
	if s.Type != config.EtcdKubeKey {
		return nil, fmt.Errorf("etcd type %s: kk installs the periodic etcd backup only for etcd type kubekey; nothing to list", s.Type)
	}
	return &BackupList{Spec: s, got: map[string]MemberSnapshots{}}, nil
}

// Dir is the members' backup directory.
func (l *BackupList) Dir() string { return l.Spec.backupDir() }

// Keep is how many snapshots the timer keeps (etcd.keepBackupNumber, default 5).
func (l *BackupList) Keep() int {
	if l.Spec.Etcd.KeepBackupNumber <= 0 {
		return 5
	}
	return l.Spec.Etcd.KeepBackupNumber
}

// Task reads the backup directory of every member.
func (l *BackupList) Task() pipeline.Task {
	return pipeline.Task{
		Name: TaskBackupList, Desc: "the periodic backup's snapshots in " + l.Dir(),
		Hosts: pipeline.Role(string(config.RoleEtcd)), ReadOnly: true,
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			out, err := t.Sudo(ctx, listCmd(l.Dir()))
			if err != nil {
				return false, err
			}
			ms := parseListing(out)
			ms.Host, ms.Read = t.Name, true
			l.mu.Lock()
			l.got[t.Name] = ms
			l.mu.Unlock()
			return false, nil
		},
	}
}

// listCmd prints "timer STATE" then "NAME SIZE MTIME" for every snapshot in dir.
func listCmd(dir string) string {
	return "echo timer $(systemctl is-active " + BackupUnit + ".timer 2>/dev/null || true); " +
		"cd -- " + connector.Quote(dir) + " 2>/dev/null || exit 0; " +
		"for f in etcd-snapshot-*.db; do [ -f \"$f\" ] && stat -c '%n %s %Y' -- \"$f\"; done; exit 0"
}

func parseListing(out string) MemberSnapshots {
	var ms MemberSnapshots
	for l := range strings.Lines(out) {
		f := strings.Fields(l)
		if len(f) >= 1 && f[0] == "timer" {
			if len(f) > 1 {
				ms.Timer = f[1]
			} else {
				ms.Timer = "unknown"
			}
			continue
		}
		if len(f) != 3 {
			continue
		}
		size, err1 := strconv.ParseInt(f[1], 10, 64)
		mtime, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		ms.Snapshots = append(ms.Snapshots, ListedSnapshot{Name: f[0], Size: size, Time: time.Unix(mtime, 0)})
	}
	slices.SortFunc(ms.Snapshots, func(a, b ListedSnapshot) int { return strings.Compare(b.Name, a.Name) }) // newest first
	return ms
}

// Members returns what each member holds, in file order.
func (l *BackupList) Members() []MemberSnapshots {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []MemberSnapshots
	for _, m := range l.Spec.Members {
		ms, ok := l.got[m.Name]
		if !ok {
			ms = MemberSnapshots{Host: m.Name}
		}
		out = append(out, ms)
	}
	return out
}

// ---- running the steps ----

// Runner runs tasks as one named run (the cmd's session.Run).
type Runner func(ctx context.Context, name string, tasks []pipeline.Task) (*pipeline.Report, error)

// RunBackup runs the backup and returns the snapshot written. A failure on a member the
// snapshot was not taken from does not fail the backup (it is in Unhealthy and the report).
func RunBackup(ctx context.Context, run Runner, b *Backup) (*BackupResult, *pipeline.Report, error) {
	rep, runErr := run(ctx, "etcd backup", b.Tasks())
	res, err := b.Result()
	if err != nil {
		if runErr != nil {
			return nil, rep, runErr
		}
		return nil, rep, err
	}
	if rep != nil {
		for _, f := range rep.Failures() {
			res.Unhealthy = append(res.Unhealthy, f.Err.Error())
		}
	}
	return res, rep, nil
}
