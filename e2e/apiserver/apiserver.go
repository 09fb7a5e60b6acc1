// Package apiserver starts a real etcd and kube-apiserver (optionally kube-controller-manager)
// on loopback, from the binaries of the local upstream mirror (see package
// github.com/kk-project/kk/e2e/mirror), for integration tests of the code that talks to a
// cluster (applying manifests, Helm charts, readiness waits).
//
// Everything lives in t.TempDir(): a CA, the serving certificate, an admin client certificate
// (organisation system:masters) and the service-account key. Ports are free loopback ports.
// No node, kubelet or scheduler runs, so Pods never start: objects that need a controller only
// become ready when ControllerManager is set, and a DaemonSet never does.
package apiserver

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kk-project/kk/e2e/mirror"
	"github.com/kk-project/kk/modules/pki"
)

// Default versions: the ones the mirror builds for kk's e2e tests (the newest Kubernetes).
var (
	DefaultKubernetesVersion = mirror.DefaultSpec().Kubernetes[0]
	DefaultEtcdVersion       = mirror.DefaultSpec().Etcd
)

// DefaultMirrorDir is where the mirror lives unless KK_MIRROR_DIR says otherwise.
const DefaultMirrorDir = "/var/tmp/kk-mirror"

// Options tunes Start.
type Options struct {
	// MirrorDir is the upstream mirror (default $KK_MIRROR_DIR, else DefaultMirrorDir).
	MirrorDir string
	// KubernetesVersion and EtcdVersion pick the binaries (defaults above).
	KubernetesVersion string
	EtcdVersion       string
	// ControllerManager also runs kube-controller-manager (Deployments get ReplicaSets and a
	// status; Pods still never run).
	ControllerManager bool
	// ReadyTimeout bounds the wait for /readyz (default 3 minutes: the machine may be busy).
	ReadyTimeout time.Duration
}

// Server is a running control plane.
type Server struct {
	// Config authenticates as an admin (client certificate in group system:masters).
	Config *rest.Config
	// URL is the API server's https URL.
	URL string
	// Dir holds certificates, data and logs.
	Dir string
	// Kubeconfig is the path of an admin kubeconfig file for Config.
	Kubeconfig string

	procs []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// Start starts etcd and kube-apiserver with default Options; see StartWith.
func Start(t testing.TB) *Server { return StartWith(t, Options{}) }

// StartWith starts the control plane and waits until the API server is ready. It fails the test
// with the reason (missing binaries, a process that died with its log tail) and stops everything
// when the test ends.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	s, err := start(t.TempDir(), o)
	if s != nil {
		t.Cleanup(s.Stop)
	}
	if err != nil {
		t.Fatalf("e2e/apiserver: %v", err)
	}
	return s
}

