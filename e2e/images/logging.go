package images

import (
	"github.com/kk-project/kk/e2e/mirror"
)

// loggingImages lists the images of the platform's logging the spec names a release of: the
// log store VictoriaLogs and its collector vlagent. Each is the mirror's static binary (see
// e2e/mirror/logging.go) laid out as upstream's Dockerfile (app/<program>/multiarch) lays it
// out: distroless/static with the program at /<program>-prod as the entrypoint, run as root
// (the base's default user; the collector reads the nodes' log files, which only root may).
// Their references are kk's version table's (artifacts/versions); the spec must build the
// release the table names for both.
func loggingImages(r *recipes, spec mirror.Spec) ([]Image, error) {
	v := spec.VictoriaLogs
	if v == "" {
		return nil, nil
	}
	sets, err := tableSets(spec)
	if err != nil {
		return nil, err
	}
	set := sets[0]
	if err := sameAs("victoria-logs", v, set.Addons.VictoriaLogs); err != nil {
		return nil, err
	}
	if err := sameAs("vlagent", v, set.Addons.VLAgent); err != nil {
		return nil, err
	}
	// image is one program's: the base, then its binary at /<bin>-prod.
	image := func(ref, bin, src, port string) Image {
		repo, tags := tableRef(ref)
		dst := bin + "-prod"
		return Image{Repository: repo, Tags: tags, Version: v,
			layers: []*layerSpec{r.base, {name: bin + "-" + v, files: []input{{dst: dst, mode: 0o755, src: r.mirrorFile(src)}}}},
			config: imageConfig{Entrypoint: []string{"/" + dst}, Ports: []string{port}},
			// the module is the store's and the collector's: say so where it is not obvious
			Note:     "built from " + mirror.VictoriaLogsModule + "@" + v,
			requires: []string{dst},
		}
	}
	return []Image{
		image(set.VictoriaLogsImage(), "victoria-logs", mirror.VictoriaLogsPath(v), "9428/tcp"),
		image(set.VLAgentImage(), "vlagent", mirror.VLAgentPath(v), "9429/tcp"),
	}, nil
}
