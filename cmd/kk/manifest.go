package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"

	"github.com/kk-project/kk/api/v1alpha2"
)

// manifestFlags are the flags of kk create manifest.
type manifestFlags struct {
	name, out, oldOut, clusterFile, kubeconfig, kube string
	arches                                           []string
	registry, localStorage                           bool
}

func newCreateManifestCommand(g *globals) *cobra.Command {
	var f manifestFlags
	c := &cobra.Command{
		Use:   "manifest",
		Short: "Write the Manifest (what an offline bundle holds) of a running cluster, a version or a Cluster file",
		Long: `Write the kind: Manifest that lists what installing a cluster takes: the binaries of its
Kubernetes version, etcd, the container runtime, crictl, the CNI plugins, helm, and the images.
Versions that go with the Kubernetes version come from kk's table. The cluster is, as in KubeKey:
  --kubeconfig FILE (default $KUBECONFIG, ~/.kube/config): a running cluster; its nodes give the
      arches, the Kubernetes version and the container runtime, its pods add the images they run
  --with-kubernetes vX.Y.Z [--arch amd64,arm64]: that version with every default
  -c/--cluster-file FILE (kk's): the cluster of a Cluster file
-f names the manifest written (KubeKey's form; default manifest-NAME.yaml). Then run
kk artifact export -m MANIFEST -o BUNDLE.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := f.manifest(cmd)
			if err != nil {
				return err
			}
			data, err := m.Marshal()
			if err != nil {
				return err
			}
			out := f.output(m.Metadata.Name)
			if err := writeOutput(cmd, g, out, data, 0o644, refuseClusterFile); err != nil {
				return err
			}
			if out != "-" {
				charts := ""
				if n := len(m.Spec.Charts); n > 0 {
					charts = chartCount(n)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d components, %d images%s; next: kk artifact export -m %s -o kubekey-artifact.tar.gz\n",
					out, len(m.Components()), len(m.Images()), charts, out)
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVarP(&f.out, "filename", "f", "", "manifest file to write (default manifest-NAME.yaml; - for stdout)")
	fl.StringVarP(&f.oldOut, "output", "o", "", "the same as --filename")
	fl.StringVarP(&f.clusterFile, "cluster-file", "c", "", "write the manifest of this Cluster file")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of a running cluster (default $KUBECONFIG, ~/.kube/config)")
	fl.StringVar(&f.kube, "with-kubernetes", "", "Kubernetes version, e.g. "+v1alpha2.DefaultKubernetesVersion+", without a running cluster (with -c: instead of the file's)")
	fl.StringSliceVar(&f.arches, "arch", []string{v1alpha2.DefaultArch}, "arches, with --with-kubernetes: amd64, arm64")
	fl.BoolVar(&f.registry, "with-registry", false, "add the registry program kk init registry runs")
	fl.BoolVar(&f.localStorage, "with-local-storage", false, "add the images of kk's local storage (kk create cluster --with-local-storage; a ClusterConfiguration in the Cluster file adds them itself)")
	fl.StringVar(&f.name, "name", "sample", "metadata.name of the manifest (with -c: the cluster's name)")
	return c
}

// refuseClusterFile keeps kk create manifest from writing over a Cluster file: before kk
// followed KubeKey, -f named the Cluster file read.
func refuseClusterFile(path string) string {
	if !clusterKind(path) {
		return ""
	}
	return fmt.Sprintf("%s is a kind: Cluster file, not replaced: -f names the manifest written (KubeKey's form); "+
		"to write the manifest of a Cluster file: kk create manifest -c %s -f manifest.yaml", path, path)
}

// output is the file to write: -f, the older -o, or manifest-NAME.yaml.
func (f *manifestFlags) output(name string) string {
	switch {
	case f.out != "":
		return f.out
	case f.oldOut != "":
		return f.oldOut
	}
	return "manifest-" + name + ".yaml"
}

// manifest builds the Manifest of the cluster the flags name.
func (f *manifestFlags) manifest(cmd *cobra.Command) (*v1alpha2.Manifest, error) {
	if f.out != "" && f.oldOut != "" {
		return nil, fmt.Errorf("-f and -o both name the manifest written; give one (a Cluster file to read goes to -c)")
	}
	kube := f.kube
	if kube != "" {
		var err error
		if kube, err = kubernetesVersion(kube); err != nil {
			return nil, err
		}
	}
	fl := cmd.Flags()
	switch {
	case f.clusterFile != "" && fl.Changed("kubeconfig"):
		return nil, fmt.Errorf("-c and --kubeconfig both name the cluster; give one")
	case kube != "" && fl.Changed("kubeconfig"):
		return nil, fmt.Errorf("--with-kubernetes names a version without a cluster; --kubeconfig reads the version from the cluster; give one")
	case fl.Changed("arch") && (f.clusterFile != "" || kube == ""):
		return nil, fmt.Errorf("--arch goes with --with-kubernetes alone: a Cluster file's hosts or a cluster's nodes give the arches")
	case f.localStorage && f.clusterFile == "" && kube == "":
		return nil, fmt.Errorf("--with-local-storage goes with -c or --with-kubernetes: a running cluster's pods give its images")
	}
	if f.clusterFile != "" {
		cl, err := loadCluster(f.clusterFile, cmd.ErrOrStderr())
		if err != nil {
			return nil, err
		}
		if kube != "" {
			cl.Kubernetes.Version = kube
		}
		cl.Platform.LocalStorage = cl.Platform.LocalStorage || f.localStorage
		m, err := v1alpha2.NewManifest(cl)
		if err != nil {
			return nil, err
		}
		if fl.Changed("name") {
			m.Metadata.Name = f.name
		}
		if f.registry {
			m.Spec.Components.DockerRegistry.Version = v1alpha2.DefaultRegistryVersion
		}
		// the app store's charts, their paths relative to the manifest written
		dir := ""
		if out := f.output(m.Metadata.Name); out != "-" {
			dir = filepath.Dir(out)
		}
		if m.Spec.Charts, err = v1alpha2.StoreCharts(cl, dir); err != nil {
			return nil, err
		}
		return m, nil
	}
	if kube != "" {
		return v1alpha2.NewManifestFor(v1alpha2.ManifestFor{Name: f.name, KubernetesVersion: kube, Arches: f.arches, Registry: f.registry,
			NetworkPlugin: v1alpha2.AllInOneNetworkPlugin, LocalStorage: f.localStorage})
	}
	cs, where, err := f.client()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
	defer cancel()
	mf, warns, err := runningCluster(ctx, cs)
	if err != nil {
		return nil, fmt.Errorf("cluster of %s: %w", where, err)
	}
	for _, w := range warns {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: cluster of %s: %s\n", where, w)
	}
	mf.Name, mf.Registry = f.name, f.registry
	fmt.Fprintf(cmd.ErrOrStderr(), "cluster of %s: Kubernetes %s, %s, arches %v, network %s, etcd %s, %d images in its pods\n",
		where, mf.KubernetesVersion, mf.ContainerManager, mf.Arches, mf.NetworkPlugin, mf.EtcdType, len(mf.Images))
	return v1alpha2.NewManifestFor(mf)
}

// client connects to the cluster of --kubeconfig, else of $KUBECONFIG or ~/.kube/config, and
// says which file that was.
func (f *manifestFlags) client() (kubernetes.Interface, string, error) {
	cs, where, err := kubeClient(f.kubeconfig)
	if err != nil {
		return nil, "", fmt.Errorf("kk create manifest needs a cluster: --kubeconfig of a running cluster, --with-kubernetes vX.Y.Z or -c CLUSTER-FILE (%w)", err)
	}
	return cs, where, nil
}

// chartCount is ", 1 chart" or ", N charts", for the lines that count what a manifest or bundle
// holds.
func chartCount(n int) string {
	if n == 1 {
		return ", 1 chart"
	}
	return fmt.Sprintf(", %d charts", n)
}
