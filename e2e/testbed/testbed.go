// Package testbed brings up local test machines for kk's end-to-end tests and benchmarks.
//
// Two kinds of bed exist, both on this machine and both reachable only through a bridge
// (gateway 10.231.<subnet>.1, the only address the bed adds to the root network namespace):
//
//   - Up: systemd-nspawn machines n1..nN, each with systemd as PID 1, sshd, its own network
//     namespace (10.231.<subnet>.11, .12, ...), an overlayfs root over a shared Debian bookworm
//     base built once with debootstrap, root and a user "kube" (sudo with password) reachable
//     with the bed's key, and a ready KubeKey-format Cluster file.
//   - LightUp: "light hosts", network namespaces that each run the host's own sshd (the
//     filesystem is shared with this machine, no systemd), for SSH fan-out with many hosts.
//
// Down/LightDown remove everything the bed created except its small state directory (key,
// password) and the cached base rootfs. Everything needs root. Machines outlive the process that
// started them (a detached runner script per machine restarts it on a guest reboot); Require and
// RequireLight take them down at test cleanup unless KK_TESTBED_KEEP=1.
//
// The tests that boot machines carry the "integration" build tag:
//
//	go test -tags integration ./e2e/testbed/
package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kk-project/kk/api/v1alpha2"
)

// Options selects a bed. The zero value is the default bed "kkt" under /var/tmp/kk-testbed.
type Options struct {
	Name   string // bed name, [a-z0-9]{1,8}, default "kkt"
	Dir    string // state dir; default $KK_TESTBED_DIR or /var/tmp/kk-testbed
	Subnet int    // third octet of 10.231.<Subnet>.0/24; default derived from Name (10..250)
	// DiskGiB gives each machine a disk of its own of this size (an ext4 file system on a
	// sparse file in its directory, loop-mounted): its writable root layer and containerd's
	// store live there, so kubelet's disk thresholds, shares of the disk, count only the
	// machine's own files, as on a real machine. 0: both are on this machine's disk, shared
	// with every bed, the caches and the mirror, and the bed's Cluster file sets eviction
	// thresholds in GiB instead (see clusterYAML); a test that runs kk without that file
	// (kk's own thresholds) needs a disk of its own.
	DiskGiB int
}

// Machine is one test machine (or light host) of a bed.
type Machine struct {
	Name    string // n1, n2, ...
	Address string // IPv4 inside its own network namespace
	HostKey string // "ssh-ed25519 AAAA..."
}

// Bed is a running set of machines.
type Bed struct {
	Name, Dir   string
	Machines    []Machine
	KeyPath     string // private key authorized for root (and kube) on every machine
	User        string // "kube" (machines) or "" (light hosts)
	Password    string // kube's sudo password (machines) or "" (light hosts)
	KnownHosts  string // known_hosts file listing every machine by address
	ClusterFile string // KubeKey v1alpha2 Cluster file (0600)
	Light       bool
}

const (
	defaultName = "kkt"
	defaultDir  = "/var/tmp/kk-testbed"
	netPrefix   = "10.231."
	firstHost   = 11
	maxHosts    = 240 // .11 .. .250
	kubeUser    = "kube"
)

// AfterFailureMarker begins what a failed test logs after its failure (the state of the
// cluster on the bed): e2e/cmd/testlog's summary of a failed test is its log up to this line
// or FailedMarker, whichever comes first, so it ends with the failure itself.
const AfterFailureMarker = "e2e: the cluster after the failure"

var nameRE = regexp.MustCompile(`^[a-z0-9]{1,8}$`)

// bed holds the resolved names and paths of one bed.
type bed struct {
	name    string
	root    string // Options.Dir
	dir     string // root/<name>
	baseDir string // root/base
	subnet  int
	diskGiB int    // Options.DiskGiB
	kind    string // "machines" or "light", once open
	prev    *state // state left by an earlier call, if any
}

