package images

import (
	"slices"
	"strings"
	"testing"

	"github.com/kk-project/kk/artifacts/versions"
	"github.com/kk-project/kk/e2e/mirror"
)

// TestCalicoImages: the images are the ones kk's version table deploys, each from the
// mirror's calico build; none without a Calico release; another release than the table's is refused.
func TestCalicoImages(t *testing.T) {
	r := newRecipes("/m", "/b")
	if imgs, err := calicoImages(r, mirror.Spec{}); err != nil || imgs != nil {
		t.Fatalf("spec without Calico: %v, %v; want none", imgs, err)
	}
	spec := mirror.DefaultSpec()
	imgs, err := calicoImages(r, spec)
	if err != nil {
		t.Fatal(err)
	}
	set, err := versions.For(spec.Kubernetes[0])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{set.CalicoCNIImage(), set.CalicoNodeImage(), set.CalicoControllersImage(), set.CalicoTyphaImage()}
	var got []string
	for _, im := range imgs {
		got = append(got, im.Ref())
		for _, ls := range im.layers {
			for _, f := range append(slices.Clone(ls.tars), func() (s []string) {
				for _, f := range ls.files {
					s = append(s, f.src)
				}
				return
			}()...) {
				if strings.HasPrefix(f, "/m/") && !strings.Contains(f, "/bin/calico/"+spec.Calico+"/") {
					t.Errorf("%s takes %s, not from the mirror's calico %s build", im.Ref(), f, spec.Calico)
				}
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("calico images %v, want kk's version table's %v", got, want)
	}
	spec.Calico = "v3.0.0"
	if _, err := calicoImages(r, spec); err == nil || !strings.Contains(err.Error(), "v3.0.0") {
		t.Errorf("a release the table does not name: %v", err)
	}
}
