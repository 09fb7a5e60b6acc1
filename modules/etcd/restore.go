package etcd

// kk etcd restore: every member of a kk-run etcd (type kubekey) restored from one snapshot
// taken by kk etcd backup. Everything that can refuse the restore is checked before anything
// stops: the snapshot's checksum and metadata here, then its cluster ID against the live
// cluster's, and on every member the uploaded copy's checksum and etcdutl snapshot status.
// Then kube-apiserver stops on every control plane, etcd on every member, each member's data
// dir is moved aside (never deleted) and restored from the snapshot, the members start
// together, and once the cluster is healthy the API servers come back. A run that was
// interrupted converges when run again.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

// Task names of kk etcd restore.
const (
	TaskRestoreIdentity       = "etcd/restore-identity"
	TaskRestoreUpload         = "etcd/restore-upload"
	TaskRestoreStopAPIServer  = "etcd/restore-stop-apiserver"
	TaskRestoreStopEtcd       = "etcd/restore-stop-etcd"
	TaskRestoreData           = "etcd/restore-data"
	TaskRestoreStart          = "etcd/restore-start"
	TaskRestoreHealth         = "etcd/restore-health"
	TaskRestoreStartAPIServer = "etcd/restore-start-apiserver"
)

// Paths of kk etcd restore on the hosts.
const (
	// RestoreDir holds the uploaded snapshot on every member.
	RestoreDir      = "/var/lib/kk-restore"
	RestoreSnapshot = RestoreDir + "/snapshot.db"
	// ManifestsDir is kubelet's static pod directory; ParkedDir is where kk etcd restore keeps
	// kube-apiserver's manifest while etcd is restored (kubelet stops the pod).
	ManifestsDir      = "/etc/kubernetes/manifests"
	ParkedDir         = "/etc/kubernetes/kk-restore"
	apiServerManifest = "kube-apiserver.yaml"
)

// BumpRevision is added to the snapshot's revision on restore, and the restored revision is
// marked compacted (etcdutl --bump-revision --mark-compacted): Kubernetes' watchers, which
// saw revisions above the snapshot's, then relist instead of waiting for revisions that
// would come back with other content. It is the amount etcd's documentation gives.
const BumpRevision = 1_000_000_000

// Restore is one kk etcd restore.
type Restore struct {
	Spec Spec
	// File is the local snapshot, SHA256 its digest, Meta its metadata.
	File   string
	SHA256 string
	Meta   SnapshotMeta
	// APIServerPort is kube-apiserver's port on the control planes (its /readyz is polled on
	// 127.0.0.1).
	APIServerPort int
	// Stamp names this restore's moved-aside data dirs: <data dir>.kk-restore-<Stamp>.
	Stamp string
	// StopTimeout bounds the wait for kube-apiserver's container to go, ReadyTimeout the wait
	// for its /readyz after the restore.
	StopTimeout, ReadyTimeout time.Duration

	mu       sync.Mutex
	live     map[string]string   // member → cluster ID its etcd reports
	recorded map[string][]string // member → IDs in IdentityFile
	failed   string              // the first step that failed, "task on host"
}

