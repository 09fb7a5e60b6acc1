package reset

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/templates"
)

func specs() map[string]Spec {
	base := Spec{ContainerManager: Containerd, CRISocket: "unix:///run/containerd/containerd.sock", RuntimeRoot: "/var/lib/containerd",
		EtcdDataDir: "/data/etcd data", EtcdBackupScript: "/usr/local/bin/kube-scripts/etcd-backup.sh", EtcdBackupDir: "/var/backups/kube_etcd"}
	all := base
	all.All = true
	docker := base
	docker.ContainerManager, docker.CRISocket, docker.RuntimeRoot = Docker, "unix:///var/run/cri-dockerd.sock", "/var/lib/docker"
	dockerAll := docker
	dockerAll.All, dockerAll.DockerAuth, dockerAll.VIP, dockerAll.ProxyMode = true, true, "192.168.0.100", "ipvs"
	return map[string]Spec{"containerd": base, "containerd --all": all, "docker": docker, "docker --all": dockerAll}
}

// Both scripts parse with sh (dash where it is /bin/sh) and bash, for every kind of spec.
func TestScriptsParse(t *testing.T) {
	dir := t.TempDir()
	for name, s := range specs() {
		for kind, script := range map[string]string{"reset": Script(s), "residue": ResidueScript(s)} {
			p := filepath.Join(dir, "s.sh")
			if err := os.WriteFile(p, []byte(script), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, sh := range []string{"sh", "bash", "dash"} {
				if _, err := exec.LookPath(sh); err != nil {
					continue
				}
				if out, err := exec.Command(sh, "-n", p).CombinedOutput(); err != nil {
					t.Errorf("%s: %s script: %s -n: %v\n%s", name, kind, sh, err, out)
				}
			}
			if strings.Contains(script, "<no value>") || strings.Contains(script, "{{") {
				t.Errorf("%s: %s script has an unrendered value", name, kind)
			}
		}
	}
}

// Every item both scripts must cover is in both, quoted as the shell reads it.
func TestScriptsCoverEveryItem(t *testing.T) {
	for name, s := range specs() {
		reset, residue := Script(s), ResidueScript(s)
		items := append(s.Paths(), s.Units()...)
		items = append(items, "/data/etcd data", "/var/lib/etcd", "flannel", "calico-ipam", "cni0", "flannel.1", "vxlan.calico",
			"kube-ipvs0", "nodelocaldns", "kube-bridge", "tunl0", "KUBE-|FLANNEL-|CNI-|cali-", "kube-proxy|calico",
			"# BEGIN kk managed hosts", "/var/lib/kubelet/", "/run/netns/cni-", "kubepods")
		for _, want := range items {
			q := connector.Quote(want)
			if strings.HasPrefix(want, "KUBE-") || strings.HasPrefix(want, "kube-proxy|") || strings.HasPrefix(want, "# BEGIN") {
				q = want // inside a quoted regular expression or list
			}
			for kind, script := range map[string]string{"reset": reset, "residue": residue} {
				if !strings.Contains(script, q) {
					t.Errorf("%s: %s script lacks %s", name, kind, q)
				}
			}
		}
		want := []string{"/etc/kubernetes", "/var/lib/kubelet", "/etc/ssl/etcd", "/var/lib/cni", "/etc/systemd/system/kubelet.service",
			"/etc/systemd/system/kubelet.service.d", "/etc/systemd/system/etcd.service", "/etc/systemd/system/backup-etcd.timer",
			"/etc/systemd/system/kk-certs-renew.timer", "/etc/systemd/system/kk-certs-renew.service", "/usr/local/lib/kk",
			"/etc/kubekey/haproxy", "/etc/sysctl.d/99-kubernetes-kk.conf", "/etc/modules-load.d/kubernetes-kk.conf",
			"/usr/local/bin/kubeadm", "/usr/local/bin/kubelet", "/usr/local/bin/kubectl", "/usr/local/bin/etcd", "/etc/etcd.env",
			"/usr/local/bin/kube-scripts/etcd-backup.sh", "/var/lib/kk", config.LogCollectorDir}
		for _, p := range want {
			if !slices.Contains(s.Paths(), p) {
				t.Errorf("%s: paths lack %s", name, p)
			}
		}
		// the CNI configuration goes: all of it with the runtime, its contents while the
		// runtime (which watches /etc/cni/net.d) stays
		if s.All != slices.Contains(s.Paths(), CNIConfParent) || s.All != (len(s.emptiedDirs()) == 0) ||
			!strings.Contains(reset, "emptied | while") || !strings.Contains(residue, "emptied | sed") {
			t.Errorf("%s: all=%v, paths %v, emptied %v", name, s.All, s.Paths(), s.emptiedDirs())
		}
	}
}

// Without --all the runtime stays (its pods removed through the CRI, their mounts undone);
// with --all its units, programs and data go.
func TestAllDecidesTheRuntime(t *testing.T) {
	sp := specs()
	keep, all, dockerAll := sp["containerd"], sp["containerd --all"], sp["docker --all"]
	for _, p := range []string{"/var/lib/containerd", "/etc/containerd", "/usr/local/bin/containerd", "/usr/local/bin/crictl", "/etc/systemd/system/containerd.service", "/var/backups/kube_etcd"} {
		if slices.Contains(keep.Paths(), p) {
			t.Errorf("without --all %s is removed", p)
		}
		if !slices.Contains(all.Paths(), p) {
			t.Errorf("with --all %s stays", p)
		}
	}
	if !strings.Contains(Script(keep), `rmp -fa`) || !strings.Contains(ResidueScript(keep), "pods -q") {
		t.Errorf("without --all the pods are not removed and checked through crictl")
	}
	if strings.Contains(ResidueScript(all), "pods -q") {
		t.Errorf("with --all the residue check asks the runtime it removed")
	}
	for _, p := range []string{"/var/lib/docker", "/etc/docker", "/usr/local/bin/dockerd", "/usr/local/bin/cri-dockerd", "/usr/local/libexec/kk",
		"/etc/systemd/system/docker.service", "/etc/systemd/system/cri-docker.service", "/root/.docker/config.json"} {
		if !slices.Contains(dockerAll.Paths(), p) {
			t.Errorf("docker --all: %s stays", p)
		}
	}
	if !strings.Contains(Script(dockerAll), "DOCKER") || !strings.Contains(Script(dockerAll), "docker0") || strings.Contains(Script(keep), "docker0") {
		t.Errorf("docker's chains and bridge are removed with docker --all only")
	}
	if !strings.Contains(Script(dockerAll), "ipvsadm -C") || strings.Contains(Script(keep), "ipvsadm") {
		t.Errorf("IPVS is cleared with proxyMode ipvs only")
	}
}

// Every systemd unit kk's templates hold is either removed or named as kept on purpose.
func TestEveryKKUnitIsCovered(t *testing.T) {
	installedAs := map[string]string{"etcd-backup.service": "backup-etcd.service", "etcd-backup.timer": "backup-etcd.timer"}
	kept := map[string]string{"registry.service": "kk init registry's", "kkbench.service": "make bench's",
		"nvidia-persistenced.service": "the NVIDIA driver's (spec.gpu): host setup, like the OS phase's"}
	units := specs()["docker --all"].Units()
	units = append(units, specs()["containerd --all"].Units()...)
	err := fs.WalkDir(templates.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".service") || strings.HasSuffix(p, ".timer")) {
			return err
		}
		u := baseName(p)
		if n, ok := installedAs[u]; ok {
			u = n
		}
		if !slices.Contains(units, u) && kept[u] == "" {
			t.Errorf("templates/files/%s: unit %s is neither removed nor kept on purpose", p, u)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func baseName(p string) string { return p[strings.LastIndex(p, "/")+1:] }

// Every /etc/hosts block a module writes ("# BEGIN kk ...") is removed, but kk init
// registry's.
func TestEveryHostsBlockIsCovered(t *testing.T) {
	re := regexp.MustCompile(`"(# BEGIN kk [^"]+)"`)
	files, _ := filepath.Glob("../*/*.go")
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || strings.HasPrefix(f, "../reset/") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			n++
			if m[1] != "# BEGIN kk registry" && !slices.Contains(hostsBlocks, m[1]) {
				t.Errorf("%s writes the /etc/hosts block %q, which the reset leaves", f, m[1])
			}
		}
	}
	if n < 4 {
		t.Errorf("found %d hosts blocks in the modules, want 4 or more", n)
	}
}

