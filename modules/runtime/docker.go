package runtime

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/templates"
)

// dockerAuthFile is where cri-dockerd (through docker's client config) finds registry
// credentials.
const dockerAuthFile = "/root/.docker/config.json"

// dockerPrograms lists docker's static programs (Files names "docker/<program>") of every arch.
func dockerPrograms(s Spec) []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range s.Files.Arches() {
		for _, n := range s.Files.Names(a, "docker/") {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

// dockerTasks install Docker from its static release with cri-dockerd as the CRI. The
// bundle's images are loaded with docker load from the image archive with docker save's
// manifest.json added (DockerArchive), made once per arch on kk's machine.
func dockerTasks(s Spec) []pipeline.Task {
	after := []string{facts.TaskName}
	sel := Nodes()
	list := binaries.To(BinDir, dockerPrograms(s)...)
	list = append(list, binaries.To(BinDir, "cri-dockerd", "crictl")...)
	tasks := []pipeline.Task{
		binaries.Task(TaskBinaries, "docker, cri-dockerd and crictl", sel, after, s.Files, list),
	}
	if len(s.CNIPlugins) > 0 {
		tasks = append(tasks, cniTask(s, sel, after))
	}
	unitDocker, unitCri := path.Join(UnitDir, "docker.service"), path.Join(UnitDir, "cri-docker.service")
	tasks = append(tasks,
		filesTask(TaskConfig, "docker configuration "+DockerConf, sel, after, func(t *pipeline.Target) ([]connector.File, error) {
			return dockerConfigFiles(s, inContainer(t), s.NvidiaRuntime != nil && s.NvidiaRuntime(t))
		}),
		registryHostsTask(s, sel, after, DockerCertsDir, DockerRegistryFiles),
		filesTask(TaskUnits, "docker.service and cri-docker.service", sel, after, func(t *pipeline.Target) ([]connector.File, error) {
			d, err := RenderDockerUnit(inContainer(t))
			if err != nil {
				return nil, err
			}
			c, err := RenderCriDockerdUnit(s)
			return []connector.File{{Path: unitDocker, Data: d, Mode: 0o644}, {Path: unitCri, Data: c, Mode: 0o644}}, err
		}),
		filesTask(TaskCrictl, "crictl configuration "+CrictlConf, sel, after, func(*pipeline.Target) ([]connector.File, error) {
			b, err := RenderCrictl(s)
			return []connector.File{{Path: CrictlConf, Data: b, Mode: 0o644}}, err
		}),
		serviceTask(serviceSpec{
			services: []string{"docker", "cri-docker"},
			watched:  []string{DockerConf, unitDocker, unitCri, path.Join(BinDir, "dockerd"), path.Join(BinDir, "cri-dockerd")},
			stamp:    "/etc/docker/.kk-applied",
			wait:     "docker info",
		}, sel, []string{TaskBinaries, TaskConfig, TaskUnits, TaskRegistryHosts}),
	)
	readyAfter := []string{TaskService, TaskCrictl, TaskRegistryHosts}
	if len(s.CNIPlugins) > 0 {
		readyAfter = append(readyAfter, TaskCNIPlugins)
	}
	if s.ImageArchive != "" {
		archives := &dockerArchives{oci: s.ImageArchive, done: map[string]error{}}
		tasks = append(tasks, importTask(s, sel, importer{
			list: `docker images --format '{{.Repository}}:{{.Tag}}'`,
			load: func(p string) string { return "docker load -q -i " + connector.Quote(p) },
			archive: func(t *pipeline.Target) (string, error) {
				f := t.Facts()
				if f == nil || f.Arch == "" {
					return "", fmt.Errorf("image archive for docker: the host's arch is unknown (no facts)")
				}
				return archives.get(f.Arch)
			},
		}))
		readyAfter = append(readyAfter, TaskImages)
	}
	return append(tasks, readyTask(s, sel, readyAfter, "cri-docker"))
}

// On a host that runs in a container (its facts name a container technology) docker's
// default runtime is RestrictedRunc, a wrapper of docker's runc. Such a host may lack
// capabilities (CAP_SYS_RESOURCE in kk's test machines): it cannot lower oom_score_adj, which
// kubelet asks for (pod sandboxes, critical pods), nor grant a privileged container (kube-proxy,
// flannel) every capability docker asks for; runc fails on both. The wrapper raises an
// oom_score_adj below its own to its own, as containerd's restrict_oom_score_adj does, and
// keeps only the capabilities of its own bounding set, as containerd gives a privileged
// container the capabilities it has itself.
const (
	RestrictedRunc        = "/usr/local/libexec/kk/runc-restricted"
	restrictedRuntimeName = "runc-restricted"
)

// RenderDockerDaemonFor renders /etc/docker/daemon.json for a host: RenderDockerDaemon's
// settings; on a host in a container the restricted runc as the default runtime; on a host
// that runs containers through NVIDIA's runtime (Spec.NvidiaRuntime) that one as the default
// (it hands each container to DockerRunc's runtime, see the gpu module).
func RenderDockerDaemonFor(s Spec, inContainer, nvidia bool) ([]byte, error) {
	b, err := RenderDockerDaemon(s)
	if err != nil || (!inContainer && !nvidia) {
		return b, err
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	runtimes := map[string]any{}
	if inContainer {
		runtimes[restrictedRuntimeName] = map[string]string{"path": RestrictedRunc}
		d["default-runtime"] = restrictedRuntimeName
	}
	if nvidia {
		runtimes[NvidiaRuntime] = map[string]string{"path": NvidiaRuntimeBin}
		d["default-runtime"] = NvidiaRuntime
	}
	d["runtimes"] = runtimes
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// DockerRunc is the OCI runtime docker runs containers with on t by default, and NVIDIA's
// runtime hands them to on a GPU host: the restricted runc on a host in a container, else
// docker's runc.
func DockerRunc(t *pipeline.Target) string {
	if inContainer(t) {
		return RestrictedRunc
	}
	return path.Join(BinDir, "runc")
}

// RenderRestrictedRunc renders the RestrictedRunc wrapper around docker's runc.
func RenderRestrictedRunc() ([]byte, error) {
	return templates.Render("docker/runc-restricted", struct{ Runc string }{path.Join(BinDir, "runc")})
}

// dockerConfigFiles are daemon.json (see RenderDockerDaemonFor), the registry credentials
// and, on a host in a container, the restricted runc.
func dockerConfigFiles(s Spec, inContainer, nvidia bool) ([]connector.File, error) {
	b, err := RenderDockerDaemonFor(s, inContainer, nvidia)
	if err != nil {
		return nil, err
	}
	files := []connector.File{{Path: DockerConf, Data: b, Mode: 0o644}}
	auth, err := RenderDockerAuth(s)
	if err != nil {
		return nil, err
	}
	if auth != nil {
		files = append(files, connector.File{Path: dockerAuthFile, Data: auth, Mode: 0o600})
	}
	if inContainer {
		w, err := RenderRestrictedRunc()
		if err != nil {
			return nil, err
		}
		files = append(files, connector.File{Path: RestrictedRunc, Data: w, Mode: 0o755})
	}
	return files, nil
}

// dockerArchives makes, once per arch, the image archive docker load reads from the
// bundle's OCI layout tar (see DockerArchive), beside it.
type dockerArchives struct {
	oci  string
	mu   sync.Mutex
	done map[string]error
}

func (d *dockerArchives) get(arch string) (string, error) {
	out := strings.TrimSuffix(d.oci, ".tar") + "-docker-" + arch + ".tar"
	d.mu.Lock()
	defer d.mu.Unlock()
	if err, ok := d.done[arch]; ok {
		return out, err
	}
	err := DockerArchive(d.oci, out, arch)
	d.done[arch] = err
	return out, err
}

// DockerArchive writes out: the OCI image layout tar oci with a docker save manifest.json
// for linux/arch added, so that `docker load` of Docker before 25 (which reads only
// manifest.json) loads every image the layout's index names, under its reference. Docker
// 25+ reads the same file. An out newer than oci is kept.
func DockerArchive(oci, out, arch string) error {
	in, err := os.Stat(oci)
	if err != nil {
		return fmt.Errorf("image archive: %w", err)
	}
	if st, err := os.Stat(out); err == nil && st.Size() > 0 && !st.ModTime().Before(in.ModTime()) {
		return nil
	}
	f, err := os.Open(oci)
	if err != nil {
		return fmt.Errorf("image archive: %w", err)
	}
	defer f.Close()
	tmp, err := os.CreateTemp(filepath.Dir(out), ".docker-images-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	tr, tw := tar.NewReader(f), tar.NewWriter(tmp)
	small := map[string][]byte{} // index.json and the blobs small enough to be manifests or configs
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("image archive %s: %w", oci, err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "manifest.json" || name == "repositories" {
			continue // written below
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		var r io.Reader = tr
		var buf bytes.Buffer
		if h.Typeflag == tar.TypeReg && h.Size <= maxManifestBytes && (name == "index.json" || strings.HasPrefix(name, "blobs/")) {
			r = io.TeeReader(tr, &buf)
		}
		if _, err := io.Copy(tw, r); err != nil {
			return fmt.Errorf("image archive %s: %s: %w", oci, h.Name, err)
		}
		if buf.Len() > 0 {
			small[name] = buf.Bytes()
		}
	}
	m, err := dockerManifest(small, arch)
	if err != nil {
		return fmt.Errorf("image archive %s: %w", oci, err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(m)), Typeflag: tar.TypeReg, ModTime: in.ModTime()}); err != nil {
		return err
	}
	if _, err := tw.Write(m); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

type dockerSaveEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// dockerManifest computes docker save's manifest.json from a layout's index.json and blobs.
func dockerManifest(files map[string][]byte, arch string) ([]byte, error) {
	blob := func(d v1.Hash) (string, []byte, error) {
		p := blobPath(d)
		b, ok := files[p]
		if !ok {
			return p, nil, fmt.Errorf("blob %s is missing (or too large for a manifest)", d)
		}
		return p, b, nil
	}
	idx, err := v1.ParseIndexManifest(bytes.NewReader(files["index.json"]))
	if err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	var out []*dockerSaveEntry
	byManifest := map[v1.Hash]*dockerSaveEntry{}
	for _, d := range idx.Manifests {
		ref := indexRef(d.Annotations)
		if ref == "" || strings.Contains(ref, "@") {
			continue // docker tags images by name:tag only
		}
		desc := d
		for range 3 { // an index (or docker manifest list): the linux/arch manifest
			_, b, err := blob(desc.Digest)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", ref, err)
			}
			child, err := v1.ParseIndexManifest(bytes.NewReader(b))
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", ref, desc.Digest, err)
			}
			if len(child.Manifests) > 0 {
				found := false
				for _, c := range child.Manifests {
					if c.Platform != nil && c.Platform.OS == "linux" && c.Platform.Architecture == arch {
						desc, found = c, true
						break
					}
				}
				if !found {
					return nil, fmt.Errorf("%s has no linux/%s image", ref, arch)
				}
				continue
			}
			m, err := v1.ParseManifest(bytes.NewReader(b))
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", ref, desc.Digest, err)
			}
			e := byManifest[desc.Digest]
			if e == nil {
				cfg, _, err := blob(m.Config.Digest)
				if err != nil {
					return nil, fmt.Errorf("%s: config: %w", ref, err)
				}
				e = &dockerSaveEntry{Config: cfg}
				for _, l := range m.Layers {
					e.Layers = append(e.Layers, blobPath(l.Digest))
				}
				byManifest[desc.Digest] = e
				out = append(out, e)
			}
			if !slices.Contains(e.RepoTags, ref) {
				e.RepoTags = append(e.RepoTags, ref)
			}
			break
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("index.json names no image docker can load")
	}
	return json.Marshal(out)
}
