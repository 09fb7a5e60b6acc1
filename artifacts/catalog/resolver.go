package catalog

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
)

// Resolver turns Components into Artifacts. The zero value resolves to upstream URLs.
//
// Where a URL comes from, first match wins:
//  1. Bases[name], else Bases[group] (GroupKubernetes, GroupGitHub, GroupHelm, GroupDocker):
//     a base URL (scheme://host[/prefix]) that replaces the upstream base and keeps the
//     upstream path, e.g. Bases["etcd"] = "https://nexus.local/github" gives
//     https://nexus.local/github/etcd-io/etcd/releases/download/v3.5.21/etcd-v3.5.21-linux-amd64.tar.gz.
//  2. Mirror: every upstream URL keeps its path and takes the mirror's scheme and host (and
//     path prefix, if any): a mirror lays files out at the upstream paths.
//  3. Zone preset (ZoneCN): documented public mirrors.
//  4. Upstream (dl.k8s.io, github.com, get.helm.sh, download.docker.com).
//
// Checksum files always come from the same place as the artifact.
type Resolver struct {
	Mirror string
	Bases  map[string]string
	Zone   string
}

// canonical maps the other names users know components by (KubeKey's "kubecni") to
// catalogue names.
func canonical(name string) string {
	name = strings.ToLower(strings.TrimSpace(name))
	switch name {
	case "kubecni", "cni":
		return "cni-plugins"
	}
	return name
}

// Resolve returns where c is downloaded from, where it is cached and how it is checked.
func (r Resolver) Resolve(c Component) (Artifact, error) {
	name := canonical(c.Name)
	s, ok := specs()[name]
	if !ok {
		return Artifact{}, fmt.Errorf("unknown component %q (known: %s)", c.Name, strings.Join(Names(), ", "))
	}
	if err := checkVersion(c.Version); err != nil {
		return Artifact{}, fmt.Errorf("%s: %w", c.Name, err)
	}
	if !slices.Contains(s.arches, c.Arch) {
		return Artifact{}, fmt.Errorf("%s %s: arch %q is not published (have %s)",
			name, c.Version, c.Arch, strings.Join(s.arches, ", "))
	}
	comp := Component{Name: name, Version: s.version(strings.TrimSpace(c.Version)), Arch: c.Arch}
	if s.valid != nil {
		if err := s.valid(comp.Version); err != nil {
			return Artifact{}, fmt.Errorf("%s: %w", c.Name, err)
		}
	}
	e := s.build(comp.Version, comp.Arch)
	root, err := r.root(name, s)
	if err != nil {
		return Artifact{}, fmt.Errorf("%s: %w", comp, err)
	}
	a := Artifact{
		Component: comp,
		URL:       root + e.rest,
		File:      path.Join(name, comp.Version, comp.Arch, e.file),
		Layout:    e.layout,
	}
	if e.sumRest != "" {
		a.Checksum = ChecksumSource{URL: root + e.sumRest, Entry: e.sumEntry}
	}
	return a, nil
}

// ResolveAll resolves each component; the error lists every one that failed.
func (r Resolver) ResolveAll(cs []Component) ([]Artifact, error) {
	out := make([]Artifact, 0, len(cs))
	var errs []error
	for _, c := range cs {
		a, err := r.Resolve(c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, a)
	}
	return out, errors.Join(errs...)
}

// Validate checks the Mirror and Bases URLs, the Bases keys and the Zone.
func (r Resolver) Validate() error {
	var errs []error
	if r.Mirror != "" {
		if _, err := parseBase(r.Mirror); err != nil {
			errs = append(errs, fmt.Errorf("mirror: %w", err))
		}
	}
	all := specs()
	groups := map[string]bool{GroupKubernetes: true, GroupGitHub: true, GroupHelm: true, GroupDocker: true}
	for k, v := range r.Bases {
		if _, ok := all[canonical(k)]; !ok && !groups[k] {
			errs = append(errs, fmt.Errorf("base for %q: not a component or group (components: %s; groups: kubernetes, github, helm, docker)",
				k, strings.Join(Names(), ", ")))
		}
		if _, err := parseBase(v); err != nil {
			errs = append(errs, fmt.Errorf("base for %q: %w", k, err))
		}
	}
	if _, ok := zoneRoots(r.Zone); !ok {
		errs = append(errs, fmt.Errorf("unknown zone %q (known: %q)", r.Zone, ZoneCN))
	}
	return errors.Join(errs...)
}

// root is base+repo for the component, after overrides.
func (r Resolver) root(name string, s spec) (string, error) {
	if b := r.base(name, s.group); b != "" {
		u, err := parseBase(b)
		if err != nil {
			return "", fmt.Errorf("base %q: %w", b, err)
		}
		return u + s.repo, nil
	}
	if r.Mirror != "" {
		m, err := parseBase(r.Mirror)
		if err != nil {
			return "", fmt.Errorf("mirror %q: %w", r.Mirror, err)
		}
		up, err := url.Parse(s.base)
		if err != nil {
			return "", err
		}
		return m + up.Path + s.repo, nil
	}
	roots, ok := zoneRoots(r.Zone)
	if !ok {
		return "", fmt.Errorf("unknown zone %q (known: %q)", r.Zone, ZoneCN)
	}
	if z := roots[name]; z != "" {
		return z, nil
	}
	return s.base + s.repo, nil
}

func (r Resolver) base(name, group string) string {
	for k, b := range r.Bases {
		if b != "" && canonical(k) == name {
			return b
		}
	}
	return r.Bases[group]
}

// parseBase checks a base URL and returns it without a trailing slash.
func parseBase(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: want an http:// or https:// URL", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q: no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: a base URL takes no query or fragment", s)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// checkVersion refuses versions that are empty or could escape a URL path or the cache.
func checkVersion(v string) error {
	v = strings.TrimSpace(v)
	if v == "" {
		return errors.New("no version")
	}
	for _, r := range v {
		ok := r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune(".+-_", r)
		if !ok {
			return fmt.Errorf("version %q: only letters, digits and . + - _ are allowed", v)
		}
	}
	if strings.Contains(v, "..") {
		return fmt.Errorf("version %q: no \"..\" allowed", v)
	}
	return nil
}
