// Package config is kk's internal, version-independent model of a cluster: the one
// every module reads. It is produced by a versioned loader (see package
// github.com/kk-project/kk/api/v1alpha2), which has already applied defaults and
// validated it, so modules can rely on every field being set and consistent.
//
// The model holds no behaviour beyond small lookups; it never touches a host.
package config
