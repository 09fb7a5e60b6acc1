package v1alpha2

import (
	"strings"
	"testing"
)

func TestSampleParses(t *testing.T) {
	for _, o := range []SampleOptions{{}, {Name: "prod", KubernetesVersion: "v1.33.5", ContainerManager: "docker", NetworkPlugin: "flannel"}} {
		data, err := Sample(o)
		if err != nil {
			t.Fatal(err)
		}
		// The sample uses passwords only, so even the disk checks pass.
		c, w, err := Parse("sample.yaml", data)
		if err != nil {
			t.Fatalf("sample does not parse:\n%v\n%s", err, data)
		}
		if len(w) != 0 {
			t.Errorf("sample has warnings: %v", w)
		}
		want := o.Name
		if want == "" {
			want = "sample"
		}
		if c.Name != want || len(c.Hosts) != 3 {
			t.Errorf("sample cluster %+v", c)
		}
		if o.KubernetesVersion != "" && c.Kubernetes.Version != o.KubernetesVersion {
			t.Errorf("version %q", c.Kubernetes.Version)
		}
		if o.NetworkPlugin != "" && c.Network.Plugin != o.NetworkPlugin {
			t.Errorf("plugin %q", c.Network.Plugin)
		}
		if !strings.Contains(string(data), "# ") {
			t.Error("sample has no comments")
		}
	}
}
