package v1alpha2

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/artifacts/catalog"
)

func loadManifest(t *testing.T, path string) (*Manifest, Warnings) {
	t.Helper()
	m, w, err := LoadManifest(path)
	if err != nil {
		t.Fatalf("%s:\n%v", path, err)
	}
	return m, w
}

func TestManifestFixturesLoad(t *testing.T) {
	files, _ := filepath.Glob("testdata/manifest-*.yml")
	if len(files) < 2 {
		t.Fatalf("fixtures missing: %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { loadManifest(t, f) })
	}
}

func TestKubeKeyManifest(t *testing.T) {
	m, w := loadManifest(t, "testdata/manifest-kubekey.yml")
	for _, want := range []string{"operatingSystems", "harbor", "docker-registry", "docker-compose", "cri-dockerd"} {
		if !hasWarning(w, want) {
			t.Errorf("no warning about %s: %v", want, w)
		}
	}
	if !hasWarning(w, "manifest-kubekey.yml:") {
		t.Errorf("warnings without file:line: %v", w)
	}
	comps := m.Components()
	for _, want := range []catalog.Component{
		{Name: "kubeadm", Version: "v1.30.6", Arch: "amd64"},
		{Name: "kubelet", Version: "v1.30.6", Arch: "arm64"},
		{Name: "docker", Version: "24.0.9", Arch: "arm64"},
		{Name: "cri-dockerd", Version: "v0.3.14", Arch: "amd64"},
		{Name: "cni-plugins", Version: "v1.4.1", Arch: "amd64"},
		{Name: "calicoctl", Version: "v3.27.4", Arch: "arm64"},
		{Name: "helm", Version: "v3.15.4", Arch: "amd64"},
		{Name: "etcd", Version: "v3.5.13", Arch: "amd64"},
		{Name: "crictl", Version: "v1.30.0", Arch: "amd64"},
	} {
		if !slices.Contains(comps, want) {
			t.Errorf("missing %v in %v", want, comps)
		}
	}
	if slices.ContainsFunc(comps, func(c catalog.Component) bool { return c.Name == "runc" }) {
		t.Errorf("runc without containerd: %v", comps)
	}
	if n := len(m.Images()); n != 10 {
		t.Errorf("%d images", n)
	}
	if a := m.Spec.Registry.Auths["dockerhub.kubekey.local"]; a.Username != "admin" || !a.SkipTLSVerify {
		t.Errorf("auths %+v", m.Spec.Registry.Auths)
	}
}

func TestKKManifestChecksums(t *testing.T) {
	m, w := loadManifest(t, "testdata/manifest-kk.yml")
	if len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
	if got := m.Checksum(catalog.Component{Name: "kubeadm", Version: "1.34.1", Arch: "amd64"}); !strings.HasPrefix(got, "0123") {
		t.Errorf("kubeadm pin %q", got)
	}
	if got := m.Checksum(catalog.Component{Name: "cni-plugins", Version: "v1.9.1", Arch: "amd64"}); !strings.HasPrefix(got, "fedc") {
		t.Errorf("cni pin %q (want lowercase)", got)
	}
	if got := m.Checksum(catalog.Component{Name: "kubelet", Version: "v1.34.1", Arch: "amd64"}); got != "" {
		t.Errorf("kubelet pinned %q", got)
	}
	if !slices.Contains(m.Components(), catalog.Component{Name: "runc", Version: "v1.3.0", Arch: "amd64"}) {
		t.Errorf("runc missing: %v", m.Components())
	}
}

const manifestHead = "apiVersion: kubekey.kubesphere.io/v1alpha2\nkind: Manifest\nmetadata: {name: t}\nspec:\n"

func TestManifestErrorsNameFileAndLine(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"no arches", manifestHead + "  images: [registry.k8s.io/pause:3.10]\n", "m.yaml:4: spec.arches: no arch"},
		{"bad arch", manifestHead + "  arches: [amd64, sparc]\n", `m.yaml:5: spec.arches[1]: unsupported arch "sparc"`},
		{"unknown field", manifestHead + "  arches: [amd64]\n  components:\n    helmet: {version: v3.1.0}\n", `m.yaml:7: spec.components.helmet: unknown field "helmet" (did you mean "helm"?)`},
		{"bad image", manifestHead + "  arches: [amd64]\n  images:\n  - registry.k8s.io/pause:3.10\n  - 'Bad Image!'\n", `m.yaml:8: spec.images[1]: invalid image reference`},
		{"bad runtime", manifestHead + "  arches: [amd64]\n  components:\n    containerRuntimes:\n    - {type: crio, version: v1.30.0}\n", `m.yaml:8: spec.components.containerRuntimes[0].type: container runtime "crio" is not supported`},
		{"bad version", manifestHead + "  arches: [amd64]\n  components:\n    helm:\n      version: v3/../../x\n", `m.yaml:8: spec.components.helm.version: helm: version`},
		{"bad distribution", manifestHead + "  arches: [amd64]\n  kubernetesDistributions:\n  - {type: kubernetes, version: latest}\n", `m.yaml:7: spec.kubernetesDistributions[0].version`},
		{"bad checksum", manifestHead + "  arches: [amd64]\n  checksums:\n  - {component: kubeadm, version: v1.34.1, arch: amd64, sha256: abc}\n", `m.yaml:7: spec.checksums[0].sha256: want a SHA-256`},
		{"unknown pinned component", manifestHead + "  arches: [amd64]\n  checksums:\n  - {component: kubeadmin, version: v1.34.1, arch: amd64, sha256: abc}\n", `unknown component "kubeadmin"`},
		{"wrong type", manifestHead + "  arches: amd64\n", `m.yaml:5: spec.arches: expected a list, got "amd64"`},
		{"cluster file", "apiVersion: kubekey.kubesphere.io/v1alpha2\nkind: Cluster\n", `m.yaml:2: kind: this is a Cluster file, not a Manifest`},
		{"old api", "apiVersion: kubekey.kubesphere.io/v1alpha1\nkind: Manifest\nspec: {arches: [amd64]}\n", `m.yaml:1: apiVersion: apiVersion "kubekey.kubesphere.io/v1alpha1" is not supported`},
		{"yaml syntax", manifestHead + "  arches: [amd64\n", "m.yaml:"},
		{"auth half set", manifestHead + "  arches: [amd64]\n  registry:\n    auths:\n      r.local: {username: u}\n", `m.yaml:8: spec.registry.auths["r.local"]: set both username and password`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, _, err := ParseManifest("m.yaml", []byte(c.body))
			if err == nil || m != nil {
				t.Fatalf("accepted: %+v", m)
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("not an ErrorList: %T %v", err, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("got:\n%v\nwant it to contain %q", err, c.want)
			}
		})
	}
}

func TestManifestMissingFile(t *testing.T) {
	_, _, err := LoadManifest(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml: cannot read the file") {
		t.Errorf("%v", err)
	}
}

func TestManifestOtherDocumentsIgnored(t *testing.T) {
	body := "kind: Something\n---\n" + manifestHead + "  arches: [arm64]\n"
	m, w, err := ParseManifest("m.yaml", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if !hasWarning(w, `m.yaml:1: document of kind "Something" is not a Manifest`) {
		t.Errorf("warnings %v", w)
	}
	if len(m.Components()) != 0 || m.Spec.Arches[0] != "arm64" {
		t.Errorf("%+v", m.Spec)
	}
}