// NewRestore checks, on this machine, the snapshot file: that it exists, matches file.sha256,
// has metadata of a kk etcd snapshot of this digest, and was taken of the Cluster file's etcd
// members. Etcd types other than kubekey are refused, saying what to do instead.
func NewRestore(c *config.Cluster, s Spec, file string, now time.Time) (*Restore, error) {
	switch s.Type {
	case config.EtcdKubeKey:
	case config.EtcdKubeadm:
		return nil, errors.New("etcd type kubeadm: kk etcd restore restores only the etcd kk runs (type kubekey). " +
			"For a stacked etcd follow kubeadm's procedure on every control plane: move kube-apiserver.yaml and etcd.yaml out of " +
			ManifestsDir + ", move the etcd data dir aside, etcdutl snapshot restore the snapshot into it with that member's " +
			"--name, --initial-cluster and --initial-advertise-peer-urls, then move the manifests back")
	case config.EtcdExternal:
		return nil, errors.New("etcd type external: kk does not run this etcd; restore it where it runs " +
			"(stop kube-apiserver, then etcdutl snapshot restore on every member)")
	default:
		return nil, fmt.Errorf("etcd type %q is not one of kubekey, kubeadm, external", s.Type)
	}
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("snapshot %s is not a regular file", file)
	}
	sum, err := VerifySnapshot(file)
	if err != nil {
		return nil, err
	}
	mb, err := os.ReadFile(MetaPath(file))
	if err != nil {
		return nil, fmt.Errorf("snapshot metadata (written by kk etcd backup beside the snapshot): %w", err)
	}
	meta, err := ParseSnapshotMeta(mb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", MetaPath(file), err)
	}
	if meta.SHA256 != sum {
		return nil, fmt.Errorf("%s is the metadata of another snapshot: it says sha256 %s, %s has %s", MetaPath(file), meta.SHA256, file, sum)
	}
	if meta.EtcdType != "" && meta.EtcdType != config.EtcdKubeKey {
		return nil, fmt.Errorf("%s is a snapshot of an etcd of type %s: kk etcd restore restores etcd type kubekey", file, meta.EtcdType)
	}
	if err := s.CheckMembers(meta); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	p := c.ControlPlaneEndpoint.Port
	if p == 0 {
		p = 6443
	}
	return &Restore{
		Spec: s, File: file, SHA256: sum, Meta: meta, APIServerPort: p,
		Stamp:       now.UTC().Format("20060102T150405Z"),
		StopTimeout: 3 * time.Minute, ReadyTimeout: 5 * time.Minute,
		live: map[string]string{}, recorded: map[string][]string{},
	}, nil
}

// dirs are the member's data dir and WAL dir ("" when in the data dir), etcd.extraArgs
// included, and the initial cluster token.
func (s Spec) restoreDirs() (data, wal, token string) {
	data, token = dataDir(s.Etcd), ClusterToken
	extra, _ := ExtraArgs(s.Etcd) // checked by MaintenanceSpec
	for _, a := range extra {
		switch a.Name {
		case "data-dir":
			data = a.Value
		case "wal-dir":
			wal = a.Value
		case "initial-cluster-token":
			token = a.Value
		}
	}
	data = path.Clean(data)
	if wal != "" {
		wal = path.Clean(wal)
	}
	return data, wal, token
}

// RestoreCommand is the etcdutl command that restores the uploaded snapshot into member m's
// data dir, with the member's name and peer URL, every member in the initial cluster and the
// cluster token.
func (s Spec) RestoreCommand(m Member) string {
	data, wal, token := s.restoreDirs()
	args := []string{etcdutl, "snapshot", "restore", RestoreSnapshot,
		"--name=" + m.Name,
		"--initial-cluster=" + s.InitialCluster(),
		"--initial-cluster-token=" + token,
		"--initial-advertise-peer-urls=" + m.PeerURL(peerPort(s.Etcd)),
		"--data-dir=" + data,
	}
	if wal != "" {
		args = append(args, "--wal-dir="+wal)
	}
	args = append(args, "--bump-revision="+strconv.Itoa(BumpRevision), "--mark-compacted")
	return connector.Cmd(args...)
}

// AsideDir is where a member's data dir is moved before the restore.
func (r *Restore) AsideDir() string {
	data, _, _ := r.Spec.restoreDirs()
	return data + ".kk-restore-" + r.Stamp
}

// ---- identity ----

