package gpu

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/catalog"
	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/runtime"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

// Task names of NVIDIA's container toolkit (spec.gpu), on the GPU hosts, and of its
// RuntimeClass.
const (
	TaskToolkit      = "gpu/container-toolkit"
	TaskContainerd   = "gpu/containerd-nvidia"
	TaskDocker       = "gpu/docker-nvidia"
	TaskRuntimeClass = "gpu/runtime-class"
)

// The toolkit on a GPU host.
const (
	// ToolkitPackage is the toolkit's Debian package kk installs: nvidia-ctk,
	// nvidia-container-runtime and nvidia-cdi-hook, all that CDI needs (NVIDIA's
	// nvidia-container-toolkit package adds the legacy hook and its C library).
	ToolkitPackage = "nvidia-container-toolkit-base"
	// ContainerdDropIn is the containerd drop-in nvidia-ctk writes: the nvidia runtime.
	ContainerdDropIn = runtime.ContainerdDropIns + "/99-nvidia.toml"
	// RuntimeHandler is containerd's runtime handler, and the RuntimeClass, for GPU pods.
	RuntimeHandler = runtime.NvidiaRuntime
	nvidiaCTK      = "/usr/bin/nvidia-ctk"
	// RuntimeConfig is nvidia-container-runtime's configuration (the package writes it).
	RuntimeConfig = "/etc/nvidia-container-runtime/config.toml"
)

// ToolkitSpec is NVIDIA's container toolkit on the GPU hosts.
type ToolkitSpec struct {
	// Version is the toolkit's release ("v1.20.2").
	Version string
	// Files holds its base package per arch, as catalog.NvidiaContainerToolkit.
	Files binaries.Files
	// DefaultRuntime makes nvidia containerd's default runtime (kubernetes.nvidiaRuntime).
	DefaultRuntime bool
	// Docker: the container manager is docker, whose daemon.json (the runtime phase's) makes
	// NVIDIA's runtime the default on the GPU hosts; the toolkit's second task points that
	// runtime at docker's own OCI runtime (runtime.DockerRunc) instead of containerd's drop-in.
	Docker bool
	// GPUHosts tells the GPU hosts.
	GPUHosts Hosts
}

// Hosts tells the GPU hosts: those whose facts list NVIDIA GPUs on their PCI bus, and those
// the Cluster file declares so (Declared: config.GPUPresentLabel "true" in their labels).
type Hosts struct {
	Declared []string
}

// Has reports whether t's host is a GPU host.
func (h Hosts) Has(t *pipeline.Target) bool {
	return HasGPU(t) || slices.Contains(h.Declared, t.Name)
}

// skipUnlessGPU makes check true (nothing to do) on a host that is not a GPU host.
func (h Hosts) skipUnlessGPU(check func(ctx context.Context, t *pipeline.Target) (bool, error)) func(ctx context.Context, t *pipeline.Target) (bool, error) {
	return func(ctx context.Context, t *pipeline.Target) (bool, error) {
		if !h.Has(t) {
			return true, nil
		}
		return check(ctx, t)
	}
}

// debVersion is the Debian package version of toolkit release v ("v1.20.2": "1.20.2-1").
func debVersion(v string) string { return strings.TrimPrefix(v, "v") + "-1" }

// ToolkitInstalled is a shell test that the toolkit's base package of release v is installed.
func ToolkitInstalled(v string) string {
	return `[ "$(dpkg-query -W -f='${Version}' ` + ToolkitPackage + ` 2>/dev/null)" = ` + connector.Quote(debVersion(v)) + ` ]`
}

// cdiRefresh is the package's systemd path unit that runs nvidia-ctk cdi generate (its
// service: /var/run/cdi/nvidia.yaml) whenever a driver's modules or the toolkit change, and at
// boot; its service does nothing on a host without a driver. The package's maintainer scripts
// leave enabling it to debhelper: kk enables it.
const cdiRefresh = "nvidia-cdi-refresh"

// cdiRefreshOn is a shell test that cdiRefresh's path unit is enabled and watching, and its
// service enabled for boot.
const cdiRefreshOn = `systemctl is-enabled -q ` + cdiRefresh + `.path ` + cdiRefresh + `.service && systemctl is-active -q ` + cdiRefresh + `.path`

// ConfigureScript writes containerd's nvidia runtime drop-in with nvidia-ctk into the scratch
// directory "$d" (with a copy of kk's containerd configuration beside it: nvidia-ctk rewrites
// the top-level file it reads, and kk's is kk's), CDI on, nvidia the default runtime when
// asked. The drop-in path is always given: without one nvidia-ctk writes a configuration
// containerd cannot load.
func ConfigureScript(defaultRuntime bool) string {
	args := `--runtime=containerd --config-source=file --config="$d/config.toml" --drop-in-config="$d/99-nvidia.toml" --cdi.enabled`
	if defaultRuntime {
		args += " --set-as-default"
	}
	return `cp ` + runtime.ContainerdConf + ` "$d/config.toml" && ` + nvidiaCTK + ` runtime configure ` + args + ` >"$d/log" 2>&1 || { cat "$d/log" >&2; exit 1; }`
}

