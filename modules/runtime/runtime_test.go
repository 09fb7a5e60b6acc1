package runtime

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

func cluster(version string) *config.Cluster {
	return &config.Cluster{
		Hosts: []*config.Host{
			{Name: "cp1", Roles: []config.Role{config.RoleEtcd, config.RoleControlPlane}},
			{Name: "w1", Roles: []config.Role{config.RoleWorker}},
			{Name: "reg", Roles: []config.Role{config.RoleRegistry}},
		},
		Kubernetes: config.Kubernetes{Version: version, ContainerManager: "containerd", ContainerRuntimeEndpoint: "unix:///run/containerd/containerd.sock"},
	}
}

func someFiles(t *testing.T) binaries.Files {
	var f binaries.Files
	p := filepath.Join(t.TempDir(), "x")
	os.WriteFile(p, []byte("x"), 0o755)
	for _, n := range []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "crictl", "cni/bridge", "cni/loopback", "cni/host-local"} {
		f.Add("amd64", n, p)
	}
	f.Add("arm64", "cni/portmap", p)
	return f
}

func TestSpecFor(t *testing.T) {
	s := SpecFor(cluster("v1.34.4"), someFiles(t))
	if s.ContainerManager != Containerd || s.CRISocket != ContainerdSocket {
		t.Errorf("manager %q socket %q", s.ContainerManager, s.CRISocket)
	}
	if s.SandboxImage != "registry.k8s.io/pause:3.10.1" {
		t.Errorf("v1.34 sandbox = %q", s.SandboxImage)
	}
	if got := strings.Join(s.CNIPlugins, ","); got != "bridge,host-local,loopback,portmap" {
		t.Errorf("CNI plugins = %s", got)
	}
	if s := SpecFor(cluster("v1.33.13"), binaries.Files{}); s.SandboxImage != "registry.k8s.io/pause:3.10" {
		t.Errorf("v1.33 sandbox = %q", s.SandboxImage)
	}

	c := cluster("v1.34.4")
	c.Kubernetes.ContainerManager, c.Kubernetes.ContainerRuntimeEndpoint = "docker", ""
	c.Registry = config.Registry{PrivateRegistry: "dockerhub.kubekey.local/kubesphereio", RegistryMirrors: []string{"https://mirror.example"},
		InsecureRegistries: []string{"10.0.0.9:5000"}, DataRoot: "/data/docker"}
	s = SpecFor(c, binaries.Files{})
	if s.ContainerManager != Docker || s.CRISocket != CriDockerdSocket {
		t.Errorf("docker: manager %q socket %q", s.ContainerManager, s.CRISocket)
	}
	if s.SandboxImage != "dockerhub.kubekey.local/kubesphereio/pause:3.10.1" {
		t.Errorf("private sandbox = %q", s.SandboxImage)
	}
	if !slices.Equal(s.Mirrors["docker.io"], []string{"https://mirror.example"}) || s.DataRoot != "/data/docker" {
		t.Errorf("mirrors %v data root %q", s.Mirrors, s.DataRoot)
	}
	c.Registry.NamespaceOverride = "k8s"
	if s := SpecFor(c, binaries.Files{}); s.SandboxImage != "dockerhub.kubekey.local/kubesphereio/k8s/pause:3.10.1" {
		t.Errorf("namespace override sandbox = %q", s.SandboxImage)
	}
}

func TestRewriteImage(t *testing.T) {
	for _, c := range []struct{ ref, reg, ns, want string }{
		{"registry.k8s.io/pause:3.10.1", "", "", "registry.k8s.io/pause:3.10.1"},
		{"registry.k8s.io/pause:3.10.1", "reg.local:5000", "", "reg.local:5000/pause:3.10.1"},
		{"registry.k8s.io/coredns/coredns:v1.12.1", "reg.local", "", "reg.local/coredns/coredns:v1.12.1"},
		{"docker.io/calico/node:v3.29.3", "reg.local/", "kubesphereio", "reg.local/kubesphereio/node:v3.29.3"},
		{"haproxy:2.6", "reg.local", "", "reg.local/library/haproxy:2.6"},
		{"calico/cni:v3", "reg.local", "", "reg.local/calico/cni:v3"},
	} {
		if got := RewriteImage(c.ref, c.reg, c.ns); got != c.want {
			t.Errorf("RewriteImage(%q, %q, %q) = %q, want %q", c.ref, c.reg, c.ns, got, c.want)
		}
	}
}