func (o Options) resolve() (*bed, error) {
	name := o.Name
	if name == "" {
		name = defaultName
	}
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("testbed: bad bed name %q: want 1 to 8 characters [a-z0-9]", name)
	}
	root := o.Dir
	if root == "" {
		root = os.Getenv("KK_TESTBED_DIR")
	}
	if root == "" {
		root = defaultDir
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("testbed %s: state dir: %w", name, err)
	}
	if o.Subnet != 0 && (o.Subnet < 1 || o.Subnet > 254) {
		return nil, fmt.Errorf("testbed %s: subnet %d out of range 1..254", name, o.Subnet)
	}
	if o.DiskGiB < 0 {
		return nil, fmt.Errorf("testbed %s: disk size %d GiB", name, o.DiskGiB)
	}
	return &bed{name: name, root: root, dir: filepath.Join(root, name), baseDir: filepath.Join(root, "base"), subnet: o.Subnet, diskGiB: o.DiskGiB}, nil
}

// defaultSubnet derives a third octet in 10..250 from the bed name.
func defaultSubnet(name string) int {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32()%241) + 10
}

func (b *bed) errf(step string, err error) error {
	return fmt.Errorf("testbed %s: %s: %w", b.name, step, err)
}

func (b *bed) merrf(machine, step string, err error) error {
	return fmt.Errorf("testbed %s: machine %s: %s: %w", b.name, machine, step, err)
}

// names of the kernel objects of the bed
func (b *bed) bridge() string          { return "tb-" + b.name }
func (b *bed) netns(i int) string      { return fmt.Sprintf("tb-%s-n%d", b.name, i) }
func (b *bed) veth(i int) string       { return fmt.Sprintf("tb%s-%d", b.name, i) }
func (b *bed) cgroupName(i int) string { return fmt.Sprintf("tb-%s-n%d", b.name, i) }
func (b *bed) gateway() string         { return fmt.Sprintf("%s%d.1", netPrefix, b.subnet) }
func (b *bed) addr(i int) string       { return fmt.Sprintf("%s%d.%d", netPrefix, b.subnet, firstHost+i-1) }
func (b *bed) machineDir(i int) string { return filepath.Join(b.dir, fmt.Sprintf("n%d", i)) }
func (b *bed) keyPath() string         { return filepath.Join(b.dir, "id_ed25519") }

// objPrefix is the prefix of the bed's netns and cgroup names ("tb-<name>-n").
func (b *bed) objPrefix() string { return "tb-" + b.name + "-n" }

// isVeth reports whether link is one of this bed's host-side veths.
func (b *bed) isVeth(link string) bool {
	rest, ok := strings.CutPrefix(link, "tb"+b.name+"-")
	if !ok || rest == "" {
		return false
	}
	_, err := strconv.Atoi(rest)
	return err == nil
}

func (b *bed) isOwnObj(name string) bool {
	rest, ok := strings.CutPrefix(name, b.objPrefix())
	if !ok || rest == "" {
		return false
	}
	_, err := strconv.Atoi(rest)
	return err == nil
}

// state is what a bed remembers between calls (and processes).
type state struct {
	Kind   string `json:"kind"` // "machines" or "light"
	Subnet int    `json:"subnet"`
}

func (b *bed) statePath() string { return filepath.Join(b.dir, "state.json") }

func (b *bed) readState() (*state, error) {
	data, err := os.ReadFile(b.statePath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var s state
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", b.statePath(), err)
	}
	return &s, nil
}

func (b *bed) writeState(s *state) error {
	data, _ := json.MarshalIndent(s, "", "  ")
	return writeFileAtomic(b.statePath(), append(data, '\n'), 0o600)
}

// open prepares the bed directory, takes the bed lock and checks the kind of bed.
func (b *bed) open(ctx context.Context, kind string) (unlock func(), err error) {
	if err := os.MkdirAll(b.dir, 0o700); err != nil {
		return nil, b.errf("create state dir", err)
	}
	unlock, err = lockFile(ctx, filepath.Join(b.dir, ".lock"))
	if err != nil {
		return nil, b.errf("lock bed", err)
	}
	defer func() {
		if err != nil {
			unlock()
		}
	}()
	st, err := b.readState()
	if err != nil {
		return nil, b.errf("read state", err)
	}
	if st != nil && st.Kind != kind && b.anythingUp() {
		return nil, b.errf("open", fmt.Errorf("bed is up as %q, not %q: take it down first or use another name", st.Kind, kind))
	}
	b.prev, b.kind = st, kind
	return unlock, nil
}

