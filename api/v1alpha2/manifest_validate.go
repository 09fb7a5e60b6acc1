package v1alpha2

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kk-project/kk/artifacts/catalog"
	"github.com/kk-project/kk/artifacts/versions"
)

// manifestArches are the arches a Manifest may list (those kk installs).
func manifestArches() []string { return []string{"amd64", "arm64"} }

// manifestCheck validates a decoded Manifest and fills its defaults.
type manifestCheck struct {
	rep *report
	m   *Manifest
}

func (v *manifestCheck) run() {
	arches := v.arches()
	v.distributions()
	v.runtimes()
	v.defaults()
	v.ignored()
	v.components(arches)
	v.images()
	v.auths()
	v.checksums(arches)
	v.charts()
}

// arches checks spec.arches and returns the valid ones.
func (v *manifestCheck) arches() []string {
	s := &v.m.Spec
	if len(s.Arches) == 0 {
		v.rep.errorf("spec.arches", "no arch: list at least one of %s", strings.Join(manifestArches(), ", "))
		return nil
	}
	var ok []string
	for i, a := range s.Arches {
		a = strings.TrimSpace(a)
		s.Arches[i] = a
		p := indexPath("spec.arches", i)
		switch {
		case !slices.Contains(manifestArches(), a):
			v.rep.errorf(p, "unsupported arch %q: kk supports %s", a, strings.Join(manifestArches(), " and "))
		case slices.Contains(ok, a):
			v.rep.errorf(p, "arch %q is listed twice", a)
		default:
			ok = append(ok, a)
		}
	}
	return ok
}

func (v *manifestCheck) distributions() {
	for i, d := range v.m.Spec.KubernetesDistributions {
		p := indexPath("spec.kubernetesDistributions", i)
		switch t := strings.ToLower(strings.TrimSpace(d.Type)); t {
		case "":
			v.rep.errorf(p, "type is missing: %s or %s", DistributionKubernetes, DistributionK3s)
		case DistributionKubernetes:
			if _, err := versions.Minor(d.Version); err != nil {
				v.rep.errorf(p+".version", "%v", err)
			}
		case DistributionK3s:
		default:
			v.rep.errorf(p+".type", "distribution %q is not supported: %s or %s", d.Type, DistributionKubernetes, DistributionK3s)
		}
		if strings.TrimSpace(d.Version) == "" {
			v.rep.errorf(p, "version is missing")
		}
	}
}

func (v *manifestCheck) runtimes() {
	for i, rt := range v.m.Spec.Components.ContainerRuntimes {
		p := indexPath(manifestComponentsPrefix+".containerRuntimes", i)
		switch strings.ToLower(strings.TrimSpace(rt.Type)) {
		case RuntimeContainerd, RuntimeDocker:
		case "":
			v.rep.errorf(p, "type is missing: %s or %s", RuntimeContainerd, RuntimeDocker)
		default:
			v.rep.errorf(p+".type", "container runtime %q is not supported: %s or %s", rt.Type, RuntimeContainerd, RuntimeDocker)
		}
		if strings.TrimSpace(rt.Version) == "" {
			v.rep.errorf(p, "version is missing")
		}
	}
}

// defaults fills runc (for containerd) and cri-dockerd (for docker) from kk's version table:
// the row of the first Kubernetes distribution, else the newest.
func (v *manifestCheck) defaults() {
	set := versions.Latest()
	for _, d := range v.m.Spec.KubernetesDistributions {
		if strings.EqualFold(strings.TrimSpace(d.Type), DistributionKubernetes) {
			if s, err := versions.For(d.Version); err == nil {
				set = s
			}
			break
		}
	}
	c := &v.m.Spec.Components
	if v.m.hasRuntime(RuntimeContainerd) && strings.TrimSpace(c.Runc.Version) == "" {
		c.Runc.Version = set.Runc
		v.rep.warnf(manifestComponentsPrefix+".containerRuntimes", "containerd needs runc: kk adds runc %s (set spec.components.runc.version to choose)", set.Runc)
	}
	if v.m.hasRuntime(RuntimeDocker) && strings.TrimSpace(c.CriDockerd.Version) == "" {
		c.CriDockerd.Version = set.CriDockerd
		v.rep.warnf(manifestComponentsPrefix+".containerRuntimes", "docker needs cri-dockerd: kk adds cri-dockerd %s (set spec.components.cri-dockerd.version to choose)", set.CriDockerd)
	}
}

// ignored warns about what kk reads but does not package.
func (v *manifestCheck) ignored() {
	for i, os := range v.m.Spec.OperatingSystems {
		name := strings.TrimSpace(strings.Join([]string{os.ID, os.Version, os.Arch}, " "))
		v.rep.warnf(indexPath("spec.operatingSystems", i), "operating system %q: kk does not package OS repository ISOs: ignored "+
			"(kk installs OS packages from the hosts' own repositories)", name)
	}
	c := v.m.Spec.Components
	if rv := strings.TrimSpace(c.DockerRegistry.Version); rv != "" && RegistryVersion(rv) != rv {
		v.rep.warnf(manifestComponentsPrefix+".docker-registry", "kk packages the distribution registry program %s for docker-registry %q", DefaultRegistryVersion, rv)
	}
	for field, ver := range map[string]string{"harbor": c.Harbor.Version, "docker-compose": c.DockerCompose.Version} {
		if strings.TrimSpace(ver) != "" {
			v.rep.warnf(manifestComponentsPrefix+"."+field, "kk does not package %s: ignored", field)
		}
	}
}

