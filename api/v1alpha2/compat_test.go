package v1alpha2

import (
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kk-project/kk/api/config"
)

// lineOf is the 1-based line of the first line of file that equals text (spaces included).
func lineOf(t *testing.T, file, text string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(data), "\n") {
		if l == text {
			return i + 1
		}
	}
	t.Fatalf("%s has no line %q", file, text)
	return 0
}

// TestKubeKey31AllFields loads a Cluster file with every field of KubeKey 3.1 set and checks
// that each lands in config, or gives its warning at its line.
func TestKubeKey31AllFields(t *testing.T) {
	const f = "testdata/kubekey-3.1-all-fields.yaml"
	c, w := loadNoDisk(t, f)

	// Every warning, exactly, each at the line of its field.
	atLine := func(line int, path, msg string) string {
		return f + ":" + strconv.Itoa(line) + ": " + path + ": " + msg
	}
	at := func(text, path, msg string) string { return atLine(lineOf(t, f, text), path, msg) }
	want := []string{
		at("        replicas: 3", "spec.network.calico.typha.replicas", "kk runs calico-kube-controllers and typha with one replica count: controller.replicas 2 is used for both"),
		at(`        nodeSelector: {calico-typha: "yes"}`, "spec.network.calico.typha.nodeSelector", "kk places calico-kube-controllers and typha with one node selector: controller.nodeSelector is used for both"),
		at("    kata: {enabled: true}", "spec.kubernetes.kata.enabled", "kata: not implemented yet, ignored"),
		at("    nodeFeatureDiscovery: {enabled: true}", "spec.kubernetes.nodeFeatureDiscovery.enabled", "nodeFeatureDiscovery: not implemented yet, ignored"),
		at("    nodeCidrMaskSizeIPv6: 80", "spec.kubernetes.nodeCidrMaskSizeIPv6", "nodeCidrMaskSizeIPv6: not implemented yet, ignored"),
		at("      ipAutoDetectionMethod: interface=eth1", "spec.network.calico.ipAutoDetectionMethod", "ipAutoDetectionMethod: not implemented yet, ignored"),
		at("      ipv6NatOutgoing: true", "spec.network.calico.ipv6NatOutgoing", "ipv6NatOutgoing: not implemented yet, ignored"),
		at("    flannel:", "spec.network.flannel", "flannel section ignored: network.plugin is calico"),
		at("    kubeovn:", "spec.network.kubeovn", "kubeovn section ignored: network.plugin is calico"),
		at("    cilium:", "spec.network.cilium", "cilium section ignored: network.plugin is calico"),
		at("    hybridnet:", "spec.network.hybridnet", "hybridnet section ignored: network.plugin is calico"),
		at("    port: 5443", "spec.registry.port", "port: not implemented yet, ignored (the registry kk deploys listens on its own port)"),
		at("    remoteMirrors:", "spec.registry.remoteMirrors", "remoteMirrors: not implemented yet, ignored (registryMirrors is read)"),
		// system has preInstall and postInstall too: the addon's come after "  addons:".
		atLine(addonLine(t, f, "    preInstall:"), "spec.addons[0].preInstall", `addon "storage": preInstall: not implemented yet, ignored`),
		atLine(addonLine(t, f, "    postInstall:"), "spec.addons[0].postInstall", `addon "storage": postInstall: not implemented yet, ignored`),
		at("      basePath: /data/openebs", "spec.storage.openebs.basePath", "the directory of kk's local volumes, which kk installs with KubeSphere's ClusterConfiguration in the file or with --with-local-storage (KubeKey installs OpenEBS's there)"),
		// "    enabled: true" also appears in kubernetes: kubesphere's is the file's last.
		atLine(lastLineOf(t, f, "    enabled: true"), "spec.kubesphere.enabled", "kk does not install KubeSphere yet: ignored (the cluster is installed without it)"),
	}
	got := slices.Clone([]string(w))
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	if c.Name != "every-field" {
		t.Errorf("name %q", c.Name)
	}
	cp1 := c.Host("cp1")
	if cp1 == nil || cp1.Port != 2222 || cp1.User != "admin" || cp1.Password != "s3cret" || cp1.Labels["zone"] != "a" || cp1.Timeout.Seconds() != 45 {
		t.Errorf("cp1 %+v", cp1)
	}
	if h := c.Host("cp2"); h.Arch != "arm64" || !strings.HasSuffix(h.PrivateKeyPath, "/.ssh/kk_ed25519") {
		t.Errorf("cp2 %+v", h)
	}
	if h := c.Host("cp3"); !strings.Contains(h.PrivateKey, "key") {
		t.Errorf("cp3 key %q", h.PrivateKey)
	}
	if len(c.HostsWithRole(config.RoleEtcd)) != 3 || len(c.HostsWithRole(config.RoleControlPlane)) != 3 ||
		c.HostsWithRole(config.RoleWorker)[0].Name != "gpu1" || c.HostsWithRole(config.RoleRegistry)[0].Name != "reg1" {
		t.Errorf("roles wrong")
	}
	wantEndpoint := config.Endpoint{InternalLoadbalancer: "kube-vip", Domain: "api.every-field.internal", Address: "192.168.50.100", Port: 8443, KubeVIPMode: "ARP"}
	if c.ControlPlaneEndpoint != wantEndpoint {
		t.Errorf("endpoint %+v", c.ControlPlaneEndpoint)
	}

	sys := c.System
	if !slices.Equal(sys.NTPServers, []string{"ntp.every-field.internal", "cp1"}) || sys.Timezone != "Europe/Berlin" ||
		!slices.Equal(sys.Rpms, []string{"nfs-utils"}) || !slices.Equal(sys.Debs, []string{"nfs-common"}) || sys.SkipConfigureOS {
		t.Errorf("system %+v", sys)
	}
	if len(sys.PreInstall) != 1 || !reflect.DeepEqual(sys.PreInstall[0], config.Script{Name: "disks", Bash: "bash -x ./disks.sh", Role: "worker", Materials: []string{"./disks.sh"}}) ||
		len(sys.PostInstall) != 1 || sys.PostInstall[0].Bash != "rm -rf /tmp/kk-scratch" ||
		len(sys.PostClusterInstall) != 1 || sys.PostClusterInstall[0].Role != "control-plane" {
		t.Errorf("scripts %+v", sys)
	}

	e := c.Etcd
	wantEtcd := config.Etcd{Type: "kubekey", Port: 12379, PeerPort: 12380, DataDir: "/data/etcd", BackupDir: "/data/etcd-backups",
		BackupPeriod: 720, KeepBackupNumber: 7, BackupScriptDir: "/usr/local/sbin/kube-scripts", HeartbeatInterval: 300,
		ElectionTimeout: 6000, SnapshotCount: 20000, AutoCompactionRetention: 4, Metrics: "extensive", QuotaBackendBytes: 8589934592,
		MaxRequestBytes: 3145728, MaxSnapshots: 6, MaxWals: 7, LogLevel: "warn",
		ExtraArgs: map[string]string{"experimental-initial-corrupt-check": "true", "enable-pprof": "true"}}
	if !reflect.DeepEqual(e, wantEtcd) {
		t.Errorf("etcd\n%+v\nwant\n%+v", e, wantEtcd)
	}

	d := c.DNS
	if d.DNSEtcHosts == "" || d.NodeEtcHosts == "" || d.CoreDNS.AdditionalConfigs != "log\n" || d.CoreDNS.RewriteBlock == "" ||
		!slices.Equal(d.CoreDNS.UpstreamDNSServers, []string{"1.1.1.1"}) ||
		!reflect.DeepEqual(d.CoreDNS.ExternalZones, []config.ExternalZone{{Zones: []string{"corp.internal"}, Nameservers: []string{"10.1.1.53"}, Cache: 60, Rewrite: []string{"name substring corp.internal corp.local"}}}) ||
		len(d.NodeLocalDNS.ExternalZones) != 1 || d.NodeLocalDNS.ExternalZones[0].Cache != 30 {
		t.Errorf("dns %+v", d)
	}

	k := c.Kubernetes
	if k.Version != "v1.30.14" || k.ClusterName != "every-field.local" || k.DNSDomain != "every-field.local" || k.DisableKubeProxy ||
		!k.MasqueradeAll || k.MaxPods != 150 || k.PodPidsLimit != 8192 || k.NodeCidrMaskSize != 25 || k.ProxyMode != "ipvs" ||
		!k.AutoRenewCerts || k.NodeLocalDNS || k.ContainerManager != "containerd" || k.ContainerRuntimeEndpoint != DefaultContainerdEndpoint ||
		!k.NodeFeatureDiscovery || !k.Kata || !k.Audit || !k.FeatureGates["InPlacePodVerticalScaling"] {
		t.Errorf("kubernetes %+v", k)
	}
	// nvidiaRuntime: true is the NVIDIA container toolkit with nvidia as the default runtime
	if g := c.GPU; !g.Toolkit || !g.DefaultRuntime || g.ToolkitVersion != "" || g.DriverVersion != "" {
		t.Errorf("gpu %+v", g)
	}
	if !slices.Equal(k.ApiserverCertExtraSans, []string{"api.example.org", "203.0.113.7"}) ||
		!slices.Equal(k.ApiserverArgs, []string{"--audit-log-maxage=10"}) || !slices.Equal(k.ControllerManagerArgs, []string{"--node-monitor-grace-period=50s"}) ||
		!slices.Equal(k.SchedulerArgs, []string{"--v=2"}) || !slices.Equal(k.KubeletArgs, []string{"--root-dir=/data/kubelet"}) ||
		!slices.Equal(k.KubeProxyArgs, []string{"--v=2"}) || k.KubeletConfiguration["imageGCHighThresholdPercent"] != float64(80) ||
		k.KubeProxyConfiguration["ipvs"] == nil {
		t.Errorf("kubernetes args %+v", k)
	}

	n := c.Network
	wantCalico := config.Calico{IPIPMode: "Never", VXLANMode: "Always", VethMTU: 1400, Typha: true, ReplicaCount: 2,
		NodeSelector: map[string]string{"node-role.kubernetes.io/control-plane": ""}}
	if n.Plugin != "calico" || n.KubePodsCIDR != "10.244.0.0/16" || n.KubeServiceCIDR != "10.96.0.0/16" || !reflect.DeepEqual(n.Calico, wantCalico) ||
		n.Flannel != (config.Flannel{BackendMode: "host-gw", DirectRouting: true}) || n.KubeOVN["joinCIDR"] != "100.64.0.0/16" ||
		n.Cilium["hubble"] == nil || n.Hybridnet["defaultNetworkType"] != "Overlay" || n.MultusCNI {
		t.Errorf("network %+v", n)
	}
	if c.Storage.OpenEBSBasePath != "/data/openebs" {
		t.Errorf("storage %+v", c.Storage)
	}

	r := c.Registry
	if r.Type != "registry" || !slices.Equal(r.RegistryMirrors, []string{"https://mirror.every-field.internal"}) ||
		!slices.Equal(r.InsecureRegistries, []string{"reg.every-field.internal:5000"}) || r.PrivateRegistry != "reg.every-field.internal:5000/library" ||
		r.NamespaceOverride != "kubesphereio" || r.DataRoot != "/data/docker-legacy" || r.BridgeIP != "172.31.0.1/16" ||
		r.ContainerdDataDir != "/data/containerd" || r.DockerDataDir != "/data/docker" || r.RegistryDataDir != "/data/registry" {
		t.Errorf("registry %+v", r)
	}
	if a := r.Auths["reg.every-field.internal:5000"]; a != (config.RegistryAuth{Username: "pusher", Password: "p@ss", SkipTLSVerify: true, CertsPath: "/etc/kk/certs/reg"}) {
		t.Errorf("auths %+v", r.Auths)
	}
	if !reflect.DeepEqual(r.NamespaceRewrite, &config.NamespaceRewrite{Policy: "changePrefix", Src: []string{"calico"}, Dest: "mirror"}) {
		t.Errorf("namespaceRewrite %+v", r.NamespaceRewrite)
	}

	if len(c.Addons) != 2 {
		t.Fatalf("addons %+v", c.Addons)
	}
	wantChart := config.Chart{Name: "nfs-subdir-external-provisioner", Repo: "https://charts.example.org", Version: "4.0.18",
		ValuesFile: "./nfs-values.yaml", Values: []string{"nfs.server=10.0.0.9"}, Wait: true}
	if a := c.Addons[0]; a.Name != "storage" || a.Namespace != "kube-system" || !reflect.DeepEqual(a.Sources.Chart, wantChart) || a.Retries != 3 || a.Delay != 10 {
		t.Errorf("addon 0 %+v", a)
	}
	wantYaml := config.AddonYaml{Path: []string{"./dashboards.yaml", "https://example.org/more.yaml"}, Values: []string{"replicas=2", "image=grafana/grafana:11.0.0"}}
	if a := c.Addons[1]; a.Namespace != "monitoring" || !reflect.DeepEqual(a.Sources.Yaml, wantYaml) {
		t.Errorf("addon 1 %+v", a)
	}
	if c.KubeSphere != (config.KubeSphere{Enabled: true, Version: "v3.4.1", Configurations: "https://example.org/ks-config.yaml"}) {
		t.Errorf("kubesphere %+v", c.KubeSphere)
	}
}

