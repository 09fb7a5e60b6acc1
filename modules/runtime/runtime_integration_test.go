//go:build integration

package runtime_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	"github.com/kk-project/kk/modules/runtime"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/pipeline/session"
)

const mirrorDir = "/var/tmp/kk-mirror"

// pauseRef is the sandbox image kk's version table names for the mirror's newest Kubernetes.
var pauseRef = mustSet(mirror.DefaultSpec().Kubernetes[0]).PauseImage()

func mustSet(k8s string) versions.Set {
	s, err := versions.For(k8s)
	if err != nil {
		panic(err)
	}
	return s
}

// mirrorFiles takes containerd, runc, crictl and the CNI plugins from the local mirror.
func mirrorFiles(t *testing.T) binaries.Files {
	t.Helper()
	var f binaries.Files
	if err := mirror.RuntimeFiles(mirrorDir, mirror.DefaultSpec(), t.TempDir(), &f); err != nil {
		t.Fatal(err)
	}
	if err := f.Check([]string{"amd64"}, []string{"containerd", "containerd-shim-runc-v2", "ctr", "crictl", "runc", "cni/bridge", "cni/loopback"}); err != nil {
		t.Fatal(err)
	}
	return f
}

// ociArchive writes a tar of an OCI layout holding only the images named refs, taken from
// the test images' layout.
func ociArchive(t *testing.T, layout string, refs ...string) string {
	t.Helper()
	idxData, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatalf("test images: %v (build them first: make mirror)", err)
	}
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	var idx struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType,omitempty"`
		Manifests     []desc `json:"manifests"`
	}
	if err := json.Unmarshal(idxData, &idx); err != nil {
		t.Fatal(err)
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
		b, err := os.ReadFile(blobPath(layout, d.Digest))
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
		t.Fatalf("test images: found %d of %v", len(keep), refs)
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
	for dg := range blobs {
		b, err := os.ReadFile(blobPath(layout, dg))
		if err != nil {
			t.Fatal(err)
		}
		add("blobs/sha256/"+strings.TrimPrefix(dg, "sha256:"), b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	out.Close()
	return p
}

func blobPath(layout, digest string) string {
	return filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

// forward listens on addr (the bed's gateway, reachable from the machines) and relays every
// connection to target (the loopback-only test registry), counting connections.
func forward(t *testing.T, addr, target string) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on the bed's gateway %s: %v", addr, err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
				go func() { io.Copy(c, up); c.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
				<-done
				<-done
			}()
		}
	}()
	return ln.Addr().String(), &n
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

func runTasks(t *testing.T, c *config.Cluster, bed *testbed.Bed, work string, s runtime.Spec) *pipeline.Report {
	t.Helper()
	var out bytes.Buffer
	sess, err := session.New(c, session.Options{Workdir: work, KnownHosts: bed.KnownHosts, Out: &out, Err: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	rep, err := sess.Run(ctx, "runtime", append([]pipeline.Task{facts.Task()}, runtime.Tasks(s)...))
	t.Logf("%s", out.String())
	if err != nil {
		t.Fatalf("runtime run failed: %v", err)
	}
	return rep
}

// containerd, runc, crictl and the CNI plugins from the local mirror on two machines (which run
// in systemd-nspawn containers: restrict_oom_score_adj must be on), an offline image archive
// imported, a pod sandbox and a container run through the CRI with systemd cgroups, a second
// run changes nothing, and a pull of registry.k8s.io/pause goes through a registry mirror.
func TestContainerdOnMachines(t *testing.T) {
	bed := testbed.Require(t, testbed.Options{Name: "rt"}, 2)
	c, _, err := v1alpha2.Load(bed.ClusterFile)
	if err != nil {
		t.Fatal(err)
	}
	files := mirrorFiles(t)
	layout := images.LayoutDir(images.DefaultOutDir)
	archive := ociArchive(t, layout, pauseRef)

	// the test registry, reachable from the machines through the bed's gateway address
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, stop, err := images.Serve(ctx, layout, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	parts := strings.Split(bed.Machines[0].Address, ".")
	gateway := strings.Join(parts[:3], ".") + ".1"
	front, hits := forward(t, net.JoinHostPort(gateway, "0"), base)

	s := runtime.SpecFor(c, files)
	s.ImageArchive, s.Images = archive, []string{pauseRef}
	s.Mirrors["registry.k8s.io"] = []string{"http://" + front}
	s.InsecureRegistries = append(s.InsecureRegistries, front)
	if s.SandboxImage != pauseRef || s.CRISocket != runtime.ContainerdSocket {
		t.Fatalf("spec: sandbox %s, socket %s", s.SandboxImage, s.CRISocket)
	}

	work := t.TempDir()
	first := runTasks(t, c, bed, work, s)
	if first.Count(pipeline.StatusChanged) == 0 {
		t.Errorf("first run changed nothing")
	}
	pids := func() []string {
		var out []string
		for _, m := range bed.Machines {
			out = append(out, rootSSH(t, bed, m, "systemctl show -p MainPID --value containerd"))
		}
		return out
	}
	before := pids()
	second := runTasks(t, c, bed, work, s)
	if after := pids(); !slices.Equal(before, after) {
		t.Errorf("second run restarted containerd: pids %v -> %v", before, after)
	}
	if n := second.Count(pipeline.StatusChanged); n != 0 {
		for _, r := range second.Results {
			if r.Status == pipeline.StatusChanged {
				t.Errorf("second run changed %s on %s", r.Task, r.Host)
			}
		}
	}

	for _, m := range bed.Machines {
		// the host runs in a container: kind's setting is on
		if out := rootSSH(t, bed, m, "grep -c 'restrict_oom_score_adj = true' /etc/containerd/config.toml; systemctl is-active containerd; systemctl is-enabled containerd"); out != "1\nactive\nenabled\n" {
			t.Errorf("%s: config/service state:\n%s", m.Name, out)
		}
		if out := rootSSH(t, bed, m, "crictl info -o go-template --template '{{range .status.conditions}}{{.type}}={{.status}} {{end}}'"); !strings.Contains(out, "RuntimeReady=true") {
			t.Errorf("%s: crictl info: %s", m.Name, out)
		}
		if out := rootSSH(t, bed, m, "ctr -n k8s.io images ls -q"); !strings.Contains(out, pauseRef+"\n") {
			t.Errorf("%s: imported images:\n%s", m.Name, out)
		}
		if out := rootSSH(t, bed, m, "ls /opt/cni/bin; /usr/local/sbin/runc --version; ls /var/lib/kk/images 2>/dev/null | wc -l"); !strings.Contains(out, "bridge\n") || !strings.Contains(out, "runc version") || !strings.HasSuffix(out, "0\n") {
			t.Errorf("%s: binaries / leftover archive:\n%s", m.Name, out)
		}

		// a pod sandbox (host network: no CNI config yet) and a container in it, through the
		// CRI, in a systemd slice
		pod := `{"metadata":{"name":"rt-pod","namespace":"default","uid":"rt-pod-uid","attempt":1},"log_directory":"/tmp/rt-pod",` +
			`"linux":{"cgroup_parent":"kkrt.slice","security_context":{"namespace_options":{"network":2}}}}`
		ctr := `{"metadata":{"name":"sleeper"},"image":{"image":"` + pauseRef + `"},"command":["/pause"],"log_path":"sleeper.log","linux":{}}`
		script := fmt.Sprintf(`set -e
printf '%%s' '%s' > /tmp/pod.json; printf '%%s' '%s' > /tmp/ctr.json
pod=$(crictl runp /tmp/pod.json)
cid=$(crictl create "$pod" /tmp/ctr.json /tmp/pod.json)
crictl start "$cid" >/dev/null
crictl inspect "$cid" | tr -d ' \n' | grep -o '"state":"CONTAINER_RUNNING"'
pid=$(crictl inspect --output go-template --template '{{.info.pid}}' "$cid")
grep -q kkrt.slice /proc/$pid/cgroup && echo in-slice
crictl stopp "$pod" >/dev/null; crictl rmp "$pod" >/dev/null; echo removed`, pod, ctr)
		if out := rootSSH(t, bed, m, script); out != "\"state\":\"CONTAINER_RUNNING\"\nin-slice\nremoved\n" {
			t.Errorf("%s: container through the CRI:\n%s", m.Name, out)
		}

		// the image again, this time from the mirror (registry.k8s.io itself is unreachable)
		before := hits.Load()
		out := rootSSH(t, bed, m, "crictl rmi "+pauseRef+" >/dev/null && ! ctr -n k8s.io images ls -q | grep -qx "+pauseRef+" && echo gone; crictl pull "+pauseRef+" && ctr -n k8s.io images ls -q | grep -x "+pauseRef)
		if !strings.HasPrefix(out, "gone\n") || !strings.HasSuffix(out, pauseRef+"\n") {
			t.Errorf("%s: pull through the mirror:\n%s", m.Name, out)
		}
		if hits.Load() == before {
			t.Errorf("%s: the pull did not go through the mirror at %s", m.Name, front)
		}
	}

	// the pulled image is the one expected: the run stays converged
	third := runTasks(t, c, bed, work, s)
	if n := third.Count(pipeline.StatusChanged); n != 0 {
		t.Errorf("third run changed %d", n)
	}

	// a configuration change is applied by a restart, and only the config and the service change
	changedTasks := func(rep *pipeline.Report) []string {
		var out []string
		for _, r := range rep.Results {
			if r.Status == pipeline.StatusChanged {
				out = append(out, r.Task+"@"+r.Host)
			}
		}
		slices.Sort(out)
		return out
	}
	want := []string{runtime.TaskConfig + "@n1", runtime.TaskConfig + "@n2", runtime.TaskService + "@n1", runtime.TaskService + "@n2"}
	before = pids()
	other := s
	other.SandboxImage = "registry.k8s.io/pause:3.10"
	if got := changedTasks(runTasks(t, c, bed, work, other)); !slices.Equal(got, want) {
		t.Errorf("sandbox image change: changed %v, want %v", got, want)
	}
	after := pids()
	for i := range after {
		if after[i] == before[i] {
			t.Errorf("%s: containerd not restarted after its configuration changed (pid %s)", bed.Machines[i].Name, after[i])
		}
	}
	if out := rootSSH(t, bed, bed.Machines[0], "crictl info -o go-template --template '{{.config.sandboxImage}}{{.config.sandbox_image}}' 2>/dev/null; grep sandbox /etc/containerd/config.toml"); !strings.Contains(out, "pause:3.10\"\n") {
		t.Errorf("new sandbox image not in the config:\n%s", out)
	}
	if got := changedTasks(runTasks(t, c, bed, work, s)); !slices.Equal(got, want) {
		t.Errorf("back to the original: changed %v, want %v", got, want)
	}

	// a dry run on converged hosts plans nothing
	var out bytes.Buffer
	sess, err := session.New(c, session.Options{Workdir: work, KnownHosts: bed.KnownHosts, Out: &out, Err: &out, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	dry, err := sess.Run(context.Background(), "runtime", append([]pipeline.Task{facts.Task()}, runtime.Tasks(s)...))
	if err != nil || dry.Count(pipeline.StatusPlanned) != 0 || dry.Count(pipeline.StatusChanged) != 0 {
		t.Errorf("dry run on converged hosts: %v, %d would change\n%s", err, dry.Count(pipeline.StatusPlanned), out.String())
	}
}
