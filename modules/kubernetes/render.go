package kubernetes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/templates"
)

// HostEnv is what kk adapts to on one host, from its facts.
type HostEnv struct {
	// Container is the container technology the host runs in ("" on a VM or bare metal).
	Container string
	// CgroupVersion is 1 or 2 (0 when unknown).
	CgroupVersion int
}

// EnvOf reads a host's environment from its facts (nil facts: a plain VM).
func EnvOf(f *pipeline.Facts) HostEnv {
	if f == nil {
		return HostEnv{}
	}
	return HostEnv{Container: f.Container, CgroupVersion: f.CgroupVersion}
}

// CgroupV1Note tells the user what kk does on cgroup v1 hosts from Kubernetes v1.35 on, where
// kubelet refuses to start on cgroup v1 unless told otherwise.
func CgroupV1Note(version string) string {
	return fmt.Sprintf("Kubernetes %s refuses cgroup v1 by default: on hosts that still use cgroup v1 (the facts task tells), "+
		"kk sets kubelet's failCgroupV1: false and skips kubeadm's SystemVerification preflight check, as upstream documents "+
		"for keeping cgroup v1; move those hosts to cgroup v2 before upstream removes that support", version)
}

// PreflightIgnores are the kubeadm preflight checks ignored on a host, each for a reason:
//
//   - SystemVerification on a cgroup v1 host from Kubernetes v1.35 on: kubeadm then reports
//     cgroup v1 as an error (up to v1.34 it is a warning, so nothing is ignored there), while
//     kk's kubelet configuration keeps cgroup v1 allowed (failCgroupV1: false).
//
// Hosts in a container that run v1.33 or v1.34 pass every check (measured in systemd-nspawn
// machines with cgroup v1): nothing is ignored for them.
func PreflightIgnores(s Spec, env HostEnv) []string {
	v, err := ParseVersion(s.Version)
	if err == nil && env.CgroupVersion == 1 && v.Minor >= 35 {
		return []string{"SystemVerification"}
	}
	return nil
}

const (
	kubeadmV1beta4 = "kubeadm.k8s.io/v1beta4"
	kubeadmV1beta3 = "kubeadm.k8s.io/v1beta3"
	kubeletAPI     = "kubelet.config.k8s.io/v1beta1"
	kubeProxyAPI   = "kubeproxy.config.k8s.io/v1alpha1"
)

// KubeadmAPI names the kubeadm configuration API kk writes for Kubernetes version v:
// v1beta4 from v1.31 (the release that made it the default), v1beta3 before it (v1.28–v1.30
// do not know v1beta4).
func KubeadmAPI(v string) string {
	if pv, err := ParseVersion(v); err == nil && !pv.AtLeast(1, 31) {
		return kubeadmV1beta3
	}
	return kubeadmV1beta4
}

// argKeys are the kubeadm fields that hold component flags: a list of {name, value} in
// v1beta4, a map of name to value in v1beta3.
var argKeys = map[string]bool{"extraArgs": true, "kubeletExtraArgs": true}

// asV1beta3 turns a kubeadm v1beta4 document (as kk renders it) into v1beta3: every flag list
// becomes a map. kk uses no other field the two versions spell differently.
func asV1beta3(doc any) (any, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	argsToMaps(m)
	return m, nil
}

func argsToMaps(m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case map[string]any:
			argsToMaps(v)
		case []any:
			if !argKeys[k] {
				continue
			}
			out := map[string]any{}
			for _, a := range v {
				if am, ok := a.(map[string]any); ok {
					out[fmt.Sprint(am["name"])] = am["value"]
				}
			}
			m[k] = out
		}
	}
}

