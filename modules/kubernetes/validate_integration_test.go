//go:build integration

package kubernetes_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/e2e/mirror"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/kubernetes"
)

// TestKubeadmConfigValidates renders kk's kubeadm configuration for the boundary minors (v1.28,
// the oldest; v1.30, the last v1beta3 one; v1.31, the first v1beta4 one; v1.35, the first whose
// kubelet refuses cgroup v1 unless told; v1.37, the newest) and checks each with that minor's
// own `kubeadm config validate`: the init configuration of the first control plane (with its
// kubelet and kube-proxy configuration) and the join configuration of a control plane and of a
// worker, on a cgroup v1 host in a container (what the test machines are).
func TestKubeadmConfigValidates(t *testing.T) {
	spec := mirror.DefaultSpec()
	dir := envOr("KK_MIRROR_DIR", mirrorDir)
	vs := append(append([]string{}, spec.KubeadmValidate...), spec.Kubernetes...)
	data, err := os.ReadFile(filepath.Join("..", "..", "api", "v1alpha2", "testdata", "kubekey-calico.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	env := kubernetes.HostEnv{Container: "systemd-nspawn", CgroupVersion: 1}
	for _, v := range vs {
		t.Run(v, func(t *testing.T) {
			kubeadm := filepath.Join(dir, mirror.KubernetesPath(v, "kubeadm"))
			if _, err := os.Stat(kubeadm); err != nil {
				t.Fatalf("kubeadm %s is not in the mirror (make mirror): %v", v, err)
			}
			c, _, err := v1alpha2.ParseWithOptions("kubekey-calico.yaml", data, v1alpha2.ParseOptions{SkipFileChecks: true})
			if err != nil {
				t.Fatal(err)
			}
			c.Kubernetes.Version = v
			c.Kubernetes.Audit = true
			// the sample's ipvs is deprecated from v1.35 (kk warns the user before the run):
			// kk's own default is checked here for deprecations
			c.Kubernetes.ProxyMode = ""
			s, err := kubernetes.SpecFor(c, t.TempDir(), binaries.Files{})
			if err != nil {
				t.Fatal(err)
			}
			init, err := kubernetes.RenderKubeadmConfig(s, s.FirstControlPlane, env, "")
			if err != nil {
				t.Fatal(err)
			}
			creds := kubernetes.JoinCredentials{Token: "abcdef.0123456789abcdef", CertificateKey: strings.Repeat("a", 64), CACertHash: "sha256:" + strings.Repeat("b", 64)}
			docs := map[string][]byte{"init": init}
			for _, n := range s.Nodes {
				if n.Name == s.FirstControlPlane {
					continue
				}
				kind := "join-worker"
				if n.ControlPlane {
					kind = "join-control-plane"
				}
				if docs[kind] != nil {
					continue
				}
				if docs[kind], err = kubernetes.RenderJoinConfig(s, n.Name, env, creds); err != nil {
					t.Fatal(err)
				}
			}
			if docs["join-control-plane"] == nil {
				t.Fatalf("the sample has no second control plane")
			}
			wantAPI := kubernetes.KubeadmAPI(v)
			for kind, doc := range docs {
				if !strings.Contains(string(doc), "apiVersion: "+wantAPI) {
					t.Errorf("%s: %s is not %s", v, kind, wantAPI)
				}
				p := filepath.Join(t.TempDir(), kind+".yaml")
				if err := os.WriteFile(p, doc, 0o600); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				out, err := exec.CommandContext(ctx, kubeadm, "config", "validate", "--config", p).CombinedOutput()
				cancel()
				if err != nil {
					t.Errorf("kubeadm %s config validate (%s): %v\n%s\n--- %s:\n%s", v, kind, err, out, kind, doc)
					continue
				}
				if strings.Contains(strings.ToLower(string(out)), "deprecated") {
					t.Errorf("kubeadm %s calls kk's %s configuration deprecated:\n%s", v, kind, out)
				}
				t.Logf("kubeadm %s config validate (%s, %s): %s", v, kind, wantAPI, strings.TrimSpace(string(out)))
			}
		})
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
