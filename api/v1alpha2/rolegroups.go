package v1alpha2

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/kk-project/kk/api/config"
)

// roleOf maps a key of spec.roleGroups to its role. KubeKey accepts "master"
// and "control-plane" for the same role.
func roleOf(key string) (config.Role, bool) {
	switch key {
	case "etcd":
		return config.RoleEtcd, true
	case "master", "control-plane":
		return config.RoleControlPlane, true
	case "worker":
		return config.RoleWorker, true
	case "registry":
		return config.RoleRegistry, true
	}
	return "", false
}

// maxRange bounds the hosts one range may name, to catch typos such as node[1:10000000].
const maxRange = 10000

var rangeRE = regexp.MustCompile(`^([^\[\]:]*)\[(\d+):(\d+)\]([^\[\]:]*)$`)

// ExpandRange expands one roleGroups entry. A plain name is returned as is;
// PREFIX[START:END]SUFFIX names PREFIX<n>SUFFIX for n from START to END inclusive,
// zero-padded to the width of START when START has a leading zero, so node[1:3]
// gives node1 node2 node3 and node[01:03] gives node01 node02 node03.
func ExpandRange(entry string) ([]string, error) {
	if !strings.ContainsAny(entry, "[]") {
		return []string{entry}, nil
	}
	m := rangeRE.FindStringSubmatch(entry)
	if m == nil {
		return nil, fmt.Errorf("malformed range %q: write NAME[START:END] with numbers, e.g. node[1:3]", entry)
	}
	start, err1 := strconv.Atoi(m[2])
	end, err2 := strconv.Atoi(m[3])
	switch {
	case err1 != nil || err2 != nil:
		return nil, fmt.Errorf("malformed range %q: numbers too large", entry)
	case start > end:
		return nil, fmt.Errorf("malformed range %q: start %d is after end %d", entry, start, end)
	case end-start >= maxRange:
		return nil, fmt.Errorf("range %q names more than %d hosts", entry, maxRange)
	}
	width := 0
	if len(m[2]) > 1 && m[2][0] == '0' {
		width = len(m[2])
	}
	out := make([]string, 0, end-start+1)
	for n := start; n <= end; n++ {
		out = append(out, fmt.Sprintf("%s%0*d%s", m[1], width, n, m[4]))
	}
	return out, nil
}

// expandRoleGroups resolves spec.roleGroups into the roles of each host name,
// reporting unknown roles, malformed ranges and names not in spec.hosts.
func expandRoleGroups(groups map[string][]string, known map[string]int, rep *report) map[string]map[config.Role]bool {
	roles := map[string]map[config.Role]bool{}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		gpath := childPath("spec.roleGroups", key)
		role, ok := roleOf(key)
		if !ok {
			rep.errorf(gpath, "unknown role %q: use etcd, control-plane (or master), worker or registry", key)
			continue
		}
		for j, entry := range groups[key] {
			epath := indexPath(gpath, j)
			names, err := ExpandRange(strings.TrimSpace(entry))
			if err != nil {
				rep.errorf(epath, "%v", err)
				continue
			}
			var missing []string
			for _, n := range names {
				if _, ok := known[n]; !ok {
					missing = append(missing, n)
					continue
				}
				if roles[n] == nil {
					roles[n] = map[config.Role]bool{}
				}
				if roles[n][role] && key != "master" && key != "control-plane" {
					rep.warnf(epath, "host %q is listed twice under roleGroups.%s", n, key)
				}
				roles[n][role] = true
			}
			reportMissing(rep, epath, entry, names, missing)
		}
	}
	return roles
}

func reportMissing(rep *report, path, entry string, names, missing []string) {
	switch {
	case len(missing) == 0:
	case len(names) == 1:
		rep.errorf(path, "host %q is not in spec.hosts", missing[0])
	case len(missing) == 1:
		rep.errorf(path, "host %q (from range %q) is not in spec.hosts", missing[0], entry)
	default:
		list := quoteAll(missing)
		if len(list) > 5 {
			list = append(list[:5], fmt.Sprintf("and %d more", len(missing)-5))
		}
		rep.errorf(path, "hosts %s (from range %q) are not in spec.hosts", strings.Join(list, ", "), entry)
	}
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = strconv.Quote(x)
	}
	return out
}
