package v1alpha2

import (
	"strings"
	"testing"
)

func TestMalformedYAML(t *testing.T) {
	src := "apiVersion: kubekey.kubesphere.io/v1alpha2\nkind: Cluster\nspec:\n  hosts:\n  - {name: n1\n  roleGroups: x\n"
	_, _, errs := parse(t, src)
	if len(errs) != 1 || errs[0].Line == 0 || !strings.Contains(errs[0].Msg, "invalid YAML") {
		t.Errorf("got %v", errs)
	}
	src = "apiVersion: a\n\tkind: Cluster\n"
	_, _, errs = parse(t, src)
	wantError(t, errs, 2, "test.yaml:2: invalid YAML")
}

func TestUnknownFields(t *testing.T) {
	src := strings.Replace(base, "  hosts:", "  hostz: []\n  hosts:", 1) + "  kubernetes:\n    verison: v1.30.0\n  network:\n    calico:\n      ipipmod: Never\n"
	_, _, errs := parse(t, src)
	wantError(t, errs, 6, `spec.hostz: unknown field "hostz" (did you mean "hosts"?)`)
	wantError(t, errs, 16, `spec.kubernetes.verison: unknown field "verison" (did you mean "version"?)`)
	wantError(t, errs, 19, `spec.network.calico.ipipmod: unknown field "ipipmod"`)
	if len(errs) != 3 {
		t.Errorf("want exactly the 3 unknown fields:\n%v", errs)
	}
	src = strings.Replace(base, "password: x}", "password: x, pasword: y}", 1)
	_, _, errs = parse(t, src)
	wantError(t, errs, 7, `spec.hosts[0].pasword: unknown field "pasword" (did you mean "password"?)`)
}

func TestTypeErrors(t *testing.T) {
	src := strings.Replace(base, "password: x}", "password: x, port: \"22\"}", 1) +
		"  kubernetes:\n    maxPods: lots\n    autoRenewCerts: maybe\n    featureGates: {A: 1}\n  network: calico\n"
	_, _, errs := parse(t, src)
	wantError(t, errs, 7, `spec.hosts[0].port: expected an integer, got "22"`)
	wantError(t, errs, 15, `spec.kubernetes.maxPods: expected an integer, got "lots"`)
	wantError(t, errs, 16, `spec.kubernetes.autoRenewCerts: expected true or false, got "maybe"`)
	wantError(t, errs, 17, `spec.kubernetes.featureGates.A: expected true or false, got 1`)
	wantError(t, errs, 18, `spec.network: expected a mapping, got "calico"`)
	if len(errs) != 5 {
		t.Errorf("want 5 errors, no cascades:\n%v", errs)
	}
}

func TestDuplicateKeys(t *testing.T) {
	src := base + "  kubernetes:\n    version: v1.30.0\n    version: v1.31.0\n"
	_, _, errs := parse(t, src)
	wantError(t, errs, 16, `spec.kubernetes.version: duplicate key "version" (first set on line 15)`)
}

func TestFreeFormSectionsAccepted(t *testing.T) {
	src := base + `  kubernetes:
    kubeletConfiguration:
      anything: {goes: [1, 2]}
  network:
    cilium:
      hubble: {enabled: true}
    hybridnet:
      defaultNetworkType: Overlay
`
	c, _ := mustParse(t, src)
	if c.Kubernetes.KubeletConfiguration["anything"] == nil || c.Network.Cilium["hubble"] == nil || c.Network.Hybridnet == nil {
		t.Errorf("free-form sections lost: %+v", c.Network)
	}
}

func TestWrongKind(t *testing.T) {
	manifest := `apiVersion: kubekey.kubesphere.io/v1alpha2
kind: Manifest
metadata:
  name: sample
spec:
  arches:
  - amd64
`
	_, _, errs := parse(t, manifest)
	wantError(t, errs, 2, "kind: this is a KubeKey Manifest", "not a Cluster")

	_, _, errs = parse(t, strings.Replace(base, "kind: Cluster", "kind: Deployment", 1))
	wantError(t, errs, 2, `kind "Deployment" is not supported`)

	_, _, errs = parse(t, strings.Replace(base, "kind: Cluster\n", "", 1))
	wantError(t, errs, 0, "kind is missing")

	_, _, errs = parse(t, "- a\n- b\n")
	wantError(t, errs, 1, "expected a Cluster object")

	_, _, errs = parse(t, "# nothing\n")
	wantError(t, errs, 0, "the file is empty")
}

func TestWrongAPIVersion(t *testing.T) {
	_, _, errs := parse(t, strings.Replace(base, "v1alpha2", "v1alpha1", 1))
	wantError(t, errs, 1, `apiVersion: apiVersion "kubekey.kubesphere.io/v1alpha1" is not supported`)
	_, _, errs = parse(t, strings.Replace(base, "kubekey.kubesphere.io/v1alpha2", "v1", 1))
	wantError(t, errs, 1, `apiVersion "v1" is not supported`)
	_, _, errs = parse(t, strings.Replace(base, "apiVersion: kubekey.kubesphere.io/v1alpha2\n", "", 1))
	wantError(t, errs, 0, "apiVersion is missing")
}

func TestMultipleDocuments(t *testing.T) {
	src := "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n" + base
	c, w := mustParse(t, src)
	if c.Host("n1") == nil || !hasWarning(w, `test.yaml:2: document of kind "ConfigMap" is not a Cluster and is ignored`) {
		t.Errorf("warnings %v", w)
	}
	// Lines still count from the top of the file.
	_, _, errs := parse(t, "---\napiVersion: v1\nkind: ConfigMap\n---\n"+strings.Replace(base, "{name: n2,", "{name: n1,", 1))
	wantError(t, errs, 12, "duplicate host name")

	_, _, errs = parse(t, base+"---\n"+base)
	wantError(t, errs, 15, "a second kind: Cluster document")
	_, _, errs = parse(t, "kind: A\n---\nkind: B\n")
	wantError(t, errs, 0, `no kind: Cluster document in the file (found kinds "A", "B")`)
}

func TestPaths(t *testing.T) {
	cases := map[string]string{
		childPath("", "spec"):                         "spec",
		childPath("spec.registry.auths", "r.io:5000"): `spec.registry.auths["r.io:5000"]`,
		indexPath("spec.hosts", 2):                    "spec.hosts[2]",
		parentPath(`spec.registry.auths["a.b"]`):      "spec.registry.auths",
		parentPath("spec.hosts[2]"):                   "spec.hosts",
		parentPath("spec.hosts[2].name"):              "spec.hosts[2]",
		parentPath("spec"):                            "",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	src := base + "  registry:\n    auths:\n      \"r.io:5000\": {username: u, passwd: p}\n"
	_, _, errs := parse(t, src)
	wantError(t, errs, 16, `spec.registry.auths["r.io:5000"].passwd: unknown field "passwd"`)
}