// addonLine is the line of text inside spec.addons (its first occurrence after "  addons:").
func addonLine(t *testing.T, file, text string) int {
	t.Helper()
	start := lineOf(t, file, "  addons:")
	data, _ := os.ReadFile(file)
	for i, l := range strings.Split(string(data), "\n")[start:] {
		if l == text {
			return start + i + 1
		}
	}
	t.Fatalf("no %q in addons", text)
	return 0
}

// lastLineOf is the line of the last line of file equal to text.
func lastLineOf(t *testing.T, file, text string) int {
	t.Helper()
	data, _ := os.ReadFile(file)
	lines := strings.Split(string(data), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if lines[i] == text {
			return i + 1
		}
	}
	t.Fatalf("%s has no line %q", file, text)
	return 0
}

// TestRefusals: values kk cannot install are errors naming the file and the field's line.
func TestRefusals(t *testing.T) {
	// base ends on line 13; the appended text starts on line 14.
	for _, tc := range []struct {
		name, add string
		line      int
		want      string
	}{
		{"kubeovn", "  network:\n    plugin: kubeovn\n", 15, "test.yaml:15: spec.network.plugin: network plugin kubeovn is not supported by kk yet: use calico, flannel, cilium or none"},
		{"hybridnet", "  network:\n    plugin: hybridnet\n", 15, "test.yaml:15: spec.network.plugin: network plugin hybridnet is not supported by kk yet"},
		{"harbor", "  registry:\n    type: harbor\n", 15, "test.yaml:15: spec.registry.type: registry type harbor is not supported: kk deploys the distribution registry"},
		{"isula", "  kubernetes:\n    containerManager: isula\n", 15, `test.yaml:15: spec.kubernetes.containerManager: containerManager "isula" is not supported: use containerd or docker`},
		{"crio", "  kubernetes:\n    containerManager: crio\n", 15, `test.yaml:15: spec.kubernetes.containerManager: containerManager "crio" is not supported`},
		{"multus", "  network:\n    multusCNI:\n      enabled: true\n", 16, "test.yaml:16: spec.network.multusCNI.enabled: Multus is not implemented in kk yet"},
		{"k3s", "  kubernetes:\n    type: k3s\n", 15, `test.yaml:15: spec.kubernetes.type: type "k3s" is not supported`},
		{"extraArgs item", "  etcd:\n    extraArgs:\n    - --ok=1\n    - \"--Bad Flag=1\"\n", 17, `test.yaml:17: spec.etcd.extraArgs[1]: "--Bad Flag=1": "Bad Flag" is not a flag name`},
		{"extraArgs twice", "  etcd:\n    extraArgs: [--a=1, --a=2]\n", 15, "test.yaml:15: spec.etcd.extraArgs[1]: flag --a is given twice (first on line 15)"},
		{"extraArgs scalar", "  etcd:\n    extraArgs: --a=1\n", 15, `test.yaml:15: spec.etcd.extraArgs: expected a list of "--name=value" or a mapping name: value, got "--a=1"`},
		{"extraArgs nested", "  etcd:\n    extraArgs:\n      a: [1]\n", 16, "test.yaml:16: spec.etcd.extraArgs.a: expected a flag value, got a list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, errs := parse(t, base+tc.add)
			if len(errs) == 0 {
				t.Fatal("accepted")
			}
			for _, e := range errs {
				if e.Line == tc.line && strings.HasPrefix(e.Error(), tc.want) {
					return
				}
			}
			t.Errorf("no error %q on line %d in:\n%v", tc.want, tc.line, errs)
		})
	}
}

