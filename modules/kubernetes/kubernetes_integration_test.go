//go:build integration

package kubernetes_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/artifacts/versions"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/e2e/images"
	"github.com/kk-project/kk/e2e/mirror"
	"github.com/kk-project/kk/e2e/testbed"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/modules/kubernetes"
	"github.com/kk-project/kk/modules/osprep"
	"github.com/kk-project/kk/modules/runtime"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/pipeline/session"
)

const mirrorDir = "/var/tmp/kk-mirror"

// version is the newest Kubernetes the mirror builds.
var version = mirror.DefaultSpec().Kubernetes[0]

// kubeadm's images for version (`kubeadm config images list`), as kk's version table names them.
var kubeadmImages = func() []string {
	s, err := versions.For(version)
	if err != nil {
		panic(err)
	}
	return append(s.KubeImages(true), s.EtcdImageRef())
}()

// programs are the runtime's and Kubernetes' programs from the local mirror.
func programs(t *testing.T) binaries.Files {
	t.Helper()
	var f binaries.Files
	if err := mirror.RuntimeFiles(mirrorDir, mirror.DefaultSpec(), t.TempDir(), &f); err != nil {
		t.Fatal(err)
	}
	for _, p := range kubernetes.Programs {
		f.Add("amd64", p, filepath.Join(mirrorDir, mirror.KubernetesPath(version, p)))
	}
	if err := f.Check([]string{"amd64"}, append([]string{"containerd", "runc", "crictl", "cni/loopback"}, kubernetes.Programs...)); err != nil {
		t.Fatal(err)
	}
	return f
}

// imageArchive writes a tar of an OCI layout with only refs, taken from the test images.
func imageArchive(t *testing.T, refs []string) string {
	t.Helper()
	layout := images.LayoutDir(images.DefaultOutDir)
	idxData, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatalf("test images: %v (build them first: make mirror)", err)
	}
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
		Platform    map[string]any    `json:"platform,omitempty"`
	}
	var idx struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType,omitempty"`
		Manifests     []desc `json:"manifests"`
	}
	if err := json.Unmarshal(idxData, &idx); err != nil {
		t.Fatal(err)
	}
	blob := func(d string) string {
		return filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))
	}
	var keep []desc
	blobs := map[string]bool{}
	for _, d := range idx.Manifests {
		if !slices.Contains(refs, d.Annotations[images.AnnotationContainerdRef]) {
			continue
		}
		keep = append(keep, d)
		blobs[d.Digest] = true
		var m struct {
			Config desc   `json:"config"`
			Layers []desc `json:"layers"`
		}
		b, err := os.ReadFile(blob(d.Digest))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("manifest %s: %v", d.Digest, err)
		}
		blobs[m.Config.Digest] = true
		for _, l := range m.Layers {
			blobs[l.Digest] = true
		}
	}
	if len(keep) != len(refs) {
		var have []string
		for _, d := range keep {
			have = append(have, d.Annotations[images.AnnotationContainerdRef])
		}
		t.Fatalf("test images: want %v, the layout has only %v of them", refs, have)
	}
	idx.Manifests = keep
	newIdx, _ := json.Marshal(idx)
	p := filepath.Join(t.TempDir(), "images.tar")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(out)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(946684800, 0)}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	add("index.json", newIdx)
	for d := range blobs {
		b, err := os.ReadFile(blob(d))
		if err != nil {
			t.Fatal(err)
		}
		add("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	out.Close()
	return p
}

func rootSSH(t *testing.T, bed *testbed.Bed, m testbed.Machine, cmd string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := connector.DialSSH(ctx, connector.SSHConfig{Host: m.Name, Address: m.Address, Port: 22, User: "root",
		PrivateKeyPath: bed.KeyPath, KnownHostsPath: bed.KnownHosts})
	if err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
	defer c.Close()
	res, err := c.Exec(ctx, cmd, connector.ExecOptions{})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		t.Fatalf("%s: %v\nstdout: %s", m.Name, err, res.Stdout)
	}
	return res.Stdout
}

func decodeB64(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	return string(b), err
}

type cluster struct {
	bed   *testbed.Bed
	c     *config.Cluster
	work  string
	tasks func() []pipeline.Task // a fresh set per run, as kk builds it
	spec  kubernetes.Spec
}

