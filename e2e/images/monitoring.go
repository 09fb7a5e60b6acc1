package images

import (
	"archive/tar"

	"github.com/kk-project/kk/e2e/mirror"
)

// nobodyUID is the user the monitoring images run as (upstream's USER nobody).
const nobodyUID = 65534

// prometheusConfig and alertmanagerConfig are the default configurations the images hold, as
// upstream's hold their example ones (documentation/examples/prometheus.yml: Prometheus
// scraping itself; examples/ha/alertmanager.yml's shape: every alert to one receiver). kk's
// deployments mount their own.
const (
	prometheusConfig = `global:
  scrape_interval: 15s
  evaluation_interval: 15s
scrape_configs:
  - job_name: "prometheus"
    static_configs:
      - targets: ["localhost:9090"]
`
	alertmanagerConfig = `route:
  receiver: default
receivers:
  - name: default
`
)

// monitoringImages lists the images of the platform's monitoring stack the spec names
// releases of: Prometheus, Alertmanager, the node exporter, kube-state-metrics and the
// Prometheus Operator with its config reloader. Each is the mirror's static binary (see
// e2e/mirror/monitoring.go) laid out as upstream's Dockerfile lays it out: the Prometheus
// projects' images are busybox with the program in /bin, run as nobody; kube-state-metrics'
// is distroless/static with the program at the root. Their references are kk's version
// table's (artifacts/versions); the spec must build the releases it names.
//
// Left out: promtool and amtool (upstream's images carry them beside the servers; kk runs
// neither) and Prometheus' and Alertmanager's web UIs (their module zips lack the built
// assets: the APIs work, see e2e/mirror/monitoring.go).
func monitoringImages(r *recipes, spec mirror.Spec) ([]Image, error) {
	sets, err := tableSets(spec)
	if err != nil {
		return nil, err
	}
	set := sets[0]
	a := set.Addons
	nobody := "nobody"
	// dataDir is a server's data directory, writable by nobody (upstream chowns it).
	dataDir := func(p string) Entry {
		return Entry{Path: p, Type: tar.TypeDir, Mode: 0o775, UID: nobodyUID, GID: nobodyUID}
	}
	// busyboxImage is a Prometheus project's image: busybox, the program at /bin/<bin>.
	busyboxImage := func(ref, version, bin, src string, cfg imageConfig, extra ...Entry) Image {
		repo, tags := tableRef(ref)
		cfg.Entrypoint = []string{"/bin/" + bin}
		cfg.Env = []string{defaultPath}
		return Image{Repository: repo, Tags: tags, Version: version,
			layers: []*layerSpec{r.base, r.busybox, {name: bin + "-" + version,
				files: []input{{dst: "bin/" + bin, mode: 0o755, src: r.mirrorFile(src)}}, extra: extra}},
			config:   cfg,
			requires: []string{"bin/" + bin, "bin/sh"},
		}
	}
	var imgs []Image

	if v := spec.Prometheus; v != "" {
		if err := sameAs("prometheus", v, a.Prometheus); err != nil {
			return nil, err
		}
		img := busyboxImage(set.PrometheusImage(), v, "prometheus", mirror.PrometheusPath(v),
			imageConfig{Cmd: []string{"--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"},
				User: nobody, WorkingDir: "/prometheus", Ports: []string{"9090/tcp"}},
			Entry{Path: "etc/prometheus", Type: tar.TypeDir, Mode: 0o755, UID: nobodyUID, GID: nobodyUID},
			Entry{Path: "etc/prometheus/prometheus.yml", Type: tar.TypeReg, Mode: 0o644, UID: nobodyUID, GID: nobodyUID, Data: []byte(prometheusConfig)},
			dataDir("prometheus"))
		mv, err := mirror.PrometheusModuleVersion(v)
		if err != nil {
			return nil, err
		}
		img.Note = "built from " + mirror.PrometheusModule + "@" + mv + " without its web UI's assets"
		img.requires = append(img.requires, "etc/prometheus/prometheus.yml")
		imgs = append(imgs, img)
	}

	if v := spec.Alertmanager; v != "" {
		if err := sameAs("alertmanager", v, a.Alertmanager); err != nil {
			return nil, err
		}
		img := busyboxImage(set.AlertmanagerImage(), v, "alertmanager", mirror.AlertmanagerPath(v),
			imageConfig{Cmd: []string{"--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"},
				User: nobody, WorkingDir: "/alertmanager", Ports: []string{"9093/tcp"}},
			Entry{Path: "etc/alertmanager", Type: tar.TypeDir, Mode: 0o755, UID: nobodyUID, GID: nobodyUID},
			Entry{Path: "etc/alertmanager/alertmanager.yml", Type: tar.TypeReg, Mode: 0o644, UID: nobodyUID, GID: nobodyUID, Data: []byte(alertmanagerConfig)},
			dataDir("alertmanager"))
		img.Note = "built with a placeholder for its web UI (the module zip lacks ui/app/dist): the API works, the UI pages answer not found"
		img.requires = append(img.requires, "etc/alertmanager/alertmanager.yml")
		imgs = append(imgs, img)
	}

	if v := spec.NodeExporter; v != "" {
		if err := sameAs("node-exporter", v, a.NodeExporter); err != nil {
			return nil, err
		}
		imgs = append(imgs, busyboxImage(set.NodeExporterImage(), v, "node_exporter", mirror.NodeExporterPath(v),
			imageConfig{User: nobody, Ports: []string{"9100/tcp"}}))
	}

	if v := spec.KubeStateMetrics; v != "" {
		if err := sameAs("kube-state-metrics", v, a.KubeStateMetrics); err != nil {
			return nil, err
		}
		repo, tags := tableRef(set.KubeStateMetricsImage())
		imgs = append(imgs, Image{Repository: repo, Tags: tags, Version: v,
			layers: []*layerSpec{r.base, {name: "kube-state-metrics-" + v, files: []input{
				{dst: "kube-state-metrics", mode: 0o755, src: r.mirrorFile(mirror.KubeStateMetricsPath(v))}}}},
			config: imageConfig{Entrypoint: []string{"/kube-state-metrics", "--port=8080", "--telemetry-port=8081"},
				User: nobody, Ports: []string{"8080/tcp", "8081/tcp"}},
			requires: []string{"kube-state-metrics"},
		})
	}

	if v := spec.PrometheusOperator; v != "" {
		if err := sameAs("prometheus-operator", v, a.PrometheusOperator); err != nil {
			return nil, err
		}
		// upstream's operator image runs as USER 65534, its reloader's as USER nobody: the same
		imgs = append(imgs,
			busyboxImage(set.PrometheusOperatorImage(), v, "operator", mirror.PrometheusOperatorPath(v),
				imageConfig{User: "65534"}),
			busyboxImage(set.PrometheusConfigReloaderImage(), v, "prometheus-config-reloader", mirror.PrometheusConfigReloaderPath(v),
				imageConfig{User: nobody}))
	}
	return imgs, nil
}
