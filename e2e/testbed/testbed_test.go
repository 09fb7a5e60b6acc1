package testbed

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kk-project/kk/api/v1alpha2"
)

func TestResolveDefaultsAndNames(t *testing.T) {
	t.Setenv("KK_TESTBED_DIR", "")
	b, err := Options{}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if b.name != "kkt" || b.dir != "/var/tmp/kk-testbed/kkt" || b.baseDir != "/var/tmp/kk-testbed/base" {
		t.Fatalf("defaults: %+v", b)
	}
	t.Setenv("KK_TESTBED_DIR", "/srv/tb")
	b, _ = Options{Name: "x1"}.resolve()
	if b.dir != "/srv/tb/x1" {
		t.Fatalf("KK_TESTBED_DIR ignored: %s", b.dir)
	}
	for _, bad := range []string{"Kkt", "kk-t", "toolongname", "a b"} {
		if _, err := (Options{Name: bad}).resolve(); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
	if _, err := (Options{Subnet: 300}).resolve(); err == nil {
		t.Error("subnet 300 accepted")
	}
	b = &bed{name: "kkt", subnet: 7}
	if b.addr(1) != "10.231.7.11" || b.addr(60) != "10.231.7.70" || b.addr(maxHosts) != "10.231.7.250" || b.gateway() != "10.231.7.1" {
		t.Errorf("addresses: %s %s %s %s", b.addr(1), b.addr(60), b.addr(maxHosts), b.gateway())
	}
	// interface names must fit IFNAMSIZ-1 = 15 with the longest name and index
	long := &bed{name: "abcdefgh"}
	if l := len(long.veth(maxHosts)); l > 15 {
		t.Errorf("veth name %q is %d long", long.veth(maxHosts), l)
	}
	if !b.isVeth("tbkkt-12") || b.isVeth("tbkkt2-1") || b.isVeth("tbkkt-") || !b.isOwnObj("tb-kkt-n3") || b.isOwnObj("tb-kkt2-n3") || b.isOwnObj("tb-kkt-nx") {
		t.Error("own object matching is wrong")
	}
}

func TestDefaultSubnetRange(t *testing.T) {
	seen := map[int]bool{}
	for _, n := range []string{"kkt", "kkos", "kkerr", "kkb", "kkdemo", "a", "zzzzzzzz"} {
		s := defaultSubnet(n)
		if s < 10 || s > 250 {
			t.Errorf("%s: subnet %d outside 10..250", n, s)
		}
		if defaultSubnet(n) != s {
			t.Errorf("%s: not stable", n)
		}
		seen[s] = true
	}
	if len(seen) < 5 {
		t.Errorf("names map to few subnets: %v", seen)
	}
}

func TestClusterYAML(t *testing.T) {
	ms := []Machine{{Name: "n1", Address: "10.231.9.11"}, {Name: "n2", Address: "10.231.9.12"}}
	out := clusterYAML("kkt", ms, "kube", `p"w`, "/k/id_ed25519")
	var doc struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string
		Metadata   struct{ Name string }
		Spec       struct {
			Hosts []struct {
				Name, Address, User, Password string
				InternalAddress               string `yaml:"internalAddress"`
				Port                          int
				PrivateKeyPath                string `yaml:"privateKeyPath"`
			}
			RoleGroups           map[string][]string `yaml:"roleGroups"`
			ControlPlaneEndpoint struct {
				Domain, Address string
				Port            int
			} `yaml:"controlPlaneEndpoint"`
			Kubernetes struct {
				Version          string
				ClusterName      string `yaml:"clusterName"`
				ContainerManager string `yaml:"containerManager"`
				Kubelet          struct {
					ImageGC  int               `yaml:"imageGCHighThresholdPercent"`
					Eviction map[string]string `yaml:"evictionHard"`
				} `yaml:"kubeletConfiguration"`
			} `yaml:"kubernetes"`
			Network struct {
				Plugin          string
				KubePodsCIDR    string `yaml:"kubePodsCIDR"`
				KubeServiceCIDR string `yaml:"kubeServiceCIDR"`
			}
		}
	}
	if err := yaml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if doc.APIVersion != "kubekey.kubesphere.io/v1alpha2" || doc.Kind != "Cluster" || doc.Metadata.Name != "kkt" {
		t.Errorf("header: %+v", doc)
	}
	h := doc.Spec.Hosts
	if len(h) != 2 || h[1].Name != "n2" || h[1].Address != "10.231.9.12" || h[1].InternalAddress != "10.231.9.12" ||
		h[0].User != "kube" || h[0].Password != `p"w` || h[0].Port != 22 || h[0].PrivateKeyPath != "/k/id_ed25519" {
		t.Errorf("hosts: %+v", h)
	}
	rg := doc.Spec.RoleGroups
	if strings.Join(rg["etcd"], ",") != "n1" || strings.Join(rg["control-plane"], ",") != "n1" || strings.Join(rg["worker"], ",") != "n1,n2" {
		t.Errorf("roleGroups: %v", rg)
	}
	if doc.Spec.ControlPlaneEndpoint.Domain != "lb.kubesphere.local" || doc.Spec.ControlPlaneEndpoint.Port != 6443 ||
		doc.Spec.Kubernetes.Version != v1alpha2.DefaultKubernetesVersion || doc.Spec.Kubernetes.ContainerManager != "containerd" ||
		doc.Spec.Network.Plugin != "flannel" || doc.Spec.Network.KubePodsCIDR != "10.233.64.0/18" ||
		doc.Spec.Kubernetes.Kubelet.ImageGC != 100 || doc.Spec.Kubernetes.Kubelet.Eviction["nodefs.available"] != "2Gi" {
		t.Errorf("spec: %+v", doc.Spec)
	}
	// kk loads it as it is: no warning, the kubelet setting carried
	key := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(key, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, warns, err := v1alpha2.Parse("cluster.yaml", []byte(clusterYAML("kkt", ms, "kube", "pw", key)))
	if err != nil || len(warns) > 0 {
		t.Fatalf("kk refuses the bed's Cluster file: %v %v\n%s", err, warns, out)
	}
	if c.Kubernetes.KubeletConfiguration["imageGCHighThresholdPercent"] == nil {
		t.Errorf("kk dropped kubeletConfiguration: %+v", c.Kubernetes)
	}
	if light := clusterYAML("kkb", ms[:1], "root", "", "/k"); strings.Contains(light, "password") {
		t.Errorf("light cluster has a password:\n%s", light)
	}
}

func TestParseDebSources(t *testing.T) {
	src := `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
`
	if got := parseDebSources(src); got != "http://mirror.example/debian" {
		t.Errorf("got %q", got)
	}
	if got := parseDebSources("Types: deb-src\nURIs: http://x/\nSuites: bookworm\n"); got != "" {
		t.Errorf("deb-src taken: %q", got)
	}
	if got := parseDebSources("Types: deb\nURIs: http://sec/\nSuites: bookworm-security\n"); got != "" {
		t.Errorf("security taken: %q", got)
	}
}

func TestParseMountinfo(t *testing.T) {
	data := `36 35 98:0 /mnt1 /mnt\040with\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue
37 25 0:33 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
38 25 0:34 / /sys/fs/cgroup/unified rw shared:9 - cgroup2 cgroup2 rw,nsdelegate
`
	ms := parseMountinfo([]byte(data))
	if len(ms) != 3 {
		t.Fatalf("%d entries", len(ms))
	}
	if ms[0].point != "/mnt with space" || ms[0].root != "/mnt1" || ms[0].fstype != "ext3" {
		t.Errorf("entry 0: %+v", ms[0])
	}
	if ms[1].fstype != "cgroup" || ms[1].super != "rw,memory" || ms[2].fstype != "cgroup2" {
		t.Errorf("cgroup entries: %+v %+v", ms[1], ms[2])
	}
}

func TestRunnerScript(t *testing.T) {
	b := &bed{name: "kkt", dir: "/var/tmp/kk-testbed/kkt", subnet: 9}
	s := b.runnerScript(b.mdir(2), []string{"/sys/fs/cgroup/cpu/tb-kkt-n2"})
	for _, want := range []string{
		"SYSTEMD_NSPAWN_API_VFS_WRITABLE=1", "--register=no --keep-unit", "--network-namespace-path=/run/netns/tb-kkt-n2",
		"--capability=all --drop-capability=CAP_SYS_TIME", "--system-call-filter='@keyring bpf'", "--bind=/dev/kmsg",
		`--bind="$d/disk/containerd:/var/lib/containerd"`, "--resolv-conf=off", "--console=passive", "/usr/local/sbin/cg-init",
		"echo $$ > '/sys/fs/cgroup/cpu/tb-kkt-n2/cgroup.procs'", "[ $rc -eq 133 ]", "--hostname=n2",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("runner script lacks %q:\n%s", want, s)
		}
	}
}

