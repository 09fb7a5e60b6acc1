package v1alpha2

import (
	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/templates"
)

// SampleTemplate is the template Sample renders (a path under templates/files), and
// PlatformTemplate the KubeSphere ClusterConfiguration it appends with KubeSphere set.
const (
	SampleTemplate   = "config/cluster.yaml.tmpl"
	PlatformTemplate = "config/clusterconfiguration.yaml.tmpl"
)

// SampleOptions choose what Sample writes; empty fields take the defaults.
type SampleOptions struct {
	// Name is metadata.name (default "sample").
	Name string
	// KubernetesVersion is spec.kubernetes.version (default DefaultKubernetesVersion).
	KubernetesVersion string
	// ContainerManager is containerd (default) or docker.
	ContainerManager string
	// NetworkPlugin is spec.network.plugin (default calico).
	NetworkPlugin string
	// KubeSphere appends a KubeSphere ClusterConfiguration with the components kk serves
	// switched on (kk create config --with-kubesphere).
	KubeSphere bool
}

// Sample renders a commented Cluster file for "kk create config". It parses
// without error (once its sample passwords and key paths are real), and an
// error is returned only if the embedded template is broken.
func Sample(o SampleOptions) ([]byte, error) {
	setStr(&o.Name, "sample")
	setStr(&o.KubernetesVersion, DefaultKubernetesVersion)
	setStr(&o.ContainerManager, DefaultContainerManager)
	setStr(&o.NetworkPlugin, DefaultNetworkPlugin)
	out, err := templates.Render(SampleTemplate, o)
	if err != nil || !o.KubeSphere {
		return out, err
	}
	platform, err := templates.Render(PlatformTemplate, struct {
		config.Platform
		DefaultLoggingRetention, DefaultLoggingVolumeSize string
	}{config.Platform{MetricsServer: true}, config.DefaultLoggingRetention, config.DefaultLoggingVolumeSize})
	return append(out, platform...), err
}
