//go:build integration

package registry_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/artifacts/versions"

	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/artifacts/bundle"
	"github.com/kk-project/kk/e2e/images"
	"github.com/kk-project/kk/e2e/mirror"
	"github.com/kk-project/kk/e2e/testbed"
	"github.com/kk-project/kk/modules/registry"
	"github.com/kk-project/kk/pipeline/connector"
)

// kk init registry on n1 (role registry) from the local mirror, kk artifact image push of a
// bundle's images to it, and containerd on n2 pulling them over TLS with the kk CA; a re-run
// changes nothing; turning auth on protects the registry and push still works with the
// credentials of spec.registry.auths; pushing to a registry that is not there names it.
func TestInitRegistryPushAndPull(t *testing.T) {
	mdir, idir := images.DefaultMirrorDir, images.DefaultOutDir
	spec := mirror.DefaultSpec()
	for _, p := range []string{registry.DefaultVersion, spec.Containerd, spec.Runc} {
		if p == "" {
			t.Fatal("mirror spec lacks a version")
		}
	}
	regArchive := filepath.Join(mdir, strings.TrimPrefix(mirror.RegistryPath(registry.DefaultVersion), "/"))
	for _, p := range []string{regArchive, filepath.Join(mdir, mirror.ContainerdPath(spec.Containerd)), filepath.Join(mdir, mirror.RuncPath(spec.Runc)), images.LayoutDir(idir)} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("the local mirror lacks %s (go run ./e2e/cmd/mirror build --only registry,containerd,runc; make mirror): %v", p, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, mirrorURL, err := mirror.Serve(ctx, mdir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	imgReg, stopImages, err := images.Serve(ctx, images.LayoutDir(idir), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer stopImages()

	// a small bundle: two images
	work := t.TempDir()
	m, _, err := v1alpha2.ParseManifest("reg-manifest.yaml", []byte(`apiVersion: kubekey.kubesphere.io/v1alpha2
kind: Manifest
metadata: {name: reg}
spec:
  arches: [amd64]
  images:
  - registry.k8s.io/pause:`+pauseTag+`
  - docker.io/kksphere/e2e-probe:v1
`))
	if err != nil {
		t.Fatal(err)
	}
	bundlePath := filepath.Join(work, "bundle.tar.gz")
	if _, err := bundle.Export(ctx, bundle.Options{Manifest: m, Output: bundlePath, Workdir: work,
		RegistryMirrors: map[string]string{"registry.k8s.io": "http://" + imgReg, "docker.io": "http://" + imgReg}, KKVersion: "test"}); err != nil {
		t.Fatal(err)
	}

	bin := buildKK(t)
	bed := testbed.Require(t, testbed.Options{Name: "reg"}, 2)
	n1, n2 := bed.Machines[0], bed.Machines[1]
	src, err := os.ReadFile(bed.ClusterFile)
	if err != nil {
		t.Fatal(err)
	}
	clusterFile := func(name, extra string) string {
		s := strings.Replace(string(src), "  roleGroups:\n", "  roleGroups:\n    registry: [n1]\n", 1)
		if !strings.Contains(s, "registry: [n1]") {
			t.Fatalf("cannot add the registry role to %s", bed.ClusterFile)
		}
		p := filepath.Join(work, name+".yaml")
		if err := os.WriteFile(p, []byte(s+extra), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain := clusterFile("cluster", "")
	args := func(file string, a ...string) []string {
		return append(a, "-f", file, "--known-hosts", bed.KnownHosts, "--workdir", work)
	}

	// 1. init registry: the bundle holds no registry program, so it comes from the mirror
	first := kk(t, bin, args(plain, "init", "registry", "--yes", "-a", bundlePath, "--mirror", mirrorURL)...)
	if first.code != 0 || changed(t, first.out) == "0" {
		t.Fatalf("first kk init registry: exit %d", first.code)
	}
	out := rootSSH(t, bed, n1, "systemctl is-active registry; systemctl is-enabled registry; cat /etc/registry/config.yml; "+getV2)
	for _, want := range []string{"active\nenabled\n", "rootdirectory: /var/lib/registry", `addr: ":443"`, "HTTP/1.1 200 OK"} {
		if !strings.Contains(out, want) {
			t.Errorf("n1 lacks %q:\n%s", want, out)
		}
	}
	ca, err := registry.CAPEM(work)
	if err != nil {
		t.Fatal(err)
	}
	for _, mm := range bed.Machines {
		got := rootSSH(t, bed, mm, "cat /etc/containerd/certs.d/dockerhub.kubekey.local/ca.crt /usr/local/share/ca-certificates/kk-registry.crt; "+
			"ls /etc/ssl/certs/kk-registry.pem; grep dockerhub.kubekey.local /etc/hosts")
		if strings.Count(got, string(ca)) != 2 || !strings.Contains(got, n1.Address+" dockerhub.kubekey.local") {
			t.Errorf("%s does not trust the CA or resolve the registry:\n%s", mm.Name, got)
		}
	}

	// 2. push: this machine cannot resolve dockerhub.kubekey.local; kk dials n1
	push := kk(t, bin, args(plain, "artifact", "image", "push", "-a", bundlePath)...)
	if push.code != 0 {
		t.Fatalf("push failed")
	}
	for _, want := range []string{"dockerhub.kubekey.local/pause:" + pauseTag, "dockerhub.kubekey.local/kksphere/e2e-probe:v1", "2 images pushed"} {
		if !strings.Contains(push.out, want) {
			t.Errorf("push output lacks %q", want)
		}
	}

	// 3. containerd on n2, by hand from the mirror, pulls over TLS trusting the kk CA via certs.d
	installContainerd(t, bed, n2, mdir, spec)
	pull := rootSSH(t, bed, n2, "ctr -n k8s.io images pull --hosts-dir /etc/containerd/certs.d dockerhub.kubekey.local/pause:"+pauseTag+" >/dev/null && "+
		"ctr -n k8s.io images ls -q")
	if !strings.Contains(pull, "dockerhub.kubekey.local/pause:"+pauseTag) {
		t.Errorf("n2 did not pull the pause image:\n%s", pull)
	}
	// and through certs.d alone: with the system trust store emptied of the kk CA for ctr
	pull = rootSSH(t, bed, n2, "SSL_CERT_FILE=/dev/null SSL_CERT_DIR=/nonexistent ctr -n k8s.io images pull --local --hosts-dir /etc/containerd/certs.d dockerhub.kubekey.local/kksphere/e2e-probe:v1 >/dev/null && echo pulled")
	if !strings.Contains(pull, "pulled") {
		t.Errorf("pull through certs.d failed")
	}

	// 4. a re-run changes nothing
	second := kk(t, bin, args(plain, "init", "registry", "--yes", "-a", bundlePath, "--mirror", mirrorURL)...)
	if second.code != 0 || changed(t, second.out) != "0" {
		t.Errorf("second kk init registry: exit %d, want 0 changed", second.code)
	}

	dry := kk(t, bin, args(plain, "init", "registry", "--dry-run", "-a", bundlePath, "--mirror", mirrorURL)...)
	if dry.code != 0 || !strings.Contains(dry.out, " 0 would change") {
		t.Errorf("dry run on a converged registry plans changes")
	}

	// 5. auth: credentials in spec.registry.auths turn htpasswd on; anonymous is refused, push
	// with the credentials works, and a re-run changes nothing
	withAuth := clusterFile("auth", "  registry:\n    auths:\n      dockerhub.kubekey.local: {username: kkadmin, password: \"Reg-Pw-91x\"}\n")
	third := kk(t, bin, args(withAuth, "init", "registry", "--yes", "-a", bundlePath, "--mirror", mirrorURL)...)
	if third.code != 0 || changed(t, third.out) == "0" {
		t.Fatalf("kk init registry with auth: exit %d", third.code)
	}
	if code := rootSSH(t, bed, n1, getV2); !strings.HasPrefix(code, "HTTP/1.1 401") {
		t.Errorf("anonymous GET /v2/ with auth on answered %q, want 401", code)
	}
	if r := kk(t, bin, args(withAuth, "artifact", "image", "push", "-a", bundlePath)...); r.code != 0 {
		t.Errorf("push with credentials failed")
	}
	if r := kk(t, bin, args(plain, "artifact", "image", "push", "-a", bundlePath)...); r.code == 0 || !strings.Contains(r.out, "registry dockerhub.kubekey.local (dialed at "+n1.Address+") requires a username and password") {
		t.Errorf("push without credentials to a registry with auth: exit %d", r.code)
	}
	fourth := kk(t, bin, args(withAuth, "init", "registry", "--yes", "-a", bundlePath, "--mirror", mirrorURL)...)
	if fourth.code != 0 || changed(t, fourth.out) != "0" {
		t.Errorf("re-run with auth: exit %d, want 0 changed", fourth.code)
	}
	for _, r := range []run{first, second, third, fourth, push} {
		if strings.Contains(r.out, "Reg-Pw-91x") || strings.Contains(r.out, bed.Password) {
			t.Error("a password shows in kk's output")
		}
	}

	// 6. a registry that is not there is named in the error
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := l.Addr().String()
	l.Close()
	r := kk(t, bin, args(plain, "artifact", "image", "push", "-a", bundlePath, "--registry", gone)...)
	if r.code == 0 || !strings.Contains(r.out, "registry "+gone+" is unreachable") {
		t.Errorf("push to %s: exit %d, want an error naming it unreachable", gone, r.code)
	}
}

// getV2 asks the registry on n1 for GET /v2/ over TLS checked with the kk CA (the machines have
// openssl, not curl) and prints the status line.
const getV2 = `printf 'GET /v2/ HTTP/1.1\r\nHost: dockerhub.kubekey.local\r\nConnection: close\r\n\r\n' | openssl s_client -quiet -verify_return_error ` +
	`-CAfile /etc/registry/certs/ca.crt -servername dockerhub.kubekey.local -connect 127.0.0.1:443 2>/dev/null | head -n1`

func buildKK(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("KK_BIN"); b != "" {
		return b
	}
	out := filepath.Join(t.TempDir(), "kk")
	cmd := exec.Command("go", "build", "-o", out, "../../cmd/kk")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build kk: %v\n%s", err, b)
	}
	return out
}

type run struct {
	out  string
	code int
}

func kk(t *testing.T, bin string, args ...string) run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	cmd.Dir = t.TempDir()
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kk %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("$ kk %s  (exit %d)\n%s", strings.Join(args, " "), code, b.String())
	return run{b.String(), code}
}

var totals = regexp.MustCompile(`(\d+) ok, (\d+) changed, (\d+) skipped, (\d+) failed`)

func changed(t *testing.T, out string) string {
	t.Helper()
	m := totals.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary line in output")
	}
	if m[4] != "0" {
		t.Fatalf("%s tasks failed", m[4])
	}
	return m[2]
}

func dial(t *testing.T, bed *testbed.Bed, m testbed.Machine) connector.Connector {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := connector.DialSSH(ctx, connector.SSHConfig{Host: m.Name, Address: m.Address, Port: 22, User: "root",
		PrivateKeyPath: bed.KeyPath, KnownHostsPath: bed.KnownHosts})
	if err != nil {
		t.Fatalf("ssh %s: %v", m.Name, err)
	}
	return c
}

func rootSSH(t *testing.T, bed *testbed.Bed, m testbed.Machine, cmd string) string {
	t.Helper()
	c := dial(t, bed, m)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := c.Exec(ctx, cmd, connector.ExecOptions{})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
	return res.Stdout
}

// installContainerd puts containerd and runc from the mirror on m, with a config that works in
// these machines (restrict_oom_score_adj) and reads registry hosts from certs.d, and starts it.
func installContainerd(t *testing.T, bed *testbed.Bed, m testbed.Machine, mdir string, spec mirror.Spec) {
	t.Helper()
	c := dial(t, bed, m)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	files := []connector.File{
		{Path: "/tmp/containerd.tar.gz", LocalPath: filepath.Join(mdir, mirror.ContainerdPath(spec.Containerd)), Mode: 0o644},
		{Path: "/usr/local/sbin/runc", LocalPath: filepath.Join(mdir, mirror.RuncPath(spec.Runc)), Mode: 0o755},
		{Path: "/etc/containerd/config.toml", Mode: 0o644, Data: []byte(`version = 3
[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = '/etc/containerd/certs.d'
`)},
		{Path: "/etc/systemd/system/containerd.service", Mode: 0o644, Data: []byte(`[Unit]
Description=containerd (test)
After=network.target
[Service]
ExecStart=/usr/local/bin/containerd
Type=notify
Delegate=yes
KillMode=process
Restart=always
[Install]
WantedBy=multi-user.target
`)},
	}
	for _, f := range files {
		if _, err := c.Upload(ctx, f); err != nil {
			t.Fatalf("%s: upload %s: %v", m.Name, f.Path, err)
		}
	}
	res, err := c.Exec(ctx, "tar xzf /tmp/containerd.tar.gz -C /usr/local && systemctl daemon-reload && systemctl enable --now containerd && "+
		"for i in $(seq 30); do ctr version >/dev/null 2>&1 && exit 0; sleep 1; done; journalctl -u containerd -n 30 --no-pager; exit 1", connector.ExecOptions{})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		t.Fatalf("%s: containerd: %v\n%s", m.Name, err, res.Stdout)
	}
}

// pauseTag is the pause image tag kk's version table names for the newest Kubernetes (one the
// test images hold).
var pauseTag = versions.Latest().Pause
