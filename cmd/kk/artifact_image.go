package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/bundle"
	"github.com/kk-project/kk/modules/registry"
)

func newArtifactImageCommand(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "image", Aliases: []string{"images"}, Short: "Work with a bundle's images (kk artifact images: KubeKey's name)"}
	c.AddCommand(newArtifactImagePushCommand(g))
	return c
}

func newArtifactImagePushCommand(g *globals) *cobra.Command {
	var file, artifact, reg, nsOverride string
	var jobs int
	c := &cobra.Command{
		Use:   "push",
		Short: "Push every image of a bundle to the private registry",
		Long: `Push every image of the bundle's OCI layout to the cluster's private registry
(spec.registry.privateRegistry, default dockerhub.kubekey.local, or --registry), renamed like
KubeKey: registry.k8s.io/kube-apiserver:v1.34.4 -> <registry>/<namespace>/kube-apiserver:v1.34.4,
where the namespace is --namespace-override (or spec.registry.namespaceOverride) or the image's
own. The bundle is unpacked once into <workdir>/artifact. kk's registry CA (kk init registry)
is trusted besides the system's; credentials come from spec.registry.auths. Blobs the registry
already has are not uploaded again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if artifact == "" {
				return fmt.Errorf("no bundle: pass -a BUNDLE (kk artifact export writes one)")
			}
			var cl *config.Cluster
			if file != "" || reg == "" {
				var err error
				if cl, err = loadCluster(file, cmd.ErrOrStderr()); err != nil {
					return err
				}
			}
			o, err := pushOptions(cmd.Context(), cl, g.Workdir, reg, nsOverride)
			if err != nil {
				return err
			}
			imp, err := bundle.Import(cmd.Context(), artifact, bundle.ImportOptions{Workdir: g.Workdir})
			if err != nil {
				return err
			}
			if len(imp.Index.Images) == 0 {
				return fmt.Errorf("bundle %s holds no images", artifact)
			}
			o.Layout, o.Concurrency, o.Log = imp.Images(), jobs, cmd.ErrOrStderr()
			pushed, err := registry.Push(cmd.Context(), o)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "IMAGE\tPUSHED AS\tARCH\tDIGEST")
			for _, p := range pushed {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", p.Source, p.Target, strings.Join(p.Arches, ","), shortDigest(p.Digest))
			}
			w.Flush()
			fmt.Fprintf(cmd.OutOrStdout(), "%d images pushed to %s\n", len(pushed), o.Registry)
			return nil
		},
	}
	f := c.Flags()
	f.StringVarP(&file, "filename", "f", "", "Cluster file (the registry, its credentials and namespace override)")
	f.StringVarP(&artifact, "artifact", "a", "", "offline bundle (kk artifact export)")
	f.StringVar(&reg, "registry", "", "push to this registry, HOST[:PORT][/PREFIX], instead of the cluster's")
	f.StringVar(&nsOverride, "namespace-override", "", "put every image under this namespace instead of its own")
	f.IntVar(&jobs, "jobs", 4, "images pushed at once")
	refuseKubeKeyFlags(c, kubekeyFlag{name: "images-dir", takesValue: true, why: "kk pushes the images of a bundle: pass -a BUNDLE"})
	return c
}

// pushOptions says where and how to push, from the cluster (may be nil with --registry set).
func pushOptions(ctx context.Context, cl *config.Cluster, workdir, reg, nsOverride string) (registry.PushOptions, error) {
	o := registry.PushOptions{Registry: reg, NamespaceOverride: nsOverride}
	ca, err := registry.CAPEM(workdir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return o, err
	}
	o.CA = ca
	if cl == nil {
		return o, nil
	}
	if o.NamespaceOverride == "" {
		o.NamespaceOverride = cl.Registry.NamespaceOverride
	}
	endpoint, domain, port, prefix, err := registry.Endpoint(cl)
	if err != nil {
		return o, err
	}
	server, serr := registry.Server(cl)
	if o.Registry == "" {
		if serr != nil && cl.Registry.PrivateRegistry == "" {
			return o, fmt.Errorf("no registry to push to: set spec.registry.privateRegistry, give a host role registry, or pass --registry")
		}
		o.Registry = endpoint
		if prefix != "" {
			o.Registry += "/" + prefix
		}
	}
	hostport, _, _ := strings.Cut(o.Registry, "/")
	if a, ok := registry.AuthFor(cl, hostport, domain, port); ok {
		o.Username, o.Password, o.SkipTLSVerify, o.PlainHTTP = a.Username, a.Password, a.SkipTLSVerify, a.PlainHTTP
	}
	// kk's registry under a domain this machine cannot resolve (the nodes get it through
	// /etc/hosts): reach it at the registry host's address
	if serr == nil && hostport == endpoint && net.ParseIP(domain) == nil {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := net.DefaultResolver.LookupHost(lctx, domain); err != nil {
			o.DialAddress = server.Address
		}
	}
	return o, nil
}