// containerd's config as a tree, to look values up by path
func parseTOML(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := toml.Unmarshal(b, &m); err != nil {
		t.Fatalf("invalid TOML: %v\n%s", err, b)
	}
	return m
}

func lookup(m map[string]any, keys ...string) any {
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

func TestContainerdConfig(t *testing.T) {
	s := SpecFor(cluster("v1.34.4"), binaries.Files{})
	s.Auths = map[string]config.RegistryAuth{"https://reg.local:5000": {Username: "u", Password: `p"w\`}, "docker.io": {Username: "d", Password: "x"}}
	for _, container := range []bool{false, true} {
		b, err := RenderContainerdConfig(s, container)
		if err != nil {
			t.Fatal(err)
		}
		m := parseTOML(t, b)
		if v := lookup(m, "version"); v != int64(3) {
			t.Errorf("version = %v", v)
		}
		images := lookup(m, "plugins", "io.containerd.cri.v1.images").(map[string]any)
		if v := lookup(images, "pinned_images", "sandbox"); v != "registry.k8s.io/pause:3.10.1" {
			t.Errorf("sandbox = %v", v)
		}
		if v := lookup(images, "registry", "config_path"); v != "/etc/containerd/certs.d" {
			t.Errorf("config_path = %v", v)
		}
		if v := lookup(images, "registry", "configs", "reg.local:5000", "auth", "password"); v != `p"w\` {
			t.Errorf("auth password = %v", v)
		}
		if v := lookup(images, "registry", "configs", "registry-1.docker.io", "auth", "username"); v != "d" {
			t.Errorf("docker.io endpoint auth = %v", v)
		}
		rt := lookup(m, "plugins", "io.containerd.cri.v1.runtime").(map[string]any)
		if v := lookup(rt, "restrict_oom_score_adj"); v != container {
			t.Errorf("container=%v: restrict_oom_score_adj = %v", container, v)
		}
		runc := lookup(rt, "containerd", "runtimes", "runc").(map[string]any)
		if runc["runtime_type"] != "io.containerd.runc.v2" || lookup(runc, "options", "SystemdCgroup") != true || lookup(runc, "options", "BinaryName") != RuncPath {
			t.Errorf("runc runtime = %v", runc)
		}
		if v := lookup(rt, "cni", "bin_dirs"); len(v.([]any)) != 1 || v.([]any)[0] != CNIBinDir {
			t.Errorf("cni bin_dirs = %v", v)
		}
		if v := lookup(m, "root"); v != "/var/lib/containerd" {
			t.Errorf("root = %v", v)
		}
	}

	u, _ := RenderContainerdUnit(false)
	uc, _ := RenderContainerdUnit(true)
	if !strings.Contains(string(u), "OOMScoreAdjust=-999") || strings.Contains(string(uc), "OOMScoreAdjust") || strings.Contains(string(uc), "LimitNPROC") {
		t.Errorf("unit: OOMScoreAdjust and limits only outside containers:\n%s\n---\n%s", u, uc)
	}
	if !strings.Contains(string(u), "ExecStart=/usr/local/bin/containerd\n") || !strings.Contains(string(u), "Delegate=yes") {
		t.Errorf("unit:\n%s", u)
	}
	cr, _ := RenderCrictl(s)
	if !strings.Contains(string(cr), "runtime-endpoint: unix:///run/containerd/containerd.sock\n") {
		t.Errorf("crictl.yaml:\n%s", cr)
	}
}

func registrySpec(t *testing.T) Spec {
	certs := t.TempDir()
	os.WriteFile(filepath.Join(certs, "corp-ca.crt"), []byte("CA"), 0o644)
	os.WriteFile(filepath.Join(certs, "client.cert"), []byte("CERT"), 0o644)
	os.WriteFile(filepath.Join(certs, "client.key"), []byte("KEY"), 0o600)
	os.WriteFile(filepath.Join(certs, "README"), []byte("ignored"), 0o644)
	c := cluster("v1.34.4")
	c.Registry = config.Registry{
		PrivateRegistry:    "dockerhub.kubekey.local/kubesphereio",
		RegistryMirrors:    []string{"https://mirror.example", "mirror2.example:5000"},
		InsecureRegistries: []string{"mirror2.example:5000", "http://plain.example:8080", "https://selfsigned.example"},
		Auths: map[string]config.RegistryAuth{
			"corp.example": {Username: "u", Password: "p", CertsPath: certs},
		},
	}
	s := SpecFor(c, binaries.Files{})
	s.RegistryCA = []byte("KKCA")
	s.Mirrors["registry.k8s.io"] = []string{"http://10.231.7.1:5000"}
	return s
}

func fileMap(files []connector.File) map[string]connector.File {
	m := map[string]connector.File{}
	for _, f := range files {
		m[f.Path] = f
	}
	return m
}

func TestRegistryFiles(t *testing.T) {
	s := registrySpec(t)
	files, dirs, err := RegistryFiles(s)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"corp.example", "docker.io", "dockerhub.kubekey.local", "mirror2.example:5000", "plain.example:8080", "registry.k8s.io", "selfsigned.example"}
	for i := range want {
		want[i] = CertsDir + "/" + want[i]
	}
	if !slices.Equal(dirs, want) {
		t.Fatalf("dirs = %v, want %v", dirs, want)
	}
	fm := fileMap(files)
	hosts := func(h string) map[string]any {
		f, ok := fm[CertsDir+"/"+h+"/hosts.toml"]
		if !ok {
			t.Fatalf("no hosts.toml for %s", h)
		}
		if _, ok := fm[CertsDir+"/"+h+"/"+managedMarker]; !ok {
			t.Errorf("%s: no kk marker", h)
		}
		return parseTOML(t, f.Data)
	}

	// docker.io: upstream server, the mirrors first (the bare insecure one over http with
	// an HTTPS attempt first)
	d := hosts("docker.io")
	if d["server"] != "https://registry-1.docker.io" {
		t.Errorf("docker.io server = %v", d["server"])
	}
	if h := lookup(d, "host", "https://mirror.example").(map[string]any); h["skip_verify"] != nil || len(h["capabilities"].([]any)) != 2 {
		t.Errorf("mirror.example = %v", h)
	}
	if h := lookup(d, "host", "http://mirror2.example:5000").(map[string]any); h["skip_verify"] != true {
		t.Errorf("mirror2 = %v", h)
	}
	raw := string(fm[CertsDir+"/docker.io/hosts.toml"].Data)
	if strings.Index(raw, "mirror.example\"") > strings.Index(raw, "mirror2.example") {
		t.Errorf("mirrors out of order:\n%s", raw)
	}

	// registry.k8s.io mirrored over plain http, as written
	k := hosts("registry.k8s.io")
	if k["server"] != "https://registry.k8s.io" || lookup(k, "host", "http://10.231.7.1:5000", "skip_verify") != nil {
		t.Errorf("registry.k8s.io = %v", k)
	}
	// insecure registries
	if m := hosts("mirror2.example:5000"); m["server"] != "http://mirror2.example:5000" || m["skip_verify"] != true {
		t.Errorf("bare insecure = %v", m)
	}
	if m := hosts("plain.example:8080"); m["server"] != "http://plain.example:8080" || m["skip_verify"] != nil {
		t.Errorf("http insecure = %v", m)
	}
	if m := hosts("selfsigned.example"); m["server"] != "https://selfsigned.example" || m["skip_verify"] != true {
		t.Errorf("https insecure = %v", m)
	}
	// the private registry trusts kk's CA
	p := hosts("dockerhub.kubekey.local")
	if p["server"] != "https://dockerhub.kubekey.local" || !slices.Equal(p["ca"].([]any), []any{CertsDir + "/dockerhub.kubekey.local/ca.crt"}) {
		t.Errorf("private registry = %v", p)
	}
	if f := fm[CertsDir+"/dockerhub.kubekey.local/ca.crt"]; string(f.Data) != "KKCA" {
		t.Errorf("ca.crt = %q", f.Data)
	}
	// certsPath: CA and client pair copied and named, the key private, other files left out
	c := hosts("corp.example")
	base := CertsDir + "/corp.example/"
	if !slices.Equal(c["ca"].([]any), []any{base + "corp-ca.crt"}) {
		t.Errorf("corp ca = %v", c["ca"])
	}
	if cl := c["client"].([]any); len(cl) != 1 || !slices.Equal(cl[0].([]any), []any{base + "client.cert", base + "client.key"}) {
		t.Errorf("corp client = %v", c["client"])
	}
	if fm[base+"client.key"].Mode != 0o600 || string(fm[base+"client.cert"].Data) != "CERT" {
		t.Errorf("client files = %+v", fm[base+"client.key"])
	}
	if _, ok := fm[base+"README"]; ok {
		t.Error("README copied")
	}

	// a client certificate without its key is an error naming both
	os.Remove(filepath.Join(s.Auths["corp.example"].CertsPath, "client.key"))
	if _, _, err := RegistryFiles(s); err == nil || !strings.Contains(err.Error(), "client.key") {
		t.Errorf("missing key: %v", err)
	}

	// no registry settings: nothing under certs.d
	if files, dirs, err := RegistryFiles(SpecFor(cluster("v1.34.4"), binaries.Files{})); err != nil || len(files)+len(dirs) != 0 {
		t.Errorf("plain cluster: %v %v %v", files, dirs, err)
	}
}

