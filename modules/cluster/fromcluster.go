package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/api/v1alpha2"
)

// This file writes the Cluster file of a running cluster (kk create config --from-cluster):
// what the API tells about the nodes, kubeadm's ClusterConfiguration and what runs in
// kube-system, for the user to complete with the SSH credentials of each host. What the API
// cannot tell is written as a comment, never guessed.

// PasswordPlaceholder is the password of every host in a file written from a cluster (as in
// kk create config's sample): the user replaces it, or removes it for a private key.
const PasswordPlaceholder = "CHANGE-ME"

// Node labels and taints that make a control plane, and where kubeadm keeps its
// configuration.
const (
	fcLabelControlPlane  = "node-role.kubernetes.io/control-plane"
	fcLabelMaster        = "node-role.kubernetes.io/master"
	fcKubeadmConfigMap   = "kubeadm-config"
	fcKubeProxyConfigMap = "kube-proxy"
	// KubeKeyEtcdPKIDir is where kk and KubeKey keep the certificates of the etcd they run
	// (etcd.type kubekey): an external etcd whose client certificates lie there is theirs.
	KubeKeyEtcdPKIDir = "/etc/ssl/etcd/ssl"
)

// FromCluster is a running cluster as a v1alpha2 Cluster file describes it.
type FromCluster struct {
	// Cluster is the document; each host's password is PasswordPlaceholder.
	Cluster v1alpha2.Cluster
	// Warnings say what could not be read, or what the file cannot follow exactly.
	Warnings []string
	// hints are comment lines written above a key, by its dotted path (spec.etcd).
	hints map[string][]string
}

// ReadCluster reads the running cluster of cs into a Cluster file named name.
func ReadCluster(ctx context.Context, cs kubernetes.Interface, name string) (*FromCluster, error) {
	r := &fromClusterReader{ctx: ctx, cs: cs, f: &FromCluster{hints: map[string][]string{}}}
	if err := r.read(name); err != nil {
		return nil, err
	}
	return r.f, nil
}

// ClusterFileFromCluster reads the running cluster of cs and returns its Cluster file, with
// comments, and the warnings.
func ClusterFileFromCluster(ctx context.Context, cs kubernetes.Interface, name string) ([]byte, []string, error) {
	f, err := ReadCluster(ctx, cs, name)
	if err != nil {
		return nil, nil, err
	}
	data, err := f.YAML()
	return data, f.Warnings, err
}

// hint adds comment lines above the key at path.
func (f *FromCluster) hint(path string, format string, a ...any) {
	f.hints[path] = append(f.hints[path], strings.Split(fmt.Sprintf(format, a...), "\n")...)
}

func (f *FromCluster) warn(format string, a ...any) {
	f.Warnings = append(f.Warnings, fmt.Sprintf(format, a...))
}

// kubeadmClusterConfiguration holds the fields kk reads of kubeadm's ClusterConfiguration;
// they are the same in kubeadm.k8s.io/v1beta3 and v1beta4 (certificateValidityPeriod is
// v1beta4's).
type kubeadmClusterConfiguration struct {
	APIVersion                string           `json:"apiVersion"`
	KubernetesVersion         string           `json:"kubernetesVersion"`
	ClusterName               string           `json:"clusterName"`
	ControlPlaneEndpoint      string           `json:"controlPlaneEndpoint"`
	ImageRepository           string           `json:"imageRepository"`
	CertificateValidityPeriod *metav1.Duration `json:"certificateValidityPeriod"`
	Networking                struct {
		DNSDomain     string `json:"dnsDomain"`
		PodSubnet     string `json:"podSubnet"`
		ServiceSubnet string `json:"serviceSubnet"`
	} `json:"networking"`
	Etcd struct {
		Local    *struct{} `json:"local"`
		External *struct {
			Endpoints []string `json:"endpoints"`
			CAFile    string   `json:"caFile"`
			CertFile  string   `json:"certFile"`
			KeyFile   string   `json:"keyFile"`
		} `json:"external"`
	} `json:"etcd"`
}

