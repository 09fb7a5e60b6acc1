package images

import (
	"github.com/kk-project/kk/e2e/mirror"
)

// chartMuseumUser is the user upstream's image runs as (USER 1000:1000).
const chartMuseumUser = "1000:1000"

// chartMuseumImages is the image of the platform's app store, ChartMuseum, when the spec names
// its release: the mirror's static binary (see e2e/mirror/chartmuseum.go) at /chartmuseum, its
// entrypoint, run as 1000:1000, as upstream's Dockerfile lays it out. Its reference is kk's
// version table's (artifacts/versions); the spec must build the release it names.
//
// Left out: upstream's image is Alpine with cifs-utils and CA certificates, for storage on SMB
// shares and in clouds; kk's app store keeps its charts on a local volume.
func chartMuseumImages(r *recipes, spec mirror.Spec) ([]Image, error) {
	v := spec.ChartMuseum
	if v == "" {
		return nil, nil
	}
	sets, err := tableSets(spec)
	if err != nil {
		return nil, err
	}
	set := sets[0]
	if err := sameAs("chartmuseum", v, set.Addons.ChartMuseum); err != nil {
		return nil, err
	}
	repo, tags := tableRef(set.ChartMuseumImage())
	return []Image{{Repository: repo, Tags: tags, Version: v,
		Note: "built from " + mirror.ChartMuseumServedModule + "@" + v + " (the module declares " + mirror.ChartMuseumModule + ")",
		layers: []*layerSpec{r.base, {name: "chartmuseum-" + v, files: []input{
			{dst: "chartmuseum", mode: 0o755, src: r.mirrorFile(mirror.ChartMuseumPath(v))}}}},
		config:   imageConfig{Entrypoint: []string{"/chartmuseum"}, User: chartMuseumUser, Ports: []string{"8080/tcp"}},
		requires: []string{"chartmuseum"},
	}}, nil
}