// TestOlderKubeKeyFields: fields KubeKey 3 dropped are read with a warning naming what to use.
func TestOlderKubeKeyFields(t *testing.T) {
	c, w := mustParse(t, base+`  kubernetes:
    imageRepo: kubesphere
    etcdBackupDir: /old/backups
    etcdBackupPeriod: 30
    keepBackupNumber: 9
    etcdBackupScript: /old/scripts
  etcd:
    keepBackupNumber: 4
`)
	if c.Etcd.BackupDir != "/old/backups" || c.Etcd.BackupPeriod != 30 || c.Etcd.BackupScriptDir != "/old/scripts" || c.Etcd.KeepBackupNumber != 4 {
		t.Errorf("etcd %+v", c.Etcd)
	}
	for _, want := range []string{
		"test.yaml:15: spec.kubernetes.imageRepo: imageRepo (KubeKey 1.x) is ignored: KubeKey 2 and later, and kk, take images from registry.privateRegistry with registry.namespaceOverride",
		"test.yaml:16: spec.kubernetes.etcdBackupDir: etcdBackupDir (KubeKey 2.0) moved to spec.etcd.backupDir: read as that; write it there",
		"test.yaml:17: spec.kubernetes.etcdBackupPeriod: etcdBackupPeriod (KubeKey 2.0) moved to spec.etcd.backupPeriod",
		"test.yaml:18: spec.kubernetes.keepBackupNumber: keepBackupNumber (KubeKey 2.0) is ignored: spec.etcd.keepBackupNumber, which replaced it, is set",
		"test.yaml:19: spec.kubernetes.etcdBackupScript: etcdBackupScript (KubeKey 2.0) moved to spec.etcd.backupScript",
	} {
		if !slices.ContainsFunc(w, func(x string) bool { return strings.HasPrefix(x, want) }) {
			t.Errorf("no warning %q in:\n%s", want, strings.Join(w, "\n"))
		}
	}
}