// checkIdentity accepts a snapshot of cluster snapID when a member's etcd reports that ID
// (live) or a member's IdentityFile lists it (recorded: after a restore changed the ID, or
// when no member answers).
func checkIdentity(snapID string, live map[string]string, recorded map[string][]string) error {
	var liveIDs []string
	for _, id := range live {
		if id == snapID {
			return nil
		}
		if !slices.Contains(liveIDs, id) {
			liveIDs = append(liveIDs, id)
		}
	}
	var rec []string
	for _, ids := range recorded {
		for _, id := range ids {
			if id == snapID {
				return nil
			}
			if !slices.Contains(rec, id) {
				rec = append(rec, id)
			}
		}
	}
	if len(liveIDs) == 0 && len(rec) == 0 {
		return fmt.Errorf("no etcd member answers and none records its cluster ID in %s: cannot tell whether the snapshot (etcd cluster %s) is of this cluster; start etcd (systemctl start etcd on the members) and run the restore again",
			IdentityFile, snapID)
	}
	if len(liveIDs) == 0 {
		return fmt.Errorf("foreign snapshot: it is of etcd cluster %s; no member answers, and their %s name cluster %s", snapID, IdentityFile, strings.Join(rec, ", "))
	}
	return fmt.Errorf("foreign snapshot: it is of etcd cluster %s, the live cluster is %s", snapID, strings.Join(liveIDs, ", "))
}

// Identity says whether the snapshot is of the live cluster (after the verification run).
func (r *Restore) Identity() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return checkIdentity(r.Meta.ClusterID, r.live, r.recorded)
}

// ---- verification: nothing stops ----

// VerifyTasks read each member's cluster ID (etcd/restore-identity, read-only), then upload
// the snapshot to every member and check it there (etcd/restore-upload): its sha256 and
// etcdutl snapshot status. Nothing is stopped.
func (r *Restore) VerifyTasks() []pipeline.Task {
	sel := pipeline.Role(string(config.RoleEtcd))
	local := []string{localEndpoint(r.Spec.Etcd)}
	return []pipeline.Task{{
		Name: TaskRestoreIdentity, Desc: "the cluster ID each member's etcd reports, and the IDs it records",
		Hosts: sel, ReadOnly: true,
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			res, err := t.Exec(ctx, etcdctlCmd(local, "endpoint", "status", "-w", "json"), connector.ExecOptions{Sudo: true})
			if err != nil {
				return false, err
			}
			id := ""
			if res.ExitCode == 0 {
				if id, _, err = parseClusterID(res.Stdout); err != nil {
					t.Log.Warn("cannot read the member's cluster ID", "err", err)
				}
			} else {
				t.Log.Info("etcd does not answer here", "why", lastLines(res.Stderr, 2))
			}
			rec, err := t.Sudo(ctx, "cat "+IdentityFile+" 2>/dev/null || true")
			if err != nil {
				return false, err
			}
			r.mu.Lock()
			defer r.mu.Unlock()
			if id != "" {
				r.live[t.Name] = id
			}
			r.recorded[t.Name] = strings.Fields(rec)
			return false, nil
		},
	}, {
		Name: TaskRestoreUpload, Desc: "the snapshot uploaded to " + RestoreSnapshot + " and checked there (sha256, etcdutl snapshot status)",
		Hosts: sel, After: []string{TaskRestoreIdentity}, Barrier: true,
		Timeout: time.Hour,
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if err := r.Identity(); err != nil {
				return false, err
			}
			if _, err := t.Sudo(ctx, "mkdir -p -m 0700 "+RestoreDir); err != nil {
				return false, err
			}
			changed, err := t.Upload(ctx, connector.File{Path: RestoreSnapshot, LocalPath: r.File, Mode: 0o600})
			if err != nil {
				return changed, err
			}
			out, err := t.Sudo(ctx, "sha256sum -- "+RestoreSnapshot)
			if err != nil {
				return changed, err
			}
			sum, _, err := ParseSHA256Sum([]byte(out))
			if err != nil {
				return changed, err
			}
			if sum != r.SHA256 {
				return changed, fmt.Errorf("%w: the uploaded %s has sha256 %s, the snapshot %s", ErrBadChecksum, RestoreSnapshot, sum, r.SHA256)
			}
			out, err = t.Sudo(ctx, connector.Cmd(etcdutl, "snapshot", "status", "-w", "json", RestoreSnapshot))
			if err != nil {
				return changed, fmt.Errorf("the uploaded snapshot fails etcdutl snapshot status: %w", err)
			}
			st, err := parseSnapshotStatus(out)
			if err != nil {
				return changed, err
			}
			if st.Revision != r.Meta.Revision || st.Hash != r.Meta.Hash {
				return changed, fmt.Errorf("etcdutl snapshot status says revision %d hash %d, the metadata revision %d hash %d",
					st.Revision, st.Hash, r.Meta.Revision, r.Meta.Hash)
			}
			// a re-run after the restore changed the cluster's ID still knows the snapshot
			if _, err := t.Sudo(ctx, recordIdentityCmd(r.Meta.ClusterID)); err != nil {
				return changed, err
			}
			return changed, nil
		},
	}}
}