// dropInCurrent is a shell test that the drop-in in place is what nvidia-ctk writes now and
// that the running containerd loaded it (its CRI lists the nvidia runtime).
func dropInCurrent(defaultRuntime bool) string {
	return `d=$(mktemp -d) && trap 'rm -rf "$d"' EXIT && ` + ConfigureScript(defaultRuntime) +
		` && cmp -s "$d/99-nvidia.toml" ` + ContainerdDropIn +
		` && crictl info -o go-template --template '{{range $k, $v := .config.containerd.runtimes}}{{$k}} {{end}}' 2>/dev/null | grep -qw ` + RuntimeHandler
}

// ToolkitTasks returns the toolkit's tasks on the GPU hosts: its base package (from the
// bundle; a host without dpkg fails naming why) with its CDI refresh units on and run once
// (after installAfter: the driver's tasks, so that a new driver is in the CDI spec), then
// containerd's nvidia runtime written by nvidia-ctk as a drop-in and containerd restarted to
// load it, once the runtime phase's tasks (runtimeAfter: containerd configured, running, its
// images imported) are done.
func ToolkitTasks(s ToolkitSpec, installAfter, runtimeAfter []string) []pipeline.Task {
	sel := pipeline.AllHosts()
	pkg := InstallerDir + "/" + ToolkitPackage + ".deb"
	return []pipeline.Task{
		{
			Name: TaskToolkit, Desc: "NVIDIA container toolkit " + s.Version + " (" + ToolkitPackage + ", from the bundle; GPU hosts)",
			Hosts: sel, After: installAfter,
			Check: s.GPUHosts.skipUnlessGPU(func(ctx context.Context, t *pipeline.Target) (bool, error) {
				return t.Test(ctx, ToolkitInstalled(s.Version)+" && "+cdiRefreshOn)
			}),
			Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
				if ok, err := t.Test(ctx, "command -v dpkg >/dev/null"); err != nil || !ok {
					if err == nil {
						err = fmt.Errorf("kk installs NVIDIA's container toolkit from its Debian package, and this host has no dpkg")
					}
					return false, err
				}
				local, err := s.Files.Path(binaries.HostArch(t), catalog.NvidiaContainerToolkit)
				if err != nil {
					return false, err
				}
				if _, err := t.Sudo(ctx, "mkdir -p "+InstallerDir); err != nil {
					return false, err
				}
				if _, err := t.Upload(ctx, connector.File{Path: pkg, LocalPath: local, Mode: 0o644}); err != nil {
					return true, fmt.Errorf("upload %s: %w", ToolkitPackage, err)
				}
				if _, err := t.Sudo(ctx, "dpkg -i "+connector.Quote(pkg)+" >/dev/null && rm -f "+connector.Quote(pkg)+" && "+ToolkitInstalled(s.Version)); err != nil {
					return true, fmt.Errorf("install %s %s: %w", ToolkitPackage, s.Version, err)
				}
				// the service writes the CDI spec now where a driver is loaded (and skips itself
				// where none is)
				if _, err := t.Sudo(ctx, "systemctl daemon-reload && systemctl enable -q "+cdiRefresh+".service && systemctl enable -q --now "+cdiRefresh+".path && "+
					"systemctl start "+cdiRefresh+".service"); err != nil {
					return true, fmt.Errorf("the CDI refresh units: %w", err)
				}
				return true, nil
			},
		},
		s.runtimeTask(runtimeAfter),
	}
}

// runtimeTask is the toolkit's second task: containerd's drop-in, or docker's runtime set up.
func (s ToolkitSpec) runtimeTask(runtimeAfter []string) pipeline.Task {
	sel := pipeline.AllHosts()
	if s.Docker {
		return s.dockerTask(runtimeAfter)
	}
	return pipeline.Task{
		Name: TaskContainerd, Desc: "containerd's " + RuntimeHandler + " runtime (" + ContainerdDropIn + ", written by nvidia-ctk; CDI on) loaded (GPU hosts)",
		Hosts: sel, After: append([]string{TaskToolkit}, runtimeAfter...), Timeout: 5 * time.Minute,
		Check: s.GPUHosts.skipUnlessGPU(func(ctx context.Context, t *pipeline.Target) (bool, error) {
			return t.Test(ctx, dropInCurrent(s.DefaultRuntime))
		}),
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			cmd := `set -e; d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
` + ConfigureScript(s.DefaultRuntime) + `
install -D -m 0644 "$d/99-nvidia.toml" ` + ContainerdDropIn + `
systemctl restart containerd
for i in $(seq 1 60); do if ` + runtime.CRIReady + `; then exit 0; fi; sleep 1; done
echo "containerd did not report RuntimeReady within 60s of loading ` + ContainerdDropIn + `:" >&2; journalctl --no-pager -u containerd -n 20 >&2; exit 1`
			if _, err := t.Sudo(ctx, cmd); err != nil {
				return true, err
			}
			return true, nil
		},
	}
}