// TestVersionWithoutV: KubeKey accepts a version without its "v"; kk normalizes it. The
// metadata KubeKey's own tools write (creationTimestamp: null) is accepted.
func TestVersionWithoutV(t *testing.T) {
	src := strings.Replace(base, "  name: t\n", "  name: t\n  creationTimestamp: null\n", 1) + "  kubernetes:\n    version: 1.30.14\n"
	c, w := mustParse(t, src)
	if c.Kubernetes.Version != "v1.30.14" {
		t.Errorf("version %q", c.Kubernetes.Version)
	}
	if len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
	for _, bad := range []string{"1.30", "v1.30", "1.30.14-rc.1"} {
		_, _, errs := parse(t, base+"  kubernetes:\n    version: "+bad+"\n")
		wantError(t, errs, 15, "spec.kubernetes.version", "is not of the form vX.Y.Z")
	}
}

// TestEtcdExtraArgsForms: KubeKey's list of "--name=value", and a mapping, give the same flags,
// values as written.
func TestEtcdExtraArgsForms(t *testing.T) {
	want := map[string]string{"quota-backend-bytes": "8589934592", "enable-pprof": "true", "listen-metrics-urls": "http://0.0.0.0:2381", "auto-compaction-mode": "1.10"}
	for _, src := range []string{
		"  etcd:\n    extraArgs:\n    - --quota-backend-bytes=8589934592\n    - --enable-pprof\n    - listen-metrics-urls=http://0.0.0.0:2381\n    - --auto-compaction-mode=1.10\n",
		"  etcd:\n    extraArgs:\n      quota-backend-bytes: 8589934592\n      --enable-pprof: yes\n      listen-metrics-urls: http://0.0.0.0:2381\n      auto-compaction-mode: 1.10\n",
	} {
		c, _ := mustParse(t, base+src)
		got := c.Etcd.ExtraArgs
		if src[len(src)-5:] == "1.10\n" && strings.Contains(src, "yes") {
			want["enable-pprof"] = "yes" // a mapping keeps the value's text
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("extraArgs %v, want %v", got, want)
		}
	}
	c, _ := mustParse(t, base)
	if c.Etcd.ExtraArgs != nil {
		t.Errorf("no extraArgs gives %v", c.Etcd.ExtraArgs)
	}
}

