package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

// remote places for the image import
const importDir = "/var/lib/kk/images"

// Tasks returns the tasks that install and start the spec's container runtime on every
// control plane and worker, after facts. ReadyTask comes last on each host.
func Tasks(s Spec) []pipeline.Task {
	if s.ContainerManager == Docker {
		return dockerTasks(s)
	}
	return containerdTasks(s)
}

func inContainer(t *pipeline.Target) bool {
	f := t.Facts()
	return f != nil && f.Container != ""
}

func containerdTasks(s Spec) []pipeline.Task {
	after := []string{facts.TaskName}
	sel := Nodes()
	list := append(binaries.To(BinDir, "containerd", "containerd-shim-runc-v2", "ctr", "crictl"),
		binaries.Install{Name: "runc", Dest: RuncPath})
	tasks := []pipeline.Task{
		binaries.Task(TaskBinaries, "containerd, runc and crictl", sel, after, s.Files, list),
	}
	if len(s.CNIPlugins) > 0 {
		tasks = append(tasks, cniTask(s, sel, after))
	}
	tasks = append(tasks,
		filesTask(TaskConfig, "containerd configuration "+ContainerdConf, sel, after, func(t *pipeline.Target) ([]connector.File, error) {
			b, err := RenderContainerdConfig(s, inContainer(t))
			mode := fs.FileMode(0o644)
			if len(s.auths()) > 0 {
				mode = 0o600 // it holds registry passwords
			}
			return []connector.File{{Path: ContainerdConf, Data: b, Mode: mode}}, err
		}),
		registryHostsTask(s, sel, after, CertsDir, RegistryFiles),
		filesTask(TaskUnits, "containerd.service", sel, after, func(t *pipeline.Target) ([]connector.File, error) {
			b, err := RenderContainerdUnit(inContainer(t))
			return []connector.File{{Path: path.Join(UnitDir, "containerd.service"), Data: b, Mode: 0o644}}, err
		}),
		filesTask(TaskCrictl, "crictl configuration "+CrictlConf, sel, after, func(*pipeline.Target) ([]connector.File, error) {
			b, err := RenderCrictl(s)
			return []connector.File{{Path: CrictlConf, Data: b, Mode: 0o644}}, err
		}),
		serviceTask(serviceSpec{
			services: []string{"containerd"},
			watched:  []string{ContainerdConf, path.Join(UnitDir, "containerd.service"), path.Join(BinDir, "containerd")},
			stamp:    "/etc/containerd/.kk-applied",
			wait:     "ctr version",
		}, sel, []string{TaskBinaries, TaskConfig, TaskUnits, TaskRegistryHosts}),
	)
	readyAfter := []string{TaskService, TaskCrictl, TaskRegistryHosts}
	if len(s.CNIPlugins) > 0 {
		readyAfter = append(readyAfter, TaskCNIPlugins)
	}
	if s.ImageArchive != "" {
		tasks = append(tasks, importTask(s, sel, importer{
			list: "ctr -n k8s.io images ls -q",
			// the layout's index names each image (io.containerd.image.name); every platform
			// the archive holds is imported and the host's own one unpacked
			// containerd's CRI reports an image with the label pinnedLabel pinned, and kubelet's
			// image garbage collection skips pinned images. The import sets it: an import
			// replaces the labels of an image it names that was there already.
			load: func(p string) string {
				return "ctr -n k8s.io images import --all-platforms --label " + pinnedLabel + " " + connector.Quote(p)
			},
			pinned: `ctr -n k8s.io images ls -q 'labels."io.cri-containerd.pinned"==pinned'`,
			pin: func(refs []string) string {
				return "for r in " + connector.Cmd(refs...) + `; do ctr -n k8s.io images label "$r" ` + pinnedLabel + ` >/dev/null || exit 1; done`
			},
		}))
		readyAfter = append(readyAfter, TaskImages)
	}
	return append(tasks, readyTask(s, sel, readyAfter, "containerd"))
}