// Docker cannot run on the test machines (see the testbed notes), so its side is checked
// here by what it renders.
func TestDockerRendering(t *testing.T) {
	s := registrySpec(t)
	s.ContainerManager, s.CRISocket = Docker, CriDockerdSocket
	s.DataRoot, s.BridgeIP = "/data/docker", "172.17.0.1/16"
	s.Auths["docker.io"] = config.RegistryAuth{Username: "hub", Password: "secret"}
	b, err := RenderDockerDaemon(s)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		ExecOpts  []string `json:"exec-opts"`
		Mirrors   []string `json:"registry-mirrors"`
		Insecure  []string `json:"insecure-registries"`
		DataRoot  string   `json:"data-root"`
		Bip       string   `json:"bip"`
		LogDriver string   `json:"log-driver"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("daemon.json: %v\n%s", err, b)
	}
	if !slices.Equal(d.ExecOpts, []string{"native.cgroupdriver=systemd"}) || d.DataRoot != "/data/docker" || d.Bip != "172.17.0.1/16" || d.LogDriver != "json-file" {
		t.Errorf("daemon.json = %s", b)
	}
	if !slices.Equal(d.Mirrors, []string{"https://mirror.example", "mirror2.example:5000"}) {
		t.Errorf("registry-mirrors = %v", d.Mirrors)
	}
	if !slices.Equal(d.Insecure, []string{"mirror2.example:5000", "plain.example:8080", "selfsigned.example"}) {
		t.Errorf("insecure-registries = %v", d.Insecure)
	}

	auth, err := RenderDockerAuth(s)
	if err != nil || !strings.Contains(string(auth), `"https://index.docker.io/v1/"`) || !strings.Contains(string(auth), `"corp.example"`) ||
		!strings.Contains(string(auth), b64("hub:secret")) {
		t.Errorf("docker auth: %v\n%s", err, auth)
	}

	cri, err := RenderCriDockerdUnit(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=/usr/local/bin/cri-dockerd ", "--container-runtime-endpoint=unix:///var/run/cri-dockerd.sock",
		"--network-plugin=cni", "--pod-infra-container-image=dockerhub.kubekey.local/kubesphereio/pause:3.10.1", "--cni-bin-dir=/opt/cni/bin",
		"Requires=docker.service"} {
		if !strings.Contains(string(cri), want) {
			t.Errorf("cri-docker.service lacks %q:\n%s", want, cri)
		}
	}
	du, _ := RenderDockerUnit(false)
	duc, _ := RenderDockerUnit(true)
	if !strings.Contains(string(du), "ExecStart=/usr/local/bin/dockerd\n") || !strings.Contains(string(du), "OOMScoreAdjust=-500") || strings.Contains(string(duc), "OOMScoreAdjust") {
		t.Errorf("docker.service:\n%s\n---\n%s", du, duc)
	}

	files, dirs, err := DockerRegistryFiles(s)
	if err != nil {
		t.Fatal(err)
	}
	fm := fileMap(files)
	if string(fm[DockerCertsDir+"/dockerhub.kubekey.local/ca.crt"].Data) != "KKCA" || fm[DockerCertsDir+"/corp.example/client.key"].Mode != 0o600 {
		t.Errorf("docker certs: %v", dirs)
	}
	if !slices.Equal(dirs, []string{DockerCertsDir + "/corp.example", DockerCertsDir + "/dockerhub.kubekey.local"}) {
		t.Errorf("docker cert dirs = %v", dirs)
	}
}

func taskNames(ts []pipeline.Task) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}

func TestTasksGraph(t *testing.T) {
	c := cluster("v1.34.4")
	var hosts []*pipeline.Host
	for _, h := range c.Hosts {
		var roles []string
		for _, r := range h.Roles {
			roles = append(roles, string(r))
		}
		hosts = append(hosts, pipeline.NewHost(h.Name, roles, nil))
	}
	archive := filepath.Join(t.TempDir(), "images.tar")
	writeArchive(t, archive)
	for _, manager := range []string{Containerd, Docker} {
		s := SpecFor(c, someFiles(t))
		s.ContainerManager, s.ImageArchive = manager, archive
		ts := Tasks(s)
		names := taskNames(ts)
		for _, want := range []string{TaskBinaries, TaskCNIPlugins, TaskConfig, TaskRegistryHosts, TaskUnits, TaskService, TaskCrictl, TaskImages, ReadyTask} {
			if !slices.Contains(names, want) {
				t.Errorf("%s: no task %s in %v", manager, want, names)
			}
		}
		last := ts[len(ts)-1]
		if last.Name != ReadyTask || !slices.Contains(last.After, TaskImages) || !slices.Contains(last.After, TaskService) || !slices.Contains(last.After, TaskCNIPlugins) {
			t.Errorf("%s: ready task = %s after %v", manager, last.Name, last.After)
		}
		for _, task := range ts {
			if sel := task.Hosts.Select(hosts); len(sel) != 2 || sel[0].Name != "cp1" || sel[1].Name != "w1" {
				t.Errorf("%s: %s runs on %v", manager, task.Name, sel)
			}
		}
		if _, err := pipeline.NewGraph(append([]pipeline.Task{facts.Task()}, ts...), hosts); err != nil {
			t.Errorf("%s: graph: %v", manager, err)
		}
		if want, _ := archiveImages(s); !slices.Equal(want, []string{"registry.k8s.io/pause:3.10.1"}) {
			t.Errorf("images from the archive = %v", want)
		}
	}
	// no archive, no import task; ready waits for the rest
	ts := Tasks(SpecFor(c, someFiles(t)))
	if names := taskNames(ts); slices.Contains(names, TaskImages) {
		t.Errorf("import without archive: %v", names)
	}
}

func writeArchive(t *testing.T, p string) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	idx := `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:00","size":1,` +
		`"annotations":{"io.containerd.image.name":"registry.k8s.io/pause:3.10.1","org.opencontainers.image.ref.name":"3.10.1"}}]}`
	for _, e := range []struct{ name, data string }{{"oci-layout", `{"imageLayoutVersion":"1.0.0"}`}, {"index.json", idx}} {
		tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg})
		tw.Write([]byte(e.data))
	}
	tw.Close()
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestArchiveRefs(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.tar")
	writeArchive(t, p)
	refs, err := ArchiveRefs(p)
	if err != nil || !slices.Equal(refs, []string{"registry.k8s.io/pause:3.10.1"}) {
		t.Errorf("refs = %v, %v", refs, err)
	}
	os.WriteFile(p, []byte("not a tar"), 0o644)
	if _, err := ArchiveRefs(p); err == nil {
		t.Error("garbage archive accepted")
	}
}