// TestYAMLSyntaxErrorLines locks the line reported for syntax errors: yaml.v3 gives its
// parser's errors 0-based (one line early) and its scanner's 1-based.
func TestYAMLSyntaxErrorLines(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		line      int
		msg       string
	}{
		{"tab indentation", "apiVersion: v1\nspec:\n\thosts: []\n", 3, "found character that cannot start any token"},
		{"unclosed double quote", "apiVersion: v1\nkind: \"Cluster\nspec: {}\n", 2, "found unexpected end of stream"},
		{"unclosed single quote", "apiVersion: v1\nkind: Cluster\nmetadata:\n  name: 'x\n", 4, "found unexpected end of stream"},
		{"bad mapping", "apiVersion: v1\nkind: Cluster: x\n", 2, "mapping values are not allowed in this context"},
		// yaml.v3 names the line of the list being parsed (3), not of "b: c".
		{"mapping inside a list", "apiVersion: v1\nspec:\n  - a\n  b: c\n", 3, "did not find expected '-' indicator"},
		{"list after a mapping", "apiVersion: v1\nkind: Cluster\n- x\n", 3, "did not find expected key"},
		{"unclosed flow list", "apiVersion: v1\nspec:\n  hosts: [a, b\n  roleGroups: {}\n", 3, "did not find expected ',' or ']'"},
		{"unclosed flow mapping", "apiVersion: v1\nspec: {a: 1\n", 2, "did not find expected ',' or '}'"},
		{"first line", "kind: [b}\n", 1, "did not find expected ',' or ']'"},
		{"unknown alias", "apiVersion: v1\nkind: Cluster\nspec:\n  hosts: *nope\n", 4, "unknown anchor 'nope' referenced"},
		{"control character", "apiVersion: v1\nkind: Cluster\nmetadata: {name: \x01}\n", 3, "control characters are not allowed"},
		{"not UTF-8", "apiVersion: v1\n\nkind: Clust\xffer\n", 3, "invalid leading UTF-8 octet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := "test.yaml:" + strconv.Itoa(tc.line) + ": invalid YAML: " + tc.msg
			_, _, errs := parse(t, tc.src)
			if len(errs) != 1 || errs[0].Error() != want {
				t.Errorf("Cluster: got %v, want %s", errs, want)
			}
			_, _, err := ParseManifest("test.yaml", []byte(tc.src))
			if err == nil || err.Error() != want {
				t.Errorf("Manifest: got %v, want %s", err, want)
			}
		})
	}
}