func TestNewKeyAndPassword(t *testing.T) {
	priv, pub, err := newKey("c")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(priv), "-----BEGIN OPENSSH PRIVATE KEY-----") || !strings.HasPrefix(pub, "ssh-ed25519 AAAA") {
		t.Errorf("key: %s / %s", priv[:40], pub)
	}
	p1, _ := randomPassword(20)
	p2, _ := randomPassword(20)
	if len(p1) != 20 || p1 == p2 || strings.ContainsAny(p1, `"'\ :`) {
		t.Errorf("passwords %q %q", p1, p2)
	}
}

func TestNeedCommandsNamesTheMissingOne(t *testing.T) {
	err := needCommands("sh", "kk-no-such-command")
	if err == nil || !strings.Contains(err.Error(), `"kk-no-such-command"`) {
		t.Fatalf("got %v", err)
	}
}

func TestMentionsPath(t *testing.T) {
	for _, c := range []struct {
		cmd  string
		want bool
	}{
		{"/bin/sh /x/n1/run.sh", true}, {"debootstrap bookworm /x/n1 http://m", true}, {"foo /x/n1", true},
		{"/bin/sh /x/n10/run.sh", false}, {"/x/n10 /x/n1", true}, {"", false},
	} {
		if got := mentionsPath(c.cmd, "/x/n1"); got != c.want {
			t.Errorf("%q: got %v", c.cmd, got)
		}
	}
}

