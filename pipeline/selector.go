package pipeline

import (
	"slices"
	"strings"
)

// Selector picks the hosts a task runs on, from all hosts of the run (in inventory order).
type Selector struct {
	Desc   string
	Select func(all []*Host) []*Host
}

// AllHosts selects every host.
func AllHosts() Selector {
	return Selector{Desc: "all", Select: func(all []*Host) []*Host { return all }}
}

// Role selects the hosts holding any of the roles.
func Role(roles ...string) Selector {
	return Selector{Desc: strings.Join(roles, "|"), Select: func(all []*Host) []*Host {
		var out []*Host
		for _, h := range all {
			if slices.ContainsFunc(roles, h.Has) {
				out = append(out, h)
			}
		}
		return out
	}}
}

// FirstOf selects the first host holding role r (e.g. the first control plane).
func FirstOf(r string) Selector {
	return Selector{Desc: "first " + r, Select: func(all []*Host) []*Host {
		for _, h := range all {
			if h.Has(r) {
				return []*Host{h}
			}
		}
		return nil
	}}
}

// RestOf selects every host holding role r except the first.
func RestOf(r string) Selector {
	return Selector{Desc: r + " except first", Select: func(all []*Host) []*Host {
		sel := Role(r).Select(all)
		if len(sel) == 0 {
			return nil
		}
		return sel[1:]
	}}
}

// Named selects hosts by name.
func Named(names ...string) Selector {
	return Selector{Desc: strings.Join(names, ","), Select: func(all []*Host) []*Host {
		var out []*Host
		for _, h := range all {
			if slices.Contains(names, h.Name) {
				out = append(out, h)
			}
		}
		return out
	}}
}