// anythingUp reports whether the bed's bridge or any of its namespaces exist.
func (b *bed) anythingUp() bool {
	if linkExists(b.bridge()) {
		return true
	}
	ns, _ := b.listNetns()
	return len(ns) > 0
}

// Require brings up n machines for a test, or fails the test with the precise reason.
// It never skips. Down runs at cleanup unless KK_TESTBED_KEEP=1.
func Require(t testing.TB, o Options, n int) *Bed {
	t.Helper()
	return require(t, o, n, Up, Down)
}

// RequireLight brings up n light hosts for a test, or fails it; see Require.
func RequireLight(t testing.TB, o Options, n int) *Bed {
	t.Helper()
	return require(t, o, n, LightUp, LightDown)
}

func require(t testing.TB, o Options, n int,
	up func(context.Context, Options, int) (*Bed, error), down func(context.Context, Options) error) *Bed {
	t.Helper()
	keep := os.Getenv("KK_TESTBED_KEEP") == "1"
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	if !keep {
		// A run killed before its cleanup leaves its machines up, with a cluster on them: a
		// test starts on fresh ones (up would take the running ones as they are).
		if err := down(ctx, o); err != nil {
			t.Fatalf("testbed: removing what an earlier run left of %s: %v", o.Name, err)
		}
	}
	b, err := up(ctx, o, n)
	if err != nil {
		if !keep {
			dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Minute)
			if derr := down(dctx, o); derr != nil {
				t.Logf("testbed: cleanup after failed start: %v", derr)
			}
			dcancel()
		}
		t.Fatalf("%v", err)
	}
	t.Logf("testbed %s: %d %s up in %v (cluster file %s)", b.Name, len(b.Machines), kindWord(b.Light), time.Since(start).Round(time.Millisecond), b.ClusterFile)
	diskWarning(t, b.Dir)
	markFirstFailure(t)
	if !keep {
		t.Cleanup(func() {
			dctx, dcancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer dcancel()
			if err := down(dctx, o); err != nil {
				t.Errorf("%v", err)
			}
		})
	}
	return b
}

// FailedMarker is what a test on a bed logs within half a second of its first failure
// (markFirstFailure): e2e/cmd/testlog's summary of a failed test ends there, so it shows the
// failure even when the test went on (t.Errorf) and logged much more after it.
const FailedMarker = "e2e: the test failed just above"

// markFirstFailure logs FailedMarker once t has failed, until t's cleanup.
func markFirstFailure(t testing.TB) {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if t.Failed() {
					t.Log(FailedMarker)
					return
				}
			}
		}
	}()
	// a test's cleanups run before it completes: no log after that
	t.Cleanup(func() { close(stop); <-done })
}

// diskWarning says so when the disk holding the machines is nearly full: kubelet evicts pods
// when 2 GiB are left (the bed's Cluster file: see clusterYAML), and kk's default thresholds
// (a Cluster file of the test's own: 5%; 85% for image garbage collection) act before.
func diskWarning(t testing.TB, dir string) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || st.Blocks == 0 {
		return
	}
	used := 100 - 100*float64(st.Bavail)/float64(st.Blocks)
	if used > 85 {
		t.Logf("testbed: WARNING: %s is %.0f%% used as kubelet counts it (free to unprivileged users against size); "+
			"kubelet on the machines evicts their pods when 2 GiB are left, or at 95%% used without the bed's Cluster file", dir, used)
	}
}

func kindWord(light bool) string {
	if light {
		return "light hosts"
	}
	return "machines"
}

// SSHArgs returns an ssh argv reaching m as root with the bed's key and known_hosts.
func (b *Bed) SSHArgs(m Machine) []string {
	return []string{"ssh", "-i", b.KeyPath,
		"-o", "UserKnownHostsFile=" + b.KnownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=5",
		"root@" + m.Address}
}

// writeKnownHosts writes the known_hosts file of machines.
func (b *bed) writeKnownHosts(ms []Machine) (string, error) {
	var sb strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&sb, "%s %s\n", m.Address, m.HostKey)
	}
	p := filepath.Join(b.dir, "known_hosts")
	return p, writeFileAtomic(p, []byte(sb.String()), 0o644)
}