// lowLevel is a shell command that writes nvidia-container-runtime's configuration with the
// OCI runtime runc as the one it hands containers to, to "$d/config.toml".
func lowLevel(runc string) string {
	return nvidiaCTK + ` --quiet config --config-file=` + RuntimeConfig + ` --set nvidia-container-runtime.runtimes=` + connector.Quote(runc) +
		` --output="$d/config.toml" >"$d/log" 2>&1 || { cat "$d/log" >&2; exit 1; }`
}

// dockerDefault is a shell test that the running docker's default runtime is NVIDIA's.
const dockerDefault = `[ "$(docker info --format '{{.DefaultRuntime}}' 2>/dev/null)" = ` + runtime.NvidiaRuntime + ` ]`

// dockerTask checks docker's side of NVIDIA's runtime on the GPU hosts: nvidia-container-
// runtime hands containers to docker's own OCI runtime (runtime.DockerRunc: the restricted
// runc on a host in a container) rather than the first runc on its PATH, and the running
// docker has it as its default runtime (the runtime phase's daemon.json), the one every pod's
// container runs with through cri-dockerd. Docker needs no restart: it starts the runtime
// anew for each container.
func (s ToolkitSpec) dockerTask(runtimeAfter []string) pipeline.Task {
	return pipeline.Task{
		Name: TaskDocker, Desc: "docker runs containers through " + runtime.NvidiaRuntimeBin + " (its default runtime), which hands them to docker's runc (GPU hosts)",
		Hosts: pipeline.AllHosts(), After: append([]string{TaskToolkit}, runtimeAfter...),
		Check: s.GPUHosts.skipUnlessGPU(func(ctx context.Context, t *pipeline.Target) (bool, error) {
			return t.Test(ctx, `d=$(mktemp -d) && trap 'rm -rf "$d"' EXIT && `+lowLevel(runtime.DockerRunc(t))+` && cmp -s "$d/config.toml" `+RuntimeConfig+` && `+dockerDefault)
		}),
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			cmd := `set -e; d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
` + lowLevel(runtime.DockerRunc(t)) + `
install -m 0644 "$d/config.toml" ` + RuntimeConfig + `
if ! ` + dockerDefault + `; then echo "docker's default runtime is $(docker info --format '{{.DefaultRuntime}}' 2>&1), not ` + runtime.NvidiaRuntime + ` (` + runtime.DockerConf + ` is the runtime phase's)" >&2; exit 1; fi`
			if _, err := t.Sudo(ctx, cmd); err != nil {
				return true, err
			}
			return true, nil
		},
	}
}

// RuntimeClassTask makes the RuntimeClass RuntimeHandler (handler RuntimeHandler), whose pods
// go to the GPU nodes only (config.GPUPresentLabel): the other nodes' containerd has no such
// handler. It runs once, on the first control plane's turn, through the API from kk's machine.
func RuntimeClassTask(client func(context.Context) (k8s.Interface, error), hosts pipeline.Selector, after []string) pipeline.Task {
	want := &nodev1.RuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: RuntimeHandler, Labels: map[string]string{"app.kubernetes.io/managed-by": "kk"}},
		Handler:    RuntimeHandler,
		Scheduling: &nodev1.Scheduling{NodeSelector: map[string]string{config.GPUPresentLabel: "true"}},
	}
	current := func(ctx context.Context) (k8s.Interface, *nodev1.RuntimeClass, error) {
		cs, err := client(ctx)
		if err != nil {
			return nil, nil, err
		}
		rc, err := cs.NodeV1().RuntimeClasses().Get(ctx, RuntimeHandler, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return cs, nil, nil
		}
		return cs, rc, err
	}
	return pipeline.Task{
		Name: TaskRuntimeClass, Desc: "the RuntimeClass " + RuntimeHandler + " (handler " + RuntimeHandler + ", on the GPU nodes)",
		Hosts: hosts, After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			_, rc, err := current(ctx)
			if err != nil && t.DryRun {
				return false, nil // a cluster this run would make
			}
			return rc != nil && rc.Handler == want.Handler && rc.Scheduling != nil &&
				rc.Scheduling.NodeSelector[config.GPUPresentLabel] == "true", err
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			cs, rc, err := current(ctx)
			if err != nil {
				return false, err
			}
			if rc != nil {
				// the handler cannot change: the class is made again
				if err := cs.NodeV1().RuntimeClasses().Delete(ctx, RuntimeHandler, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
					return false, fmt.Errorf("RuntimeClass %s: %w", RuntimeHandler, err)
				}
			}
			if _, err := cs.NodeV1().RuntimeClasses().Create(ctx, want, metav1.CreateOptions{}); err != nil {
				return true, fmt.Errorf("RuntimeClass %s: %w", RuntimeHandler, err)
			}
			return true, nil
		},
	}
}
