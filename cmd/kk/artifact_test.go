package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"
)

// kkArtifact runs kk's artifact and create manifest commands in-process (independently of
// how root.go wires them) and returns stdout+stderr and the error.
func kkArtifact(t *testing.T, args ...string) (string, error) {
	t.Helper()
	g := &globals{}
	root := &cobra.Command{Use: "kk", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().StringVar(&g.Workdir, "workdir", "kubekey", "")
	create := &cobra.Command{Use: "create"}
	create.AddCommand(newCreateManifestCommand(g))
	root.AddCommand(newArtifactCommand(g), create)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestCreateManifestFromCluster(t *testing.T) {
	cluster := write(t, "cluster.yaml", head+`  hosts:
  - {name: n1, address: 127.0.0.2, password: x}
  roleGroups:
    etcd: [n1]
    control-plane: [n1]
  controlPlaneEndpoint: {internalLoadbalancer: haproxy}
  kubernetes: {version: v1.33.1}
`)
	out := filepath.Join(t.TempDir(), "m.yaml")
	if msg, err := kkArtifact(t, "create", "manifest", "-c", cluster, "-f", out); err != nil || !strings.Contains(msg, "wrote "+out) {
		t.Fatalf("%s %v", msg, err)
	}
	data, _ := os.ReadFile(out)
	for _, want := range []string{"kind: Manifest", "name: t\n", "version: v1.33.1", "registry.k8s.io/pause:3.10", "haproxy:", "runc:"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("no %q in\n%s", want, data)
		}
	}
	if strings.Contains(string(data), "/sig-storage/") {
		t.Errorf("local storage's images without a ClusterConfiguration or --with-local-storage:\n%s", data)
	}
	// --with-local-storage adds local storage's images (kk create cluster --with-local-storage)
	withLocal := filepath.Join(t.TempDir(), "m.yaml")
	if _, err := kkArtifact(t, "create", "manifest", "-c", cluster, "-f", withLocal, "--with-local-storage"); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(withLocal)
	for _, want := range []string{"ghcr.io/kk-project/kk-local-csi:", "registry.k8s.io/sig-storage/snapshot-controller:"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("--with-local-storage: no %q in\n%s", want, data)
		}
	}
	noTerminal(t)
	if _, err := kkArtifact(t, "create", "manifest", "-c", cluster, "-f", out); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("overwrote without asking: %v", err)
	}
	if _, err := kkArtifact(t, "create", "manifest", "-c", out, "-f", out+".2"); err == nil || !strings.Contains(err.Error(), "KubeKey Manifest") {
		t.Errorf("manifest taken for a cluster: %v", err)
	}
}

func TestArtifactCommands(t *testing.T) {
	// A component upstream (kubeadm, kubelet, kubectl) and a registry with one image, both
	// on loopback.
	bin := bytes.Repeat([]byte("binary\n"), 4096)
	sum := sha256.Sum256(bin)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dir, file := filepath.Split(r.URL.Path)
		if dir != "/release/v1.34.1/bin/linux/amd64/" {
			http.NotFound(w, r)
			return
		}
		switch file {
		case "kubeadm", "kubelet", "kubectl":
			w.Write(bin)
		case "kubeadm.sha256", "kubelet.sha256", "kubectl.sha256":
			fmt.Fprintln(w, hex.EncodeToString(sum[:]))
		default:
			http.NotFound(w, r)
		}
	}))
	defer up.Close()
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	img, _ := random.Image(4096, 1)
	ref, _ := name.ParseReference(host + "/kk/pause:3.10")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	m := write(t, "m.yaml", `apiVersion: kubekey.kubesphere.io/v1alpha2
kind: Manifest
metadata: {name: cli}
spec:
  arches: [amd64]
  kubernetesDistributions: [{type: kubernetes, version: v1.34.1}]
  images: [registry.k8s.io/kk/pause:3.10]
`)
	work := t.TempDir()
	bundlePath := filepath.Join(t.TempDir(), "b.tar.gz")

	out, err := kkArtifact(t, "artifact", "export", "--workdir", work, "-m", m, "-o", bundlePath, "--mirror", up.URL,
		"--registry-mirror", "registry.k8s.io="+reg.URL)
	if err != nil || !strings.Contains(out, "wrote "+bundlePath) || !strings.Contains(out, "3 components, 1 images") {
		t.Fatalf("export: %s %v", out, err)
	}
	out, err = kkArtifact(t, "artifact", "export", "--workdir", work, "-m", m, "-o", bundlePath, "--mirror", up.URL,
		"--registry-mirror", "registry.k8s.io="+reg.URL)
	if err != nil || !strings.Contains(out, "downloaded 0 B, reused") {
		t.Fatalf("second export: %s %v", out, err)
	}
	out, err = kkArtifact(t, "artifact", "inspect", bundlePath)
	if err != nil || !strings.Contains(out, "IMAGE") || !strings.Contains(out, "registry.k8s.io/kk/pause:3.10") || !strings.Contains(out, "kubelet    v1.34.1") {
		t.Fatalf("inspect: %s %v", out, err)
	}
	if out, err = kkArtifact(t, "artifact", "verify", "--arch", "amd64", bundlePath); err != nil || !strings.Contains(out, ": OK") {
		t.Fatalf("verify: %s %v", out, err)
	}
	if _, err = kkArtifact(t, "artifact", "verify", "--arch", "arm64", bundlePath); err == nil || !strings.Contains(err.Error(), "not linux/arm64") {
		t.Errorf("verify wrong arch: %v", err)
	}
	out, err = kkArtifact(t, "artifact", "import", "--workdir", work, bundlePath)
	if err != nil || !strings.Contains(out, filepath.Join(work, "artifact")) || !strings.Contains(out, "verified and unpacked") {
		t.Fatalf("import: %s %v", out, err)
	}
	if out, err = kkArtifact(t, "artifact", "import", "--workdir", work, bundlePath); err != nil || !strings.Contains(out, "skipped") {
		t.Fatalf("second import: %s %v", out, err)
	}
	// KubeKey's form
	if out, err = kkArtifact(t, "artifact", "import", "--workdir", work, "-a", bundlePath); err != nil || !strings.Contains(out, "skipped") {
		t.Fatalf("import -a: %s %v", out, err)
	}
	data, _ := os.ReadFile(bundlePath)
	data[len(data)/2] ^= 0xff
	os.WriteFile(bundlePath, data, 0o644)
	if _, err = kkArtifact(t, "artifact", "verify", bundlePath); err == nil || !strings.Contains(err.Error(), bundlePath) {
		t.Errorf("corrupt bundle verified: %v", err)
	}
}
