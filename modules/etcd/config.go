package etcd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/templates"
)

// Initial cluster states.
const (
	StateNew      = "new"
	StateExisting = "existing"
)

// EnvData is what templates/files/etcd/etcd.env is rendered with.
type EnvData struct {
	Name, DataDir                      string
	ClientURL, PeerURL                 string
	ListenClientURLs                   []string
	InitialCluster, State, Token       string
	HeartbeatInterval, ElectionTimeout int
	SnapshotCount                      int
	AutoCompactionRetention            int
	QuotaBackendBytes, MaxRequestBytes int64
	MaxSnapshots, MaxWals              int
	Metrics, LogLevel                  string
	CAFile, CertFile, KeyFile          string
	PeerCertFile, PeerKeyFile          string
}

// InitialCluster is ETCD_INITIAL_CLUSTER: name=peerURL of every member, in config order.
func (s Spec) InitialCluster() string {
	var parts []string
	for _, m := range s.Members {
		parts = append(parts, m.Name+"="+m.PeerURL(peerPort(s.Etcd)))
	}
	return strings.Join(parts, ",")
}

// RenderEnv renders member name's /etc/etcd.env with initial cluster state state.
func (s Spec) RenderEnv(name, state string) ([]byte, error) {
	m, ok := s.member(name)
	if !ok {
		return nil, fmt.Errorf("%s is not an etcd member of the config", name)
	}
	e := s.Etcd
	or := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	d := EnvData{
		Name: m.Name, DataDir: dataDir(e),
		ClientURL: m.ClientURL(port(e)), PeerURL: m.PeerURL(peerPort(e)),
		ListenClientURLs: []string{m.ClientURL(port(e)), "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port(e)))},
		InitialCluster:   s.InitialCluster(), State: state, Token: ClusterToken,
		HeartbeatInterval: e.HeartbeatInterval, ElectionTimeout: e.ElectionTimeout,
		SnapshotCount: e.SnapshotCount, AutoCompactionRetention: e.AutoCompactionRetention,
		QuotaBackendBytes: e.QuotaBackendBytes, MaxRequestBytes: e.MaxRequestBytes,
		MaxSnapshots: e.MaxSnapshots, MaxWals: e.MaxWals,
		Metrics: or(e.Metrics, "basic"), LogLevel: or(e.LogLevel, "info"),
		CAFile: caFile, CertFile: serverCert(name), KeyFile: serverKey(name),
		PeerCertFile: peerCert(name), PeerKeyFile: peerKey(name),
	}
	if m.IP == "127.0.0.1" {
		d.ListenClientURLs = d.ListenClientURLs[:1]
	}
	return templates.Render("etcd/etcd.env", d)
}

// RenderUnit renders etcd.service for member name; inContainer leaves the open-files limit
// alone (a container cannot raise it).
func (s Spec) RenderUnit(name string, inContainer bool) ([]byte, error) {
	nofile := 65536
	if inContainer {
		nofile = 0
	}
	return templates.Render("etcd/etcd.service", map[string]any{
		"Name": name, "EnvFile": EnvFile, "Binary": BinDir + "/etcd", "NoFile": nofile,
	})
}

// memberList is the part of `etcdctl member list -w json` kk reads.
type memberList struct {
	Members []struct {
		ID         uint64   `json:"ID"`
		Name       string   `json:"name"`
		PeerURLs   []string `json:"peerURLs"`
		ClientURLs []string `json:"clientURLs"`
	} `json:"members"`
}

// clusterState decides the member's ETCD_INITIAL_CLUSTER_STATE. A member with data keeps the
// state its file already has (etcd ignores it then, and changing it would restart it). A member
// without data joins with "existing" when the other members already form a cluster (and must
// be added to it first: needAdd), else it bootstraps a new cluster with the others.
func (s Spec) clusterState(ctx context.Context, t *pipeline.Target, m Member) (state string, needAdd bool, err error) {
	res, err := t.Exec(ctx, fmt.Sprintf(`if [ -d %s ]; then echo data; sed -n 's/^ETCD_INITIAL_CLUSTER_STATE=//p' %s 2>/dev/null; fi`,
		connector.Quote(dataDir(s.Etcd)+"/member"), EnvFile), connector.ExecOptions{Sudo: true})
	if err != nil {
		return "", false, err
	}
	if res.ExitCode != 0 {
		return "", false, fmt.Errorf("inspect etcd data dir: %w", res.Err())
	}
	lines := strings.Fields(res.Stdout)
	if len(lines) > 0 && lines[0] == "data" {
		if len(lines) > 1 && (lines[1] == StateNew || lines[1] == StateExisting) {
			return lines[1], false, nil
		}
		return StateExisting, false, nil
	}
	var others []string
	for _, o := range s.Members {
		if o.Name != m.Name {
			others = append(others, o.ClientURL(port(s.Etcd)))
		}
	}
	if len(others) == 0 {
		return StateNew, false, nil
	}
	res, err = t.Exec(ctx, etcdctlCmd(others, "member", "list", "-w", "json"), connector.ExecOptions{Sudo: true})
	if err != nil {
		return "", false, err
	}
	if res.ExitCode != 0 {
		// no cluster answers: this member bootstraps one with the others
		return StateNew, false, nil
	}
	var ml memberList
	if err := json.Unmarshal([]byte(res.Stdout), &ml); err != nil {
		return "", false, fmt.Errorf("read etcdctl member list output: %w", err)
	}
	peer := m.PeerURL(peerPort(s.Etcd))
	for _, x := range ml.Members {
		if x.Name == m.Name || slices.Contains(x.PeerURLs, peer) {
			return StateExisting, false, nil
		}
	}
	return StateExisting, true, nil
}

func configTask(s Spec, sel pipeline.Selector) pipeline.Task {
	desired := func(ctx context.Context, t *pipeline.Target) (files []connector.File, needAdd bool, m Member, err error) {
		m, ok := s.member(t.Name)
		if !ok {
			return nil, false, m, fmt.Errorf("%s is not an etcd member of the config", t.Name)
		}
		state, needAdd, err := s.clusterState(ctx, t, m)
		if err != nil {
			return nil, false, m, err
		}
		env, err := s.RenderEnv(t.Name, state)
		if err != nil {
			return nil, false, m, err
		}
		f := t.Facts()
		unit, err := s.RenderUnit(t.Name, f != nil && f.Container != "")
		if err != nil {
			return nil, false, m, err
		}
		return []connector.File{{Path: EnvFile, Data: env, Mode: 0o644}, {Path: UnitFile, Data: unit, Mode: 0o644}}, needAdd, m, nil
	}
	return pipeline.Task{
		Name: TaskConfig, Desc: "/etc/etcd.env (initial cluster, new or existing) and etcd.service",
		Hosts: sel, After: []string{TaskCerts, TaskInstall},
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			files, needAdd, _, err := desired(ctx, t)
			if err != nil || needAdd {
				return false, err
			}
			return t.Test(ctx, sameFiles(files))
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			files, needAdd, m, err := desired(ctx, t)
			if err != nil {
				return false, err
			}
			if needAdd {
				var others []string
				for _, o := range s.Members {
					if o.Name != m.Name {
						others = append(others, o.ClientURL(port(s.Etcd)))
					}
				}
				t.Log.Info("adding the member to the running etcd cluster", "member", m.Name)
				if _, err := t.Sudo(ctx, etcdctlCmd(others, "member", "add", m.Name, "--peer-urls="+m.PeerURL(peerPort(s.Etcd)))); err != nil {
					return false, fmt.Errorf("add %s to the running etcd cluster: %w", m.Name, err)
				}
			}
			changed, err := uploadAll(ctx, t, files)
			return changed || needAdd, err
		},
	}
}

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
