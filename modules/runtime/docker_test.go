package runtime

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ociTar writes a tar of an OCI layout holding a single-arch image named twice and a
// two-arch index, and returns it with the digests of what each arch must load.
func ociTar(t *testing.T) string {
	t.Helper()
	blobs := map[string][]byte{}
	put := func(v any) string {
		b, _ := json.Marshal(v)
		s := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(s[:])
		blobs[d] = b
		return d
	}
	image := func(tag string) string {
		cfg := put(map[string]any{"architecture": tag, "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": []string{}}})
		layer := put("layer-" + tag)
		return put(map[string]any{"schemaVersion": 2, "config": map[string]string{"digest": cfg}, "layers": []map[string]string{{"digest": layer}}})
	}
	pause := image("pause")
	amd, arm := image("amd64"), image("arm64")
	multi := put(map[string]any{"schemaVersion": 2, "manifests": []map[string]any{
		{"digest": arm, "platform": map[string]string{"os": "linux", "architecture": "arm64"}},
		{"digest": amd, "platform": map[string]string{"os": "linux", "architecture": "amd64"}},
	}})
	named := func(d, ref string) map[string]any {
		return map[string]any{"digest": d, "annotations": map[string]string{"io.containerd.image.name": ref}}
	}
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{
		named(pause, "registry.k8s.io/pause:3.10.1"), named(pause, "registry.k8s.io/pause:3.10"),
		named(multi, "docker.io/flannel/flannel:v1"), named(pause, "registry.k8s.io/pause@"+pause),
	}})
	p := filepath.Join(t.TempDir(), "images.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	add("index.json", idx)
	for d, b := range blobs {
		add("blobs/"+strings.Replace(d, ":", "/", 1), b)
	}
	tw.Close()
	f.Close()
	return p
}

func TestDockerArchive(t *testing.T) {
	oci := ociTar(t)
	out := filepath.Join(filepath.Dir(oci), "images-docker-amd64.tar")
	if err := DockerArchive(oci, out, "amd64"); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	have := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		have[h.Name] = b
	}
	var m []dockerSaveEntry
	if err := json.Unmarshal(have["manifest.json"], &m); err != nil {
		t.Fatalf("manifest.json: %v\n%s", err, have["manifest.json"])
	}
	if len(m) != 2 {
		t.Fatalf("manifest.json has %d images, want 2 (pause, flannel's amd64 image):\n%s", len(m), have["manifest.json"])
	}
	if !slices.Equal(m[0].RepoTags, []string{"registry.k8s.io/pause:3.10.1", "registry.k8s.io/pause:3.10"}) {
		t.Errorf("pause tags %v (a digest reference cannot be a docker tag)", m[0].RepoTags)
	}
	if !slices.Equal(m[1].RepoTags, []string{"docker.io/flannel/flannel:v1"}) {
		t.Errorf("flannel tags %v", m[1].RepoTags)
	}
	for _, e := range m {
		for _, p := range append([]string{e.Config}, e.Layers...) {
			if _, ok := have[p]; !ok {
				t.Errorf("%v: %s is not in the archive", e.RepoTags, p)
			}
		}
	}
	var cfg struct{ Architecture string }
	json.Unmarshal(have[m[1].Config], &cfg)
	if cfg.Architecture != "amd64" {
		t.Errorf("flannel: the %q image was picked, want amd64", cfg.Architecture)
	}
	if _, ok := have["index.json"]; !ok {
		t.Error("the OCI layout's index.json was dropped")
	}
	if err := DockerArchive(oci, filepath.Join(filepath.Dir(oci), "s390x.tar"), "s390x"); err == nil || !strings.Contains(err.Error(), "no linux/s390x image") {
		t.Errorf("an arch the archive lacks: %v", err)
	}
}

func TestDockerInContainer(t *testing.T) {
	s := Spec{ContainerManager: Docker, CRISocket: CriDockerdSocket}
	plain, err := dockerConfigFiles(s, false, false)
	if err != nil || len(plain) != 1 || strings.Contains(string(plain[0].Data), "runtime") {
		t.Fatalf("outside a container: %v %+v", err, plain)
	}
	files, err := dockerConfigFiles(s, true, false)
	if err != nil || len(files) != 2 || files[1].Path != RestrictedRunc || files[1].Mode != 0o755 {
		t.Fatalf("in a container: %v %+v", err, files)
	}
	var d struct {
		DefaultRuntime string                       `json:"default-runtime"`
		Runtimes       map[string]map[string]string `json:"runtimes"`
		ExecOpts       []string                     `json:"exec-opts"`
	}
	if err := json.Unmarshal(files[0].Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.Runtimes[d.DefaultRuntime]["path"] != RestrictedRunc || len(d.ExecOpts) != 1 {
		t.Errorf("daemon.json in a container:\n%s", files[0].Data)
	}
	if w := string(files[1].Data); !strings.HasPrefix(w, "#!/bin/sh\n") || !strings.Contains(w, `exec /usr/local/bin/runc "$@"`) {
		t.Errorf("restricted runc:\n%s", w)
	}

	// a GPU host: NVIDIA's runtime is the default (cri-dockerd asks for no other), beside the
	// restricted runc it hands containers to in a container
	for _, in := range []bool{false, true} {
		files, err := dockerConfigFiles(s, in, true)
		if err != nil {
			t.Fatal(err)
		}
		d.Runtimes, d.DefaultRuntime = nil, ""
		if err := json.Unmarshal(files[0].Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.DefaultRuntime != NvidiaRuntime || d.Runtimes[NvidiaRuntime]["path"] != NvidiaRuntimeBin ||
			(d.Runtimes[restrictedRuntimeName]["path"] == RestrictedRunc) != in || len(d.Runtimes) != map[bool]int{false: 1, true: 2}[in] {
			t.Errorf("daemon.json of a GPU host (in a container: %v):\n%s", in, files[0].Data)
		}
	}
}

func TestFullRef(t *testing.T) {
	for in, want := range map[string]string{
		"flannel/flannel:v1":              "docker.io/flannel/flannel:v1",
		"haproxy:2.9":                     "docker.io/library/haproxy:2.9",
		"docker.io/library/haproxy:2.9":   "docker.io/library/haproxy:2.9",
		"registry.k8s.io/pause:3.10.1":    "registry.k8s.io/pause:3.10.1",
		"localhost:5000/x:1":              "localhost:5000/x:1",
		"docker.io/kksphere/e2e-probe:v1": "docker.io/kksphere/e2e-probe:v1",
	} {
		if got := fullRef(in); got != want {
			t.Errorf("fullRef(%q) = %q, want %q", in, got, want)
		}
	}
}