// ---- the restore ----

func (r *Restore) fail(task, host string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failed == "" {
		r.failed = task + " failed on " + host
	}
}

func (r *Restore) failure() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// guarded makes a step refuse to run once any step failed on any host: the restore goes no
// further than the first failure (whatever the run's failure policy), so that a re-run starts
// from a known place.
func (r *Restore) guarded(task pipeline.Task) pipeline.Task {
	check, run := task.Check, task.Run
	stop := func() error {
		if why := r.failure(); why != "" {
			return fmt.Errorf("not run: %s", why)
		}
		return nil
	}
	task.Check = func(ctx context.Context, t *pipeline.Target) (bool, error) {
		if err := stop(); err != nil {
			return false, err
		}
		if check == nil {
			return false, nil
		}
		done, err := check(ctx, t)
		if err != nil {
			r.fail(task.Name, t.Name)
		}
		return done, err
	}
	task.Run = func(ctx context.Context, t *pipeline.Target) (bool, error) {
		if err := stop(); err != nil {
			return false, err
		}
		changed, err := run(ctx, t)
		if err != nil {
			r.fail(task.Name, t.Name)
		}
		return changed, err
	}
	task.Barrier = true
	return task
}

// apiServerRunning is a shell test that a kube-apiserver container runs.
const apiServerRunning = `[ -n "$(` + crictl + ` ps -q --name '^kube-apiserver$' 2>/dev/null)" ]`

func (r *Restore) readyCmd() string {
	url := "https://127.0.0.1:" + strconv.Itoa(r.APIServerPort) + "/readyz"
	return "if command -v curl >/dev/null 2>&1; then curl -ksf --max-time 5 -o /dev/null " + url +
		"; else /usr/local/bin/kubectl --kubeconfig=/etc/kubernetes/admin.conf --request-timeout=5s get --raw /readyz >/dev/null 2>&1; fi"
}

// pollTest runs the shell test on t's host every 2 s until it passes, for at most timeout.
func pollTest(ctx context.Context, t *pipeline.Target, test string, timeout time.Duration) (bool, error) {
	return poll(ctx, timeout, 2*time.Second, func() (bool, error) { return t.Test(ctx, test) })
}

// etcdStopped is a shell test that etcd.service is not running nor starting.
const etcdStopped = `case "$(systemctl show -p ActiveState --value etcd 2>/dev/null)" in inactive|failed|'') true;; *) false;; esac`

