package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/artifacts/versions"
)

// noTerminal gives the test a standard input that is not a terminal, so a confirmation
// fails instead of waiting.
func noTerminal(t *testing.T) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	old := os.Stdin
	os.Stdin = r
	t.Cleanup(func() { os.Stdin = old; r.Close() })
}

// readManifest parses a manifest kk wrote.
func readManifest(t *testing.T, path string) *v1alpha2.Manifest {
	t.Helper()
	m, _, err := v1alpha2.LoadManifest(path)
	if err != nil {
		t.Fatalf("%s does not load: %v", path, err)
	}
	return m
}

// fakeAPIServer serves the node and pod lists of a cluster, as kube-apiserver does.
func fakeAPIServer(t *testing.T, nodes []corev1.Node, pods []corev1.Pod) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body any
		switch r.URL.Path {
		case "/api/v1/nodes":
			body = corev1.NodeList{TypeMeta: metav1.TypeMeta{Kind: "NodeList", APIVersion: "v1"}, Items: nodes}
		case "/api/v1/pods":
			body = corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: pods}
		default:
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
	}))
	return serverKubeconfig(t, srv)
}

// serverKubeconfig writes a kubeconfig of the test API server srv (closed when the test ends).
func serverKubeconfig(t *testing.T, srv *httptest.Server) string {
	t.Cleanup(srv.Close)
	return write(t, "kubeconfig", fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, srv.URL))
}

func node(name, arch, kubelet, runtime string) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{
		Architecture: arch, KubeletVersion: kubelet, ContainerRuntimeVersion: runtime}}}
}

func pod(ns, name string, labels map[string]string, images ...string) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
	for i, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprint("c", i), Image: img})
	}
	return p
}

func TestCreateManifestFromRunningCluster(t *testing.T) {
	kc := fakeAPIServer(t,
		[]corev1.Node{
			node("cp1", "amd64", "v1.33.1", "containerd://2.1.4"),
			node("w1", "arm64", "v1.33.4", "containerd://2.1.4"),
		},
		[]corev1.Pod{
			pod("kube-system", "etcd-cp1", map[string]string{"component": "etcd"}, "registry.k8s.io/etcd:3.5.21-0"),
			pod("kube-flannel", "kube-flannel-ds-x", nil, "ghcr.io/flannel-io/flannel:v0.26.7"),
			pod("default", "web", nil, "nginx:1.27", "bitnami/redis", "quay.io/x/y@sha256:"+strings.Repeat("ab", 32)),
		})
	out := filepath.Join(t.TempDir(), "m.yaml")
	msg, err := kk(t, "create", "manifest", "--kubeconfig", kc, "-f", out)
	if err != nil {
		t.Fatalf("%s %v", msg, err)
	}
	if !strings.Contains(msg, "nodes run kubelet v1.33.1, v1.33.4: the manifest is for the newest, v1.33.4") {
		t.Errorf("no warning about the mixed kubelets:\n%s", msg)
	}
	m := readManifest(t, out)
	if got := m.Spec.KubernetesDistributions; len(got) != 1 || got[0].Version != "v1.33.4" {
		t.Errorf("distributions %+v, want v1.33.4", got)
	}
	if !slices.Equal(m.Spec.Arches, []string{"amd64", "arm64"}) {
		t.Errorf("arches %v", m.Spec.Arches)
	}
	if m.Spec.Components.Etcd.Version != "" {
		t.Errorf("etcd runs as kubeadm's static pod, yet the manifest has the etcd binary %s", m.Spec.Components.Etcd.Version)
	}
	imgs := m.Images()
	for _, want := range []string{
		"docker.io/library/nginx:1.27", "docker.io/bitnami/redis:latest", "quay.io/x/y@sha256:" + strings.Repeat("ab", 32),
		"ghcr.io/flannel-io/flannel:v0.26.7", "registry.k8s.io/etcd:3.5.21-0", "registry.k8s.io/kube-apiserver:v1.33.4",
	} {
		if !slices.Contains(imgs, want) {
			t.Errorf("no image %s in %v", want, imgs)
		}
	}
	if slices.ContainsFunc(imgs, func(i string) bool { return strings.Contains(i, "calico") }) {
		t.Errorf("the cluster runs flannel, the manifest has calico: %v", imgs)
	}

	// docker nodes give docker with cri-dockerd; a runtime kk does not install is refused
	kc = fakeAPIServer(t, []corev1.Node{node("n", "amd64", "v1.32.3", "docker://27.5.1")}, nil)
	if msg, err := kk(t, "create", "manifest", "--kubeconfig", kc, "-f", out+".docker"); err != nil {
		t.Fatalf("%s %v", msg, err)
	}
	if m := readManifest(t, out+".docker"); len(m.Spec.Components.ContainerRuntimes) != 1 ||
		m.Spec.Components.ContainerRuntimes[0].Type != v1alpha2.RuntimeDocker || m.Spec.Components.CriDockerd.Version == "" {
		t.Errorf("docker cluster: runtimes %+v, cri-dockerd %q", m.Spec.Components.ContainerRuntimes, m.Spec.Components.CriDockerd.Version)
	}
	kc = fakeAPIServer(t, []corev1.Node{node("n", "amd64", "v1.32.3", "cri-o://1.32.0")}, nil)
	if _, err := kk(t, "create", "manifest", "--kubeconfig", kc, "-f", out+".crio"); err == nil || !strings.Contains(err.Error(), `node n runs container runtime "cri-o://1.32.0"`) {
		t.Errorf("cri-o: %v", err)
	}
}