// components resolves every component in the catalogue, so a bad version or an arch
// upstream does not publish is reported at its line, once.
func (v *manifestCheck) components(arches []string) {
	seen := map[string]bool{}
	for _, p := range v.m.placed(arches) {
		if _, err := (catalog.Resolver{}).Resolve(p.c); err != nil {
			if key := p.path + "\x00" + err.Error(); !seen[key] {
				seen[key] = true
				v.rep.errorf(p.path, "%v", err)
			}
		}
	}
}

func (v *manifestCheck) images() {
	seen := map[string]int{}
	for i, img := range v.m.Spec.Images {
		p := indexPath("spec.images", i)
		img = strings.TrimSpace(img)
		if img == "" {
			v.rep.errorf(p, "empty image reference")
			continue
		}
		if _, err := name.ParseReference(img); err != nil {
			v.rep.errorf(p, "invalid image reference %q: %v", img, err)
			continue
		}
		if first, dup := seen[img]; dup {
			v.rep.warnf(p, "image %q is listed twice (first at spec.images[%d])", img, first)
			continue
		}
		seen[img] = i
	}
}

func (v *manifestCheck) auths() {
	for host, a := range v.m.Spec.Registry.Auths {
		p := childPath("spec.registry.auths", host)
		if strings.TrimSpace(host) == "" || strings.ContainsAny(host, "/ ") {
			v.rep.errorf(p, "registry %q: want a host[:port]", host)
		}
		if (a.Username == "") != (a.Password == "") {
			v.rep.errorf(p, "set both username and password, or neither")
		}
	}
}

func (v *manifestCheck) checksums(arches []string) {
	wanted := map[catalog.Component]bool{}
	for _, c := range v.m.placed(arches) {
		if cc, ok := canonicalComponent(c.c); ok {
			wanted[cc] = true
		}
	}
	seen := map[catalog.Component]int{}
	for i, pc := range v.m.Spec.Checksums {
		p := indexPath("spec.checksums", i)
		sum := strings.ToLower(strings.TrimSpace(pc.SHA256))
		if b, err := hex.DecodeString(sum); err != nil || len(b) != 32 {
			v.rep.errorf(p+".sha256", "want a SHA-256: 64 hex digits")
		}
		a, err := (catalog.Resolver{}).Resolve(catalog.Component{Name: pc.Component, Version: strings.TrimSpace(pc.Version), Arch: strings.TrimSpace(pc.Arch)})
		if err != nil {
			v.rep.errorf(p, "%v", err)
			continue
		}
		if first, dup := seen[a.Component]; dup {
			v.rep.errorf(p, "%s is pinned twice (first at spec.checksums[%d])", a.Component, first)
			continue
		}
		seen[a.Component] = i
		if !wanted[a.Component] {
			v.rep.warnf(p, "pins %s, which the manifest does not ask for: unused", a.Component)
		}
	}
}

// charts checks spec.charts: each entry a name, a SemVer version and a path (taken from the
// Manifest file's folder when relative), no chart version listed twice. Whether the path holds
// that chart is checked when the bundle is exported.
func (v *manifestCheck) charts() {
	first := map[string]int{}
	dir := filepath.Dir(v.m.Source)
	for i := range v.m.Spec.Charts {
		c := &v.m.Spec.Charts[i]
		p := indexPath("spec.charts", i)
		c.Name, c.Version, c.Path = strings.TrimSpace(c.Name), strings.TrimSpace(c.Version), strings.TrimSpace(c.Path)
		c.Source = fmt.Sprintf("%s:%d", v.rep.file, v.rep.lines.lookup(p))
		ok := true
		switch {
		case c.Name == "":
			v.rep.errorf(p, "name is missing: the chart's name (its Chart.yaml's)")
			ok = false
		case c.Name != filepath.Base(c.Name) || c.Name == "." || c.Name == ".." || strings.ContainsAny(c.Name, " \t\n\r\x00\\"):
			v.rep.errorf(p+".name", "%q is not a chart name", c.Name)
			ok = false
		}
		if c.Version == "" {
			v.rep.errorf(p, "version is missing: the chart's version (its Chart.yaml's)")
			ok = false
		} else if _, err := semver.NewVersion(c.Version); err != nil {
			v.rep.errorf(p+".version", "chart version %q is not a SemVer version", c.Version)
			ok = false
		}
		switch {
		case c.Path == "":
			v.rep.errorf(p, "path is missing: the chart's .tgz archive or directory")
		case strings.ContainsAny(c.Path, "\x00\n\r"):
			v.rep.errorf(p+".path", "%q is not a path", c.Path)
		case filepath.IsAbs(c.Path):
			c.File = filepath.Clean(c.Path)
		default:
			c.File = filepath.Join(dir, c.Path)
		}
		if !ok {
			continue
		}
		key := c.Name + " " + c.Version
		if j, dup := first[key]; dup {
			v.rep.errorf(p, "chart %s is listed twice (first at %s)", key, indexPath("spec.charts", j))
			continue
		}
		first[key] = i
	}
}
