package kubernetes

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/kk-project/kk/artifacts/versions"
)

// Version is a parsed "vX.Y.Z" (kk's one parser lives in artifacts/versions).
type Version = versions.Version

// ParseVersion reads "vX.Y.Z" or "X.Y.Z" (a pre-release or build suffix is ignored).
func ParseVersion(v string) (Version, error) { return versions.Parse(v) }

// Running is what an existing cluster runs (the zero value: a new cluster).
type Running struct {
	// APIServer is the version kube-apiserver reports ("" for a new cluster).
	APIServer string
	// Kubelets maps node name to the kubelet version it reports.
	Kubelets map[string]string
}

// MinMinor is the oldest minor kk configures (kubeadm's v1beta3 API below v1.31, v1beta4
// from it); ProvenMinors are those kk's end-to-end tests bring up on real machines (the
// others are checked by the boundary minors' own `kubeadm config validate`).
const MinMinor = 28

var ProvenMinors = []int{30, 36, 37}

// KubeletMaxSkew is how many minors a kubelet may be older than kube-apiserver.
const KubeletMaxSkew = 3

// ValidateVersions checks, before any host is touched, that target is a Kubernetes version
// kk supports (its minor is in kk's version table; minors other than ProvenMinors with a
// warning) and, for an existing cluster, that moving to target keeps the version skew policy:
// no downgrade, at most one minor up at a time, no kubelet newer than the API server, and no
// kubelet more than KubeletMaxSkew minors older than the target API server. It returns
// warnings for what is allowed but worth saying (a kubelet that will lag behind).
func ValidateVersions(target string, running Running) (warnings []string, err error) {
	if target == "" {
		return nil, fmt.Errorf("no Kubernetes version given (kubernetes.version)")
	}
	tv, err := ParseVersion(target)
	if err != nil {
		return nil, err
	}
	if tv.Major != 1 {
		return nil, fmt.Errorf("Kubernetes %s: only v1.x is supported", target)
	}
	if _, err := versions.For(target); err != nil {
		return nil, err
	}
	switch {
	case tv.Minor < MinMinor:
		return nil, fmt.Errorf("Kubernetes %s: kk supports v1.%d and newer", target, MinMinor)
	case !slices.Contains(ProvenMinors, tv.Minor):
		var proven []string
		for _, m := range ProvenMinors {
			proven = append(proven, fmt.Sprintf("v1.%d", m))
		}
		warnings = append(warnings, fmt.Sprintf("Kubernetes %s is supported but kk's end-to-end tests bring up %s only", target, strings.Join(proven, " and ")))
	}
	if running.APIServer != "" {
		av, err := ParseVersion(running.APIServer)
		if err != nil {
			return nil, fmt.Errorf("running kube-apiserver: %w", err)
		}
		switch {
		case tv.Less(av):
			return nil, fmt.Errorf("Kubernetes %s is older than the running API server %s: downgrades are not supported", tv, av)
		case tv.Minor > av.Minor+1:
			return nil, fmt.Errorf("Kubernetes %s is more than one minor above the running API server %s: upgrade one minor at a time (next: v1.%d)", tv, av, av.Minor+1)
		}
	}
	names := make([]string, 0, len(running.Kubelets))
	for n := range running.Kubelets {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []string
	for _, n := range names {
		kv, err := ParseVersion(running.Kubelets[n])
		if err != nil {
			errs = append(errs, fmt.Sprintf("node %s: kubelet %v", n, err))
			continue
		}
		switch {
		case tv.Less(kv):
			errs = append(errs, fmt.Sprintf("node %s runs kubelet %s, newer than Kubernetes %s (a kubelet must not be newer than the API server)", n, kv, tv))
		case tv.Minor-kv.Minor > KubeletMaxSkew:
			errs = append(errs, fmt.Sprintf("node %s runs kubelet %s, more than %d minors older than Kubernetes %s: upgrade it first", n, kv, KubeletMaxSkew, tv))
		case kv.Minor < tv.Minor:
			warnings = append(warnings, fmt.Sprintf("node %s runs kubelet %s, older than Kubernetes %s (allowed; it is upgraded after the control plane)", n, kv, tv))
		}
	}
	if len(errs) > 0 {
		return warnings, fmt.Errorf("version skew: %s", strings.Join(errs, "; "))
	}
	return warnings, nil
}
