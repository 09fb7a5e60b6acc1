//go:build e2e

package e2e

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kk-project/kk/artifacts/bundle"
)

// podImagesInBundle fails the test when a pod of the cluster (every namespace but the test's
// own workloads in exempt) runs an image the bundle does not hold: the images kk deploys must
// be the ones `kk create manifest` lists, or an air-gapped install breaks. It returns the
// images checked.
func podImagesInBundle(t *testing.T, kubeconfig, bundlePath string, exempt ...string) []string {
	t.Helper()
	b, err := bundle.Open(bundlePath)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, im := range b.Index.Images {
		have[normalRef(t, im.Ref)] = true
	}
	out := mustKubectl(t, kubeconfig, "get", "pods", "-A", "-o",
		`jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{range .spec.initContainers[*]}{" "}{.image}{end}{range .spec.containers[*]}{" "}{.image}{end}{"\n"}{end}`)
	var checked []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		fs := strings.Fields(line)
		if len(fs) < 2 {
			continue
		}
		ns, _, _ := strings.Cut(fs[0], "/")
		if slices.Contains(exempt, ns) {
			continue
		}
		for _, img := range fs[1:] {
			if !have[normalRef(t, img)] {
				t.Errorf("pod %s runs %s, which the bundle %s does not hold", fs[0], img, bundlePath)
			}
			if !slices.Contains(checked, img) {
				checked = append(checked, img)
			}
		}
	}
	if len(checked) == 0 {
		t.Fatalf("no pod image found to check")
	}
	t.Logf("every pod image is in the bundle: %s", strings.Join(checked, " "))
	return checked
}

// normalRef writes an image reference the one way, so that "haproxy:2.9" and
// "docker.io/library/haproxy:2.9" compare equal.
func normalRef(t *testing.T, ref string) string {
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Errorf("image reference %q: %v", ref, err)
		return ref
	}
	return r.Name()
}
