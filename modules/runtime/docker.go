package runtime

import (
	"path"

	"github.com/kk-project/kk/modules/binaries"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
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

// dockerTasks install Docker from its static release with cri-dockerd as the CRI.
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
		filesTask(TaskConfig, "docker configuration "+DockerConf, sel, after, func(*pipeline.Target) ([]connector.File, error) {
			b, err := RenderDockerDaemon(s)
			if err != nil {
				return nil, err
			}
			files := []connector.File{{Path: DockerConf, Data: b, Mode: 0o644}}
			auth, err := RenderDockerAuth(s)
			if auth != nil {
				files = append(files, connector.File{Path: dockerAuthFile, Data: auth, Mode: 0o600})
			}
			return files, err
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
		tasks = append(tasks, importTask(s, sel, importer{
			list: `docker images --format '{{.Repository}}:{{.Tag}}'`,
			load: func(p string) string { return "docker load -i " + connector.Quote(p) },
		}))
		readyAfter = append(readyAfter, TaskImages)
	}
	return append(tasks, readyTask(s, sel, readyAfter, "cri-docker"))
}
