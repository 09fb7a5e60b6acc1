package kubernetes

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/kk-project/kk/artifacts/versions"
)

// Version is a parsed "vX.Y.Z".
type Version struct{ Major, Minor, Patch int }

// ParseVersion reads "vX.Y.Z" or "X.Y.Z" (a pre-release or build suffix is ignored).
func ParseVersion(v string) (Version, error) {
	s := strings.TrimPrefix(strings.TrimSpace(v), "v")
	if i := strings.IndexAny(s, "-+"); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return Version{}, fmt.Errorf("version %q is not vX.Y.Z", v)
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 {
			return Version{}, fmt.Errorf("version %q is not vX.Y.Z", v)
		}
		n[i] = x
	}
	return Version{n[0], n[1], n[2]}, nil
}

func (v Version) String() string { return fmt.Sprintf("v%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Less orders versions.
func (v Version) Less(o Version) bool {
	if v.Major != o.Major {
		return v.Major < o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor < o.Minor
	}
	return v.Patch < o.Patch
}

// Running is what an existing cluster runs (the zero value: a new cluster).
type Running struct {
	// APIServer is the version kube-apiserver reports ("" for a new cluster).
	APIServer string
	// Kubelets maps node name to the kubelet version it reports.
	Kubelets map[string]string
}

// MinMinor is the oldest minor kk can configure (kubeadm's v1beta4 configuration API);
// ProvenMinors are those kk's integration tests bring up.
const MinMinor = 31

var ProvenMinors = []int{33, 34}

// KubeletMaxSkew is how many minors a kubelet may be older than kube-apiserver.
const KubeletMaxSkew = 3

// ValidateVersions checks, before any host is touched, that target is a Kubernetes version
// kk supports (its minor is in kk's version table and at least v1.31, the first kubeadm with
// the v1beta4 configuration; v1.31 and v1.32 only with a warning: v1.33 and v1.34 are the
// ones proven on real machines) and, for an existing cluster, that moving to target keeps the version skew policy:
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
		return nil, fmt.Errorf("Kubernetes %s: kk configures kubeadm with kubeadm.k8s.io/v1beta4, which needs v1.%d or newer", target, MinMinor)
	case !slices.Contains(ProvenMinors, tv.Minor):
		warnings = append(warnings, fmt.Sprintf("Kubernetes %s has not been tested with kk (tested: v1.33, v1.34)", target))
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
