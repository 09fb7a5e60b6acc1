package images

import (
	"fmt"

	"github.com/kk-project/kk/e2e/mirror"
)

// calicoImages lists the Calico images (docker.io/calico/{node,cni,kube-controllers}) built for
// spec. None can be built here, so it returns none while spec leaves Calico out (Calico,
// CalicoModule and BirdDeb empty, as mirror.DefaultSpec does) and an error naming the reason
// when spec asks for Calico: every Calico program (calico-node, the calico/calico-ipam CNI
// plugin and its install program, kube-controllers) imports github.com/projectcalico/api, a
// module nested in the calico repository (its go.mod says `replace github.com/projectcalico/api
// => ./api`). A nested module is left out of the calico module's zip, and the Go module proxy
// here refuses github.com/projectcalico/api at every version (403), so `go mod tidy` of any
// Calico command stops there. r is unused until that module can be fetched.
func calicoImages(r *recipes, spec mirror.Spec) ([]Image, error) {
	_ = r
	if spec.Calico == "" && spec.CalicoModule == "" && spec.BirdDeb == "" {
		return nil, nil
	}
	return nil, fmt.Errorf("e2e images: calico %s (module github.com/projectcalico/calico@%s) cannot be built here: "+
		"its programs import github.com/projectcalico/api, which the calico module zip leaves out (a nested module, "+
		"`replace => ./api`) and the Go module proxy refuses at every version (403); leave mirror.Spec's Calico fields empty",
		spec.Calico, spec.CalicoModule)
}
