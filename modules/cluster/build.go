package cluster

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/catalog"
	"github.com/kk-project/kk/artifacts/versions"
	"github.com/kk-project/kk/modules/addons"
	"github.com/kk-project/kk/modules/certs"
	"github.com/kk-project/kk/modules/cni"
	"github.com/kk-project/kk/modules/dns"
	"github.com/kk-project/kk/modules/etcd"
	"github.com/kk-project/kk/modules/gpu"
	"github.com/kk-project/kk/modules/hooks"
	"github.com/kk-project/kk/modules/kubernetes"
	"github.com/kk-project/kk/modules/loadbalancer"
	"github.com/kk-project/kk/modules/osprep"
	"github.com/kk-project/kk/modules/platform"
	"github.com/kk-project/kk/modules/runtime"
	"github.com/kk-project/kk/pipeline"
)

// Validate checks what the config loader cannot: that kk supports the versions asked for
// and that the phases named exist. It runs before anything is downloaded or touched.
func Validate(c *config.Cluster, o Options) error {
	if _, err := versions.For(c.Kubernetes.Version); err != nil {
		return fmt.Errorf("%s: spec.kubernetes.version: %w", c.Source, err)
	}
	if _, err := kubernetes.ValidateVersions(c.Kubernetes.Version, kubernetes.Running{}); err != nil {
		return fmt.Errorf("%s: spec.kubernetes.version: %w", c.Source, err)
	}
	if len(c.HostsWithRole(config.RoleControlPlane)) == 0 {
		return fmt.Errorf("%s: spec.roleGroups: a cluster needs at least one control-plane host", c.Source)
	}
	_, err := (&Plan{Phases: phaseSkeleton()}).Tasks(o)
	return err
}

// Warnings are things worth saying before a run that do not stop it.
func Warnings(c *config.Cluster) []string {
	out, _ := kubernetes.ValidateVersions(c.Kubernetes.Version, kubernetes.Running{})
	if n := len(c.HostsWithRole(config.RoleEtcd)); c.Etcd.Type == config.EtcdKubeKey && n > 1 && n%2 == 0 {
		out = append(out, fmt.Sprintf("%d etcd members: an even number tolerates no more failures than %d; use an odd number", n, n-1))
	}
	return out
}

func phaseSkeleton() []Phase {
	var out []Phase
	for _, n := range PhaseNames() {
		out = append(out, Phase{Name: n})
	}
	return out
}