func TestFilesCheck(t *testing.T) {
	cmd := filesCheck([]connector.File{{Path: "/etc/a b", Data: []byte("x"), Mode: 0o600}})
	if !strings.Contains(cmd, "'2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881  /etc/a b'") || !strings.Contains(cmd, "= 600 ]") {
		t.Errorf("check = %s", cmd)
	}
}

// TestDataDirs: registry.containerdDataDir is containerd's root, registry.dockerDataDir docker's
// data-root, each winning over registry.dataRoot for its own runtime only.
func TestDataDirs(t *testing.T) {
	c := cluster("v1.34.4")
	c.Registry = config.Registry{DataRoot: "/data/root", ContainerdDataDir: "/data/containerd", DockerDataDir: "/data/docker"}
	toml, err := RenderContainerdConfig(SpecFor(c, binaries.Files{}), false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(toml), "\nroot = \"/data/containerd\"\n") {
		t.Errorf("containerd root:\n%s", toml)
	}
	c.Kubernetes.ContainerManager, c.Kubernetes.ContainerRuntimeEndpoint = "docker", ""
	daemon, err := RenderDockerDaemon(SpecFor(c, binaries.Files{}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(daemon), `"data-root": "/data/docker"`) {
		t.Errorf("docker data-root:\n%s", daemon)
	}
	c.Registry.DockerDataDir = ""
	if s := SpecFor(c, binaries.Files{}); s.DataRoot != "/data/root" {
		t.Errorf("docker without dockerDataDir: data root %q, want registry.dataRoot", s.DataRoot)
	}
	c.Kubernetes.ContainerManager, c.Kubernetes.ContainerRuntimeEndpoint = "containerd", ""
	c.Registry = config.Registry{DockerDataDir: "/data/docker"}
	if toml, _ := RenderContainerdConfig(SpecFor(c, binaries.Files{}), false); !strings.Contains(string(toml), "\nroot = \"/var/lib/containerd\"\n") {
		t.Errorf("containerd takes dockerDataDir:\n%s", toml)
	}
}