type fromClusterReader struct {
	ctx   context.Context
	cs    kubernetes.Interface
	f     *FromCluster
	nodes []corev1.Node
	// internal maps each InternalIP of a node to the node's name.
	internal map[string]string
	cps      []string
}

func (r *fromClusterReader) read(name string) error {
	c := &r.f.Cluster
	c.APIVersion, c.Kind, c.Metadata.Name = v1alpha2.APIVersion, v1alpha2.Kind, name
	if err := r.readNodes(); err != nil {
		return err
	}
	kc, err := r.kubeadmConfig()
	if err != nil {
		return err
	}
	if err := r.kubernetes(kc); err != nil {
		return err
	}
	r.endpoint(kc)
	r.etcd(kc)
	r.network(kc)
	r.registry(kc)
	return nil
}

// readNodes makes a host of each node, and the control-plane and worker groups.
func (r *fromClusterReader) readNodes() error {
	o := metav1.ListOptions{Limit: 500}
	for {
		l, err := r.cs.CoreV1().Nodes().List(r.ctx, o)
		if err != nil {
			return fmt.Errorf("list nodes: %w", err)
		}
		r.nodes = append(r.nodes, l.Items...)
		if l.Continue == "" {
			break
		}
		o.Continue = l.Continue
	}
	if len(r.nodes) == 0 {
		return fmt.Errorf("the cluster has no nodes")
	}
	slices.SortFunc(r.nodes, func(a, b corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	s := &r.f.Cluster.Spec
	s.RoleGroups = map[string][]string{}
	r.internal = map[string]string{}
	var workers []string
	for _, n := range r.nodes {
		h := v1alpha2.HostCfg{Name: n.Name, User: v1alpha2.DefaultSSHUser, Password: PasswordPlaceholder, Arch: n.Status.NodeInfo.Architecture}
		var internal, external []string
		for _, a := range n.Status.Addresses {
			switch a.Type {
			case corev1.NodeInternalIP:
				internal = append(internal, a.Address)
				r.internal[a.Address] = n.Name
			case corev1.NodeExternalIP:
				external = append(external, a.Address)
			}
		}
		h.InternalAddress = nodeInternalAddress(internal)
		switch {
		case len(external) > 0:
			h.Address = firstIPv4(external)
		case len(internal) > 0:
			h.Address = firstIPv4(internal)
		default:
			r.f.warn("node %s has no InternalIP or ExternalIP: fill in its address", n.Name)
		}
		if h.Arch != "amd64" && h.Arch != "arm64" {
			r.f.warn("node %s is %s: kk installs amd64 and arm64 hosts", n.Name, h.Arch)
		}
		s.Hosts = append(s.Hosts, h)
		_, cp := n.Labels[fcLabelControlPlane]
		if _, master := n.Labels[fcLabelMaster]; master {
			cp = true
		}
		if cp {
			r.cps = append(r.cps, n.Name)
		}
		if !cp || !slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool {
			return (t.Key == fcLabelControlPlane || t.Key == fcLabelMaster) && t.Effect == corev1.TaintEffectNoSchedule
		}) {
			workers = append(workers, n.Name)
		}
	}
	r.f.hint("spec.hosts", "One host per node. address: the node's ExternalIP if it has one, else its InternalIP.\n"+
		"Fill in the SSH credentials of each host: replace password %q, or remove it and\n"+
		"set privateKeyPath (e.g. ~/.ssh/id_ed25519); user root and port 22 are the defaults.\n"+
		"A non-root user needs sudo.", PasswordPlaceholder)
	if len(r.cps) == 0 {
		r.f.warn("no node has the %s (or %s) label: list the control planes under roleGroups.control-plane", fcLabelControlPlane, fcLabelMaster)
		r.f.hint("spec.roleGroups", "No node has the %s label: list the control planes under control-plane.", fcLabelControlPlane)
	} else {
		s.RoleGroups["control-plane"] = r.cps
	}
	if len(workers) > 0 {
		s.RoleGroups["worker"] = workers
	}
	return nil
}

// nodeInternalAddress is a host's internalAddress: its first IPv4, or "IPv4,IPv6" on a dual-stack node.
func nodeInternalAddress(ips []string) string {
	var v4, v6 string
	for _, a := range ips {
		ip := net.ParseIP(a)
		switch {
		case ip == nil:
		case ip.To4() != nil && v4 == "":
			v4 = a
		case ip.To4() == nil && v6 == "":
			v6 = a
		}
	}
	switch {
	case v4 != "" && v6 != "":
		return v4 + "," + v6
	case v4 != "":
		return v4
	}
	return v6
}

func firstIPv4(ips []string) string {
	for _, a := range ips {
		if ip := net.ParseIP(a); ip != nil && ip.To4() != nil {
			return a
		}
	}
	return ips[0]
}

// kubeadmConfig reads the ClusterConfiguration of the kubeadm-config ConfigMap; nil when the
// cluster has none (a warning says so).
func (r *fromClusterReader) kubeadmConfig() (*kubeadmClusterConfiguration, error) {
	cm, err := r.cs.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(r.ctx, fcKubeadmConfigMap, metav1.GetOptions{})
	if err != nil {
		if !apierrors.IsNotFound(err) && !apierrors.IsForbidden(err) {
			return nil, fmt.Errorf("read ConfigMap kube-system/%s: %w", fcKubeadmConfigMap, err)
		}
		r.f.warn("ConfigMap kube-system/%s: %v: the file leaves out what kubeadm's ClusterConfiguration says (CIDRs, etcd, endpoint)", fcKubeadmConfigMap, err)
		return nil, nil
	}
	data, ok := cm.Data["ClusterConfiguration"]
	if !ok {
		r.f.warn("ConfigMap kube-system/%s has no ClusterConfiguration: the file leaves out what it says (CIDRs, etcd, endpoint)", fcKubeadmConfigMap)
		return nil, nil
	}
	var kc kubeadmClusterConfiguration
	if err := sigsyaml.Unmarshal([]byte(data), &kc); err != nil {
		return nil, fmt.Errorf("ConfigMap kube-system/%s: ClusterConfiguration: %w", fcKubeadmConfigMap, err)
	}
	switch kc.APIVersion {
	case "kubeadm.k8s.io/v1beta3", "kubeadm.k8s.io/v1beta4":
	default:
		r.f.warn("ConfigMap kube-system/%s: ClusterConfiguration %s is read as v1beta3/v1beta4", fcKubeadmConfigMap, kc.APIVersion)
	}
	return &kc, nil
}

// kubernetes fills spec.kubernetes.
func (r *fromClusterReader) kubernetes(kc *kubeadmClusterConfiguration) error {
	k := &r.f.Cluster.Spec.Kubernetes
	if kc != nil {
		k.Version = kc.KubernetesVersion
		k.ClusterName = kc.ClusterName
		k.DNSDomain = kc.Networking.DNSDomain
		if p := kc.CertificateValidityPeriod; p != nil && p.Duration > 0 {
			k.CertificateValidityPeriod = p.Duration.String()
		}
	}
	if k.Version == "" {
		v, err := r.cs.Discovery().ServerVersion()
		if err != nil {
			return fmt.Errorf("read the API server's version: %w", err)
		}
		k.Version = v.GitVersion
	}
	if plain, _, _ := strings.Cut(k.Version, "+"); plain != k.Version {
		if strings.Contains(k.Version, "k3s") || strings.Contains(k.Version, "rke2") {
			return fmt.Errorf("the cluster runs %s: kk describes kubeadm clusters only", k.Version)
		}
		r.f.warn("Kubernetes %s is written as %s", k.Version, plain)
		k.Version = plain
	}
	var runtimes []string
	count := map[string]int{}
	for _, n := range r.nodes {
		rt, _, _ := strings.Cut(n.Status.NodeInfo.ContainerRuntimeVersion, "://")
		switch rt {
		case v1alpha2.RuntimeContainerd, v1alpha2.RuntimeDocker:
		default:
			return fmt.Errorf("node %s runs container runtime %q: kk manages containerd or docker", n.Name, n.Status.NodeInfo.ContainerRuntimeVersion)
		}
		if count[rt] == 0 {
			runtimes = append(runtimes, rt)
		}
		count[rt]++
	}
	k.ContainerManager = runtimes[0]
	if len(runtimes) > 1 {
		k.ContainerManager = v1alpha2.RuntimeContainerd
		if count[v1alpha2.RuntimeDocker] > count[v1alpha2.RuntimeContainerd] {
			k.ContainerManager = v1alpha2.RuntimeDocker
		}
		r.f.warn("nodes run both containerd and docker: the file says %s, the runtime of most nodes", k.ContainerManager)
	}
	cm, err := r.cs.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(r.ctx, fcKubeProxyConfigMap, metav1.GetOptions{})
	switch {
	case err == nil:
		var pc struct {
			Mode string `json:"mode"`
		}
		if err := sigsyaml.Unmarshal([]byte(cm.Data["config.conf"]), &pc); err != nil {
			r.f.warn("ConfigMap kube-system/%s: %v: proxyMode left out", fcKubeProxyConfigMap, err)
			break
		}
		k.ProxyMode = pc.Mode
		if k.ProxyMode == "" {
			k.ProxyMode = "iptables" // kube-proxy's default on Linux
		}
	case apierrors.IsNotFound(err) || apierrors.IsForbidden(err):
		r.f.hint("spec.kubernetes", "No kube-proxy ConfigMap in kube-system: if the cluster runs without kube-proxy, set disableKubeProxy: true.")
	default:
		return fmt.Errorf("read ConfigMap kube-system/%s: %w", fcKubeProxyConfigMap, err)
	}
	nodelocaldns := r.daemonSet(metav1.NamespaceSystem, "nodelocaldns") != nil
	k.Nodelocaldns = &nodelocaldns
	r.f.hint("spec.kubernetes", "Read from kubeadm's ClusterConfiguration, the nodes, kube-proxy and kube-system's DaemonSets.\n"+
		"Not read (kk's defaults apply unless set): maxPods, podPidsLimit, nodeCidrMaskSize,\n"+
		"apiserverCertExtraSans, featureGates, the components' extra args, audit, autoRenewCerts.")
	return nil
}

// endpoint fills spec.controlPlaneEndpoint from kubeadm's controlPlaneEndpoint and the load
// balancer pods in kube-system (haproxy on the workers, or kube-vip on the control planes).
func (r *fromClusterReader) endpoint(kc *kubeadmClusterConfiguration) {
	e := &r.f.Cluster.Spec.ControlPlaneEndpoint
	const p = "spec.controlPlaneEndpoint"
	pods, err := r.cs.CoreV1().Pods(metav1.NamespaceSystem).List(r.ctx, metav1.ListOptions{})
	if err != nil {
		r.f.warn("list pods in kube-system: %v: the internal load balancer is left out", err)
		pods = &corev1.PodList{}
	}
	var vip, vipMode string
	for _, pod := range pods.Items {
		switch {
		case pod.Labels["k8s-app"] == "kube-haproxy" || strings.HasPrefix(pod.Name, "haproxy-"):
			e.InternalLoadbalancer = config.LoadBalancerHAProxy
		case pod.Labels["app.kubernetes.io/name"] == "kube-vip" || strings.HasPrefix(pod.Name, "kube-vip"):
			e.InternalLoadbalancer = config.LoadBalancerKubeVIP
			for _, c := range pod.Spec.Containers {
				for _, env := range c.Env {
					switch {
					case (env.Name == "address" || env.Name == "vip_address") && vip == "":
						vip = env.Value
					case env.Name == "bgp_enable" && env.Value == "true":
						vipMode = "BGP"
					}
				}
			}
		}
	}
	host, port := "", ""
	if kc != nil && kc.ControlPlaneEndpoint != "" {
		var err error
		if host, port, err = net.SplitHostPort(kc.ControlPlaneEndpoint); err != nil {
			host, port = kc.ControlPlaneEndpoint, ""
		}
	}
	if n, err := strconv.Atoi(port); err == nil {
		e.Port = n
	}
	switch {
	case host == "":
		r.f.hint(p, "kubeadm's ClusterConfiguration has no controlPlaneEndpoint: the API server is reached on a\n"+
			"control plane's address. kk's default domain and port are written.")
		e.Domain, e.Port = v1alpha2.DefaultLBDomain, v1alpha2.DefaultLBPort
	case net.ParseIP(host) != nil:
		r.f.hint(p, "kubeadm's controlPlaneEndpoint is the address %s: kk names it with the domain below.", host)
		e.Domain = v1alpha2.DefaultLBDomain
		if e.InternalLoadbalancer != config.LoadBalancerHAProxy {
			e.Address = host
		}
	default:
		e.Domain = host
	}
	switch e.InternalLoadbalancer {
	case config.LoadBalancerHAProxy:
		e.Address = ""
	case config.LoadBalancerKubeVIP:
		if vip != "" {
			e.Address = vip
		}
		if e.Address == "" {
			r.f.hint(p, "kube-vip runs in kube-system, its virtual IP was not found: set address to it.")
		}
		e.KubeVip.Mode = vipMode
	default:
		if len(r.cps) > 1 && e.Address == "" {
			r.f.hint(p, "No haproxy or kube-vip pod in kube-system: with your own load balancer, set address to its IP\n"+
				"(or externalDNS: true when your DNS resolves the domain).")
		}
	}
}

// etcd fills spec.etcd and roleGroups.etcd: kubeadm's stacked etcd, kk's or KubeKey's etcd
// (type kubekey: its certificates in /etc/ssl/etcd/ssl), or an external one.
func (r *fromClusterReader) etcd(kc *kubeadmClusterConfiguration) {
	e := &r.f.Cluster.Spec.Etcd
	const p = "spec.etcd"
	if kc == nil {
		r.f.hint(p, "Without kubeadm's ClusterConfiguration the etcd type is unknown: set type (kubekey, kubeadm or\n"+
			"external) and, for kubekey, list the etcd hosts under roleGroups.etcd.")
		return
	}
	x := kc.Etcd.External
	if x == nil || len(x.Endpoints) == 0 {
		e.Type = config.EtcdKubeadm
		r.f.hint(p, "Stacked etcd (kubeadm's static pods on the control planes): no roleGroups.etcd.")
		return
	}
	var members, unknown []string
	for _, ep := range x.Endpoints {
		host := ep
		if u, err := url.Parse(ep); err == nil && u.Host != "" {
			host = u.Hostname()
		}
		if n, ok := r.internal[host]; ok {
			if !slices.Contains(members, n) {
				members = append(members, n)
			}
		} else {
			unknown = append(unknown, ep)
		}
	}
	underKubeKey := func(f string) bool { return f != "" && path.Dir(path.Clean(f)) == KubeKeyEtcdPKIDir }
	if underKubeKey(x.CAFile) && underKubeKey(x.CertFile) && underKubeKey(x.KeyFile) {
		e.Type = config.EtcdKubeKey
		if len(members) > 0 {
			r.f.Cluster.Spec.RoleGroups["etcd"] = members
		}
		if len(unknown) > 0 {
			r.f.warn("etcd endpoints %s are no node of the cluster: add those hosts to spec.hosts and roleGroups.etcd", strings.Join(unknown, ", "))
			r.f.hint("spec.roleGroups", "etcd members that are no node of the cluster (%s): add them to\n"+
				"spec.hosts and to etcd below.", strings.Join(unknown, ", "))
		}
		r.f.hint(p, "kk's (KubeKey's) etcd: its certificates are in %s on the etcd hosts.", KubeKeyEtcdPKIDir)
		return
	}
	e.Type = config.EtcdExternal
	e.External = v1alpha2.ExternalEtcd{Endpoints: x.Endpoints, CAFile: x.CAFile, CertFile: x.CertFile, KeyFile: x.KeyFile}
	msg := "An external etcd: kk reads caFile, certFile and keyFile on the machine running kk (these are the\n" +
		"control planes' paths): copy the files there, or change the paths."
	if len(members) > 0 {
		msg += fmt.Sprintf("\nThe etcd endpoints on nodes of the cluster: %s.", strings.Join(members, ", "))
	}
	r.f.hint(p, "%s", msg)
}

// network fills spec.network: the CIDRs of kubeadm's ClusterConfiguration and the plugin
// that runs in the cluster.
func (r *fromClusterReader) network(kc *kubeadmClusterConfiguration) {
	n := &r.f.Cluster.Spec.Network
	const p = "spec.network"
	if kc != nil {
		n.KubePodsCIDR, n.KubeServiceCIDR = kc.Networking.PodSubnet, kc.Networking.ServiceSubnet
	}
	if n.KubePodsCIDR == "" {
		r.f.hint(p, "The pod CIDR is not in kubeadm's ClusterConfiguration: set kubePodsCIDR to the cluster's\n"+
			"(kk's default is %s).", v1alpha2.DefaultPodsCIDR)
	}
	if n.KubeServiceCIDR == "" {
		r.f.hint(p, "The service CIDR is not in kubeadm's ClusterConfiguration: set kubeServiceCIDR to the\n"+
			"cluster's (kk's default is %s).", v1alpha2.DefaultServiceCIDR)
	}
	if ds := r.daemonSet(metav1.NamespaceSystem, "calico-node"); ds != nil {
		n.Plugin = "calico"
		for _, c := range ds.Spec.Template.Spec.Containers {
			for _, env := range c.Env {
				if env.Value != "Always" && env.Value != "CrossSubnet" && env.Value != "Never" {
					continue
				}
				switch env.Name {
				case "CALICO_IPV4POOL_IPIP":
					n.Calico.IPIPMode = env.Value
				case "CALICO_IPV4POOL_VXLAN":
					n.Calico.VXLANMode = env.Value
				}
			}
		}
		return
	}
	for _, ns := range []string{metav1.NamespaceSystem, "kube-flannel"} {
		if ds := r.daemonSet(ns, "kube-flannel-ds"); ds != nil {
			n.Plugin = "flannel"
			r.flannelBackend(ns)
			return
		}
	}
	if _, err := r.cs.CoreV1().Namespaces().Get(r.ctx, "kube-flannel", metav1.GetOptions{}); err == nil {
		n.Plugin = "flannel"
		r.flannelBackend("kube-flannel")
		return
	}
	if r.daemonSet(metav1.NamespaceSystem, "cilium") != nil {
		n.Plugin = "cilium"
		return
	}
	n.Plugin = "none"
	r.f.hint(p, "No calico, flannel or cilium DaemonSet found: plugin none leaves the pod network as it is.")
}

// daemonSet is the DaemonSet ns/name, or nil when there is none (or it cannot be read: a
// warning says so).
func (r *fromClusterReader) daemonSet(ns, name string) *appsv1.DaemonSet {
	ds, err := r.cs.AppsV1().DaemonSets(ns).Get(r.ctx, name, metav1.GetOptions{})
	if err != nil {
		if !apierrors.IsNotFound(err) {
			r.f.warn("DaemonSet %s/%s: %v", ns, name, err)
		}
		return nil
	}
	return ds
}

// flannelBackend reads flannel's backend from its kube-flannel-cfg ConfigMap.
func (r *fromClusterReader) flannelBackend(ns string) {
	cm, err := r.cs.CoreV1().ConfigMaps(ns).Get(r.ctx, "kube-flannel-cfg", metav1.GetOptions{})
	if err != nil {
		return
	}
	var conf struct {
		Backend struct {
			Type string `json:"Type"`
		} `json:"Backend"`
	}
	if json.Unmarshal([]byte(cm.Data["net-conf.json"]), &conf) == nil {
		r.f.Cluster.Spec.Network.Flannel.BackendMode = conf.Backend.Type
	}
}

// registry writes, as a comment, the registry kubeadm pulls its images from when it is not
// upstream's: how it maps to privateRegistry and namespaceOverride is the user's to say.
func (r *fromClusterReader) registry(kc *kubeadmClusterConfiguration) {
	if kc == nil {
		return
	}
	switch kc.ImageRepository {
	case "", "registry.k8s.io", "k8s.gcr.io":
		return
	}
	r.f.hint("spec.registry", "kubeadm pulls the control plane's images from %s: set privateRegistry (and\n"+
		"namespaceOverride) to the registry the cluster pulls from.", kc.ImageRepository)
}

// YAML writes the Cluster file, with the hints as comments above their keys.
func (f *FromCluster) YAML() ([]byte, error) {
	// encoding/json keeps the fields in the order of the types, and JSON is YAML
	js, err := json.Marshal(f.Cluster)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(js, &doc); err != nil {
		return nil, err
	}
	root := doc.Content[0]
	plainStyle(root)
	pruneEmpty(root, "", f.hints)
	for p, lines := range f.hints {
		keys := strings.Split(p, ".")
		m := root
		for _, k := range keys[:len(keys)-1] {
			if m = mapValue(m, k); m == nil {
				return nil, fmt.Errorf("hint for %s: no %s", p, k)
			}
		}
		key := mapKey(m, keys[len(keys)-1])
		if key == nil { // a section left empty: written to carry its comment
			key = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: keys[len(keys)-1]}
			m.Content = append(m.Content, key, &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: yaml.FlowStyle})
		}
		comment := make([]string, len(lines))
		for i, l := range lines {
			comment[i] = strings.TrimRight("# "+l, " ")
		}
		key.HeadComment = strings.Join(comment, "\n")
	}
	if hosts := mapValue(mapValue(root, "spec"), "hosts"); hosts != nil {
		for _, h := range hosts.Content {
			if pw := mapValue(h, "password"); pw != nil {
				pw.Style = yaml.DoubleQuotedStyle
			}
		}
	}
	root.HeadComment = "# Written by kk create config --from-cluster from a running cluster.\n" +
		"# Fill in the SSH credentials of spec.hosts, then run: kk precheck -f <this file>"
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	enc.CompactSeqIndent() // "- item" under its key, as kk's and KubeKey's files write lists
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// plainStyle turns the JSON styles into block mappings and plain scalars (quoted where a plain
// scalar would read as another type).
func plainStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		plainStyle(c)
	}
}

// pruneEmpty removes the empty mappings under n, at path (struct fields JSON writes as {}), but
// for those with a hint: they stay, as {}, to carry it. It reports whether n is empty.
func pruneEmpty(n *yaml.Node, path string, hints map[string][]string) bool {
	if n.Kind != yaml.MappingNode {
		return false
	}
	var kept []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		p := strings.TrimPrefix(path+"."+n.Content[i].Value, ".")
		if pruneEmpty(n.Content[i+1], p, hints) {
			if len(hints[p]) == 0 {
				continue
			}
			n.Content[i+1].Style = yaml.FlowStyle
		}
		kept = append(kept, n.Content[i], n.Content[i+1])
	}
	n.Content = kept
	return len(kept) == 0
}

func mapKey(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i]
		}
	}
	return nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
