package cluster

import (
	"slices"
	"testing"

	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/artifacts/versions"
)

// A bundle must hold every image the cluster runs: local storage switched on by
// --with-local-storage needs its two images in it.
func TestLackedImages(t *testing.T) {
	c := loadExample(t, "ha-3cp-2w.yaml")
	m, err := v1alpha2.NewManifest(c)
	if err != nil {
		t.Fatal(err)
	}
	have := m.Images()
	if got, err := lackedImages(c, have); err != nil || len(got) != 0 {
		t.Errorf("the bundle of the same file lacks %v (%v)", got, err)
	}
	c.Platform.LocalStorage = true
	got, _ := lackedImages(c, have)
	set, _ := versions.For(c.Kubernetes.Version)
	if !slices.Equal(got, set.LocalStorageImages()) {
		t.Errorf("with local storage, lacked %v, want %v", got, set.LocalStorageImages())
	}
	c.Registry.PrivateRegistry = "registry.local:5000"
	if got, _ := lackedImages(c, nil); len(got) != 0 {
		t.Errorf("with a private registry: %v", got)
	}
}
