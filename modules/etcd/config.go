package etcd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kk-project/kk/api/config"
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
	// Extra are etcd.extraArgs as environment lines ("ETCD_NAME=value"), in flag-name order;
	// a flag kk sets itself is left out of the lines above and given here instead.
	Extra []string
}

// ExtraArg is one of etcd.extraArgs: a flag name (without leading dashes) and its value.
type ExtraArg struct{ Name, Value string }

// ExtraArgs returns e.ExtraArgs in flag-name order, leading dashes dropped ("--quota-backend-bytes"
// and "quota-backend-bytes" are the same flag). A name that is not a flag name (letters,
// digits and dashes) or a value with a line break is an error naming the field.
func ExtraArgs(e config.Etcd) ([]ExtraArg, error) {
	var out []ExtraArg
	for _, k := range slices.Sorted(maps.Keys(e.ExtraArgs)) { // sorted: a duplicate error names the same flag every run
		name := strings.TrimLeft(k, "-")
		if name == "" || strings.Trim(strings.ToLower(name), "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return nil, fmt.Errorf("etcd.extraArgs: %q is not an etcd flag name", k)
		}
		v := e.ExtraArgs[k]
		if strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("etcd.extraArgs: the value of %s has a line break", k)
		}
		if i := slices.IndexFunc(out, func(a ExtraArg) bool { return a.Name == name }); i >= 0 {
			return nil, fmt.Errorf("etcd.extraArgs: %s is given twice", name)
		}
		out = append(out, ExtraArg{name, v})
	}
	slices.SortFunc(out, func(a, b ExtraArg) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// envName is the environment variable etcd reads flag name from: ETCD_ and the name in upper
// case with underscores.
func envName(flag string) string {
	return "ETCD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// InitialCluster is ETCD_INITIAL_CLUSTER: name=peerURL of every member, in config order.
func (s Spec) InitialCluster() string {
	var parts []string
	for _, m := range s.Members {
		parts = append(parts, m.Name+"="+m.PeerURL(peerPort(s.Etcd)))
	}
	return strings.Join(parts, ",")
}

// RenderEnv renders member name's /etc/etcd.env with initial cluster state state and the
// configured members as initial cluster.
func (s Spec) RenderEnv(name, state string) ([]byte, error) { return s.renderEnv(name, state, "") }

// renderEnv renders the env file; initialCluster "" means every configured member.
func (s Spec) renderEnv(name, state, initialCluster string) ([]byte, error) {
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
		ClientURL: m.ClientURL(ClientPort(e)), PeerURL: m.PeerURL(peerPort(e)),
		ListenClientURLs: []string{m.ClientURL(ClientPort(e)), localEndpoint(e)},
		InitialCluster:   initialCluster, State: state, Token: ClusterToken,
		HeartbeatInterval: e.HeartbeatInterval, ElectionTimeout: e.ElectionTimeout,
		SnapshotCount: e.SnapshotCount, AutoCompactionRetention: e.AutoCompactionRetention,
		QuotaBackendBytes: e.QuotaBackendBytes, MaxRequestBytes: e.MaxRequestBytes,
		MaxSnapshots: e.MaxSnapshots, MaxWals: e.MaxWals,
		Metrics: or(e.Metrics, "basic"), LogLevel: or(e.LogLevel, "info"),
		CAFile: caFile, CertFile: serverCert(name), KeyFile: serverKey(name),
		PeerCertFile: peerCert(name), PeerKeyFile: peerKey(name),
	}
	if d.InitialCluster == "" {
		d.InitialCluster = s.InitialCluster()
	}
	extra, err := ExtraArgs(e)
	if err != nil {
		return nil, err
	}
	for _, a := range extra {
		d.Extra = append(d.Extra, envName(a.Name)+"="+a.Value)
	}
	if m.IP == "127.0.0.1" {
		d.ListenClientURLs = d.ListenClientURLs[:1]
	}
	out, err := templates.Render("etcd/etcd.env", d)
	if err != nil || len(d.Extra) == 0 {
		return out, err
	}
	// an extra arg replaces kk's own line of the same flag (etcd would warn that one shadows
	// the other only for a flag given both on the command line and in the environment)
	over := map[string]bool{}
	for _, l := range d.Extra {
		k, _, _ := strings.Cut(l, "=")
		over[k] = true
	}
	lines := strings.SplitAfter(string(out), "\n")
	var b strings.Builder
	for i, l := range lines {
		if strings.HasPrefix(l, "# etcd.extraArgs") {
			b.WriteString(strings.Join(lines[i:], ""))
			break
		}
		if k, _, ok := strings.Cut(l, "="); ok && over[k] {
			continue
		}
		b.WriteString(l)
	}
	return []byte(b.String()), nil
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
	Members []listedMember `json:"members"`
}

type listedMember struct {
	ID         uint64   `json:"ID"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

// hasData is a shell test that the member's data dir holds a member (it was started before).
func (s Spec) hasData() string {
	return "[ -d " + connector.Quote(dataDir(s.Etcd)+"/member") + " ]"
}

func (s Spec) otherEndpoints(m Member) []string {
	var others []string
	for _, o := range s.Members {
		if o.Name != m.Name {
			others = append(others, o.ClientURL(ClientPort(s.Etcd)))
		}
	}
	return others
}

// clusterState decides the member's ETCD_INITIAL_CLUSTER_STATE and ETCD_INITIAL_CLUSTER (""
// for every configured member). etcd reads both only when its data dir is empty, so a member
// with data keeps what its file already has (changing it would restart the member for
// nothing). A member without data joins with "existing" when the other members already form a
// cluster (etcd/service adds it and writes the cluster's actual membership then), else it
// bootstraps a new cluster with the others.
func (s Spec) clusterState(ctx context.Context, t *pipeline.Target, m Member) (state, initialCluster string, err error) {
	res, err := t.Exec(ctx, fmt.Sprintf(`if %s; then echo data; sed -n 's/^ETCD_INITIAL_CLUSTER_STATE=/state=/p; s/^ETCD_INITIAL_CLUSTER=/cluster=/p' %s 2>/dev/null; fi`,
		s.hasData(), EnvFile), connector.ExecOptions{Sudo: true})
	if err != nil {
		return "", "", err
	}
	if res.ExitCode != 0 {
		return "", "", fmt.Errorf("inspect etcd data dir: %w", res.Err())
	}
	lines := strings.Fields(res.Stdout)
	if len(lines) > 0 && lines[0] == "data" {
		state = StateExisting
		for _, l := range lines[1:] {
			if v, ok := strings.CutPrefix(l, "state="); ok && (v == StateNew || v == StateExisting) {
				state = v
			}
			if v, ok := strings.CutPrefix(l, "cluster="); ok {
				initialCluster = v
			}
		}
		return state, initialCluster, nil
	}
	if len(s.Members) == 1 {
		return StateNew, "", nil
	}
	// nothing listening on any other member's client port: no cluster yet (etcdctl would only
	// retry until its timeout)
	open, err := t.Exec(ctx, portProbe(s, m), connector.ExecOptions{Sudo: true})
	if err != nil {
		return "", "", err
	}
	if open.ExitCode == 1 {
		return StateNew, "", nil
	}
	if _, err := s.members(ctx, t, m); err != nil {
		// no cluster answers: this member bootstraps one with the others
		return StateNew, "", nil
	}
	// joining: the initial cluster is rewritten from the membership when etcd/service adds it
	cur, err := t.Exec(ctx, `sed -n 's/^ETCD_INITIAL_CLUSTER=//p' `+EnvFile+` 2>/dev/null`, connector.ExecOptions{Sudo: true})
	if err != nil {
		return "", "", err
	}
	return StateExisting, strings.TrimSpace(cur.Stdout), nil
}

// members lists the cluster's members, asking the other members.
func (s Spec) members(ctx context.Context, t *pipeline.Target, m Member) (*memberList, error) {
	out, err := t.Sudo(ctx, etcdctlCmd(s.otherEndpoints(m), "member", "list", "-w", "json"))
	if err != nil {
		return nil, err
	}
	var ml memberList
	if err := json.Unmarshal([]byte(out), &ml); err != nil {
		return nil, fmt.Errorf("read etcdctl member list output: %w", err)
	}
	return &ml, nil
}

// join adds member m to the running cluster unless it is already listed (by name or peer
// URL) and returns the initial cluster it must start with: every member of the cluster, itself
// included (etcd refuses to join when the list differs from the cluster's membership).
func (s Spec) join(ctx context.Context, t *pipeline.Target, m Member) (string, error) {
	ml, err := s.members(ctx, t, m)
	if err != nil {
		return "", fmt.Errorf("list the members of the running etcd cluster: %w", err)
	}
	peer := m.PeerURL(peerPort(s.Etcd))
	listed := slices.ContainsFunc(ml.Members, func(x listedMember) bool {
		return x.Name == m.Name || slices.Contains(x.PeerURLs, peer)
	})
	if !listed {
		t.Log.Info("adding the member to the running etcd cluster", "member", m.Name, "peer", peer)
		// etcd refuses a new voting member ("unhealthy cluster") until every member has been
		// connected to the leader for a few seconds, as right after the member before it joined
		var err error
		add := etcdctlCmd(s.otherEndpoints(m), "member", "add", m.Name, "--peer-urls="+peer)
		_, _ = poll(ctx, time.Minute, 3*time.Second, func() (bool, error) {
			_, err = t.Sudo(ctx, add)
			return err == nil || !strings.Contains(err.Error(), "unhealthy cluster"), nil
		})
		if err != nil {
			return "", fmt.Errorf("add %s to the running etcd cluster: %w", m.Name, err)
		}
		// the cluster may have no quorum until this member starts: no second list
		ml.Members = append(ml.Members, listedMember{Name: m.Name, PeerURLs: []string{peer}})
	}
	return s.membership(ml), nil
}

// membership is the initial-cluster value for the listed members. A member that never started
// has no name in the list: the configured member with its peer URL names it.
func (s Spec) membership(ml *memberList) string {
	var parts []string
	for i, x := range ml.Members {
		name := x.Name
		for _, c := range s.Members {
			if name == "" && slices.Contains(x.PeerURLs, c.PeerURL(peerPort(s.Etcd))) {
				name = c.Name
			}
		}
		if name == "" {
			name = fmt.Sprintf("unstarted-%d", i)
		}
		for _, u := range x.PeerURLs {
			parts = append(parts, name+"="+u)
		}
	}
	return strings.Join(parts, ",")
}

// portProbe exits 0 when some other member's client port accepts a TCP connection, 1 when
// none does, 2 when the host cannot tell (no bash or timeout).
func portProbe(s Spec, m Member) string {
	var b strings.Builder
	b.WriteString("( command -v bash >/dev/null 2>&1 && command -v timeout >/dev/null 2>&1 || exit 2; ")
	for _, o := range s.Members {
		if o.Name != m.Name {
			fmt.Fprintf(&b, "timeout 3 bash -c %s 2>/dev/null && exit 0; ", connector.Quote("exec 3<>/dev/tcp/"+o.IP+"/"+strconv.Itoa(ClientPort(s.Etcd))))
		}
	}
	b.WriteString("exit 1 )")
	return b.String()
}

func configTask(s Spec, sel pipeline.Selector) pipeline.Task {
	desired := func(ctx context.Context, t *pipeline.Target) ([]connector.File, error) {
		m, ok := s.member(t.Name)
		if !ok {
			return nil, fmt.Errorf("%s is not an etcd member of the config", t.Name)
		}
		state, initialCluster, err := s.clusterState(ctx, t, m)
		if err != nil {
			return nil, err
		}
		env, err := s.renderEnv(t.Name, state, initialCluster)
		if err != nil {
			return nil, err
		}
		f := t.Facts()
		unit, err := s.RenderUnit(t.Name, f != nil && f.Container != "")
		if err != nil {
			return nil, err
		}
		return []connector.File{{Path: EnvFile, Data: env, Mode: 0o644}, {Path: UnitFile, Data: unit, Mode: 0o644}}, nil
	}
	return pipeline.Task{
		Name: TaskConfig, Desc: "/etc/etcd.env (initial cluster, new or existing) and etcd.service",
		Hosts: sel, After: []string{TaskCerts, TaskInstall},
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			files, err := desired(ctx, t)
			if err != nil {
				return false, err
			}
			return t.Test(ctx, sameFiles(files))
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			files, err := desired(ctx, t)
			if err != nil {
				return false, err
			}
			return t.UploadAll(ctx, files)
		},
	}
}

func sha256hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