// The shared functions, run with sh: kk's complete /etc/hosts blocks go (the registry's and
// an unterminated one stay).
func TestHostsBlocks(t *testing.T) {
	hosts := filepath.Join(t.TempDir(), "hosts")
	in := "127.0.0.1 localhost\n# BEGIN kk managed hosts\n10.0.0.1 n1\n# END kk managed hosts\n1.2.3.4 user\n" +
		"# BEGIN kk registry\n5.5.5.5 reg\n# END kk registry\n  # BEGIN kk API server endpoint\n127.0.0.1 lb.kubesphere.local\n# END kk API server endpoint\n" +
		"# BEGIN kk dns.nodeEtcHosts\n9.9.9.9 unterminated\n"
	if err := os.WriteFile(hosts, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	lib := libOf(t, specs()["containerd"])
	keep := shell(t, lib+"\nhosts_blocks keep "+connector.Quote(hosts))
	want := "127.0.0.1 localhost\n1.2.3.4 user\n# BEGIN kk registry\n5.5.5.5 reg\n# END kk registry\n# BEGIN kk dns.nodeEtcHosts\n9.9.9.9 unterminated\n"
	if keep != want {
		t.Errorf("kept:\n%s\nwant:\n%s", keep, want)
	}
	list := ParseResidue(shell(t, lib+"\nhosts_blocks list "+connector.Quote(hosts)))
	if len(list) != 6 || list[1] != "10.0.0.1 n1" || list[4] != "127.0.0.1 lb.kubesphere.local" {
		t.Errorf("listed: %q", list)
	}
}

// The iptables step, run with sh on a fake iptables-save: kk's chains are declared (flushed),
// the rules of other chains jumping to them deleted, then the chains; tables without any
// are left alone. The residue check names the same chains.
func TestIptablesChains(t *testing.T) {
	dir := t.TempDir()
	save := `# Generated by iptables-save
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:cali-nat-outgoing - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -j cali-nat-outgoing
-A KUBE-SERVICES -j RETURN
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:USER - [0:0]
:FLANNEL-FWD - [0:0]
-A FORWARD -j USER
-A USER -g FLANNEL-FWD
-A FORWARD -s 10.0.0.0/8 -j ACCEPT
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:MINE - [0:0]
-A PREROUTING -j MINE
COMMIT
`
	fixture := filepath.Join(dir, "save.txt")
	restored := filepath.Join(dir, "restored.txt")
	for name, body := range map[string]string{
		"save.txt":     save,
		"fake-save":    "#!/bin/sh\ncat " + connector.Quote(fixture) + "\n",
		"fake-restore": "#!/bin/sh\n[ \"$1\" = --noflush ] || exit 3\ncat > " + connector.Quote(restored) + "\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := specs()["containerd"]
	pairs := "\nipt_pairs() { echo " + connector.Quote(filepath.Join(dir, "fake-save")+" "+filepath.Join(dir, "fake-restore")) + "; }\n"
	shell(t, libOf(t, s)+pairs+section(t, Script(s), "# iptables: kk's chains", "if has nft"))
	got, err := os.ReadFile(restored)
	if err != nil {
		t.Fatal(err)
	}
	want := `*nat
:KUBE-SERVICES - [0:0]
:cali-nat-outgoing - [0:0]
-D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-D POSTROUTING -j cali-nat-outgoing
-X KUBE-SERVICES
-X cali-nat-outgoing
COMMIT
*filter
:FLANNEL-FWD - [0:0]
-D USER -g FLANNEL-FWD
-X FLANNEL-FWD
COMMIT
`
	if string(got) != want {
		t.Errorf("iptables-restore input:\n%s\nwant:\n%s", got, want)
	}
	found := ParseResidue(shell(t, libOf(t, s)+pairs+section(t, ResidueScript(s), "ipt_pairs | while", "if has nft")))
	wantFound := []string{"chain nat KUBE-SERVICES (" + filepath.Join(dir, "fake") + ")", "chain nat cali-nat-outgoing (" + filepath.Join(dir, "fake") + ")",
		"chain filter FLANNEL-FWD (" + filepath.Join(dir, "fake") + ")"}
	if !slices.Equal(found, wantFound) {
		t.Errorf("residue: %q, want %q", found, wantFound)
	}
}

func TestParseResidue(t *testing.T) {
	got := ParseResidue("unit kubelet.service\n\n  path /etc/kubernetes  \r\nhosts-line 10.0.0.1 n1\n")
	want := []string{"unit kubelet.service", "path /etc/kubernetes", "hosts-line 10.0.0.1 n1"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if ParseResidue("\n \n") != nil {
		t.Errorf("blank output is not empty")
	}
}

func TestSpecFor(t *testing.T) {
	c := &config.Cluster{
		Hosts:                []*config.Host{{Name: "n1", Address: "10.0.0.1", InternalAddress: "10.0.0.1"}},
		ControlPlaneEndpoint: config.Endpoint{InternalLoadbalancer: config.LoadBalancerKubeVIP, Address: "10.0.0.100"},
		Kubernetes:           config.Kubernetes{Version: "v1.33.5", ContainerManager: Docker, ProxyMode: "ipvs"},
		Etcd:                 config.Etcd{Type: config.EtcdKubeKey, DataDir: "/data/etcd", BackupScriptDir: "/opt/scripts"},
		Registry:             config.Registry{DockerDataDir: "/data/docker"},
	}
	s := SpecFor(c, true)
	if !s.All || s.ContainerManager != Docker || s.CRISocket != "unix:///var/run/cri-dockerd.sock" || s.RuntimeRoot != "/data/docker" ||
		s.EtcdDataDir != "/data/etcd" || s.EtcdBackupScript != "/opt/scripts/etcd-backup.sh" || s.EtcdBackupDir != "/var/backups/kube_etcd" ||
		s.VIP != "10.0.0.100" || s.ProxyMode != "ipvs" {
		t.Errorf("spec: %+v", s)
	}
	if !slices.Contains(s.Paths(), "/data/etcd") || !slices.Contains(s.Paths(), "/data/docker") {
		t.Errorf("the spec's data dirs are not removed: %q", s.Paths())
	}
	// the platform's local volumes: their data goes with --all only
	c.Platform.LocalStorage, c.Storage.OpenEBSBasePath = true, "/data/volumes"
	if s := SpecFor(c, true); !slices.Contains(s.Paths(), "/data/volumes") {
		t.Errorf("--all leaves the local volumes: %q", s.Paths())
	}
	if s := SpecFor(c, false); slices.Contains(s.Paths(), "/data/volumes") {
		t.Errorf("without --all the local volumes are removed")
	}
	c.Platform.LocalStorage = false
	c.ControlPlaneEndpoint.Address = "10.0.0.1" // a host's own address is never taken away
	c.Kubernetes.ContainerManager = ""
	c.Etcd = config.Etcd{}
	s = SpecFor(c, false)
	if s.VIP != "" || s.ContainerManager != Containerd || s.RuntimeRoot != "/var/lib/containerd" || s.EtcdDataDir != "/var/lib/etcd" ||
		s.EtcdBackupScript != "/usr/local/bin/kube-scripts/etcd-backup.sh" {
		t.Errorf("spec: %+v", s)
	}
}

// libOf is the shared part both scripts start with.
func libOf(t *testing.T, s Spec) string {
	t.Helper()
	return section(t, Script(s), "", "warn() {")
}

// section is script from the line starting with from ("" = the start) to the line starting
// with to, excluded.
func section(t *testing.T, script, from, to string) string {
	t.Helper()
	lines := strings.SplitAfter(script, "\n")
	start, end := -1, -1
	for i, l := range lines {
		if start < 0 && (from == "" || strings.HasPrefix(l, from)) {
			start = i
		}
		if start >= 0 && i > start && strings.HasPrefix(l, to) {
			end = i
			break
		}
	}
	if start < 0 || end < 0 {
		t.Fatalf("no section %q..%q in the script", from, to)
	}
	return strings.Join(lines[start:end], "")
}

func shell(t *testing.T, script string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", script).Output()
	if err != nil {
		t.Fatalf("sh: %v\n%s", err, out)
	}
	return string(out)
}