func TestCreateManifestWithKubernetesVersion(t *testing.T) {
	t.Chdir(t.TempDir())
	msg, err := kk(t, "create", "manifest", "--with-kubernetes", "v1.33.2", "--arch", "amd64,arm64", "--with-registry")
	if err != nil || !strings.Contains(msg, "wrote manifest-sample.yaml") {
		t.Fatalf("%s %v", msg, err)
	}
	m := readManifest(t, "manifest-sample.yaml")
	if got := m.Spec.KubernetesDistributions; len(got) != 1 || got[0].Version != "v1.33.2" {
		t.Errorf("distributions %+v", got)
	}
	if !slices.Equal(m.Spec.Arches, []string{"amd64", "arm64"}) || m.Spec.Components.DockerRegistry.Version == "" {
		t.Errorf("arches %v, registry %q", m.Spec.Arches, m.Spec.Components.DockerRegistry.Version)
	}
	if !slices.Contains(m.Images(), "registry.k8s.io/kube-apiserver:v1.33.2") {
		t.Errorf("images %v", m.Images())
	}
	if _, err := kk(t, "create", "manifest", "--with-kubernetes", "v1.33.2", "--with-local-storage", "-f", "local.yaml"); err != nil {
		t.Fatal(err)
	}
	if imgs := readManifest(t, "local.yaml").Images(); !slices.ContainsFunc(imgs, func(i string) bool { return strings.Contains(i, "/kk-project/kk-local-csi:") }) {
		t.Errorf("--with-local-storage: images %v", imgs)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--with-kubernetes", "v1.9.1"}, "kk has no version table for v1.9"},
		{[]string{"--with-kubernetes", "latest"}, `--with-kubernetes "latest": want a release`},
		{[]string{"--with-kubernetes", "v1.33.2", "--kubeconfig", "kc"}, "give one"},
		{[]string{"--arch", "arm64"}, "--arch goes with --with-kubernetes"},
		{[]string{"--with-kubernetes", "v1.33.2", "--arch", "sparc"}, `unsupported arch "sparc"`},
		{[]string{"--kubeconfig", filepath.Join(t.TempDir(), "none")}, "kk create manifest needs a cluster"},
		{[]string{"--with-local-storage"}, "--with-local-storage goes with -c or --with-kubernetes"},
	} {
		if _, err := kk(t, append([]string{"create", "manifest", "-f", "x.yaml"}, c.args...)...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err %v, want %q", c.args, err, c.want)
		}
	}
}