func cniTask(s Spec, sel pipeline.Selector, after []string) pipeline.Task {
	var names []string
	for _, p := range s.CNIPlugins {
		names = append(names, "cni/"+p)
	}
	return binaries.Task(TaskCNIPlugins, "CNI plugins into "+CNIBinDir, sel, after, s.Files, binaries.To(CNIBinDir, names...))
}

// filesCheck is a shell test that every file has its content and mode.
func filesCheck(files []connector.File) string {
	if len(files) == 0 {
		return "true"
	}
	var sums, modes []string
	for _, f := range files {
		sum := sha256.Sum256(f.Data)
		sums = append(sums, connector.Quote(hex.EncodeToString(sum[:])+"  "+f.Path))
		modes = append(modes, fmt.Sprintf(`[ "$(stat -c %%a %s 2>/dev/null)" = %o ]`, connector.Quote(f.Path), f.Mode.Perm()))
	}
	return "printf '%s\\n' " + strings.Join(sums, " ") + " | sha256sum -c --status - 2>/dev/null && " + strings.Join(modes, " && ")
}

// filesTask keeps files (rendered per host) in place.
func filesTask(name, desc string, sel pipeline.Selector, after []string, render func(*pipeline.Target) ([]connector.File, error)) pipeline.Task {
	return pipeline.Task{
		Name: name, Desc: desc, Hosts: sel, After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			files, err := render(t)
			if err != nil {
				return false, err
			}
			return t.Test(ctx, filesCheck(files))
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			files, err := render(t)
			if err != nil {
				return false, err
			}
			return t.UploadAll(ctx, files)
		},
	}
}

// registryHostsTask keeps kk's registry directories under base and removes the ones kk wrote
// for registries no longer configured.
func registryHostsTask(s Spec, sel pipeline.Selector, after []string, base string, render func(Spec) ([]connector.File, []string, error)) pipeline.Task {
	stale := func(ctx context.Context, t *pipeline.Target, want []string) ([]string, error) {
		out, err := t.Sudo(ctx, fmt.Sprintf(`for m in %s/*/%s; do [ -f "$m" ] && dirname "$m"; done; true`, connector.Quote(base), managedMarker))
		if err != nil {
			return nil, err
		}
		var old []string
		for _, d := range strings.Fields(out) {
			if !slices.Contains(want, d) {
				old = append(old, d)
			}
		}
		return old, nil
	}
	return pipeline.Task{
		Name: TaskRegistryHosts, Desc: "registry mirrors, insecure registries and certificates under " + base, Hosts: sel, After: after,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			files, dirs, err := render(s)
			if err != nil {
				return false, err
			}
			old, err := stale(ctx, t, dirs)
			if err != nil || len(old) > 0 {
				return false, err
			}
			return t.Test(ctx, filesCheck(files))
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			files, dirs, err := render(s)
			if err != nil {
				return false, err
			}
			old, err := stale(ctx, t, dirs)
			if err != nil {
				return false, err
			}
			changed := false
			if len(old) > 0 {
				var q []string
				for _, d := range old {
					q = append(q, connector.Quote(d))
				}
				if _, err := t.Sudo(ctx, "rm -rf "+strings.Join(q, " ")); err != nil {
					return false, err
				}
				changed = true
			}
			c, err := t.UploadAll(ctx, files)
			return changed || c, err
		},
	}
}

// serviceSpec is a set of systemd services restarted together when a watched file changed.
type serviceSpec struct {
	services []string // in start order
	watched  []string // config, units, binaries: a restart applies them
	stamp    string   // records the watched files' digest at the last (re)start
	wait     string   // command that succeeds once the service answers
}

func (sv serviceSpec) digest() string {
	var q []string
	for _, w := range sv.watched {
		q = append(q, connector.Quote(w))
	}
	return "sha256sum " + strings.Join(q, " ") + " | sha256sum | cut -d' ' -f1"
}

func (sv serviceSpec) logs() string {
	var parts []string
	for _, s := range sv.services {
		parts = append(parts, "systemctl status --no-pager -l "+s+" 2>&1 | tail -n 15; journalctl --no-pager -u "+s+" -n 30 2>&1")
	}
	return strings.Join(parts, "; ")
}

