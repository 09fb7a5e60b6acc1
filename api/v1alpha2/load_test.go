package v1alpha2

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/api/config"
)

func TestDefaults(t *testing.T) {
	c, _ := mustParse(t, base)
	h := c.Host("n1")
	if h.Port != 22 || h.User != "root" || h.Arch != "amd64" || h.InternalAddress != "10.0.0.1" || h.Timeout != 30*time.Second {
		t.Errorf("host defaults: %+v", h)
	}
	e := c.ControlPlaneEndpoint
	if e.Domain != "lb.kubesphere.local" || e.Port != 6443 || e.InternalLoadbalancer != "" {
		t.Errorf("endpoint defaults: %+v", e)
	}
	k := c.Kubernetes
	if k.Version != DefaultKubernetesVersion || k.ClusterName != "cluster.local" || k.DNSDomain != "cluster.local" ||
		k.ContainerManager != "containerd" || k.ProxyMode != "iptables" || k.MaxPods != 110 || !k.NodeLocalDNS ||
		k.ContainerRuntimeEndpoint != DefaultContainerdEndpoint {
		t.Errorf("kubernetes defaults: %+v", k)
	}
	n := c.Network
	if n.Plugin != "calico" || n.KubePodsCIDR != "10.233.64.0/18" || n.KubeServiceCIDR != "10.233.0.0/18" ||
		n.Calico.IPIPMode != "Always" || n.Calico.VXLANMode != "Never" || !n.Calico.IPv4NatOutgoing {
		t.Errorf("network defaults: %+v", n)
	}
	et := c.Etcd
	if et.Type != "kubekey" || et.Port != 2379 || et.PeerPort != 2380 || et.BackupDir != "/var/backups/kube_etcd" ||
		et.BackupPeriod != 1440 || et.KeepBackupNumber != 5 || et.DataDir != "/var/lib/etcd" || et.LogLevel != "info" {
		t.Errorf("etcd defaults: %+v", et)
	}
	if c.Name != "t" || c.Source != "test.yaml" || c.Storage.OpenEBSBasePath != "/var/openebs/local" {
		t.Errorf("cluster: %+v", c)
	}
}

func TestRolesAndOrder(t *testing.T) {
	c, _ := mustParse(t, base)
	names := func(hs []*config.Host) []string {
		var s []string
		for _, h := range hs {
			s = append(s, h.Name)
		}
		return s
	}
	if got := names(c.HostsWithRole(config.RoleWorker)); !reflect.DeepEqual(got, []string{"n2", "n3"}) {
		t.Errorf("workers %v", got)
	}
	if c.FirstControlPlane().Name != "n1" || !c.Host("n1").Has(config.RoleEtcd) || c.Host("n2").Has(config.RoleEtcd) {
		t.Error("roles wrong")
	}
	if c.Host("nope") != nil {
		t.Error("Host of an unknown name")
	}
	if c.ControlPlaneAddress() != "10.0.0.1" || c.APIServerURL() != "https://lb.kubesphere.local:6443" {
		t.Errorf("endpoint helpers: %s %s", c.ControlPlaneAddress(), c.APIServerURL())
	}
}

func TestMasterIsControlPlane(t *testing.T) {
	src := strings.Replace(base, "control-plane: [n1]", "master: [n1, n2]", 1)
	c, _ := mustParse(t, src)
	if got := c.HostsWithRole(config.RoleControlPlane); len(got) != 2 {
		t.Fatalf("control planes: %d", len(got))
	}
	if !reflect.DeepEqual(c.Host("n2").Roles, []config.Role{config.RoleControlPlane, config.RoleWorker}) {
		t.Errorf("roles of n2: %v", c.Host("n2").Roles)
	}
}

func TestRangeInRoleGroups(t *testing.T) {
	src := strings.Replace(base, "worker: [n2, n3]", "worker: [\"n[2:3]\"]", 1)
	c, _ := mustParse(t, src)
	if len(c.HostsWithRole(config.RoleWorker)) != 2 {
		t.Error("range not expanded")
	}
}

func TestPrivateKeyPath(t *testing.T) {
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(base, "password: x}", "privateKeyPath: \"~/.ssh/id_ed25519\"}", 1)
	c, _, err := ParseWithOptions("f.yaml", []byte(src), ParseOptions{HomeDir: home})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Host("n1").PrivateKeyPath; got != filepath.Join(home, ".ssh", "id_ed25519") {
		t.Errorf("~ not expanded: %s", got)
	}

	src = strings.Replace(base, "password: x}", "privateKeyPath: \"~/.ssh/missing\"}", 1)
	_, _, err = ParseWithOptions("f.yaml", []byte(src), ParseOptions{HomeDir: home})
	if err == nil || !strings.Contains(err.Error(), "f.yaml:7: spec.hosts[0].privateKeyPath") ||
		!strings.Contains(err.Error(), filepath.Join(home, ".ssh", "missing")) {
		t.Errorf("missing key: %v", err)
	}

	// No password and no key: KubeKey's default ~/.ssh/id_rsa must exist.
	src = strings.Replace(base, ", password: x}", "}", 1)
	_, _, err = ParseWithOptions("f.yaml", []byte(src), ParseOptions{HomeDir: home})
	if err == nil || !strings.Contains(err.Error(), "id_rsa") {
		t.Errorf("default key: %v", err)
	}
	// ...and the check can be skipped.
	if _, _, err := ParseWithOptions("f.yaml", []byte(src), ParseOptions{HomeDir: home, SkipFileChecks: true}); err != nil {
		t.Error(err)
	}
}

func TestLoad(t *testing.T) {
	_, _, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	var list ErrorList
	if !errors.As(err, &list) || !strings.Contains(err.Error(), "nope.yaml: cannot read the file") {
		t.Errorf("missing file: %v", err)
	}
	c, _, err := Load("testdata/kubekey-addons.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != "testdata/kubekey-addons.yaml" {
		t.Errorf("source %q", c.Source)
	}
}

func TestStringsKeptAsWritten(t *testing.T) {
	src := base + `  kubernetes:
    version: 1.30
  system:
    timezone: yes
`
	_, _, errs := parse(t, src)
	wantError(t, errs, 15, `spec.kubernetes.version: version "1.30" is not of the form vX.Y.Z`)

	src = strings.Replace(base, "password: x", "password: 123456", 1) + "  system:\n    timezone: on\n"
	c, _ := mustParse(t, src)
	if c.Host("n1").Password != "123456" || c.System.Timezone != "on" {
		t.Errorf("password %q timezone %q", c.Host("n1").Password, c.System.Timezone)
	}
}

func TestYAML11Booleans(t *testing.T) {
	src := base + "  kubernetes:\n    autoRenewCerts: yes\n    kata: {enabled: on}\n"
	c, _ := mustParse(t, src)
	if !c.Kubernetes.AutoRenewCerts || !c.Kubernetes.Kata {
		t.Error("yes/on not read as true")
	}
}

func TestAnchorsAndMerge(t *testing.T) {
	src := `apiVersion: kubekey.kubesphere.io/v1alpha2
kind: Cluster
metadata: {name: t}
spec:
  hosts:
  - &h {name: n1, address: 10.0.0.1, user: ubuntu, password: x}
  - {<<: *h, name: n2, address: 10.0.0.2}
  roleGroups:
    etcd: [n1]
    control-plane: [n1]
    worker: [n2]
`
	c, _ := mustParse(t, src)
	if c.Host("n2").User != "ubuntu" {
		t.Errorf("merge key not applied: %+v", c.Host("n2"))
	}
}
