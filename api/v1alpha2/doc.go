// Package v1alpha2 reads KubeKey's kubekey.kubesphere.io/v1alpha2 "kind: Cluster"
// files as they are and turns them into kk's internal model (package config).
//
// Load and Parse (and their WithOptions forms) decode a file, check it against the
// schema, apply KubeKey's defaults (with kk's own choices where they differ:
// containerd, iptables, a recent Kubernetes), expand roleGroups ranges such as
// node[1:3], and validate the result. Every problem is collected and returned at
// once as an ErrorList, each entry naming the file, the line and the field path:
//
//	cluster.yaml:12: spec.hosts[1].name: duplicate host name "n1" (also spec.hosts[0])
//
// Non-fatal findings come back as Warnings in the same format. When a file is
// invalid no *config.Cluster is returned, so nothing can touch a host.
//
// # Schema
//
// The versioned types mirror KubeKey 3.1's with the same json names, so every field
// KubeKey 3.1 writes is accepted; network.cilium, network.hybridnet,
// registry.remoteMirrors, kubernetes.kubeletConfiguration and
// kubernetes.kubeProxyConfiguration are free-form. kk adds spec.hosts[].jumpHost and
// spec.gpu: given at all, NVIDIA's container toolkit on the GPU hosts (spec.gpu.toolkit.version,
// default kk's version table's); spec.gpu.driver.version is the NVIDIA driver kk installs
// there (of the form 570.195.03; the bundle carries NVIDIA's installer for it);
// spec.gpu.devicePlugin {enabled, migStrategy, timeSlicing: {replicas}} is NVIDIA's device
// plugin on them (on with spec.gpu). GPU hosts are those with NVIDIA GPUs on their PCI bus and
// those labelled nvidia.com/gpu.present: "true".
// Unknown fields (with a "did you mean" hint), duplicate keys and values of the
// wrong type are errors. Values meant as strings keep their text (clusterName: 1.30
// stays "1.30"); YAML 1.1 booleans (yes/no/on/off) are read as KubeKey reads them.
// A Kubernetes version written without its "v" (1.30.14) is read as v1.30.14.
// metadata.creationTimestamp (KubeKey writes null) is accepted and ignored.
// A file may hold other documents: KubeKey appends ks-installer's ClusterConfiguration,
// which is read into config.Platform (clusterconfiguration.go: the switches kk serves act,
// those it cannot serve are refused while on, KubeSphere's console settings are warned
// about); any other document is ignored with a warning.
//
// # What each KubeKey field does in kk
//
// Every field is copied into config.Cluster (modules act on it) except as listed
// here. "Warned": the file loads and a warning names FILE:LINE, the field and why.
// "Refused": an error at FILE:LINE, so nothing is downloaded or touched.
//
//	field                                        kk
//	kubernetes.version 1.30.14 (no "v")          acts, read as v1.30.14
//	kubernetes.type other than kubernetes (k3s)  refused: kk installs kubeadm clusters
//	kubernetes.containerManager isula, crio      refused: kk installs containerd or docker
//	kubernetes.nvidiaRuntime: true               acts: the NVIDIA container toolkit on the GPU hosts (as spec.gpu)
//	                                               with nvidia containerd's default runtime there
//	kubernetes.kata, nodeFeatureDiscovery        config (Kata, NodeFeatureDiscovery); warned when enabled: not implemented yet
//	kubernetes.nodeCidrMaskSizeIPv6              warned: not implemented yet, ignored
//	kubernetes.audit, nodelocaldns, masqueradeAll acts
//	kubernetes.autoRenewCerts (default true)     acts: kk-certs-renew.timer on control-plane and etcd hosts
//	kubernetes.certificateValidityPeriod (kk)    acts: leaf lifetime of kubeadm's and kk's etcd certificates;
//	                                               refused before v1.31 (kubeadm v1beta3 has no such field)
//	etcd.extraArgs ["--name=value"] or {name: v} config.Etcd.ExtraArgs (name without "--")
//	registry.containerdDataDir, dockerDataDir,   config.Registry (same names)
//	  registryDataDir
//	registry.type harbor                         refused: kk deploys the distribution registry
//	registry.port, registry.remoteMirrors        warned: not implemented yet, ignored
//	network.plugin kubeovn, hybridnet            refused: use calico, flannel, cilium or none
//	network.<plugin> section of another plugin   warned: ignored
//	network.multusCNI.enabled: true              refused: not implemented yet
//	network.calico.typha.enabled                 config.Calico.Typha (also on above 50 nodes, as KubeKey)
//	network.calico.controller/typha replicas,    config.Calico.ReplicaCount, NodeSelector (controller's
//	  nodeSelector                                 first; warned when typha's differs)
//	network.calico.ipAutoDetectionMethod,        warned: not implemented yet, ignored
//	  ipv6NatOutgoing
//	addons[].sources.yaml.values                 config.AddonYaml.Values
//	addons[].preInstall, postInstall             warned: not implemented yet, ignored
//	storage.openebs.basePath (written)           config.Storage; warned: kk does not install OpenEBS
//	kubesphere.enabled: true                     config.KubeSphere; warned: kk does not install KubeSphere yet
//	kubernetes.imageRepo (KubeKey 1.x)           warned: use registry.privateRegistry, namespaceOverride
//	kubernetes.etcdBackupDir, etcdBackupPeriod,  KubeKey 2.0 names: read as etcd.backupDir, backupPeriod,
//	  keepBackupNumber, etcdBackupScript           keepBackupNumber, backupScript, with a warning
//	                                               (ignored, warned, when the etcd field is set)
//
// A Manifest (LoadManifest) accepts every field of KubeKey 3.1's; it warns, by name
// at FILE:LINE, about each operatingSystems entry (kk packages no OS ISO), harbor and
// docker-compose (not packaged) and a docker-registry major version (kk packages the
// distribution registry program).
//
// # Validation
//
// Errors: malformed YAML; apiVersion other than kubekey.kubesphere.io/v1alpha2;
// kind other than Cluster (a KubeKey Manifest is named as such); no hosts; host
// name missing, duplicate or not a valid node name; address missing or invalid;
// two hosts on the same address and SSH port; internalAddress not an IP (or
// IPv4,IPv6 pair) or duplicate; port outside 1-65535; arch other than amd64 and
// arm64; privateKeyPath (after "~" expansion; ~/.ssh/id_rsa when a host has no
// password or key) that does not exist; jumpHost unknown, the host itself, or in
// a cycle; unknown roleGroups key (etcd, master, control-plane, worker,
// registry); malformed range; a name in roleGroups that is not in spec.hosts; no
// control plane; no etcd host with etcd type kubekey; internalLoadbalancer other
// than "", haproxy, kube-vip; kube-vip without address; haproxy with an address;
// a load balancer address that is not an IP; kubernetes version not vX.Y.Z;
// containerManager other than containerd and docker; proxyMode other than
// iptables, ipvs, nftables; invalid clusterName, dnsDomain, extra SANs; etcd type
// other than kubekey, kubeadm, external; external etcd without endpoints or with
// non-URL endpoints, certFile without keyFile, TLS files that do not exist;
// invalid pod or service CIDR, overlapping pod and service CIDRs, a host inside
// either; a network plugin other than calico, flannel, cilium, none; calico modes,
// with IPIP and VXLAN both on; privateRegistry with a scheme; addons without a
// name, duplicated, or without exactly one source (a chart needs repo or path);
// malformed or repeated etcd.extraArgs; an alias inside its own anchor, or aliases
// expanding past a bound; the refusals of the table above.
//
// Warnings: an even number of etcd members; several control planes and no load
// balancer; no worker; a host without a role; roleGroups.etcd with a non-kubekey
// etcd; a host listed twice in a role; documents that are not the Cluster; the
// warnings of the table above.
//
// The checks that read the local disk (private keys, etcd TLS files) are skipped
// with ParseOptions.SkipFileChecks.
package v1alpha2