// build is the whole pipeline up to Kubernetes for the bed's Cluster file, edited, with kk's
// workdir work (a cluster grown from an earlier one keeps its workdir): facts, the OS, the
// container runtime with kubeadm's images imported offline, and this package's tasks.
func build(t *testing.T, bed *testbed.Bed, work string, edit func(c *config.Cluster)) *cluster {
	t.Helper()
	c, _, err := v1alpha2.Load(bed.ClusterFile)
	if err != nil {
		t.Fatal(err)
	}
	c.Kubernetes.Version = version
	c.Etcd.Type = config.EtcdKubeadm
	if edit != nil {
		edit(c)
	}
	files := programs(t)
	rs := runtime.SpecFor(c, files)
	rs.ImageArchive, rs.Images = imageArchive(t, kubeadmImages), kubeadmImages
	ks, err := kubernetes.SpecFor(c, work, files)
	if err != nil {
		t.Fatal(err)
	}
	tasks := func() []pipeline.Task {
		tasks := []pipeline.Task{facts.Task()}
		tasks = append(tasks, osprep.Tasks(osprep.SpecFor(c))...)
		tasks = append(tasks, runtime.Tasks(rs)...)
		return append(tasks, kubernetes.Tasks(ks)...)
	}
	return &cluster{bed: bed, c: c, work: work, tasks: tasks, spec: ks}
}

func (cl *cluster) run(t *testing.T, dryRun bool) *pipeline.Report {
	t.Helper()
	var out bytes.Buffer
	sess, err := session.New(cl.c, session.Options{Workdir: cl.work, KnownHosts: cl.bed.KnownHosts, Out: &out, Err: &out, DryRun: dryRun})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	rep, err := sess.Run(ctx, "create cluster", cl.tasks())
	t.Logf("%s", out.String())
	if err != nil {
		t.Fatalf("run failed: %v", err)
	}
	return rep
}

// noChange fails for every task×host a run changed (or, in a dry run, would change).
func noChange(t *testing.T, rep *pipeline.Report, what string) {
	t.Helper()
	for _, r := range rep.Results {
		if r.Status == pipeline.StatusChanged || r.Status == pipeline.StatusPlanned {
			t.Errorf("%s: %s on %s: %s %s", what, r.Task, r.Host, r.Status, r.Message)
		}
	}
}