// clusterYAML renders a KubeKey v1alpha2 Cluster for the machines.
func clusterYAML(name string, ms []Machine, user, password, keyPath string) string {
	var sb strings.Builder
	q := strconv.Quote
	fmt.Fprintf(&sb, "apiVersion: kubekey.kubesphere.io/v1alpha2\nkind: Cluster\nmetadata:\n  name: %s\nspec:\n  hosts:\n", name)
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
		fmt.Fprintf(&sb, "  - {name: %s, address: %s, internalAddress: %s, port: 22, user: %s", m.Name, m.Address, m.Address, user)
		if password != "" {
			fmt.Fprintf(&sb, ", password: %s", q(password))
		}
		fmt.Fprintf(&sb, ", privateKeyPath: %s}\n", q(keyPath))
	}
	first := ""
	if len(ms) > 0 {
		first = ms[0].Name
	}
	fmt.Fprintf(&sb, "  roleGroups:\n    etcd: [%s]\n    control-plane: [%s]\n    worker: [%s]\n", first, first, strings.Join(names, ", "))
	sb.WriteString("  controlPlaneEndpoint: {domain: lb.kubesphere.local, address: \"\", port: 6443}\n")
	// kk's default Kubernetes version: the one the mirror builds first and the tests expect.
	// The machines share this machine's disk, so kubelet counts every bed's files, the
	// mirror's and the caches' as its own, and its thresholds, shares of the disk, would act
	// on what no pod wrote: at 95% used (kk's eviction threshold) every node would evict its
	// pods, and past 85% image garbage collection would delete, every 5 minutes, each image
	// no pod runs that is not pinned (docker's; containerd's imports are pinned). A machine's
	// own disk holds only its own files: here eviction waits for the last 2 GiB and the
	// collection is off (100).
	sb.WriteString("  kubernetes: {version: " + v1alpha2.DefaultKubernetesVersion + ", clusterName: cluster.local, " +
		"kubeletConfiguration: {imageGCHighThresholdPercent: 100, evictionHard: {nodefs.available: 2Gi, imagefs.available: 2Gi}}, " +
		"containerManager: containerd}\n")
	sb.WriteString("  etcd: {type: kubekey}\n")
	sb.WriteString("  network: {plugin: flannel, kubePodsCIDR: 10.233.64.0/18, kubeServiceCIDR: 10.233.0.0/18}\n")
	return sb.String()
}

func (b *bed) writeCluster(ms []Machine, user, password string) (string, error) {
	p := filepath.Join(b.dir, "cluster.yaml")
	return p, writeFileAtomic(p, []byte(clusterYAML(b.name, ms, user, password, b.keyPath())), 0o600)
}

// password returns the bed's kube password, generating it once.
func (b *bed) password() (string, error) {
	p := filepath.Join(b.dir, "password")
	if data, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(data))) >= 12 {
		return strings.TrimSpace(string(data)), nil
	}
	pw, err := randomPassword(20)
	if err != nil {
		return "", err
	}
	return pw, writeFileAtomic(p, []byte(pw+"\n"), 0o600)
}

// leftovers lists every kernel object, mount and process of the bed that still exists.
func (b *bed) leftovers() []string {
	var out []string
	for _, p := range mountsUnder(b.dir) {
		out = append(out, "mount "+p)
	}
	ns, _ := b.listNetns()
	for _, n := range ns {
		out = append(out, "netns "+n)
	}
	links, _ := listLinks()
	for _, l := range links {
		if l == b.bridge() || b.isVeth(l) {
			out = append(out, "link "+l)
		}
	}
	for _, c := range findCgroups(b.isOwnObj) {
		out = append(out, "cgroup "+c)
	}
	if ents, err := os.ReadDir(nspawnPropagate); err == nil {
		for _, e := range ents {
			if b.isOwnObj(e.Name()) {
				out = append(out, "nspawn runtime dir "+filepath.Join(nspawnPropagate, e.Name()))
			}
		}
	}
	for _, p := range procsMentioning(b.dir + "/") {
		out = append(out, fmt.Sprintf("process %d (%s)", p, cmdline(p)))
	}
	return out
}
