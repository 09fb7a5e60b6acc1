package cluster

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

const oneNode = `apiVersion: kubekey.kubesphere.io/v1alpha2
kind: Cluster
metadata: {name: t}
spec:
  hosts:
  - {name: cp, address: 10.0.0.1, internalAddress: 10.0.0.1, user: root, password: x}
  - {name: w, address: 10.0.0.2, internalAddress: 10.0.0.2, user: root, password: x}
  roleGroups: {etcd: [cp], control-plane: [cp], worker: [w]}
  kubernetes: {version: %s}
`

func parse(t *testing.T, version string) *config.Cluster {
	t.Helper()
	c, _, err := v1alpha2.Parse("t.yaml", []byte(strings.Replace(oneNode, "%s", version, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPrecheckNamesUnfitHosts runs the precheck task on hosts whose facts show too little
// memory and swap on: the run fails on those hosts, naming each problem, and the task after
// it never runs anywhere.
func TestPrecheckNamesUnfitHosts(t *testing.T) {
	c := parse(t, "v1.34.4")
	hostFacts := map[string]*pipeline.Facts{
		"cp": {Arch: "amd64", CPUs: 4, MemoryMiB: 512, DiskFreeMiB: 50000, Commands: map[string]bool{}},
		"w":  {Arch: "amd64", CPUs: 4, MemoryMiB: 8192, SwapMiB: 1024, DiskFreeMiB: 50000, Commands: map[string]bool{}},
	}
	var ran atomic.Bool
	err := runPrecheck(t, c, hostFacts, &ran)
	if err == nil {
		t.Fatal("precheck passed on unfit hosts")
	}
	msg := err.Error()
	for _, want := range []string{"host cp, task precheck", "512 MiB memory", "host w, task precheck", "swap is on"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not say %q:\n%s", want, msg)
		}
	}
	if ran.Load() {
		t.Error("a task after the failed precheck ran")
	}
}

// TestPrecheckToolkitNeedsDeb: with spec.gpu, a GPU host (on its PCI bus, or declared) whose
// packages are not Debian's fails the precheck, naming why, before anything changes; a host
// without a GPU is not held to it.
func TestPrecheckToolkitNeedsDeb(t *testing.T) {
	c := parse(t, "v1.34.4")
	c.GPU.Toolkit = true
	good := func(pm string, gpu ...string) *pipeline.Facts {
		return &pipeline.Facts{Arch: "amd64", CPUs: 4, MemoryMiB: 8192, DiskFreeMiB: 50000, Init: "systemd", PackageManager: pm, NvidiaPCI: gpu, Commands: map[string]bool{}}
	}
	var ran atomic.Bool
	err := runPrecheck(t, c, map[string]*pipeline.Facts{"cp": good("dnf"), "w": good("dnf", "0000:17:00.0 0x2330")}, &ran)
	if err == nil || !strings.Contains(err.Error(), "host w, task precheck") || strings.Contains(err.Error(), "host cp") ||
		!strings.Contains(err.Error(), "NVIDIA's container toolkit from its Debian package, and this host's package manager is dnf") || ran.Load() {
		t.Errorf("a dnf GPU host: %v (ran after: %v)", err, ran.Load())
	}
	if err := runPrecheck(t, c, map[string]*pipeline.Facts{"cp": good("dnf"), "w": good("apt-get", "0000:17:00.0 0x2330")}, &ran); err != nil {
		t.Errorf("an apt-get GPU host: %v", err)
	}
}

// runPrecheck runs facts (from hostFacts), the precheck and a task after it (which sets ran)
// on hosts cp and w of c.
func runPrecheck(t *testing.T, c *config.Cluster, hostFacts map[string]*pipeline.Facts, ran *atomic.Bool) error {
	t.Helper()
	var hosts []*pipeline.Host
	for _, name := range []string{"cp", "w"} {
		hosts = append(hosts, pipeline.NewHost(name, nil, func(context.Context) (connector.Connector, error) { return connector.NewLocal(), nil }))
	}
	tasks := []pipeline.Task{
		{Name: facts.TaskName, Hosts: pipeline.AllHosts(), ReadOnly: true, Run: func(_ context.Context, tg *pipeline.Target) (bool, error) {
			tg.SetFacts(factsFor(hostFacts, tg.Name))
			return false, nil
		}},
		PrecheckTask(c),
		{Name: "change", Hosts: pipeline.AllHosts(), After: []string{PrecheckTaskName}, Run: func(context.Context, *pipeline.Target) (bool, error) {
			ran.Store(true)
			return true, nil
		}},
	}
	g, err := pipeline.NewGraph(tasks, hosts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pipeline.Run(context.Background(), g, pipeline.Options{Concurrency: 4, Failure: pipeline.ContinueOnFailure})
	return err
}

func factsFor(m map[string]*pipeline.Facts, name string) *pipeline.Facts { return m[name] }

func TestValidateRejectsUnsupportedVersions(t *testing.T) {
	for _, v := range []string{"v1.21.5", "v1.99.0"} {
		err := Validate(parse(t, v), Options{})
		if err == nil || !strings.Contains(err.Error(), "t.yaml: spec.kubernetes.version") {
			t.Errorf("%s: %v", v, err)
		}
	}
	if err := Validate(parse(t, "v1.34.4"), Options{SkipPhases: []string{"bogus"}}); err == nil || !strings.Contains(err.Error(), "unknown phase bogus") {
		t.Errorf("unknown phase: %v", err)
	}
	if err := Validate(parse(t, "v1.34.4"), Options{}); err != nil {
		t.Errorf("v1.34.4: %v", err)
	}
}