// kubectl runs the mirror's kubectl on this machine with the kubeconfig kk fetched.
func (cl *cluster) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	bin := filepath.Join(mirrorDir, mirror.KubernetesPath(version, "kubectl"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", cl.spec.Kubeconfig}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

type nodeInfo struct {
	Labels map[string]string
	Taints []string
	IP     string
}

func (cl *cluster) nodes(t *testing.T) map[string]nodeInfo {
	t.Helper()
	var l struct {
		Items []struct {
			Metadata struct {
				Name   string            `json:"name"`
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec struct {
				Taints []struct{ Key, Effect string } `json:"taints"`
			} `json:"spec"`
			Status struct {
				Addresses []struct{ Type, Address string } `json:"addresses"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(cl.kubectl(t, "get", "nodes", "-o", "json")), &l); err != nil {
		t.Fatal(err)
	}
	out := map[string]nodeInfo{}
	for _, it := range l.Items {
		ni := nodeInfo{Labels: it.Metadata.Labels}
		for _, tn := range it.Spec.Taints {
			ni.Taints = append(ni.Taints, tn.Key+":"+tn.Effect)
		}
		for _, a := range it.Status.Addresses {
			if a.Type == "InternalIP" {
				ni.IP = a.Address
			}
		}
		out[it.Metadata.Name] = ni
	}
	return out
}

// waitStaticPods waits (bounded) until the control-plane static pods of node report Running.
func (cl *cluster) waitStaticPods(t *testing.T, node string) {
	t.Helper()
	want := []string{"etcd-" + node, "kube-apiserver-" + node, "kube-controller-manager-" + node, "kube-scheduler-" + node}
	var last string
	for range 60 {
		last = cl.kubectl(t, "get", "pods", "-n", "kube-system", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.phase}{\"\\n\"}{end}")
		ok := true
		for _, p := range want {
			ok = ok && strings.Contains(last, p+"=Running\n")
		}
		if ok {
			return
		}
		time.Sleep(2 * time.Second)
	}
	t.Errorf("static pods of %s not all Running:\n%s", node, last)
}

// secretsNotLogged checks that no bootstrap token secret and no certificate key reached kk's
// logs or the machines' shell history of commands.
func (cl *cluster) secretsNotLogged(t *testing.T) {
	t.Helper()
	secrets := strings.Fields(cl.kubectl(t, "get", "secrets", "-n", "kube-system", "--field-selector", "type=bootstrap.kubernetes.io/token",
		"-o", "jsonpath={range .items[*]}{.data.token-secret}{\"\\n\"}{end}"))
	logs, _ := filepath.Glob(filepath.Join(cl.work, "logs", "*", "*.log"))
	if len(logs) == 0 {
		t.Fatalf("no host logs under %s", cl.work)
	}
	for _, b64 := range secrets {
		raw, err := decodeB64(b64)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			if bytes.Contains(b, []byte(raw)) {
				t.Errorf("%s holds a bootstrap token secret", l)
			}
		}
	}
}

// allInOne runs cl, one machine with every role, and checks it: the node registers, the static
// pods run, kubectl works from this machine through the fetched kubeconfig, the node is
// schedulable, a second run changes nothing, a dry run plans nothing, no secret is logged, and
// a local kubeconfig opened up is put back.
func allInOne(t *testing.T, cl *cluster) {
	t.Helper()
	first := cl.run(t, false)
	if first.Count(pipeline.StatusChanged) == 0 {
		t.Fatal("first run changed nothing")
	}
	m := cl.bed.Machines[0]

	// the kubeconfig kk fetched: 0600, pointing at the machine's address
	fi, err := os.Stat(cl.spec.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v", cl.spec.Kubeconfig, fi.Mode())
	}
	if b, _ := os.ReadFile(cl.spec.Kubeconfig); !strings.Contains(string(b), "server: https://"+m.Address+":6443") {
		t.Errorf("kubeconfig does not point at %s:\n%s", m.Address, b)
	}
	nodes := cl.nodes(t)
	n1, ok := nodes[m.Name]
	if !ok || len(nodes) != 1 {
		t.Fatalf("nodes %v", nodes)
	}
	if n1.IP != m.Address {
		t.Errorf("node IP %s, want %s", n1.IP, m.Address)
	}
	if _, ok := n1.Labels["node-role.kubernetes.io/worker"]; !ok {
		t.Errorf("worker label missing: %v", n1.Labels)
	}
	if _, ok := n1.Labels["node-role.kubernetes.io/control-plane"]; !ok {
		t.Errorf("control-plane label missing: %v", n1.Labels)
	}
	if slices.Contains(n1.Taints, "node-role.kubernetes.io/control-plane:NoSchedule") {
		t.Errorf("an all-in-one node keeps the control-plane taint: %v", n1.Taints)
	}
	cl.waitStaticPods(t, m.Name)
	t.Logf("kube-system:\n%s", cl.kubectl(t, "get", "pods", "-n", "kube-system", "-o", "wide"))

	// on the machine: root's kubeconfig works, kube-proxy runs in iptables mode with conntrack left alone
	if out := rootSSH(t, cl.bed, m, "kubectl get nodes -o name"); out != "node/"+m.Name+"\n" {
		t.Errorf("kubectl on the node: %q", out)
	}
	if out := cl.kubectl(t, "get", "configmap", "-n", "kube-system", "kube-proxy", "-o", "jsonpath={.data.config\\.conf}"); !strings.Contains(out, "maxPerCore: 0") || !strings.Contains(out, "mode: iptables") {
		t.Errorf("kube-proxy config:\n%s", out)
	}

	second := cl.run(t, false)
	noChange(t, second, "second run")
	dry := cl.run(t, true)
	noChange(t, dry, "dry run")
	cl.secretsNotLogged(t)

	// the local kubeconfig is put back when it was lost or opened up
	os.Chmod(cl.spec.Kubeconfig, 0o644)
	third := cl.run(t, false)
	if third.Count(pipeline.StatusChanged) != 1 {
		t.Errorf("a world-readable local kubeconfig: want exactly 1 change, got %d", third.Count(pipeline.StatusChanged))
	}
	if fi, _ := os.Stat(cl.spec.Kubeconfig); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode not repaired: %v", fi.Mode())
	}
}

// A worker's join with kk's own bootstrap token (its kubelet on the load-balancer name, no
// join file left, no new token on the next run) is covered by the e2e lifecycle, where kk add
// nodes joins worker n5 (e2e/lifecycle_test.go addNodes).

// Bed "kube", n1 alone first, with every role (etcd stacked by kubeadm; allInOne). Then n2 is
// added as a second control plane (both are workers): it joins with the certificates kk
// uploaded under a fresh certificate key; both run the static pods.
func TestTwoControlPlanes(t *testing.T) {
	bed := testbed.Require(t, testbed.Options{Name: "kube"}, 2)
	work := t.TempDir()
	allInOne(t, build(t, bed, work, func(c *config.Cluster) {
		c.Hosts = c.Hosts[:1]
		c.Hosts[0].Roles = []config.Role{config.RoleEtcd, config.RoleControlPlane, config.RoleWorker}
	}))

	cl := build(t, bed, work, func(c *config.Cluster) {
		c.Host("n2").Roles = []config.Role{config.RoleControlPlane, config.RoleWorker}
	})
	first := cl.run(t, false)
	if first.Count(pipeline.StatusChanged) == 0 {
		t.Fatal("the run with n2 changed nothing")
	}
	nodes := cl.nodes(t)
	for _, m := range cl.bed.Machines {
		n, ok := nodes[m.Name]
		if !ok {
			t.Fatalf("%s is not registered: %v", m.Name, nodes)
		}
		if _, ok := n.Labels["node-role.kubernetes.io/control-plane"]; !ok {
			t.Errorf("%s: control-plane label missing", m.Name)
		}
		if slices.Contains(n.Taints, "node-role.kubernetes.io/control-plane:NoSchedule") {
			t.Errorf("%s (also a worker) keeps the control-plane taint", m.Name)
		}
		cl.waitStaticPods(t, m.Name)
		if out := rootSSH(t, cl.bed, m, "kubectl get nodes -o name | wc -l; [ ! -e /etc/kubernetes/kk-upload-certs.yaml ] && [ ! -e /etc/kubernetes/kk-join.yaml ] && echo clean"); out != "2\nclean\n" {
			t.Errorf("%s: root kubeconfig / transient credential files: %q", m.Name, out)
		}
	}
	// the API server certificate names both control planes
	if out := rootSSH(t, cl.bed, cl.bed.Machines[1], "openssl x509 -noout -ext subjectAltName -in /etc/kubernetes/pki/apiserver.crt 2>/dev/null || kubeadm certs check-expiration >/dev/null && echo no-openssl"); !strings.Contains(out, cl.bed.Machines[0].Address) && !strings.Contains(out, "no-openssl") {
		t.Errorf("n2's API server certificate: %s", out)
	}
	second := cl.run(t, false)
	noChange(t, second, "second run")

	// a control-plane join that stopped after its kubelet registered (before kubeadm's last
	// step, mark-control-plane) is finished by the next run, not reset and joined again
	n2 := cl.bed.Machines[1]
	certTime := "stat -c %Y /etc/kubernetes/pki/apiserver.crt"
	before := rootSSH(t, cl.bed, n2, certTime)
	cl.kubectl(t, "label", "node", n2.Name, "node-role.kubernetes.io/control-plane-")
	third := cl.run(t, false)
	joinedAgain := false
	for _, r := range third.Results {
		if r.Task == kubernetes.TaskJoinControlPlane && r.Host == n2.Name && r.Status == pipeline.StatusChanged {
			joinedAgain = true
		}
	}
	if !joinedAgain {
		t.Errorf("the run after the half-done join did not finish n2's join")
	}
	if _, ok := cl.nodes(t)[n2.Name].Labels["node-role.kubernetes.io/control-plane"]; !ok {
		t.Errorf("%s: control-plane label not back", n2.Name)
	}
	if after := rootSSH(t, cl.bed, n2, certTime); after != before {
		t.Errorf("%s was reset and joined anew (API server certificate rewritten) instead of finishing its join", n2.Name)
	}
	noChange(t, cl.run(t, false), "run after the finished join")

	cl.secretsNotLogged(t)
	t.Logf("nodes:\n%s\nkube-system:\n%s", cl.kubectl(t, "get", "nodes", "-o", "wide"), cl.kubectl(t, "get", "pods", "-n", "kube-system", "-o", "wide"))
}
