// Package binaries is the hand-over between kk's artifact side (downloads, offline bundles)
// and the modules that install programs on hosts: a Files set says where, on the machine kk
// runs on, each program lives for each CPU architecture, and Install uploads the ones a task
// needs (skipped when the host already has the same bytes).
//
// Modules never download: the caller (kk create cluster) fills a Files set from the cache or
// from an imported bundle before any task runs, so a missing file is reported before a host
// is touched.
package binaries

import (
	"context"
	"fmt"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/kk-project/kk/artifacts/download"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

// Files maps (arch, name) to a local file. Names are what the program is called once
// installed: "kubelet", "containerd", "containerd-shim-runc-v2", "runc", "crictl", "etcd",
// "etcdctl", and "cni/<plugin>" for CNI plugins. The zero value is empty and usable.
type Files struct {
	m    map[string]map[string]string
	sums *sumCache
}

// sumCache remembers local files' SHA-256 so that checking 500 hosts hashes each file once.
type sumCache struct {
	mu sync.Mutex
	m  map[string]string
}

func (f Files) sha256(p string) (string, error) {
	if f.sums == nil {
		sum, _, err := download.FileSHA256(context.Background(), p)
		return sum, err
	}
	f.sums.mu.Lock()
	defer f.sums.mu.Unlock()
	if s, ok := f.sums.m[p]; ok {
		return s, nil
	}
	s, _, err := download.FileSHA256(context.Background(), p)
	if err == nil {
		f.sums.m[p] = s
	}
	return s, err
}

// Add records that name for arch is the local file p.
func (f *Files) Add(arch, name, p string) {
	if f.m == nil {
		f.m = map[string]map[string]string{}
		f.sums = &sumCache{m: map[string]string{}}
	}
	if f.m[arch] == nil {
		f.m[arch] = map[string]string{}
	}
	f.m[arch][name] = p
}

// Path returns the local file of name for arch, or an error naming what is missing.
func (f Files) Path(arch, name string) (string, error) {
	if p, ok := f.m[arch][name]; ok {
		return p, nil
	}
	return "", fmt.Errorf("no %s for linux/%s among the artifacts (is it in the bundle or manifest?)", name, arch)
}

// Has reports whether name is known for arch.
func (f Files) Has(arch, name string) bool {
	_, ok := f.m[arch][name]
	return ok
}

// Names lists the names known for arch that start with prefix, sorted.
func (f Files) Names(arch, prefix string) []string {
	var out []string
	for n := range f.m[arch] {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Arches lists the arches present, sorted.
func (f Files) Arches() []string {
	var out []string
	for a := range f.m {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// Check returns an error listing every (arch, name) pair of want that is missing, or nil.
func (f Files) Check(arches []string, want []string) error {
	var missing []string
	for _, a := range arches {
		for _, n := range want {
			if !f.Has(a, n) {
				missing = append(missing, n+" (linux/"+a+")")
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing from the artifacts: %s", strings.Join(missing, ", "))
	}
	return nil
}

// Install is one program to put on a host.
type Install struct {
	Name string // as in Files
	Dest string // absolute path on the host, e.g. /usr/local/bin/kubelet
}

// To returns Installs for names into dir, each under its base name.
func To(dir string, names ...string) []Install {
	var out []Install
	for _, n := range names {
		out = append(out, Install{Name: n, Dest: path.Join(dir, path.Base(n))})
	}
	return out
}

// Upload puts every program of list on t's host with mode 0755, each skipped when the host
// already has the same bytes; it reports whether any file changed. The host's arch comes from
// its facts (amd64 when facts were not gathered).
func Upload(ctx context.Context, t *pipeline.Target, f Files, list []Install) (bool, error) {
	arch := HostArch(t)
	var files []connector.File
	for _, in := range list {
		p, err := f.Path(arch, in.Name)
		if err != nil {
			return false, err
		}
		if _, err := os.Stat(p); err != nil {
			return false, fmt.Errorf("%s: %w", in.Name, err)
		}
		files = append(files, connector.File{Path: in.Dest, LocalPath: p, Mode: 0o755})
	}
	return t.UploadAll(ctx, files)
}

// HostArch is the host's arch from its facts, amd64 when unknown.
func HostArch(t *pipeline.Target) string {
	if fa := t.Facts(); fa != nil && fa.Arch != "" {
		return fa.Arch
	}
	return "amd64"
}

// Task returns a task that installs list on the hosts of sel. Its Check compares the hosts'
// files with the local ones by SHA-256 in one command per host.
func Task(name, desc string, sel pipeline.Selector, after []string, f Files, list []Install) pipeline.Task {
	return pipeline.Task{
		Name: name, Desc: desc, Hosts: sel, After: after, Retries: 1,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			arch := HostArch(t)
			var sums []string
			for _, in := range list {
				p, err := f.Path(arch, in.Name)
				if err != nil {
					return false, err
				}
				sum, err := f.sha256(p)
				if err != nil {
					return false, fmt.Errorf("%s: %w", in.Name, err)
				}
				sums = append(sums, sum+"  "+in.Dest)
			}
			slices.Sort(sums)
			return t.Test(ctx, "printf '%s\\n' "+quoteAll(sums)+" | sha256sum -c --status - 2>/dev/null && "+
				"test -z \"$(find "+quoteAll(dests(list))+" ! -perm -0755 2>/dev/null)\"")
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			return Upload(ctx, t, f, list)
		},
	}
}

func dests(list []Install) []string {
	var out []string
	for _, in := range list {
		out = append(out, in.Dest)
	}
	return out
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = connector.Quote(s)
	}
	return strings.Join(q, " ")
}