// Stop ends every process (SIGTERM, then SIGKILL after 10s). It is safe to call twice.
func (s *Server) Stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		select {
		case <-p.done:
			continue
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

func start(dir string, o Options) (*Server, error) {
	if o.MirrorDir == "" {
		o.MirrorDir = os.Getenv("KK_MIRROR_DIR")
	}
	if o.MirrorDir == "" {
		o.MirrorDir = DefaultMirrorDir
	}
	if o.KubernetesVersion == "" {
		o.KubernetesVersion = DefaultKubernetesVersion
	}
	if o.EtcdVersion == "" {
		o.EtcdVersion = DefaultEtcdVersion
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 3 * time.Minute
	}
	apiserverBin := filepath.Join(o.MirrorDir, mirror.KubernetesPath(o.KubernetesVersion, "kube-apiserver"))
	kcmBin := filepath.Join(o.MirrorDir, mirror.KubernetesPath(o.KubernetesVersion, "kube-controller-manager"))
	etcdArchive := filepath.Join(o.MirrorDir, mirror.EtcdPath(o.EtcdVersion))
	need := []string{apiserverBin, etcdArchive}
	if o.ControllerManager {
		need = append(need, kcmBin)
	}
	for _, f := range need {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("binary missing from the mirror %s (build it with the e2e mirror tool): %w", o.MirrorDir, err)
		}
	}
	binDir := filepath.Join(dir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, err
	}
	etcdBin := filepath.Join(binDir, "etcd")
	if err := extractMember(etcdArchive, "etcd", etcdBin); err != nil {
		return nil, err
	}

	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	clientPort, peerPort, apiPort, kcmPort := ports[0], ports[1], ports[2], ports[3]

	// Certificates.
	pkiDir := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		return nil, err
	}
	ca, _, err := pki.LoadOrCreateCA(pkiDir, "ca", "kk-e2e-ca")
	if err != nil {
		return nil, err
	}
	_, _, err = ca.Ensure(pkiDir, "apiserver", pki.Spec{CommonName: "kube-apiserver",
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPs:      []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")},
		Usages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return nil, err
	}
	admin, _, err := ca.Ensure(pkiDir, "admin", pki.Spec{CommonName: "kk-admin", Organization: []string{"system:masters"},
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return nil, err
	}
	// The service-account signing key: a certificate key pair serves (PEM private key).
	if _, _, err := ca.Ensure(pkiDir, "sa", pki.Spec{CommonName: "service-accounts",
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, err
	}

	s := &Server{Dir: dir, URL: "https://127.0.0.1:" + strconv.Itoa(apiPort)}
	s.Config = &rest.Config{
		Host: s.URL,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: ca.CertPEM, CertData: admin.CertPEM, KeyData: admin.KeyPEM,
		},
		QPS: 100, Burst: 200,
	}
	s.Kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := writeKubeconfig(s.Kubeconfig, s.URL, ca.CertPEM, admin.CertPEM, admin.KeyPEM); err != nil {
		return nil, err
	}

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	if err := s.run("etcd", etcdBin,
		"--name=e2e", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=e2e="+peerURL, "--unsafe-no-fsync", "--log-level=warn",
	); err != nil {
		return s, err
	}
	p := func(n string) string { return filepath.Join(pkiDir, n) }
	if err := s.run("kube-apiserver", apiserverBin,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(apiPort),
		"--cert-dir="+filepath.Join(dir, "apiserver-certs"),
		"--tls-cert-file="+p("apiserver.crt"), "--tls-private-key-file="+p("apiserver.key"),
		"--client-ca-file="+p("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+p("sa.key"), "--service-account-signing-key-file="+p("sa.key"),
		"--service-cluster-ip-range=10.0.0.0/24",
		"--authorization-mode=RBAC", "--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		// the kubernetes Service's endpoints are not kept: from v1.37 the lease reconciler
		// refuses a loopback advertise address, and no test reaches the API through it
		"--endpoint-reconciler-type=none",
	); err != nil {
		return s, err
	}
	if err := s.waitReady(s.procs[1], o.ReadyTimeout); err != nil {
		return s, err
	}
	if o.ControllerManager {
		if err := s.run("kube-controller-manager", kcmBin,
			"--kubeconfig="+s.Kubeconfig, "--authentication-kubeconfig="+s.Kubeconfig, "--authorization-kubeconfig="+s.Kubeconfig,
			"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(kcmPort),
			"--cert-dir="+filepath.Join(dir, "kcm-certs"),
			"--leader-elect=false", "--use-service-account-credentials=false",
			"--service-account-private-key-file="+p("sa.key"), "--root-ca-file="+p("ca.crt"),
			"--controllers=*,-node-ipam-controller,-node-lifecycle-controller", // the names of v1.28 on (older aliases are gone in v1.37)
		); err != nil {
			return s, err
		}
	}
	return s, nil
}

// run starts one process with its output in <dir>/<name>.log; it dies with the test process.
func (s *Server) run(name, bin string, args ...string) error {
	logPath := filepath.Join(s.Dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	s.procs = append(s.procs, p)
	return nil
}

func (s *Server) waitReady(api *proc, timeout time.Duration) error {
	tr, err := rest.TransportFor(s.Config)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last string
	for {
		for _, p := range s.procs {
			select {
			case <-p.done:
				return fmt.Errorf("%s exited (%v) before the API server was ready; log %s:\n%s", p.name, p.err, p.log, tail(p.log))
			default:
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/readyz", nil)
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("/readyz: %s: %s", resp.Status, strings.TrimSpace(string(b)))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready after %s (%s); log %s:\n%s", timeout, last, api.log, tail(api.log))
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// extractMember writes the archive member whose base name is name to dst.
func extractMember(archive, name, dst string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", archive, err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: no member %q", archive, name)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", archive, err)
		}
		if h.Typeflag == tar.TypeReg && filepath.Base(h.Name) == name {
			var b bytes.Buffer
			if _, err := io.Copy(&b, tr); err != nil {
				return fmt.Errorf("%s: %w", archive, err)
			}
			return os.WriteFile(dst, b.Bytes(), 0o755)
		}
	}
}

func writeKubeconfig(path, server string, ca, cert, key []byte) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts["admin@e2e"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "admin"}
	cfg.CurrentContext = "admin@e2e"
	return clientcmd.WriteToFile(*cfg, path)
}