// Before kk followed KubeKey, -f named the Cluster file read: such a file is never replaced,
// and the message names the flag that reads it now.
func TestCreateManifestNeverReplacesAClusterFile(t *testing.T) {
	body := head + "  hosts:\n  - {name: n1, address: 127.0.0.2, password: x}\n  roleGroups:\n    etcd: [n1]\n    control-plane: [n1]\n  kubernetes: {version: v1.33.1}\n"
	cluster := write(t, "cluster.yaml", body)
	_, err := kk(t, "create", "manifest", "-f", cluster, "--with-kubernetes", "v1.33.1", "--yes")
	if err == nil || !strings.Contains(err.Error(), "is a kind: Cluster file") || !strings.Contains(err.Error(), "kk create manifest -c "+cluster) {
		t.Errorf("err = %v", err)
	}
	if data, _ := os.ReadFile(cluster); string(data) != body {
		t.Errorf("the Cluster file changed:\n%s", data)
	}
	// another existing file is replaced once confirmed
	out := write(t, "m.yaml", "old\n")
	if msg, err := kk(t, "create", "manifest", "-c", cluster, "-f", out, "--yes"); err != nil {
		t.Fatalf("%s %v", msg, err)
	}
	if m := readManifest(t, out); m.Spec.KubernetesDistributions[0].Version != "v1.33.1" {
		t.Errorf("manifest %+v", m.Spec.KubernetesDistributions)
	}
	if _, err := kk(t, "create", "manifest", "-c", cluster, "-f", out, "-o", out); err == nil || !strings.Contains(err.Error(), "-f and -o") {
		t.Errorf("-f and -o: %v", err)
	}
}

func TestCreateConfigKubeKeyFlags(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "c.yaml")
	msg, err := kk(t, "create", "config", "--name", "prod", "--with-kubernetes", "1.33.5", "-f", f, "--with-kubesphere", "v3.4.1")
	if err != nil {
		t.Fatalf("%s %v", msg, err)
	}
	if !strings.Contains(msg, "warning: --with-kubesphere v3.4.1: kk installs the platform components of its own version table") {
		t.Errorf("no warning for --with-kubesphere's version:\n%s", msg)
	}
	// the ClusterConfiguration written loads, metrics-server on, and nothing in it is warned about
	var warns strings.Builder
	c, err := loadCluster(f, &warns)
	if err != nil || c.Kubernetes.Version != "v1.33.5" {
		t.Fatalf("sample: %v %+v", err, c)
	}
	if !c.Platform.MetricsServer || !strings.HasPrefix(c.Platform.Source, f+":") || strings.Contains(warns.String(), "ClusterConfiguration") {
		t.Errorf("platform %+v, warnings:\n%s", c.Platform, warns.String())
	}
	t.Setenv("KUBECONFIG", filepath.Join(dir, "no-kubeconfig")) // no cluster to read
	if _, err := kk(t, "create", "config", "--from-cluster", "-f", filepath.Join(dir, "d.yaml")); err == nil || !strings.Contains(err.Error(), "--from-cluster needs a running cluster") {
		t.Errorf("--from-cluster: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "d.yaml")); err == nil {
		t.Errorf("a refused command wrote its file")
	}
	if _, err := kk(t, "create", "config", "-f", f, "--yes"); err != nil {
		t.Errorf("--yes did not replace %s: %v", f, err)
	}
}