// failingTB is a testing.TB whose failure, logs and cleanups the test drives.
type failingTB struct {
	testing.TB
	failed   atomic.Bool
	mu       sync.Mutex
	logs     []string
	cleanups []func()
}

func (f *failingTB) Failed() bool { return f.failed.Load() }
func (f *failingTB) Log(args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, fmt.Sprint(args...))
}
func (f *failingTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

// TestMarkFirstFailure: FailedMarker is logged once the test has failed, and nothing is
// logged after the cleanup.
func TestMarkFirstFailure(t *testing.T) {
	f := &failingTB{TB: t}
	markFirstFailure(f)
	time.Sleep(700 * time.Millisecond)
	f.failed.Store(true)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		f.mu.Lock()
		n := len(f.logs)
		f.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range f.cleanups {
		c()
	}
	if len(f.logs) != 1 || f.logs[0] != FailedMarker {
		t.Errorf("logs %q, want the marker once", f.logs)
	}
	// a test that never fails logs nothing, and its cleanup ends the watch
	g := &failingTB{TB: t}
	markFirstFailure(g)
	time.Sleep(600 * time.Millisecond)
	for _, c := range g.cleanups {
		c()
	}
	if len(g.logs) != 0 {
		t.Errorf("a passing test logged %q", g.logs)
	}
}
