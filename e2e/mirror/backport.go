package mirror

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// backport is a fix upstream made in a later release of a module, applied
// to an older release's source when the mirror builds it. The mirror builds
// every release with this machine's Go; a release whose own code breaks
// under a newer Go (and which upstream's binaries, built with the Go of
// their day, do not show) gets the fix upstream wrote for that newer Go,
// never a change of kk's own. The module cache is not touched: the build
// reads a patched copy of the module.
type backport struct {
	name    string // short, goes into the job's recipe
	module  string
	version string
	file    string // slash path inside the module
	old     string // text the release has; the build fails when it is missing
	new     string // upstream's later text
}

// kubeadmHTTPProxyCIDR: kubeadm before v1.31.14 builds the preflight
// HTTPProxyCIDR check's URL as "https://[10.233.0.1]:1234/" for an IPv4
// service CIDR (net.ParseIP returns 16 bytes). Go 1.25.2 and later refuse a
// bracketed IPv4 host ("invalid IP-literal"), so `kubeadm init` fails its
// preflight. Upstream's fix (in v1.31.14 and every later minor) uses
// net.JoinHostPort.
var kubeadmHTTPProxyCIDR = backport{
	name: "kubeadm-http-proxy-cidr",
	file: "cmd/kubeadm/app/preflight/checks.go",
	old: "\ttestIPstring := testIP.String()\n" +
		"\tif len(testIP) == net.IPv6len {\n" +
		"\t\ttestIPstring = fmt.Sprintf(\"[%s]:1234\", testIP)\n" +
		"\t}\n" +
		"\turl := fmt.Sprintf(\"%s://%s/\", subnet.Proto, testIPstring)\n",
	new: "\ttestHostString := net.JoinHostPort(testIP.String(), \"1234\")\n" +
		"\turl := fmt.Sprintf(\"%s://%s/\", subnet.Proto, testHostString)\n",
}

// kubernetesBackports returns the fixes the mirror applies to k8s.io/kubernetes v.
func kubernetesBackports(v string) []backport {
	_, minor, patch, err := semverParts(v)
	if err != nil || minor > 31 || minor == 31 && patch >= 14 {
		return nil
	}
	p := kubeadmHTTPProxyCIDR
	p.module, p.version = "k8s.io/kubernetes", v
	return []backport{p}
}

// patchedCopies copies each patched module out of the module cache into
// work/patched/<module>, applies its fixes and puts its stand-in packages
// there, returning the replace directives that point the build at the
// copies. (go build -overlay cannot replace files in the module cache.)
func (b *builder) patchedCopies(ctx context.Context, work string, patches []backport, standIns []packageStandIn) ([]string, error) {
	root := filepath.Join(work, "patched")
	if err := os.RemoveAll(root); err != nil {
		return nil, err
	}
	var reps []string
	done := map[string]string{} // module => copy
	copyOf := func(what, module, version string) (string, error) {
		if dst, ok := done[module]; ok {
			return dst, nil
		}
		src, err := b.moduleDir(ctx, module, version)
		if err != nil {
			return "", err
		}
		dst := filepath.Join(root, sanitize(module))
		if err := copyTree(src, dst); err != nil {
			return "", fmt.Errorf("%s: copy %s@%s: %w", what, module, version, err)
		}
		done[module] = dst
		reps = append(reps, module+" => ./patched/"+sanitize(module))
		return dst, nil
	}
	for _, p := range patches {
		dst, err := copyOf("backport "+p.name, p.module, p.version)
		if err != nil {
			return nil, err
		}
		b.step("backport %s into %s@%s", p.name, p.module, p.version)
		if err := p.apply(filepath.Join(dst, filepath.FromSlash(p.file))); err != nil {
			return nil, err
		}
	}
	for _, si := range standIns {
		dst, err := copyOf("stand-in "+si.dir, si.module, si.version)
		if err != nil {
			return nil, err
		}
		if err := si.put(dst); err != nil {
			return nil, err
		}
	}
	return reps, nil
}

// apply rewrites file with p's fix. A file that does not hold the old text
// exactly once is an error: the fix is never silently skipped or doubled.
func (p backport) apply(file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("backport %s: %w", p.name, err)
	}
	if strings.Count(string(data), p.old) != 1 {
		return fmt.Errorf("backport %s: %s@%s %s does not hold the text the fix replaces exactly once", p.name, p.module, p.version, p.file)
	}
	return os.WriteFile(file, []byte(strings.Replace(string(data), p.old, p.new, 1)), 0o644)
}

// copyTree copies the regular files under src to dst, writable (the module
// cache's are read-only).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