// NewPlan builds every phase's tasks for cluster c from the resolved artifacts.
func NewPlan(c *config.Cluster, a *Artifacts, o Options) (*Plan, error) {
	p := &Plan{Cluster: c, Artifacts: a}
	phases := phaseSkeleton()
	set := func(name, desc string, tasks []pipeline.Task) {
		for i := range phases {
			if phases[i].Name == name {
				phases[i].Desc, phases[i].Tasks = desc, tasks
			}
		}
	}
	set("precheck", "every host fit for its roles; CAs close to expiry warned about",
		[]pipeline.Task{PrecheckTask(c), certs.CAExpiryTask(c.Etcd.Type, o.Warn)})
	// spec.system's scripts (see package hooks): preInstall before the OS tasks,
	// postClusterInstall before the addons, postInstall at the end
	pre, err := hooks.Tasks(hooks.PreInstall, c.System.PreInstall, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Source, err)
	}
	postCluster, err := hooks.Tasks(hooks.PostClusterInstall, c.System.PostClusterInstall, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Source, err)
	}
	post, err := hooks.Tasks(hooks.PostInstall, c.System.PostInstall, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Source, err)
	}
	ds, err := dns.NewSpec(c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Source, err)
	}
	// spec.dns.nodeEtcHosts after the os phase's own /etc/hosts task (both rewrite the file)
	osTasks := append(osprep.Tasks(osSpec(c)), dns.NodeHostsTask(ds, []string{osprep.TaskEtcHosts}))
	set("os", "hostname, /etc/hosts, swap, kernel modules, sysctl, packages", hooks.Sequence(pre, osTasks))

	// the GPU hosts: NVIDIA GPUs on their PCI bus, or declared so in the Cluster file
	gpuHosts := gpu.Hosts{Declared: c.DeclaredGPUHosts()}
	rs := runtime.SpecFor(c, a.Files)
	rs.ImageArchive, rs.Images = a.ImageArchive, a.ImageRefs
	if c.GPU.Toolkit && rs.ContainerManager == runtime.Docker {
		rs.NvidiaRuntime = gpuHosts.Has
	}
	rdesc := "containerd, runc, crictl, CNI plugins; images from the bundle"
	if rs.ContainerManager == runtime.Docker {
		rdesc = "docker, cri-dockerd, crictl, CNI plugins; images from the bundle"
	}
	rt := runtime.Tasks(rs)
	set("runtime", rdesc, rt)

	es, err := etcd.SpecFor(c, o.Workdir, a.Files)
	if err != nil {
		return nil, err
	}
	set("etcd", "etcd members with kk's own TLS, health, backup timer", append(etcd.Tasks(es), etcd.ClientTasks(es)...))

	gt, gdesc, err := gpuTasks(c, a, gpuHosts, rt, o.AllowReboot)
	if err != nil {
		return nil, err
	}
	if len(gt) > 0 {
		set("gpu", gdesc, gt)
	}

	// The internal load balancer: kube-vip's VIP must answer before kubeadm init; haproxy
	// runs on the workers once they joined, and the API domain's line in /etc/hosts follows
	// each node's stage (see endpoint.go).
	ls := loadbalancer.SpecFor(c)
	var lbBefore, lbAfter []pipeline.Task
	switch ls.Mode {
	case loadbalancer.KubeVIP:
		lbBefore = loadbalancer.Tasks(ls)
	case loadbalancer.HAProxy:
		if len(endpointHosts(c)) > 0 {
			lbBefore = append(lbBefore, endpointTask(c, TaskEndpointJoin, nil, false))
		}
		for _, t := range loadbalancer.Tasks(ls) {
			if t.Name == loadbalancer.TaskHAProxyConfig {
				t.After = []string{kubernetes.TaskJoinWorker}
			}
			lbAfter = append(lbAfter, t)
		}
		if len(endpointHosts(c)) > 0 {
			lbAfter = append(lbAfter, endpointTask(c, TaskEndpoint,
				[]string{kubernetes.TaskJoinControlPlane, kubernetes.TaskJoinWorker, loadbalancer.TaskHAProxyManifest}, true))
		}
	}
	set("loadbalancer", "the API servers' internal load balancer ("+orNone(ls.Mode)+")", lbBefore)

	ks, err := kubernetes.SpecFor(c, o.Workdir, a.Files)
	if err != nil {
		return nil, err
	}
	ks.NodeAfter = []string{runtime.ReadyTask}
	if c.Etcd.Type != config.EtcdKubeadm {
		ks.InitAfter = []string{etcd.TaskHealth, etcd.TaskClientCerts}
	}
	if ls.Mode == loadbalancer.KubeVIP {
		// kubeadm reset (after a failed init) removes kube-vip with the other static pods
		ks.BeforeInit = func(ctx context.Context, t *pipeline.Target) error {
			_, err := loadbalancer.WriteKubeVIPManifest(ctx, t, ls)
			return err
		}
	}
	p.Kubeconfig = ks.Kubeconfig
	p.Warnings = append(p.Warnings, ks.Warnings...)
	var cp, workers []pipeline.Task
	for _, t := range kubernetes.Tasks(ks) {
		if ls.Mode == loadbalancer.KubeVIP && (t.Name == kubernetes.TaskJoinControlPlane || t.Name == kubernetes.TaskJoinWorker ||
			t.Name == kubernetes.TaskJoinCredentials || t.Name == kubernetes.TaskEtcdConfigMap) {
			// nodes join through the VIP once kube-vip runs on admin.conf; the join
			// credentials and the etcd members of the kubeadm-config ConfigMap are written
			// through it too (admin.conf names the VIP), so not while kube-vip restarts onto
			// admin.conf and the VIP is briefly gone
			t.After = append(t.After, loadbalancer.TaskKubeVIPAdmin)
		}
		switch t.Name {
		case kubernetes.TaskJoinWorker, kubernetes.TaskNodeRoles:
			workers = append(workers, t)
		default:
			cp = append(cp, t)
		}
	}
	// kube-vip after kubeadm: admin.conf on the first control plane, then on each joined one
	cp = append(cp, loadbalancer.KubeVIPPostTasks(ls, []string{kubernetes.TaskInit}, []string{kubernetes.TaskJoinControlPlane})...)
	// kubernetes.autoRenewCerts: the renewal timer on the control-plane and etcd hosts
	apiServers := map[string]string{}
	for _, n := range ks.Nodes {
		if n.ControlPlane {
			apiServers[n.Name] = certs.APIServerURL(n.Address, ks.BindPort)
		}
	}
	ts, err := certs.NewTimerSpec(c, es, apiServers)
	if err != nil {
		return nil, err
	}
	p.Warnings = append(p.Warnings, ts.Warnings()...)
	renewAfter := []string{kubernetes.TaskKubeconfig}
	if es.Type == config.EtcdKubeKey {
		renewAfter = append(renewAfter, etcd.TaskHealth)
	}
	cp = append(cp, certs.AutoRenewTask(ts, renewAfter),
		// kk add nodes: the API servers reach the etcd members added since kubeadm init
		kubernetes.EtcdEndpointsTask(ks, pipeline.Role(string(config.RoleControlPlane)), []string{kubernetes.TaskKubeconfig}))
	set("control-plane", "kubeadm, kubelet; kubeadm init, control planes joined, admin kubeconfig", cp)
	workers = append(workers, gpu.NodeLabelsTask(gpu.LabelSpec{Client: clientLoader(p.Kubeconfig, 30*time.Second), Self: gpu.SelfProgram(),
		DriverVersion: c.GPU.DriverVersion}, []string{kubernetes.TaskNodeRoles}))
	// kk's GPU exporter (or its removal, switched off) once kk is on the GPU hosts
	addresses := map[string]string{}
	for _, h := range c.Hosts {
		addresses[h.Name] = h.InternalIP()
	}
	workers = append(workers, gpu.ExporterTask(gpu.ExporterSpec{Enabled: c.GPU.Exporter, Self: gpu.SelfProgram(),
		GPUHosts: gpuHosts, Addresses: addresses}, []string{gpu.TaskNodeLabels}))
	// (docker: cri-dockerd serves no handler but docker's default, NVIDIA's there)
	if c.GPU.Toolkit && c.Kubernetes.ContainerManager != runtime.Docker {
		workers = append(workers, gpu.RuntimeClassTask(clientLoader(p.Kubeconfig, 30*time.Second), pipeline.FirstOf(string(config.RoleControlPlane)),
			[]string{kubernetes.TaskNodeRoles}))
	}
	set("workers", "workers joined, node roles and GPU labels, local haproxy", append(workers, lbAfter...))

	kc := restConfig(p.Kubeconfig)
	ns, err := cni.NewSpec(c, cni.Options{})
	if err != nil {
		return nil, err
	}
	var network []pipeline.Task
	var dnsAfter []string
	if ns.Plugin != cni.None && len(ns.Objects) > 0 {
		network, dnsAfter = []pipeline.Task{cni.Task(ns, kc, nil)}, []string{cni.TaskName}
	}
	network = append(network, dns.Tasks(ds, kc, dnsAfter)...)
	set("network", "the CNI plugin, applied and ready on every node; CoreDNS's Corefile, nodelocaldns", network)
	var in platform.Inputs
	if a != nil {
		in.Charts = a.Charts
	}
	comps, err := platform.ComponentsWith(c, in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Source, err)
	}
	set("platform", "the components the ClusterConfiguration switches on, each ready; those switched off removed", platform.Tasks(comps, kc, nil))
	var addonTasks []pipeline.Task
	if len(c.Addons) > 0 {
		addonTasks = []pipeline.Task{addons.Task(c, kc, addons.Options{}, nil)}
	}
	if at := hooks.Sequence(postCluster, addonTasks, post); len(at) > 0 {
		set("addons", "addons in order (YAML, Helm charts), each ready; spec.system's postClusterInstall and postInstall scripts", at)
	}
	if o.Upgrade != nil {
		phases = insertPhase(phases, "loadbalancer", upgradePhase(ks, o.Upgrade))
	}
	chain(phases)
	p.Phases = phases
	return p, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// gpuTasks is the gpu phase: on the GPU hosts, the NVIDIA driver (spec.gpu.driver.version)