// serviceTask enables and runs the services, restarting them only when a watched file changed
// since the last (re)start (or a service is not running).
func serviceTask(sv serviceSpec, sel pipeline.Selector, after []string) pipeline.Task {
	names := strings.Join(sv.services, " ")
	return pipeline.Task{
		Name: TaskService, Desc: "run " + names + " (restarted when its configuration, unit or program changed)", Hosts: sel, After: after,
		Timeout: 5 * time.Minute,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			return t.Test(ctx, fmt.Sprintf(`[ -f %[1]s ] && [ "$(%[2]s)" = "$(cat %[1]s)" ] && systemctl is-enabled -q %[3]s && systemctl is-active -q %[3]s`,
				connector.Quote(sv.stamp), sv.digest(), names))
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			cmd := fmt.Sprintf(`set -e; h=$(%s); systemctl daemon-reload; systemctl enable -q %s; for s in %s; do systemctl restart "$s"; done
ok=; for i in $(seq 1 60); do if %s >/dev/null 2>&1; then ok=1; break; fi; sleep 1; done
if [ -z "$ok" ]; then echo "%s did not answer within 60s after its restart:" >&2; { %s; } >&2; exit 1; fi
printf '%%s\n' "$h" > %s`, sv.digest(), names, names, sv.wait, names, sv.logs(), connector.Quote(sv.stamp))
			if _, err := t.Sudo(ctx, cmd); err != nil {
				return false, err
			}
			return true, nil
		},
	}
}

// pinnedLabel pins an image in containerd's CRI.
const pinnedLabel = "io.cri-containerd.pinned=pinned"

type importer struct {
	list string                // prints the present image references, one a line
	load func(p string) string // imports the archive at p
	// pinned prints the references kubelet's image garbage collection leaves alone, and pin
	// pins refs ("" and nil: the runtime has no pinning). An air-gapped node cannot pull an
	// image back, and an image imported ahead of its use (an upgrade's) is unused until then.
	pinned string
	pin    func(refs []string) string
	// archive is the local file uploaded and imported on a host (nil: Spec.ImageArchive)
	archive func(t *pipeline.Target) (string, error)
}

// archiveImages lists what the import must provide: Spec.Images, else every reference the
// archive's index names.
func archiveImages(s Spec) ([]string, error) {
	if len(s.Images) > 0 {
		return s.Images, nil
	}
	refs, err := ArchiveRefs(s.ImageArchive)
	if err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		return nil, fmt.Errorf("image archive %s names no image (no %s annotation in its index.json): set the images to expect", s.ImageArchive, "org.opencontainers.image.ref.name")
	}
	return refs, nil
}

// missingImages lists the images of want that the list command does not print.
func missingImages(ctx context.Context, t *pipeline.Target, list string, want []string) ([]string, error) {
	out, err := t.Sudo(ctx, list)
	if err != nil {
		return nil, err
	}
	// docker lists Docker Hub images without docker.io/ (and library/): compare in full form
	have := map[string]bool{}
	for _, h := range strings.Fields(out) {
		have[fullRef(h)] = true
	}
	var missing []string
	for _, w := range want {
		if !have[fullRef(w)] {
			missing = append(missing, w)
		}
	}
	return missing, nil
}

// fullRef is ref with its registry host: "flannel/flannel:v1" -> "docker.io/flannel/flannel:v1".
func fullRef(ref string) string {
	host, rest := splitRef(ref)
	return host + "/" + rest
}