// TestKubeKey31ManifestAllFields loads a Manifest with every field of KubeKey 3.1 set: each
// lands in the Manifest, and what kk does not package is warned by name at its line.
func TestKubeKey31ManifestAllFields(t *testing.T) {
	const f = "testdata/manifest-3.1-all-fields.yml"
	m, w := loadManifest(t, f)
	at := func(text, path, msg string) string {
		return f + ":" + strconv.Itoa(lineOf(t, f, text)) + ": " + path + ": " + msg
	}
	want := []string{
		at("  - arch: amd64", "spec.operatingSystems[0]", `operating system "debian 12 amd64": kk does not package OS repository ISOs: ignored (kk installs OS packages from the hosts' own repositories)`),
		at("    containerRuntimes:", "spec.components.containerRuntimes", "containerd needs runc: kk adds runc "+m.Spec.Components.Runc.Version+" (set spec.components.runc.version to choose)"),
		at("    containerRuntimes:", "spec.components.containerRuntimes", "docker needs cri-dockerd: kk adds cri-dockerd "+m.Spec.Components.CriDockerd.Version+" (set spec.components.cri-dockerd.version to choose)"),
		at(`    docker-registry: {version: "2"}`, "spec.components.docker-registry", `kk packages the distribution registry program `+DefaultRegistryVersion+` for docker-registry "2"`),
		at("    harbor: {version: v2.10.1}", "spec.components.harbor", "kk does not package harbor: ignored"),
		at("    docker-compose: {version: v2.26.1}", "spec.components.docker-compose", "kk does not package docker-compose: ignored"),
	}
	got := slices.Clone([]string(w))
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if m.Spec.Components.Runc.Version == "" || m.Spec.Components.CriDockerd.Version == "" {
		t.Errorf("runc/cri-dockerd not defaulted: %+v", m.Spec.Components)
	}

	if m.Metadata.Name != "every-field" || m.Metadata.Namespace != "kubekey-system" || m.Metadata.Labels["site"] != "lab" || m.Metadata.Annotations["note"] != "all fields" {
		t.Errorf("metadata %+v", m.Metadata)
	}
	s := m.Spec
	wantOS := OperatingSystem{Arch: "amd64", Type: "linux", ID: "debian", Version: "12", OSImage: "Debian GNU/Linux 12 (bookworm)",
		Repository: OSRepository{ISO: OSRepositoryISO{LocalPath: "/srv/isos/debian-12-amd64.iso", URL: "https://isos.example.org/debian-12-amd64.iso"}}}
	if !slices.Equal(s.Arches, []string{"amd64", "arm64"}) || len(s.OperatingSystems) != 1 || s.OperatingSystems[0] != wantOS {
		t.Errorf("arches %v, operating systems %+v", s.Arches, s.OperatingSystems)
	}
	if len(s.KubernetesDistributions) != 1 || s.KubernetesDistributions[0] != (KubernetesDistribution{Type: "kubernetes", Version: "1.30.6"}) {
		t.Errorf("distributions %+v", s.KubernetesDistributions)
	}
	c := s.Components
	if c.Helm.Version != "v3.15.4" || c.CNI.Version != "v1.4.1" || c.Etcd.Version != "v3.5.13" || c.Crictl.Version != "v1.30.0" ||
		c.Calicoctl.Version != "v3.27.4" || c.DockerRegistry.Version != "2" || c.Harbor.Version != "v2.10.1" || c.DockerCompose.Version != "v2.26.1" ||
		!slices.Equal(c.ContainerRuntimes, []ContainerRuntime{{Type: "containerd", Version: "1.7.22"}, {Type: "docker", Version: "24.0.9"}}) {
		t.Errorf("components %+v", c)
	}
	var names []string
	for _, comp := range m.Components() {
		if comp.Arch == "arm64" {
			names = append(names, comp.Name)
		}
	}
	if want := []string{"kubeadm", "kubelet", "kubectl", "helm", "cni-plugins", "etcd", "containerd", "docker", "runc", "cri-dockerd", "crictl", "calicoctl", "registry"}; !slices.Equal(names, want) {
		t.Errorf("arm64 components %v, want %v", names, want)
	}
	if !slices.Equal(m.Images(), []string{"docker.io/calico/node:v3.27.4", "registry.k8s.io/kube-apiserver:v1.30.6"}) {
		t.Errorf("images %v", m.Images())
	}
	if a := s.Registry.Auths["reg.example.org:5000"]; a != (ManifestRegistryAuth{Username: "puller", Password: "p@ss", SkipTLSVerify: true, PlainHTTP: true, CertsPath: "/etc/kk/certs/reg"}) {
		t.Errorf("auths %+v", s.Registry.Auths)
	}
}