func TestCreateClusterKubeKeyFlags(t *testing.T) {
	file := write(t, "c.yaml", head+"  hosts:\n  - {name: n1, address: 127.0.0.2, password: x}\n  roleGroups:\n    etcd: [n1]\n    control-plane: [n1]\n  kubernetes: {version: v1.33.1}\n")
	var warn strings.Builder
	cl, err := (&clusterFlags{file: file, kube: "v1.34.2", skipPull: true}).cluster(&warn)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Kubernetes.Version != "v1.34.2" || !strings.Contains(warn.String(), "replaces kubernetes.version v1.33.1") || !strings.Contains(warn.String(), "--skip-pull-images") {
		t.Errorf("version %s, messages:\n%s", cl.Kubernetes.Version, warn.String())
	}
	if _, err := (&clusterFlags{file: file, containerManager: "docker"}).cluster(io.Discard); err == nil || !strings.Contains(err.Error(), "spec.kubernetes.containerManager in "+file) {
		t.Errorf("--container-manager against the file: %v", err)
	}
	if _, err := (&clusterFlags{file: file, containerManager: "crio"}).cluster(io.Discard); err == nil || !strings.Contains(err.Error(), "kk runs containerd or docker") {
		t.Errorf("crio: %v", err)
	}
	if _, err := defaultRouteAddress(); err == nil {
		cl, err := (&clusterFlags{kube: "v1.33.3", containerManager: "docker"}).cluster(io.Discard)
		if err != nil || cl.Kubernetes.Version != "v1.33.3" || cl.Kubernetes.ContainerManager != "docker" || cl.Kubernetes.ContainerRuntimeEndpoint != v1alpha2.DefaultCriDockerdEndpoint {
			t.Errorf("all-in-one: %v %+v", err, cl)
		}
	}
	// KubeKey flags kk lacks are refused by name before anything is read or run
	for _, args := range [][]string{
		{"--with-kubesphere", "v3.4.1"}, {"--download-cmd", "curl -o %s %s"}, {"--with-packages"},
	} {
		name := strings.TrimPrefix(args[0], "--")
		_, err := kk(t, append([]string{"create", "cluster", "-f", "/nonexistent.yaml", "--workdir", t.TempDir()}, args...)...)
		if err == nil || !strings.Contains(err.Error(), "KubeKey's --"+name+" is not supported") {
			t.Errorf("%v: %v", args, err)
		}
	}
	// --with-local-storage acts: kk's local storage on, as a ClusterConfiguration turns it on
	if cl, err := (&clusterFlags{file: file, localStorage: true}).cluster(io.Discard); err != nil || !cl.Platform.LocalStorage {
		t.Errorf("--with-local-storage: %v %+v", err, cl)
	}
	if cl, err := (&clusterFlags{file: file}).cluster(io.Discard); err != nil || cl.Platform.LocalStorage {
		t.Errorf("without --with-local-storage nor a ClusterConfiguration: %v %+v", err, cl)
	}
	if _, err := kk(t, "create", "cluster", "-f", file, "--with-kubernetes", "v1.99.0"); err == nil || !strings.Contains(err.Error(), "no version table for v1.99") {
		t.Errorf("unsupported version: %v", err)
	}
}

// KKZONE and KK_MIRROR are the defaults of every command that downloads, and a bad value is
// refused before anything runs.
func TestDownloadEnvEverywhere(t *testing.T) {
	t.Setenv("KKZONE", "cn")
	t.Setenv("KK_MIRROR", "")
	root := newRootCommand()
	for _, path := range [][]string{{"create", "cluster"}, {"create", "phase"}, {"artifact", "export"}, {"init", "registry"}} {
		c, _, err := root.Find(path)
		if err != nil {
			t.Fatal(err)
		}
		if f := c.Flags().Lookup("zone"); f == nil || f.DefValue != "cn" {
			t.Errorf("kk %s: --zone does not default to $KKZONE: %+v", strings.Join(path, " "), f)
		}
	}
	t.Setenv("KKZONE", "mars")
	m := write(t, "m.yaml", "apiVersion: kubekey.kubesphere.io/v1alpha2\nkind: Manifest\nmetadata: {name: m}\nspec:\n  arches: [amd64]\n  kubernetesDistributions: [{type: kubernetes, version: v1.33.1}]\n")
	_, err := kk(t, "artifact", "export", "-m", m, "-o", filepath.Join(t.TempDir(), "b.tar.gz"), "--workdir", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), `KKZONE): unknown zone "mars"`) {
		t.Errorf("export with KKZONE=mars: %v", err)
	}
	file := write(t, "c.yaml", head+"  hosts:\n  - {name: n1, address: 127.0.0.2, password: x}\n  roleGroups:\n    etcd: [n1]\n    control-plane: [n1]\n")
	if _, err := kk(t, "create", "cluster", "-f", file, "--yes", "--workdir", t.TempDir()); err == nil || !strings.Contains(err.Error(), `unknown zone "mars"`) {
		t.Errorf("create cluster with KKZONE=mars: %v", err)
	}
}