// and NVIDIA's container toolkit (spec.gpu, kubernetes.nvidiaRuntime), whose containerd or docker
// step waits for the runtime phase's tasks rt. What they install must be among the
// artifacts before any host is touched.
func gpuTasks(c *config.Cluster, a *Artifacts, hosts gpu.Hosts, rt []pipeline.Task, allowReboot bool) ([]pipeline.Task, string, error) {
	have := func(field, what, component, v string) error {
		if got := a.Versions[component]; got != v {
			return fmt.Errorf("%s: %s %s: the artifacts hold %s %q: export a bundle of this Cluster file "+
				"(kk create manifest -c FILE, pin its sha256, kk artifact export)", c.Source, field, v, what, got)
		}
		if err := a.Files.Check(c.Arches(), []string{component}); err != nil {
			return fmt.Errorf("%s: %s %s: %w", c.Source, field, v, err)
		}
		return nil
	}
	var tasks []pipeline.Task
	var does []string
	if v := c.GPU.DriverVersion; v != "" {
		if err := have("spec.gpu.driver.version", "NVIDIA's driver installer", catalog.NvidiaDriver, v); err != nil {
			return nil, "", err
		}
		dt, err := gpu.DriverTasks(gpu.DriverSpec{Version: v, Files: a.Files, GPUHosts: hosts, AllowReboot: allowReboot}, nil)
		if err != nil {
			return nil, "", err
		}
		tasks = append(tasks, dt...)
		does = append(does, "the NVIDIA driver (nouveau out, DKMS, persistence daemon)")
	}
	if c.GPU.Toolkit {
		set, err := versions.For(c.Kubernetes.Version)
		if err != nil {
			return nil, "", err
		}
		v := c.GPU.ToolkitRelease(set)
		if err := have("spec.gpu.toolkit.version", "NVIDIA's container toolkit", catalog.NvidiaContainerToolkit, v); err != nil {
			return nil, "", err
		}
		var after []string
		for _, t := range rt {
			after = append(after, t.Name)
		}
		var installAfter []string
		if c.GPU.DriverVersion != "" {
			installAfter = []string{gpu.TaskPersistenced} // the new driver in the first CDI spec
		}
		tasks = append(tasks, gpu.ToolkitTasks(gpu.ToolkitSpec{Version: v, Files: a.Files, DefaultRuntime: c.GPU.DefaultRuntime,
			Docker: c.Kubernetes.ContainerManager == runtime.Docker, GPUHosts: hosts}, installAfter, after)...)
		if c.Kubernetes.ContainerManager == runtime.Docker {
			does = append(does, "NVIDIA's container toolkit (docker's default runtime nvidia)")
		} else {
			does = append(does, "NVIDIA's container toolkit (containerd's nvidia runtime, CDI)")
		}
	}
	return tasks, "on the GPU hosts: " + strings.Join(does, "; "), nil
}
