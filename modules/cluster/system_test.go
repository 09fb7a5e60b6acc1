package cluster

import (
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/modules/osprep"
)

const systemCluster = `apiVersion: kubekey.kubesphere.io/v1alpha2
kind: Cluster
metadata: {name: t}
spec:
  hosts:
  - {name: cp1, address: 10.0.0.1, internalAddress: 10.0.0.1, user: root, password: x}
  - {name: w, address: 10.0.0.4, internalAddress: 10.0.0.4, user: root, password: x}
  roleGroups: {etcd: [cp1], control-plane: [cp1], worker: [w]}
  controlPlaneEndpoint: {domain: lb.kubesphere.local, address: "", port: 6443}
  kubernetes: {version: v1.34.4}
  system:
    ntpServers: [cp1]
    timezone: UTC
    skipConfigureOS: true
    preInstall: [{name: pre, bash: "true", role: worker}]
    postClusterInstall: [{name: up, bash: "true", role: master}]
    postInstall: [{name: done, bash: "true"}]
`

// TestSystemInThePlan: preInstall scripts come first in the os phase and the OS tasks wait for
// them; postClusterInstall then postInstall make up the addons phase; skipConfigureOS leaves
// the OS tasks in the plan, skipped with the reason.
func TestSystemInThePlan(t *testing.T) {
	c, _, err := v1alpha2.Parse("t.yaml", []byte(systemCluster))
	if err != nil {
		t.Fatal(err)
	}
	a := &Artifacts{}
	for _, b := range []string{"etcd", "etcdctl", "etcdutl"} {
		a.Files.Add("amd64", b, "/nonexistent/"+b)
	}
	p, err := NewPlan(c, a, Options{Workdir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	tasks := map[string][]string{}
	for _, ph := range p.Phases {
		for _, tk := range ph.Tasks {
			tasks[ph.Name] = append(tasks[ph.Name], tk.Name)
		}
	}
	if tasks["os"][0] != "hooks/preInstall/1-pre" {
		t.Errorf("os phase %v: preInstall first", tasks["os"])
	}
	if got := tasks["addons"]; !slices.Equal(got, []string{"hooks/postClusterInstall/1-up", "hooks/postInstall/1-done"}) {
		t.Errorf("addons phase %v", got)
	}
	ts, err := p.Tasks(Options{})
	if err != nil {
		t.Fatal(err)
	}
	skip := map[string]string{}
	for _, tk := range ts {
		skip[tk.Name] = tk.Skip
		if strings.HasPrefix(tk.Name, "os/") && !slices.Contains(tk.After, "hooks/preInstall/1-pre") {
			t.Errorf("%s after %v: not after the preInstall script", tk.Name, tk.After)
		}
	}
	for _, name := range []string{"os/swap-off", "os/sysctl", osprep.TaskNTP, osprep.TaskTimezone} {
		if !strings.Contains(skip[name], "skipConfigureOS") {
			t.Errorf("%s: skip %q", name, skip[name])
		}
	}
	if skip["os/packages"] != "" {
		t.Errorf("os/packages skipped: %s", skip["os/packages"])
	}
}
