// Package v1alpha2 reads KubeKey's kubekey.kubesphere.io/v1alpha2 "kind: Cluster"
// files as they are and turns them into kk's internal model (package config).
//
// Load and Parse decode a file, check it against the schema (unknown fields and
// wrong types are errors, with their line), apply KubeKey's defaults (with kk's own
// choices where they differ: containerd, iptables, a recent Kubernetes), expand
// roleGroups ranges such as node[1:3], and validate the result. Every problem is
// collected and returned at once as an ErrorList, each entry naming the file, the
// line and the field path; non-fatal findings are returned as Warnings. When a file
// is invalid no *config.Cluster is returned, so nothing can touch a host.
//
// The versioned types in this package mirror KubeKey's, with the same json names,
// so that every field KubeKey accepts is accepted here, even those kk does not use.
// kk adds one field: spec.hosts[].jumpHost.
package v1alpha2