func TestIgnoreErrIsContinueOnError(t *testing.T) {
	root := newRootCommand()
	if err := root.PersistentFlags().Parse([]string{"--ignore-err"}); err != nil {
		t.Fatal(err)
	}
	if v := root.PersistentFlags().Lookup("continue-on-error").Value.String(); v != "true" {
		t.Errorf("--ignore-err: continue-on-error = %s", v)
	}
}

func TestArtifactImagesPushAlias(t *testing.T) {
	if _, err := kk(t, "artifact", "images", "push", "--registry", "127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "no bundle: pass -a BUNDLE") {
		t.Errorf("kk artifact images push: %v", err)
	}
	if _, err := kk(t, "artifact", "images", "push", "--images-dir", "x"); err == nil || !strings.Contains(err.Error(), "KubeKey's --images-dir is not supported") {
		t.Errorf("--images-dir: %v", err)
	}
	if _, err := kk(t, "artifact", "import"); err == nil || !strings.Contains(err.Error(), "pass BUNDLE or -a BUNDLE") {
		t.Errorf("import without a bundle: %v", err)
	}
	if _, err := kk(t, "artifact", "import", "a.tar.gz", "-a", "b.tar.gz"); err == nil || !strings.Contains(err.Error(), "two bundles") {
		t.Errorf("import with two bundles: %v", err)
	}
}

func TestCompletionType(t *testing.T) {
	for shell, want := range map[string]string{"bash": "bash completion V2 for kk", "zsh": "#compdef kk", "fish": "fish completion for kk", "powershell": "powershell completion for kk"} {
		byFlag, err := kk(t, "completion", "--type", shell)
		if err != nil || !strings.Contains(byFlag, want) {
			t.Errorf("--type %s: %v\n%.200s", shell, err, byFlag)
		}
		byArg, err := kk(t, "completion", shell)
		if err != nil || byArg != byFlag {
			t.Errorf("completion %s differs from --type %s: %v", shell, shell, err)
		}
	}
	if _, err := kk(t, "completion", "-t", "tcsh"); err == nil || !strings.Contains(err.Error(), `unknown shell "tcsh"`) {
		t.Errorf("tcsh: %v", err)
	}
	if _, err := kk(t, "completion", "bash", "--type", "zsh"); err == nil {
		t.Errorf("two shells accepted")
	}
}

func TestVersionShowSupportedK8s(t *testing.T) {
	out, err := kk(t, "version", "--show-supported-k8s")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(out); !slices.Equal(got, versions.Supported()) || len(got) == 0 {
		t.Errorf("got %q, want %q", got, versions.Supported())
	}
	out, err = kk(t, "version", "-o", "yaml")
	var v versionInfo
	if err != nil || yaml.Unmarshal([]byte(out), &v) != nil || v.Version != version {
		t.Errorf("-o yaml: %v %q", err, out)
	}
	if out, err = kk(t, "version", "-o", "short"); err != nil || out != version+"\n" {
		t.Errorf("-o short: %v %q", err, out)
	}
}