// Tasks are the steps of the restore, each a barrier (every host finishes a step before the
// next starts) that runs only when no step failed anywhere.
func (r *Restore) Tasks() []pipeline.Task {
	cps := pipeline.Role(string(config.RoleControlPlane))
	members := pipeline.Role(string(config.RoleEtcd))
	manifest := ManifestsDir + "/" + apiServerManifest
	parked := ParkedDir + "/" + apiServerManifest
	local := []string{localEndpoint(r.Spec.Etcd)}
	data, wal, _ := r.Spec.restoreDirs()

	tasks := []pipeline.Task{{
		Name: TaskRestoreStopAPIServer, Desc: "kube-apiserver stopped: its manifest moved to " + ParkedDir + " (nothing to do without one)",
		Hosts: cps,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			return t.Test(ctx, "[ ! -e "+manifest+" ] && { [ ! -e "+parked+" ] || ! "+apiServerRunning+"; }")
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			out, err := t.Sudo(ctx, "if [ -e "+manifest+" ]; then mkdir -p -m 0700 "+ParkedDir+" && mv -f "+manifest+" "+parked+" && echo moved; fi; "+
				"if [ -e "+parked+" ]; then echo parked; fi")
			if err != nil {
				return false, err
			}
			if !strings.Contains(out, "parked") {
				return false, nil // no kube-apiserver on this host
			}
			gone, err := pollTest(ctx, t, "! "+apiServerRunning, r.StopTimeout)
			if err != nil {
				return true, err
			}
			if !gone {
				return true, fmt.Errorf("kube-apiserver still runs %s after its manifest was moved to %s (crictl ps --name kube-apiserver)", r.StopTimeout, parked)
			}
			return strings.Contains(out, "moved"), nil
		},
	}, {
		Name: TaskRestoreStopEtcd, Desc: "etcd.service stopped on every member",
		Hosts: members, After: []string{TaskRestoreStopAPIServer},
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			return t.Test(ctx, etcdStopped)
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			_, err := t.Sudo(ctx, "systemctl stop etcd")
			return true, err
		},
	}, {
		Name: TaskRestoreData, Desc: "the data dir moved aside to " + r.AsideDir() + " and restored from the snapshot (etcdutl snapshot restore)",
		Hosts: members, After: []string{TaskRestoreStopEtcd},
		Timeout: time.Hour,
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			m, ok := r.Spec.member(t.Name)
			if !ok {
				return false, fmt.Errorf("%s is not an etcd member of the Cluster file", t.Name)
			}
			script := r.restoreScript(m, data, wal)
			_, err := t.Sudo(ctx, script)
			return true, err
		},
	}, {
		Name: TaskRestoreStart, Desc: "every member started at once (they need a quorum)",
		Hosts: members, After: []string{TaskRestoreData},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			// the restore changed no input of the running etcd: the stamp stays what it is,
			// written again so that it is right for what starts now
			_, err := t.Sudo(ctx, r.Spec.inputsSum(t.Name)+" > "+AppliedFile+
				" && { systemctl reset-failed etcd 2>/dev/null; systemctl start --no-block etcd; }")
			return true, err
		},
	}, {
		Name: TaskRestoreHealth, Desc: "every member healthy (etcdctl endpoint health --cluster)",
		Hosts: members, After: []string{TaskRestoreStart},
		Timeout: HealthTimeout + time.Minute,
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			deadline := time.Now().Add(HealthTimeout)
			if err := waitHealthy(ctx, t, local, HealthTimeout); err != nil {
				return false, fmt.Errorf("etcd on %s is not healthy after the restore: %w", t.Name, err)
			}
			bad, err := r.Spec.waitClusterHealthy(ctx, t, time.Until(deadline), 2*time.Second)
			if err != nil {
				return false, err
			}
			if len(bad) > 0 {
				return false, fmt.Errorf("etcd is not healthy after the restore: %s", strings.Join(bad, "; "))
			}
			out, err := t.Sudo(ctx, etcdctlCmd(local, "endpoint", "status", "-w", "json"))
			if err != nil {
				return false, err
			}
			id, _, err := parseClusterID(out)
			if err != nil {
				return false, err
			}
			_, err = t.Sudo(ctx, recordIdentityCmd(id))
			return false, err
		},
	}, {
		Name: TaskRestoreStartAPIServer, Desc: "kube-apiserver's manifest moved back, /readyz answers",
		Hosts: cps, After: []string{TaskRestoreHealth},
		Timeout: r.ReadyTimeout + time.Minute,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			return t.Test(ctx, "[ ! -e "+parked+" ] && { [ ! -e "+manifest+" ] || { "+r.readyCmd()+"; }; }")
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			// a manifest back in place (by hand) wins over the parked one, which is kept
			out, err := t.Sudo(ctx, "if [ -e "+parked+" ]; then if [ -e "+manifest+" ]; then mv -f "+parked+" "+parked+".replaced-"+r.Stamp+
				"; else mv "+parked+" "+manifest+" && echo moved; fi; fi; if [ -e "+manifest+" ]; then echo present; fi")
			if err != nil {
				return false, err
			}
			if !strings.Contains(out, "present") {
				return false, nil
			}
			ready, err := pollTest(ctx, t, r.readyCmd(), r.ReadyTimeout)
			if err != nil {
				return true, err
			}
			if !ready {
				return true, fmt.Errorf("kube-apiserver is not ready %s after its manifest was moved back (https://127.0.0.1:%d/readyz)", r.ReadyTimeout, r.APIServerPort)
			}
			return strings.Contains(out, "moved"), nil
		},
	}}
	for i := range tasks {
		tasks[i] = r.guarded(tasks[i])
	}
	return tasks
}