// TestAliasCycleAndBomb: an alias inside its own anchor, or aliases that multiply a small
// file into a huge one, are errors at their line, found quickly.
func TestAliasCycleAndBomb(t *testing.T) {
	_, _, errs := parse(t, base+"  kubernetes:\n    kubeletConfiguration: &a {x: [*a, *a]}\n")
	wantError(t, errs, 15, "alias *a is inside its own anchor (a cycle)")

	bomb := base + "  kubernetes:\n    kubeletConfiguration:\n      a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i, name := range []string{"b", "c", "d", "e", "f", "g"} {
		prev := string(rune('a' + i))
		bomb += "      " + name + ": &" + name + " [" + strings.Repeat("*"+prev+", ", 9) + "*" + prev + "]\n"
	}
	_, _, errs = parse(t, bomb)
	wantError(t, errs, 0, "spec.kubernetes.kubeletConfiguration", "the document is too large once its aliases are expanded")
}

// TestCalicoPlacement: typha runs when asked or, as KubeKey does, above 50 nodes; typha's
// replicas and node selector place both deployments when controller gives none.
func TestCalicoPlacement(t *testing.T) {
	c, w := mustParse(t, base+"  network:\n    calico:\n      typha: {replicas: 3, nodeSelector: {pool: infra}}\n")
	if got := c.Network.Calico; got.Typha || got.ReplicaCount != 3 || !reflect.DeepEqual(got.NodeSelector, map[string]string{"pool": "infra"}) {
		t.Errorf("calico %+v", got)
	}
	if len(w) != 0 {
		t.Errorf("warnings %v", w)
	}
	c, _ = mustParse(t, base+"  network:\n    calico:\n      typha: {enabled: true}\n")
	if !c.Network.Calico.Typha || c.Network.Calico.ReplicaCount != 0 {
		t.Errorf("calico %+v", c.Network.Calico)
	}

	var b strings.Builder
	b.WriteString("apiVersion: kubekey.kubesphere.io/v1alpha2\nkind: Cluster\nmetadata: {name: big}\nspec:\n  hosts:\n")
	for i := 1; i <= 51; i++ {
		b.WriteString("  - {name: n" + strconv.Itoa(i) + ", address: 10.1.0." + strconv.Itoa(i) + ", password: x}\n")
	}
	b.WriteString("  roleGroups:\n    etcd: [n1]\n    control-plane: [n1]\n    worker: [\"n[2:51]\"]\n")
	c, _ = mustParse(t, b.String())
	if !c.Network.Calico.Typha {
		t.Error("typha off on 51 nodes")
	}
	c, _ = mustParse(t, strings.Replace(b.String(), "[\"n[2:51]\"]", "[\"n[2:50]\"]", 1))
	if c.Network.Calico.Typha {
		t.Error("typha on with 50 nodes")
	}
}