// kubeadmDocs renders kubeadm's documents in the API of version v.
func kubeadmDocs(v string, docs []any) ([]byte, error) {
	if KubeadmAPI(v) == kubeadmV1beta3 {
		for i, d := range docs {
			if _, ok := d.(map[string]any); ok {
				continue // kubelet / kube-proxy configuration: not kubeadm's API
			}
			c, err := asV1beta3(d)
			if err != nil {
				return nil, err
			}
			docs[i] = c
		}
	}
	return joinDocs(docs)
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

type taint struct {
	Key    string `json:"key"`
	Effect string `json:"effect"`
}

type nodeRegistration struct {
	Name                  string   `json:"name"`
	CRISocket             string   `json:"criSocket"`
	KubeletExtraArgs      []Arg    `json:"kubeletExtraArgs,omitempty"`
	Taints                *[]taint `json:"taints,omitempty"`
	IgnorePreflightErrors []string `json:"ignorePreflightErrors,omitempty"`
}

type apiEndpoint struct {
	AdvertiseAddress string `json:"advertiseAddress"`
	BindPort         int    `json:"bindPort"`
}

type bootstrapToken struct {
	Description string `json:"description,omitempty"`
	TTL         string `json:"ttl"`
}

type initConfiguration struct {
	typeMeta
	BootstrapTokens  []bootstrapToken `json:"bootstrapTokens"`
	LocalAPIEndpoint apiEndpoint      `json:"localAPIEndpoint"`
	NodeRegistration nodeRegistration `json:"nodeRegistration"`
	SkipPhases       []string         `json:"skipPhases,omitempty"`
	CertificateKey   string           `json:"certificateKey,omitempty"`
}

type component struct {
	ExtraArgs    []Arg         `json:"extraArgs,omitempty"`
	ExtraVolumes []extraVolume `json:"extraVolumes,omitempty"`
	CertSANs     []string      `json:"certSANs,omitempty"`
}

// extraVolume is a host path mounted into a control-plane static pod.
type extraVolume struct {
	Name      string `json:"name"`
	HostPath  string `json:"hostPath"`
	MountPath string `json:"mountPath"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
	PathType  string `json:"pathType,omitempty"`
}

// APIServerShutdownDelay is how long a kube-apiserver told to stop (an upgrade, a certificate
// renewal, a drained node) goes on serving while its /readyz fails: long enough for the load
// balancers in front of it (kk's haproxy checks /readyz every 2 s and takes a server out after
// two failures) to send new connections elsewhere before it closes its listener, so that no
// client's request is cut by the restart. Whatever stops it must give it longer than this.
const APIServerShutdownDelay = 6 * time.Second

// apiServerArgs are kk's kube-apiserver flags; the user's apiServer extraArgs win.
func apiServerArgs() []Arg {
	return []Arg{{"shutdown-delay-duration", APIServerShutdownDelay.String()}}
}

// Audit logging (kubernetes.audit: true): kube-apiserver reads AuditPolicy and writes
// AuditLogDir/audit.log, rotated as KubeKey does (30 days, 10 files of 100 MB).
const (
	AuditPolicy = "/etc/kubernetes/audit/policy.yaml"
	AuditLogDir = "/var/log/kubernetes/audit"
)

// auditArgs and auditVolumes are what audit logging adds to kube-apiserver.
func auditArgs() []Arg {
	return []Arg{{"audit-policy-file", AuditPolicy}, {"audit-log-path", AuditLogDir + "/audit.log"},
		{"audit-log-maxage", "30"}, {"audit-log-maxbackup", "10"}, {"audit-log-maxsize", "100"}}
}

func auditVolumes() []extraVolume {
	return []extraVolume{
		{Name: "audit-policy", HostPath: filepath.Dir(AuditPolicy), MountPath: filepath.Dir(AuditPolicy), ReadOnly: true, PathType: "DirectoryOrCreate"},
		{Name: "audit-log", HostPath: AuditLogDir, MountPath: AuditLogDir, PathType: "DirectoryOrCreate"},
	}
}

// RenderAuditPolicy is kube-apiserver's audit policy.
func RenderAuditPolicy() ([]byte, error) {
	return templates.Render("kubernetes/audit-policy.yaml", nil)
}

type etcdConfig struct {
	Local    *localEtcd    `json:"local,omitempty"`
	External *externalEtcd `json:"external,omitempty"`
}

type localEtcd struct {
	DataDir   string `json:"dataDir"`
	ExtraArgs []Arg  `json:"extraArgs,omitempty"`
}

type externalEtcd struct {
	Endpoints []string `json:"endpoints"`
	CAFile    string   `json:"caFile,omitempty"`
	CertFile  string   `json:"certFile,omitempty"`
	KeyFile   string   `json:"keyFile,omitempty"`
}

type networking struct {
	DNSDomain     string `json:"dnsDomain"`
	PodSubnet     string `json:"podSubnet,omitempty"`
	ServiceSubnet string `json:"serviceSubnet,omitempty"`
}

type dnsConfig struct {
	ImageRepository string `json:"imageRepository,omitempty"`
}

type clusterConfiguration struct {
	typeMeta
	ClusterName          string     `json:"clusterName"`
	KubernetesVersion    string     `json:"kubernetesVersion"`
	ControlPlaneEndpoint string     `json:"controlPlaneEndpoint"`
	ImageRepository      string     `json:"imageRepository"`
	DNS                  *dnsConfig `json:"dns,omitempty"`
	Networking           networking `json:"networking"`
	Etcd                 etcdConfig `json:"etcd"`
	APIServer            component  `json:"apiServer"`
	ControllerManager    component  `json:"controllerManager"`
	Scheduler            component  `json:"scheduler"`
	// CertificateValidityPeriod is v1beta4's leaf certificate lifetime ("4h0m0s").
	CertificateValidityPeriod string `json:"certificateValidityPeriod,omitempty"`
}

type joinControlPlane struct {
	LocalAPIEndpoint apiEndpoint `json:"localAPIEndpoint"`
	CertificateKey   string      `json:"certificateKey"`
}

type bootstrapDiscovery struct {
	APIServerEndpoint string   `json:"apiServerEndpoint"`
	Token             string   `json:"token"`
	CACertHashes      []string `json:"caCertHashes"`
}

type discovery struct {
	BootstrapToken    bootstrapDiscovery `json:"bootstrapToken"`
	TLSBootstrapToken string             `json:"tlsBootstrapToken"`
}

type joinConfiguration struct {
	typeMeta
	Discovery        discovery         `json:"discovery"`
	NodeRegistration nodeRegistration  `json:"nodeRegistration"`
	ControlPlane     *joinControlPlane `json:"controlPlane,omitempty"`
}

// JoinCredentials let a node join: a bootstrap token, the certificate key that decrypts the
// control-plane certificates kubeadm uploaded (control planes only), and the CA's public key
// hash.
type JoinCredentials struct {
	Token          string // "abcdef.0123456789abcdef"
	CertificateKey string // 64 hex digits
	CACertHash     string // "sha256:<hex>"
}

func (s Spec) nodeRegistration(n Node, env HostEnv) nodeRegistration {
	ip := n.Address
	if n.IPv6 != "" {
		ip += "," + n.IPv6
	}
	nr := nodeRegistration{
		Name:                  n.Name,
		CRISocket:             s.CRISocket,
		KubeletExtraArgs:      mergeArgs([]Arg{{"node-ip", ip}}, s.KubeletArgs),
		IgnorePreflightErrors: PreflightIgnores(s, env),
	}
	switch {
	case n.ControlPlane && n.Worker:
		nr.Taints = &[]taint{} // schedulable from the start
	case !n.ControlPlane:
		nr.Taints = &[]taint{}
	}
	return nr
}

func (s Spec) featureGatesArg() []Arg {
	if len(s.FeatureGates) == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(s.FeatureGates))
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+strconv.FormatBool(s.FeatureGates[k]))
	}
	return []Arg{{"feature-gates", strings.Join(parts, ",")}}
}

// RenderKubeadmConfig renders /etc/kubernetes/kubeadm-config.yaml for control plane node:
// InitConfiguration (this node's registration and API endpoint), ClusterConfiguration,
// KubeletConfiguration and KubeProxyConfiguration. certificateKey is set only in the
// transient copy used to upload the control-plane certificates ("" otherwise).
func RenderKubeadmConfig(s Spec, node string, env HostEnv, certificateKey string) ([]byte, error) {
	n, ok := s.Node(node)
	if !ok || !n.ControlPlane {
		return nil, fmt.Errorf("%s is not a control plane of the cluster", node)
	}
	init := initConfiguration{
		typeMeta: typeMeta{KubeadmAPI(s.Version), "InitConfiguration"},
		// kubeadm init always creates a bootstrap token; kk makes its own when nodes join,
		// so the init one is short-lived.
		BootstrapTokens:  []bootstrapToken{{Description: "created by kubeadm init (kk creates its own join tokens)", TTL: "1h0m0s"}},
		LocalAPIEndpoint: apiEndpoint{n.Address, s.BindPort},
		NodeRegistration: s.nodeRegistration(n, env),
		CertificateKey:   certificateKey,
	}
	if s.DisableKubeProxy {
		init.SkipPhases = []string{"addon/kube-proxy"}
	}
	fg := s.featureGatesArg()
	cc := clusterConfiguration{
		typeMeta:             typeMeta{KubeadmAPI(s.Version), "ClusterConfiguration"},
		ClusterName:          s.ClusterName,
		KubernetesVersion:    s.Version,
		ControlPlaneEndpoint: s.ControlPlaneEndpoint,
		ImageRepository:      s.ImageRepository,
		Networking:           networking{s.DNSDomain, s.PodSubnet, s.ServiceSubnet},
		APIServer:            component{ExtraArgs: mergeArgs(slices.Concat(fg, apiServerArgs()), s.APIServerArgs), CertSANs: s.CertSANs},
		ControllerManager:    component{ExtraArgs: mergeArgs(fg, s.ControllerManagerArgs)},
		Scheduler:            component{ExtraArgs: mergeArgs(fg, s.SchedulerArgs)},
	}
	if s.DNSImageRepository != "" {
		cc.DNS = &dnsConfig{s.DNSImageRepository}
	}
	if s.CertificateValidity > 0 {
		if KubeadmAPI(s.Version) != kubeadmV1beta4 {
			return nil, fmt.Errorf("certificateValidityPeriod needs kubeadm's v1beta4 configuration (Kubernetes v1.31 or newer), not %s", s.Version)
		}
		cc.CertificateValidityPeriod = s.CertificateValidity.String()
	}
	if s.Audit {
		// the user's own apiServer flags still win (mergeArgs keeps the later value)
		cc.APIServer.ExtraArgs = mergeArgs(auditArgs(), cc.APIServer.ExtraArgs)
		cc.APIServer.ExtraVolumes = auditVolumes()
	}
	if s.NodeCIDRMaskSize > 0 {
		cc.ControllerManager.ExtraArgs = mergeArgs([]Arg{{"node-cidr-mask-size", strconv.Itoa(s.NodeCIDRMaskSize)}}, cc.ControllerManager.ExtraArgs)
	}
	if s.Etcd.Type == "kubeadm" {
		cc.Etcd.Local = &localEtcd{DataDir: s.Etcd.DataDir, ExtraArgs: s.Etcd.ExtraArgs}
	} else {
		cc.Etcd.External = &externalEtcd{Endpoints: s.Etcd.Endpoints, CAFile: s.Etcd.CAFile, CertFile: s.Etcd.CertFile, KeyFile: s.Etcd.KeyFile}
	}
	kubelet, err := KubeletConfiguration(s, env)
	if err != nil {
		return nil, err
	}
	proxy, err := KubeProxyConfiguration(s, env)
	if err != nil {
		return nil, err
	}
	docs := []any{init, cc, kubelet}
	if !s.DisableKubeProxy {
		docs = append(docs, proxy)
	}
	return kubeadmDocs(s.Version, docs)
}

// RenderJoinConfig renders the JoinConfiguration of node (a control plane other than the
// first, or a worker) with the credentials; the file is written 0600 and removed after the
// join.
func RenderJoinConfig(s Spec, node string, env HostEnv, c JoinCredentials) ([]byte, error) {
	n, ok := s.Node(node)
	if !ok {
		return nil, fmt.Errorf("%s is not a node of the cluster", node)
	}
	if c.Token == "" || c.CACertHash == "" {
		return nil, fmt.Errorf("no join credentials for %s", node)
	}
	jc := joinConfiguration{
		typeMeta: typeMeta{KubeadmAPI(s.Version), "JoinConfiguration"},
		Discovery: discovery{
			BootstrapToken:    bootstrapDiscovery{APIServerEndpoint: s.ControlPlaneEndpoint, Token: c.Token, CACertHashes: []string{c.CACertHash}},
			TLSBootstrapToken: c.Token,
		},
		NodeRegistration: s.nodeRegistration(n, env),
	}
	if n.ControlPlane {
		if c.CertificateKey == "" {
			return nil, fmt.Errorf("no certificate key for control plane %s", node)
		}
		jc.ControlPlane = &joinControlPlane{LocalAPIEndpoint: apiEndpoint{n.Address, s.BindPort}, CertificateKey: c.CertificateKey}
	}
	return kubeadmDocs(s.Version, []any{jc})
}

// EvictionHard is kk's kubelet evictionHard (kubeletConfiguration.evictionHard in the Cluster
// file overrides it key by key). kubelet's own disk thresholds are shares of the file system
// (imagefs 15%): on the large disks of bare-metal nodes that evicts pods with hundreds of GiB
// still free. kk keeps memory and PID pressure as KubeKey does and sets the disk thresholds
// to 5%.
var EvictionHard = map[string]string{
	"memory.available":  "5%",
	"pid.available":     "10%",
	"nodefs.available":  "5%",
	"nodefs.inodesFree": "5%",
	"imagefs.available": "5%",
}

func evictionHard() map[string]any {
	m := make(map[string]any, len(EvictionHard))
	for k, v := range EvictionHard {
		m[k] = v
	}
	return m
}

// KubeletConfiguration is the kubelet configuration kubeadm hands every node: kk's settings
// with the cluster's kubeletConfiguration merged over them.
func KubeletConfiguration(s Spec, env HostEnv) (map[string]any, error) {
	m := map[string]any{
		"cgroupDriver":             "systemd",
		"containerRuntimeEndpoint": s.CRISocket,
		"maxPods":                  s.MaxPods,
		"rotateCertificates":       true,
		"containerLogMaxSize":      s.ContainerLogMaxSize,
		"containerLogMaxFiles":     s.ContainerLogMaxFiles,
		"evictionHard":             evictionHard(),
	}
	if s.PodPidsLimit != 0 {
		m["podPidsLimit"] = s.PodPidsLimit
	}
	if len(s.ClusterDNS) > 0 {
		m["clusterDNS"] = s.ClusterDNS
	}
	if len(s.FeatureGates) > 0 {
		m["featureGates"] = boolMap(s.FeatureGates)
	}
	if v, err := ParseVersion(s.Version); err == nil && v.Minor >= 35 && env.CgroupVersion == 1 {
		m["failCgroupV1"] = false
	}
	return withType(deepMerge(m, s.KubeletOverrides), kubeletAPI, "KubeletConfiguration")
}

// KubeProxyConfiguration is kube-proxy's configuration: mode, cluster CIDR, masquerading, and
// on a host in a container conntrack.maxPerCore 0, so kube-proxy leaves nf_conntrack_max
// alone (a container cannot set it); the cluster's kubeProxyConfiguration is merged over it.
func KubeProxyConfiguration(s Spec, env HostEnv) (map[string]any, error) {
	m := map[string]any{
		"mode":        s.ProxyMode,
		"clusterCIDR": s.PodSubnet,
	}
	if s.MasqueradeAll {
		m["iptables"] = map[string]any{"masqueradeAll": true}
	}
	if env.Container != "" {
		m["conntrack"] = map[string]any{"maxPerCore": 0}
	}
	if len(s.FeatureGates) > 0 {
		m["featureGates"] = boolMap(s.FeatureGates)
	}
	return withType(deepMerge(m, s.KubeProxyOverrides), kubeProxyAPI, "KubeProxyConfiguration")
}

func boolMap(in map[string]bool) map[string]any {
	out := map[string]any{}
	for k, v := range in {
		out[k] = v
	}
	return out
}

// withType sets apiVersion and kind (a user's override of them is an error).
func withType(m map[string]any, api, kind string) (map[string]any, error) {
	if v, ok := m["apiVersion"]; ok && v != api {
		return nil, fmt.Errorf("%s: apiVersion %v is not %s", kind, v, api)
	}
	if v, ok := m["kind"]; ok && v != kind {
		return nil, fmt.Errorf("%s: kind %v is not %s", kind, v, kind)
	}
	m["apiVersion"], m["kind"] = api, kind
	return m, nil
}

// deepMerge returns base with over merged in: maps merge key by key, anything else replaces.
func deepMerge(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base)+len(over))
	maps.Copy(out, base)
	for k, v := range over {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = deepMerge(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

func joinDocs(docs []any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# written by kk\n")
	for i, d := range docs {
		y, err := yaml.Marshal(d)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteString("---\n")
		}
		b.Write(y)
	}
	return b.Bytes(), nil
}

// RenderKubeletUnit renders kubelet.service.
func RenderKubeletUnit() ([]byte, error) {
	return templates.Render("kubernetes/kubelet.service", map[string]string{
		"Binary": BinDir + "/kubelet", "Runtime": "containerd.service cri-docker.service",
	})
}

// RenderKubeletDropIn renders the kubeadm drop-in of kubelet.service (10-kubeadm.conf).
// kubelet's extra flags live in kubeadm's nodeRegistration, not here.
func RenderKubeletDropIn() ([]byte, error) {
	return templates.Render("kubernetes/10-kubeadm.conf", map[string]string{"Binary": BinDir + "/kubelet"})
}

// sortedKeys lists a map's keys in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