// importTask uploads the image archive and imports it when an expected image is missing.
func importTask(s Spec, sel pipeline.Selector, im importer) pipeline.Task {
	// the archive's index is read once for all hosts
	var once sync.Once
	var images []string
	var imagesErr error
	wantImages := func(s Spec) ([]string, error) {
		once.Do(func() { images, imagesErr = archiveImages(s) })
		return images, imagesErr
	}
	return pipeline.Task{
		Name: TaskImages, Desc: "import the image archive " + filepath.Base(s.ImageArchive), Hosts: sel, After: []string{TaskService},
		Timeout: 30 * time.Minute,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			want, err := wantImages(s)
			if err != nil {
				return false, err
			}
			res, err := t.Exec(ctx, im.list, connector.ExecOptions{Sudo: true})
			if err != nil || res.ExitCode != 0 {
				return false, err // the runtime is not running yet (dry run): would import
			}
			m, err := missingImages(ctx, t, im.list, want)
			if err != nil || len(m) > 0 || im.pinned == "" {
				return len(m) == 0, err
			}
			m, err = missingImages(ctx, t, im.pinned, want)
			return len(m) == 0, err
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			want, err := wantImages(s)
			if err != nil {
				return false, err
			}
			if m, err := missingImages(ctx, t, im.list, want); err != nil {
				return false, err
			} else if len(m) > 0 {
				if err := importArchive(ctx, t, s, im, want, m); err != nil {
					return true, err
				}
			}
			if im.pinned == "" {
				return true, nil
			}
			unpinned, err := missingImages(ctx, t, im.pinned, want)
			if err == nil && len(unpinned) > 0 {
				_, err = t.Sudo(ctx, im.pin(unpinned))
			}
			return true, err
		},
	}
}

// importArchive uploads the archive, imports it and checks that every image of want is there.
// A host that lacks only some images (missing) gets an archive of those alone, unless the
// runtime loads another format (im.archive).
func importArchive(ctx context.Context, t *pipeline.Target, s Spec, im importer, want, missing []string) error {
	local := s.ImageArchive
	switch {
	case im.archive != nil:
		var err error
		if local, err = im.archive(t); err != nil {
			return err
		}
	case len(missing) < len(want):
		sub, err := subsetArchive(s.ImageArchive, missing)
		if err == nil {
			local = sub
		} else if t.Log != nil {
			t.Log.Warn("importing the whole image archive", "why", err.Error())
		}
		if t.Log != nil && err == nil {
			t.Log.Info("importing only the images the host lacks", "images", strings.Join(missing, " "))
		}
	}
	remote := path.Join(importDir, "kk-images-"+fmt.Sprint(time.Now().UnixNano())+".tar")
	if _, err := t.Upload(ctx, connector.File{Path: remote, LocalPath: local, Mode: 0o600}); err != nil {
		return fmt.Errorf("upload image archive %s: %w", local, err)
	}
	_, err := t.Sudo(ctx, im.load(remote))
	_, _ = t.Sudo(ctx, "rm -f "+connector.Quote(remote))
	if err != nil {
		return fmt.Errorf("import image archive %s: %w", s.ImageArchive, err)
	}
	m, err := missingImages(ctx, t, im.list, want)
	if err != nil {
		return err
	}
	if len(m) > 0 {
		return fmt.Errorf("image archive %s was imported but these images are still missing (not in the archive?): %s", s.ImageArchive, strings.Join(m, ", "))
	}
	return nil
}

// CRIReady is a shell test that succeeds once the CRI reports the RuntimeReady condition true.
const CRIReady = `crictl info -o go-template --template '{{range .status.conditions}}{{.type}}={{.status}} {{end}}' 2>/dev/null | grep -qw 'RuntimeReady=true'`

// readyTask waits until the CRI answers and reports RuntimeReady.
func readyTask(s Spec, sel pipeline.Selector, after []string, service string) pipeline.Task {
	return pipeline.Task{
		Name: ReadyTask, Desc: "wait until the CRI (" + s.CRISocket + ") reports RuntimeReady", Hosts: sel, After: after,
		Timeout: 3 * time.Minute,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			return t.Test(ctx, CRIReady)
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			cmd := fmt.Sprintf(`for i in $(seq 1 120); do if %s; then exit 0; fi; sleep 1; done
echo "the CRI at %s did not report RuntimeReady within 120s; crictl info says:" >&2; crictl info 2>&1 | head -c 1500 >&2; journalctl --no-pager -u %s -n 10 >&2 2>&1; exit 1`,
				CRIReady, s.CRISocket, service)
			_, err := t.Sudo(ctx, cmd)
			return false, err // waiting changes nothing
		},
	}
}