// restoreScript moves member m's data dir (and WAL dir) aside and restores the snapshot into
// it, with the owner and mode the data dir had. It refuses to run under a running etcd.
func (r *Restore) restoreScript(m Member, data, wal string) string {
	q := connector.Quote
	var b strings.Builder
	b.WriteString("set -e\n")
	b.WriteString(etcdStopped + ` || { echo "etcd.service is not stopped: not restoring under it" >&2; exit 1; }` + "\n")
	b.WriteString("own=0:0; mode=700\n")
	for _, d := range []string{data, wal} {
		if d == "" {
			continue
		}
		aside := d + ".kk-restore-" + r.Stamp
		fmt.Fprintf(&b, "if [ -e %[1]s ]; then\n", q(d))
		if d == data {
			fmt.Fprintf(&b, "  own=$(stat -c %%u:%%g %[1]s); mode=$(stat -c %%a %[1]s)\n", q(d))
		}
		fmt.Fprintf(&b, "  if [ -e %[1]s ]; then echo %[1]s' exists already' >&2; exit 1; fi\n", q(aside))
		fmt.Fprintf(&b, "  mv -- %s %s\n", q(d), q(aside))
		b.WriteString("fi\n")
		fmt.Fprintf(&b, "mkdir -p -- %s\n", q(path.Dir(d)))
	}
	b.WriteString(r.Spec.RestoreCommand(m) + "\n")
	fmt.Fprintf(&b, "chown -R \"$own\" %[1]s && chmod \"$mode\" %[1]s\n", q(data))
	if wal != "" {
		fmt.Fprintf(&b, "chown -R \"$own\" %[1]s && chmod \"$mode\" %[1]s\n", q(wal))
	}
	return b.String()
}

// RecoveryHint says where a failed restore left the cluster and how to go on.
func (r *Restore) RecoveryHint() string {
	return fmt.Sprintf("Running kk etcd restore again with the same snapshot finishes the restore (every step converges). "+
		"To give up instead: on the control planes move %s/%s back to %s/ (kubelet restarts kube-apiserver); on the members "+
		"the data dir kk moved aside is %s (restore it with mv if the restored one is not wanted) and etcd starts with systemctl start etcd.",
		ParkedDir, apiServerManifest, ManifestsDir, r.AsideDir())
}

// RunRestore verifies (nothing stops), asks confirm, then restores. confirm is not asked
// when the verification failed.
func RunRestore(ctx context.Context, run Runner, r *Restore, confirm func() error) (*pipeline.Report, error) {
	rep, err := run(ctx, "etcd restore: verify", r.VerifyTasks())
	if err != nil {
		return rep, fmt.Errorf("nothing was stopped: %w", err)
	}
	if err := r.Identity(); err != nil {
		return rep, fmt.Errorf("nothing was stopped: %w", err)
	}
	if err := confirm(); err != nil {
		return rep, err
	}
	rep, err = run(ctx, "etcd restore", r.Tasks())
	if err != nil {
		return rep, fmt.Errorf("%w\n%s", err, r.RecoveryHint())
	}
	return rep, nil
}
