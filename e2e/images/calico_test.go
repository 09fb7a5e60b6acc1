package images

import (
	"strings"
	"testing"

	"github.com/kk-project/kk/e2e/mirror"
)

func TestCalicoImages(t *testing.T) {
	if imgs, err := calicoImages(nil, mirror.Spec{}); err != nil || imgs != nil {
		t.Fatalf("spec without Calico: %v, %v; want none", imgs, err)
	}
	_, err := calicoImages(nil, mirror.Spec{Calico: "v3.28.5", CalicoModule: "v1.11.0-cni-plugin.0.20250813170300-a0db560f0520"})
	if err == nil || !strings.Contains(err.Error(), "github.com/projectcalico/api") || !strings.Contains(err.Error(), "v3.28.5") {
		t.Fatalf("spec with Calico: %v; want the reason it cannot be built", err)
	}
}
