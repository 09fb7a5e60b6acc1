package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilversion "k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/kubernetes"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/api/v1alpha2"
)

// runningCluster describes a running cluster the way kk create manifest --kubeconfig needs
// it, from what its API reports: the nodes' arches, the newest kubelet version and the
// container runtime; the pods' images, the network plugin they run and whether etcd runs as
// kubeadm's static pods. The warnings say what the manifest cannot follow exactly.
func runningCluster(ctx context.Context, cs kubernetes.Interface) (v1alpha2.ManifestFor, []string, error) {
	var mf v1alpha2.ManifestFor
	var warns []string
	var nodes []corev1.Node
	if err := listAll(ctx, func(o metav1.ListOptions) (string, error) {
		l, err := cs.CoreV1().Nodes().List(ctx, o)
		if err != nil {
			return "", fmt.Errorf("list nodes: %w", err)
		}
		nodes = append(nodes, l.Items...)
		return l.Continue, nil
	}); err != nil {
		return mf, nil, err
	}
	if len(nodes) == 0 {
		return mf, nil, fmt.Errorf("the cluster has no nodes")
	}
	var newest *utilversion.Version
	var kubelets, runtimes []string
	for _, n := range nodes {
		info := n.Status.NodeInfo
		if !slices.Contains(mf.Arches, info.Architecture) {
			mf.Arches = append(mf.Arches, info.Architecture)
		}
		if strings.Contains(info.KubeletVersion, "+k3s") {
			return mf, nil, fmt.Errorf("node %s runs k3s (%s): kk writes manifests of kubeadm clusters only", n.Name, info.KubeletVersion)
		}
		v, err := utilversion.ParseGeneric(info.KubeletVersion)
		if err != nil {
			return mf, nil, fmt.Errorf("node %s: kubelet version %q: %w", n.Name, info.KubeletVersion, err)
		}
		if !slices.Contains(kubelets, v.String()) {
			kubelets = append(kubelets, v.String())
		}
		if newest == nil || newest.LessThan(v) {
			newest = v
		}
		rt, _, _ := strings.Cut(info.ContainerRuntimeVersion, "://")
		switch rt {
		case v1alpha2.RuntimeContainerd, v1alpha2.RuntimeDocker:
		default:
			return mf, nil, fmt.Errorf("node %s runs container runtime %q: kk installs containerd or docker", n.Name, info.ContainerRuntimeVersion)
		}
		if !slices.Contains(runtimes, rt) {
			runtimes = append(runtimes, rt)
		}
	}
	slices.Sort(mf.Arches)
	mf.KubernetesVersion = "v" + newest.String()
	if len(kubelets) > 1 {
		warns = append(warns, fmt.Sprintf("nodes run kubelet v%s: the manifest is for the newest, %s", strings.Join(kubelets, ", v"), mf.KubernetesVersion))
	}
	mf.ContainerManager = runtimes[0]
	if len(runtimes) > 1 {
		mf.ContainerManager = v1alpha2.RuntimeContainerd
		warns = append(warns, "nodes run both containerd and docker: the manifest carries containerd (use -c with a Cluster file for docker)")
	}

	mf.EtcdType = config.EtcdKubeKey
	var pods []corev1.Pod
	if err := listAll(ctx, func(o metav1.ListOptions) (string, error) {
		l, err := cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, o)
		if err != nil {
			return "", fmt.Errorf("list pods: %w", err)
		}
		pods = append(pods, l.Items...)
		return l.Continue, nil
	}); err != nil {
		return mf, nil, err
	}
	for _, p := range pods {
		if p.Namespace == metav1.NamespaceSystem && p.Labels["component"] == "etcd" {
			mf.EtcdType = config.EtcdKubeadm
		}
		for _, c := range slices.Concat(p.Spec.InitContainers, p.Spec.Containers) {
			ref, err := fullImageRef(c.Image)
			if err != nil {
				warns = append(warns, fmt.Sprintf("pod %s/%s: image %q left out: %v", p.Namespace, p.Name, c.Image, err))
				continue
			}
			if !slices.Contains(mf.Images, ref) {
				mf.Images = append(mf.Images, ref)
			}
		}
	}
	slices.Sort(mf.Images)
	mf.NetworkPlugin = networkPlugin(mf.Images)
	return mf, warns, nil
}

// listAll calls list with each page's continue token until the last page.
func listAll(ctx context.Context, list func(metav1.ListOptions) (string, error)) error {
	o := metav1.ListOptions{Limit: 500}
	for {
		next, err := list(o)
		if err != nil {
			return err
		}
		if next == "" {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		o.Continue = next
	}
}

// fullImageRef writes an image reference in full, as a manifest lists images:
// "nginx:1.27" -> "docker.io/library/nginx:1.27", "nginx" -> "docker.io/library/nginx:latest".
func fullImageRef(image string) (string, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return "", err
	}
	reg := ref.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	sep := ":"
	if _, ok := ref.(name.Digest); ok {
		sep = "@"
	}
	return reg + "/" + ref.Context().RepositoryStr() + sep + ref.Identifier(), nil
}

// networkPlugin names the network plugin whose images a cluster runs ("none" for one kk does
// not install, such as kubeovn or hybridnet, which a Cluster file may not name: its images
// are in the list all the same).
func networkPlugin(images []string) string {
	for _, p := range []struct{ plugin, repo string }{
		{"calico", "/calico/node:"},
		{"flannel", "flannel:"}, // docker.io/flannel/flannel, ghcr.io/flannel-io/flannel, rancher/mirrored-flannelcni-flannel
		{"cilium", "/cilium:"},
	} {
		if slices.ContainsFunc(images, func(i string) bool { return strings.Contains(i, p.repo) }) {
			return p.plugin
		}
	}
	return "none"
}
