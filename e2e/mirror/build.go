package mirror

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kk-project/kk/artifacts/download"
)

// recipeRev is bumped whenever the way artifacts are built or packed
// changes, so that stale cached artifacts are rebuilt.
const recipeRev = "1"

// BuildOptions tunes Build. The zero value builds everything.
type BuildOptions struct {
	// Only restricts the build to these components (see Components).
	Only []string
}

// SelectKubernetes returns s with only the given Kubernetes versions, each of which must be
// one of s.Kubernetes (make demo builds only the version its cluster runs).
func (s Spec) SelectKubernetes(versions []string) (Spec, error) {
	for _, v := range versions {
		if !slices.Contains(s.Kubernetes, v) {
			return s, fmt.Errorf("mirror: kubernetes %s is not in the mirror spec (it has %s)", v, strings.Join(s.Kubernetes, ", "))
		}
	}
	s.Kubernetes = slices.Clone(versions)
	return s, nil
}

// Build makes sure dir holds every artifact of spec, building the ones
// that are missing or stale. Progress goes to log, one line per step:
//
//	mirror: [3/12] etcd v3.6.5: building (log /var/tmp/kk-mirror/.logs/etcd-v3.6.5.log)
//	mirror: [3/12] etcd v3.6.5: go mod tidy (fetching modules)
//	mirror: [3/12] etcd v3.6.5: go build (3 packages)
//	mirror: [3/12] etcd v3.6.5: built in 1m12s
//
// The output of the commands a build runs (go's "go: downloading" lines,
// apt-get) goes to that job's log file, which a failure names.
func Build(ctx context.Context, dir string, spec Spec, log io.Writer) error {
	return BuildWith(ctx, dir, spec, BuildOptions{}, log)
}

// BuildWith is Build with options.
func BuildWith(ctx context.Context, dir string, spec Spec, opts BuildOptions, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	if err := spec.validate(); err != nil {
		return err
	}
	for _, c := range opts.Only {
		if !slices.Contains(Components, c) {
			return fmt.Errorf("mirror: unknown component %q (want one of %s)", c, strings.Join(Components, ", "))
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("mirror: %w", err)
	}
	for _, d := range []string{dir, filepath.Join(dir, ".stamps"), filepath.Join(dir, ".tmp"), filepath.Join(dir, ".build")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("mirror: %w", err)
		}
	}
	unlock, err := Lock(ctx, filepath.Join(dir, ".lock"), "mirror", log)
	if err != nil {
		return fmt.Errorf("mirror: lock %s: %w", dir, err)
	}
	defer unlock()

	b := &builder{dir: dir, spec: spec, log: log, out: io.Discard}
	var jobs []job
	for _, j := range b.jobs() {
		if len(opts.Only) == 0 || slices.Contains(opts.Only, j.component) {
			jobs = append(jobs, j)
		}
	}
	return b.runAll(ctx, jobs)
}

// runAll runs jobs in order, numbering their progress lines. A failed build
// does not stop the others: every failure is reported.
func (b *builder) runAll(ctx context.Context, jobs []job) error {
	var errs []error
	for i, j := range jobs {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		b.prefix = fmt.Sprintf("mirror: [%d/%d] %s %s", i+1, len(jobs), j.name, j.version)
		if err := b.run(ctx, j); err != nil {
			err = fmt.Errorf("mirror: %s %s (log %s): %w", j.name, j.version, b.logPath(j), err)
			b.step("FAILED (log %s)", b.logPath(j))
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type builder struct {
	dir  string
	spec Spec
	log  io.Writer // progress lines
	// prefix starts the progress lines of the job being built ("mirror: [3/12] etcd v3.6.5");
	// out receives the output of its commands (its log file).
	prefix string
	out    io.Writer
}

// step prints one progress line of the job being built.
func (b *builder) step(format string, args ...any) {
	fmt.Fprintf(b.log, "%s: %s\n", b.prefix, fmt.Sprintf(format, args...))
}

// logPath is where the output of j's commands goes: <dir>/.logs/<name>-<version>.log,
// rewritten by every build of j.
func (b *builder) logPath(j job) string {
	return filepath.Join(b.dir, ".logs", j.key()+".log")
}

// job builds one cached unit: it writes its outputs (paths relative to
// the mirror root, as in Artifact.Path) under stage.
type job struct {
	component string // one of Components
	name      string // e.g. "kubernetes"
	version   string
	recipe    string // everything else the output depends on
	outputs   []string
	build     func(ctx context.Context, stage string) error
}

func (j job) key() string { return j.name + "-" + j.version }

// stamp is the record kept per built job under .stamps/<key>.json.
type stamp struct {
	Name    string      `json:"name"`
	Version string      `json:"version"`
	Recipe  string      `json:"recipe"`
	Built   time.Time   `json:"built"`
	Seconds float64     `json:"seconds"`
	Files   []stampFile `json:"files"`
}

type stampFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

func (b *builder) stampPath(j job) string {
	return filepath.Join(b.dir, ".stamps", j.key()+".json")
}

// fresh reports whether j's stamp matches j and all its files are there.
func (b *builder) fresh(j job) bool {
	data, err := os.ReadFile(b.stampPath(j))
	if err != nil {
		return false
	}
	var st stamp
	if json.Unmarshal(data, &st) != nil || st.Version != j.version || st.Recipe != j.recipe || len(st.Files) != len(j.outputs) {
		return false
	}
	for i, f := range st.Files {
		if f.Path != j.outputs[i] {
			return false
		}
		fi, err := os.Stat(filepath.Join(b.dir, filepath.FromSlash(f.Path)))
		if err != nil || !fi.Mode().IsRegular() || fi.Size() != f.Size {
			return false
		}
	}
	return true
}

// BuildTime is what a stamp records about one cached build.
type BuildTime struct {
	Name, Version string
	Seconds       float64   // cold build time; 0 when not built
	Built         time.Time // zero when not built
	Bytes         int64     // total size of its files
}

// BuildTimes reads the stamps of spec's builds in dir, in build order.
func BuildTimes(dir string, spec Spec) []BuildTime {
	b := &builder{dir: dir, spec: spec, log: io.Discard}
	var out []BuildTime
	for _, j := range b.jobs() {
		bt := BuildTime{Name: j.name, Version: j.version}
		if data, err := os.ReadFile(b.stampPath(j)); err == nil {
			var st stamp
			if json.Unmarshal(data, &st) == nil {
				bt.Seconds, bt.Built = st.Seconds, st.Built
				for _, f := range st.Files {
					bt.Bytes += f.Size
				}
			}
		}
		out = append(out, bt)
	}
	return out
}

func (b *builder) run(ctx context.Context, j job) (err error) {
	if b.fresh(j) {
		b.step("cached")
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(b.logPath(j)), 0o755); err != nil {
		return err
	}
	logFile, err := os.Create(b.logPath(j))
	if err != nil {
		return err
	}
	defer func() {
		if cerr := logFile.Close(); err == nil {
			err = cerr
		}
		b.out = io.Discard
	}()
	b.out = logFile
	b.step("building (log %s)", b.logPath(j))
	start := time.Now()
	stage, err := os.MkdirTemp(filepath.Join(b.dir, ".tmp"), j.key()+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	if err := j.build(ctx, stage); err != nil {
		return err
	}
	// Drop the old stamp first: if we die half way, the job is rebuilt.
	if err := os.Remove(b.stampPath(j)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	st := stamp{Name: j.name, Version: j.version, Recipe: j.recipe}
	for _, out := range j.outputs {
		src := filepath.Join(stage, filepath.FromSlash(out))
		dst := filepath.Join(b.dir, filepath.FromSlash(out))
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("build did not produce %s: %w", out, err)
		}
		sum, _, err := download.FileSHA256(context.Background(), src)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Rename(src, dst); err != nil {
			return err
		}
		st.Files = append(st.Files, stampFile{Path: out, Size: fi.Size(), SHA256: sum})
	}
	st.Built = time.Now().UTC().Truncate(time.Second)
	st.Seconds = time.Since(start).Round(100 * time.Millisecond).Seconds()
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(b.stampPath(j), append(data, '\n'), 0o644); err != nil {
		return err
	}
	b.step("built in %s", time.Since(start).Round(time.Second))
	return nil
}

// rel turns a URL path into a path relative to the mirror root.
func rel(urlPath string) string { return strings.TrimPrefix(urlPath, "/") }

func (b *builder) jobs() []job {
	s := b.spec
	var jobs []job
	for _, v := range s.Kubernetes {
		jobs = append(jobs, b.kubernetesJob(v))
	}
	for _, v := range s.kubeadmOnly() {
		jobs = append(jobs, b.kubeadmJob(v))
	}
	if s.Etcd != "" {
		jobs = append(jobs, b.etcdJob(s.Etcd))
	}
	if s.Crictl != "" {
		jobs = append(jobs, b.crictlJob(s.Crictl))
	}
	if s.CNIPlugins != "" {
		jobs = append(jobs, b.cniJob(s.CNIPlugins))
	}
	if s.Flannel != "" {
		jobs = append(jobs, b.flannelJob(s.Flannel))
	}
	if s.FlannelCNI != "" {
		jobs = append(jobs, b.flannelCNIJob(s.FlannelCNIModule, s.FlannelCNI))
	}
	if s.CoreDNS != "" {
		jobs = append(jobs, b.corednsJob(s.CoreDNS))
	}
	if s.NodeCache != "" && s.CoreDNS != "" {
		jobs = append(jobs, b.nodeCacheJob(s.NodeCache, s.CoreDNS))
	}
	if s.Containerd != "" {
		jobs = append(jobs, b.containerdJob(s.Containerd))
	}
	if s.Runc != "" {
		jobs = append(jobs, b.runcJob(s.Runc, s.RuncDeb))
	}
	if s.Registry != "" {
		jobs = append(jobs, b.registryJob(s.Registry))
	}
	if s.KubeVIP != "" {
		jobs = append(jobs, b.kubeVIPJob(s.KubeVIP))
	}
	if s.Calico != "" {
		jobs = append(jobs, b.calicoJob())
	}
	if s.Docker != "" {
		jobs = append(jobs, b.dockerJob())
	}
	if s.CriDockerd != "" {
		jobs = append(jobs, b.criDockerdJob())
	}
	if s.MetricsServer != "" {
		jobs = append(jobs, b.metricsServerJob(s.MetricsServer))
	}
	if s.Traefik != "" {
		jobs = append(jobs, b.traefikJob(s.Traefik))
	}
	if s.NvidiaContainerToolkit != "" {
		jobs = append(jobs, b.nvidiaContainerToolkitJob(s.NvidiaContainerToolkit))
	}
	if s.NvidiaDevicePlugin != "" {
		jobs = append(jobs, b.nvidiaDevicePluginJob(s.NvidiaDevicePlugin))
	}
	if s.Prometheus != "" {
		jobs = append(jobs, b.prometheusJob(s.Prometheus))
	}
	if s.Alertmanager != "" {
		jobs = append(jobs, b.alertmanagerJob(s.Alertmanager))
	}
	if s.NodeExporter != "" {
		jobs = append(jobs, b.nodeExporterJob(s.NodeExporter))
	}
	if s.KubeStateMetrics != "" {
		jobs = append(jobs, b.kubeStateMetricsJob(s.KubeStateMetrics))
	}
	if s.PrometheusOperator != "" {
		jobs = append(jobs, b.prometheusOperatorJob(s.PrometheusOperator))
	}
	if s.VictoriaLogs != "" {
		jobs = append(jobs, b.victoriaLogsJob(s.VictoriaLogs))
	}
	if s.ChartMuseum != "" {
		jobs = append(jobs, b.chartMuseumJob(s.ChartMuseum))
	}
	if s.CSIProvisioner != "" {
		jobs = append(jobs, b.csiSidecarsJob())
	}
	return jobs
}

// withChecksum returns p and p's checksum file.
func withChecksum(p, sumFile string) []string { return []string{rel(p), rel(sumFile)} }

func (b *builder) kubernetesJob(v string) job {
	var outs []string
	for _, bin := range KubernetesBinaries {
		p := KubernetesPath(v, bin)
		outs = append(outs, withChecksum(p, p+".sha256")...)
	}
	patches := kubernetesBackports(v)
	recipe := recipeRev + " " + strings.Join(KubernetesBinaries, ",")
	for _, p := range patches {
		recipe += " backport:" + p.name
	}
	return job{component: "k8s", name: "kubernetes", version: v, outputs: outs,
		recipe: recipe,
		build: func(ctx context.Context, stage string) error {
			major, minor, _, err := semverParts(v)
			if err != nil {
				return err
			}
			mod := "k8s.io/kubernetes"
			t, err := b.moduleTime(ctx, mod, v)
			if err != nil {
				return err
			}
			var ld []string
			for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
				ld = append(ld,
					"-X "+pkg+".gitVersion="+v,
					fmt.Sprintf("-X %s.gitMajor=%d", pkg, major),
					fmt.Sprintf("-X %s.gitMinor=%d", pkg, minor),
					"-X "+pkg+".gitTreeState=clean",
					"-X "+pkg+".buildDate="+t.UTC().Format("2006-01-02T15:04:05Z"))
			}
			var pkgs []string
			for _, bin := range KubernetesBinaries {
				pkgs = append(pkgs, mod+"/cmd/"+bin)
			}
			bins := filepath.Join(stage, "gobin")
			if err := b.goBuild(ctx, goBuild{key: "kubernetes-" + v, require: []string{mod + " " + v}, replaceFrom: []string{mod + "@" + v},
				pkgs: pkgs, ldflags: ld, patches: patches, out: bins}); err != nil {
				return err
			}
			for _, bin := range KubernetesBinaries {
				p := KubernetesPath(v, bin)
				if err := placeBinary(filepath.Join(bins, bin), stage, p); err != nil {
					return err
				}
				if err := writeHexSum(stage, p, p+".sha256"); err != nil {
					return err
				}
			}
			return nil
		}}
}

func (b *builder) etcdJob(v string) job {
	p := EtcdPath(v)
	sums := path.Dir(p) + "/SHA256SUMS"
	return job{component: "etcd", name: "etcd", version: v, recipe: recipeRev, outputs: withChecksum(p, sums),
		build: func(ctx context.Context, stage string) error {
			mods := []string{"go.etcd.io/etcd/server/v3", "go.etcd.io/etcd/etcdctl/v3", "go.etcd.io/etcd/etcdutl/v3"}
			var req []string
			for _, m := range mods {
				req = append(req, m+" "+v)
			}
			bins := filepath.Join(stage, "gobin")
			if err := b.goBuild(ctx, goBuild{key: "etcd-" + v, require: req, pkgs: mods, out: bins}); err != nil {
				return err
			}
			t, err := b.moduleTime(ctx, mods[0], v)
			if err != nil {
				return err
			}
			top := fmt.Sprintf("etcd-%s-linux-%s/", v, Arch)
			// go build names go.etcd.io/etcd/server/v3 "server".
			err = writeTarGz(filepath.Join(stage, rel(p)), t, []tarEntry{
				{name: top, dir: true},
				{name: top + "etcd", src: filepath.Join(bins, "server")},
				{name: top + "etcdctl", src: filepath.Join(bins, "etcdctl")},
				{name: top + "etcdutl", src: filepath.Join(bins, "etcdutl")},
			})
			if err != nil {
				return err
			}
			return writeSumLines(stage, p, sums)
		}}
}

func (b *builder) crictlJob(v string) job {
	p := CrictlPath(v)
	return job{component: "crictl", name: "crictl", version: v, recipe: recipeRev, outputs: withChecksum(p, p+".sha256"),
		build: func(ctx context.Context, stage string) error {
			mod := "sigs.k8s.io/cri-tools"
			bins := filepath.Join(stage, "gobin")
			if err := b.goBuild(ctx, goBuild{key: "crictl-" + v, require: []string{mod + " " + v}, replaceFrom: []string{mod + "@" + v},
				pkgs: []string{mod + "/cmd/crictl"}, ldflags: []string{"-X " + mod + "/pkg/version.Version=" + v}, out: bins}); err != nil {
				return err
			}
			t, err := b.moduleTime(ctx, mod, v)
			if err != nil {
				return err
			}
			if err := writeTarGz(filepath.Join(stage, rel(p)), t, []tarEntry{{name: "crictl", src: filepath.Join(bins, "crictl")}}); err != nil {
				return err
			}
			return writeHexSum(stage, p, p+".sha256")
		}}
}

func (b *builder) cniJob(v string) job {
	p := CNIPluginsPath(v)
	names := CNIPluginNames()
	return job{component: "cni", name: "cni-plugins", version: v, recipe: recipeRev + " " + strings.Join(names, ","), outputs: withChecksum(p, p+".sha256"),
		build: func(ctx context.Context, stage string) error {
			mod := "github.com/containernetworking/plugins"
			var pkgs []string
			for _, n := range names {
				pkgs = append(pkgs, mod+"/"+cniPluginPkg(n))
			}
			bins := filepath.Join(stage, "gobin")
			if err := b.goBuild(ctx, goBuild{key: "cni-plugins-" + v, require: []string{mod + " " + v}, replaceFrom: []string{mod + "@" + v},
				pkgs: pkgs, ldflags: []string{"-X " + mod + "/pkg/utils/buildversion.BuildVersion=" + v}, out: bins}); err != nil {
				return err
			}
			t, err := b.moduleTime(ctx, mod, v)
			if err != nil {
				return err
			}
			entries := []tarEntry{{name: "./", dir: true}}
			for _, n := range names {
				entries = append(entries, tarEntry{name: "./" + n, src: filepath.Join(bins, n)})
			}
			if srcDir, err := b.moduleDir(ctx, mod, v); err == nil {
				for _, doc := range []string{"LICENSE", "README.md"} {
					if _, err := os.Stat(filepath.Join(srcDir, doc)); err == nil {
						entries = append(entries, tarEntry{name: "./" + doc, src: filepath.Join(srcDir, doc), mode: 0o644})
					}
				}
			}
			if err := writeTarGz(filepath.Join(stage, rel(p)), t, entries); err != nil {
				return err
			}
			return writeSumLines(stage, p, p+".sha256")
		}}
}

func (b *builder) flannelJob(v string) job {
	p := BinPath("flannel", v, "flanneld")
	return job{component: "flannel", name: "flanneld", version: v, recipe: recipeRev + " cgo-static stub:tencentcloud-vpc", outputs: withChecksum(p, p+".sha256"),
		build: func(ctx context.Context, stage string) error {
			mod := "github.com/flannel-io/flannel"
			bins := filepath.Join(stage, "gobin")
			if err := b.goBuild(ctx, goBuild{key: "flanneld-" + v, require: []string{mod + " " + v}, replaceFrom: []string{mod + "@" + v},
				pkgs: []string{mod}, ldflags: []string{"-X " + mod + "/pkg/version.Version=" + v}, out: bins, cgo: true,
				stubs: map[string]map[string]string{"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc": tencentVPCStub}}); err != nil {
				return err
			}
			if err := placeBinary(filepath.Join(bins, "flannel"), stage, p); err != nil {
				return err
			}
			return writeHexSum(stage, p, p+".sha256")
		}}
}

func (b *builder) flannelCNIJob(mod, v string) job {
	p := BinPath("flannel-cni-plugin", v, "flannel")
	return job{component: "flannel", name: "flannel-cni-plugin", version: v, recipe: recipeRev + " " + mod, outputs: withChecksum(p, p+".sha256"),
		build: func(ctx context.Context, stage string) error {
			pkg := mod + "/" + cniPluginPkg("flannel")
			ld := []string{"-X " + mod + "/pkg/utils/buildversion.BuildVersion=" + v}
			if mod == "github.com/flannel-io/cni-plugin" {
				ld = []string{"-X main.Version=" + v}
				pkg = mod
			}
			bins := filepath.Join(stage, "gobin")
			if err := b.goBuild(ctx, goBuild{key: "flannel-cni-plugin-" + v, require: []string{mod + " " + v}, replaceFrom: []string{mod + "@" + v},
				pkgs: []string{pkg}, ldflags: ld, out: bins}); err != nil {
				return err
			}
			if err := placeBinary(filepath.Join(bins, path.Base(pkg)), stage, p); err != nil {
				return err
			}
			return writeHexSum(stage, p, p+".sha256")
		}}
}

func (b *builder) corednsJob(v string) job {
	p := BinPath("coredns", v, "coredns")
	return job{component: "coredns", name: "coredns", version: v, recipe: recipeRev, outputs: withChecksum(p, p+".sha256"),
		build: func(ctx context.Context, stage string) error {
			mod := "github.com/coredns/coredns"
			bins := filepath.Join(stage, "gobin")
			if err := b.goBuild(ctx, goBuild{key: "coredns-" + v, require: []string{mod + " " + v}, replaceFrom: []string{mod + "@" + v},
				pkgs: []string{mod}, ldflags: []string{"-X " + mod + "/coremain.GitCommit=" + v}, out: bins}); err != nil {
				return err
			}
			if err := placeBinary(filepath.Join(bins, "coredns"), stage, p); err != nil {
				return err
			}
			return writeHexSum(stage, p, p+".sha256")
		}}
}

func (b *builder) containerdJob(v string) job {
	p := ContainerdPath(v)
	bins := []string{"containerd", "containerd-shim-runc-v2", "ctr"}
	return job{component: "containerd", name: "containerd", version: v, recipe: recipeRev + " " + strings.Join(bins, ","), outputs: withChecksum(p, p+".sha256sum"),
		build: func(ctx context.Context, stage string) error {
			mod := "github.com/containerd/containerd/v2"
			var pkgs []string
			for _, bin := range bins {
				pkgs = append(pkgs, mod+"/cmd/"+bin)
			}
			out := filepath.Join(stage, "gobin")
			if err := b.goBuild(ctx, goBuild{key: "containerd-" + v, require: []string{mod + " " + v}, replaceFrom: []string{mod + "@" + v},
				pkgs: pkgs, ldflags: []string{"-X " + mod + "/version.Version=" + v, "-X " + mod + "/version.Package=github.com/containerd/containerd/v2"},
				out: out}); err != nil {
				return err
			}
			t, err := b.moduleTime(ctx, mod, v)
			if err != nil {
				return err
			}
			entries := []tarEntry{{name: "bin/", dir: true}}
			for _, bin := range bins {
				entries = append(entries, tarEntry{name: "bin/" + bin, src: filepath.Join(out, bin)})
			}
			if err := writeTarGz(filepath.Join(stage, rel(p)), t, entries); err != nil {
				return err
			}
			return writeSumLines(stage, p, p+".sha256sum")
		}}
}

func (b *builder) runcJob(v, deb string) job {
	p := RuncPath(v)
	sums := path.Dir(p) + "/runc.sha256sum"
	return job{component: "runc", name: "runc", version: v, recipe: recipeRev + " debian " + deb, outputs: withChecksum(p, sums),
		build: func(ctx context.Context, stage string) error {
			work := filepath.Join(stage, "deb")
			if err := os.MkdirAll(work, 0o755); err != nil {
				return err
			}
			// apt-get download drops privileges to _apt, which must be
			// able to write the directory.
			_ = os.Chmod(work, 0o777)
			if err := b.cmd(ctx, work, nil, "apt-get", "download", "runc="+deb); err != nil {
				return fmt.Errorf("apt-get download runc=%s (is the apt index current? try apt-get update): %w", deb, err)
			}
			debs, _ := filepath.Glob(filepath.Join(work, "runc_*.deb"))
			if len(debs) != 1 {
				return fmt.Errorf("apt-get download runc=%s: want one .deb, found %d", deb, len(debs))
			}
			x := filepath.Join(stage, "x")
			if err := b.cmd(ctx, stage, nil, "dpkg-deb", "-x", debs[0], x); err != nil {
				return err
			}
			src := filepath.Join(x, "usr", "sbin", "runc")
			if _, err := os.Stat(src); err != nil {
				src = filepath.Join(x, "usr", "bin", "runc")
			}
			if err := placeBinary(src, stage, p); err != nil {
				return fmt.Errorf("runc binary in %s: %w", filepath.Base(debs[0]), err)
			}
			return writeSumLines(stage, p, sums)
		}}
}

// placeBinary moves a built binary to urlPath under stage, mode 0755.
func placeBinary(src, stage, urlPath string) error {
	dst := filepath.Join(stage, rel(urlPath))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	return os.Chmod(dst, 0o755)
}

// writeHexSum writes the dl.k8s.io style checksum file: the hex digest only.
func writeHexSum(stage, urlPath, sumPath string) error {
	sum, _, err := download.FileSHA256(context.Background(), filepath.Join(stage, rel(urlPath)))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(stage, rel(sumPath)), []byte(sum), 0o644)
}

// writeSumLines writes a sha256sum(1) style file naming the artifact.
func writeSumLines(stage, urlPath, sumPath string) error {
	sum, _, err := download.FileSHA256(context.Background(), filepath.Join(stage, rel(urlPath)))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(stage, rel(sumPath)), []byte(sum+"  "+path.Base(urlPath)+"\n"), 0o644)
}

func writeFileAtomic(p string, data []byte, mode os.FileMode) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

type tarEntry struct {
	name string
	dir  bool
	src  string
	mode int64 // 0 means 0755
}

// writeTarGz writes a reproducible tar.gz: fixed mtime, root owner.
func writeTarGz(dst string, mtime time.Time, entries []tarEntry) (err error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, ModTime: mtime.UTC(), Uname: "root", Gname: "root", Format: tar.FormatPAX}
		if e.dir {
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			continue
		}
		src, err := os.Open(e.src)
		if err != nil {
			return err
		}
		fi, err := src.Stat()
		if err != nil {
			src.Close()
			return err
		}
		hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, fi.Size(), e.mode
		if hdr.Mode == 0 {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			src.Close()
			return err
		}
		_, err = io.Copy(tw, src)
		src.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// goBuild describes building main packages of upstream modules inside a
// throwaway module under <dir>/.build/<key>.
type goBuild struct {
	key     string
	require []string // "module version"
	// replaceFrom lists module@version whose own replace directives are
	// carried over (they are ignored when the module is a dependency).
	replaceFrom []string
	// replace adds directives of its own ("old => new version"); one for a module that a
	// replaceFrom directive names too takes its place (so do stubs and standIns).
	replace []string
	// exclude lists "module version" that the build never picks (as upstream's own go.mod
	// says, which is ignored when the module is a dependency).
	exclude []string
	pkgs    []string
	ldflags []string
	// pkgLdflags adds linker flags for one package of pkgs each (go build's -ldflags=PKG=FLAGS):
	// several programs of one build, each with its own version.
	pkgLdflags map[string][]string
	// cgo builds with CGO_ENABLED=1, statically linked (netgo, osusergo),
	// for packages with C parts (flannel's udp backend).
	cgo bool
	// cgoDynamic builds with CGO_ENABLED=1 too, but linked (externally) against the build
	// machine's shared glibc, with extldflags passed to the linker: for programs that a static
	// link breaks, such as those that call a library they dlopen through symbols left
	// undefined for the dynamic linker to bind (go-nvml's libnvidia-ml, see nvidia.go). The
	// programs need that glibc or a newer one where they run (the mirror's targets run the
	// same Debian release as the machine that builds it).
	cgoDynamic bool
	extldflags string
	// stubs maps a module path to the files of a local stand-in module
	// (see stubs.go) that replaces it.
	stubs map[string]map[string]string
	// patches are upstream's own later fixes applied to a copy of the
	// module's source (see backport.go).
	patches []backport
	// standIns replace packages of a module (in a copy of its source) by kk's
	// stand-ins, for packages whose imports the proxy does not serve (see stubs.go).
	standIns []packageStandIn
	out      string // directory for the binaries
}

func (b *builder) goEnv() []string {
	env := os.Environ()
	return append(env, "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+Arch, "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=-buildvcs=false")
}

func (b *builder) goBuild(ctx context.Context, g goBuild) error {
	work := filepath.Join(b.dir, ".build", g.key)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	var gomod strings.Builder
	fmt.Fprintf(&gomod, "// Throwaway module written by kk's e2e/mirror; safe to delete.\nmodule kk.mirror/%s\n\ngo 1.24\n\nrequire (\n", sanitize(g.key))
	for _, r := range g.require {
		fmt.Fprintf(&gomod, "\t%s\n", r)
	}
	gomod.WriteString(")\n")
	var reps []string
	for _, mv := range g.replaceFrom {
		mod, ver, _ := strings.Cut(mv, "@")
		b.step("go mod download %s", mv)
		r, err := b.replaces(ctx, mod, ver)
		if err != nil {
			return err
		}
		reps = append(reps, r...)
	}
	reps = append(reps, g.replace...)
	for _, mod := range slices.Sorted(maps.Keys(g.stubs)) {
		rdir := "stubs/" + sanitize(mod)
		for name, content := range g.stubs[mod] {
			p := filepath.Join(work, filepath.FromSlash(rdir), filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				return err
			}
		}
		reps = append(reps, mod+" => ./"+rdir)
	}
	if len(g.patches) > 0 || len(g.standIns) > 0 {
		r, err := b.patchedCopies(ctx, work, g.patches, g.standIns)
		if err != nil {
			return err
		}
		reps = append(reps, r...)
	}
	reps = lastReplace(reps)
	if len(reps) > 0 {
		gomod.WriteString("\nreplace (\n")
		for _, r := range reps {
			fmt.Fprintf(&gomod, "\t%s\n", r)
		}
		gomod.WriteString(")\n")
	}
	for _, e := range g.exclude {
		fmt.Fprintf(&gomod, "\nexclude %s\n", e)
	}
	var tools strings.Builder
	tools.WriteString("//go:build tools\n\n// Package tools pins the upstream commands this throwaway module builds.\npackage tools\n\nimport (\n")
	for _, p := range g.pkgs {
		fmt.Fprintf(&tools, "\t_ %q\n", p)
	}
	tools.WriteString(")\n")

	// Keep the tidied go.mod/go.sum of an earlier (possibly interrupted)
	// run when the wanted requirements are unchanged: tidy is then quick.
	wantPath := filepath.Join(work, "go.mod.want")
	if old, _ := os.ReadFile(wantPath); string(old) != gomod.String() {
		os.Remove(filepath.Join(work, "go.sum"))
		if err := os.WriteFile(filepath.Join(work, "go.mod"), []byte(gomod.String()), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(wantPath, []byte(gomod.String()), 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(work, "tools.go"), []byte(tools.String()), 0o644); err != nil {
		return err
	}
	env := b.goEnv()
	var tags []string
	if g.cgo || g.cgoDynamic {
		if _, err := exec.LookPath("gcc"); err != nil {
			return fmt.Errorf("%s needs cgo and no gcc was found (apt-get install gcc libc6-dev): %w", g.pkgs[0], err)
		}
		env = append(env, "CGO_ENABLED=1")
	}
	switch {
	case g.cgoDynamic:
		g.ldflags = append(g.ldflags, "-linkmode external")
		if g.extldflags != "" {
			g.ldflags = append(g.ldflags, "-extldflags '"+g.extldflags+"'")
		}
	case g.cgo:
		g.ldflags = append(g.ldflags, "-linkmode external", `-extldflags "-static"`)
		tags = []string{"-tags", "netgo,osusergo"}
	}
	b.step("go mod tidy (fetching modules)")
	if err := b.cmd(ctx, work, env, "go", "mod", "tidy"); err != nil {
		return fmt.Errorf("go mod tidy in %s: %w", work, err)
	}
	if err := os.MkdirAll(g.out, 0o755); err != nil {
		return err
	}
	args := []string{"build", "-trimpath", "-o", g.out + string(filepath.Separator),
		"-ldflags", "-s -w " + strings.Join(g.ldflags, " ")}
	for _, pkg := range slices.Sorted(maps.Keys(g.pkgLdflags)) {
		// a package's own flags take the place of the ones above: repeat them
		args = append(args, "-ldflags="+pkg+"=-s -w "+strings.Join(append(slices.Clone(g.ldflags), g.pkgLdflags[pkg]...), " "))
	}
	args = append(append(args, tags...), g.pkgs...)
	b.step("go build (%d packages)", len(g.pkgs))
	if err := b.cmd(ctx, work, env, "go", args...); err != nil {
		return fmt.Errorf("go build %s: %w", strings.Join(g.pkgs, " "), err)
	}
	return nil
}

// lastReplace keeps, of the directives that replace one module, the last: kk's own (replace,
// stubs, patched copies come after) over one carried from upstream's go.mod.
func lastReplace(reps []string) []string {
	seen := map[string]bool{}
	var out []string
	for i := len(reps) - 1; i >= 0; i-- {
		old, _, _ := strings.Cut(reps[i], " => ")
		if mod := strings.Fields(old); len(mod) > 0 && !seen[mod[0]] {
			seen[mod[0]] = true
			out = append(out, reps[i])
		}
	}
	slices.Reverse(out)
	return out
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '-'
	}, strings.ToLower(s))
}

// replaces returns the replace directives of mod@ver's own go.mod that a
// consumer must repeat: versioned ones as they are; for k8s.io/kubernetes
// the ./staging/src/k8s.io/X directories become k8s.io/X v0.MINOR.PATCH.
// Other local-directory replaces (sibling modules released at the same
// version, such as etcd's) are dropped.
func (b *builder) replaces(ctx context.Context, mod, ver string) ([]string, error) {
	var dl struct {
		GoMod string
		Error string
	}
	if err := b.goJSON(ctx, &dl, "mod", "download", "-json", mod+"@"+ver); err != nil {
		return nil, err
	}
	if dl.Error != "" || dl.GoMod == "" {
		return nil, fmt.Errorf("go mod download %s@%s: %s", mod, ver, dl.Error)
	}
	var mf struct {
		Replace []struct {
			Old, New struct{ Path, Version string }
		}
	}
	if err := b.goJSON(ctx, &mf, "mod", "edit", "-json", dl.GoMod); err != nil {
		return nil, err
	}
	var out []string
	for _, r := range mf.Replace {
		old := r.Old.Path
		if r.Old.Version != "" {
			old += " " + r.Old.Version
		}
		switch {
		case r.New.Version != "":
			out = append(out, old+" => "+r.New.Path+" "+r.New.Version)
		case mod == "k8s.io/kubernetes" && strings.HasPrefix(r.New.Path, "./staging/src/"):
			_, minor, patch, err := semverParts(ver)
			if err != nil {
				return nil, err
			}
			staged := strings.TrimPrefix(r.New.Path, "./staging/src/")
			out = append(out, fmt.Sprintf("%s => %s v0.%d.%d", old, staged, minor, patch))
		default:
			fmt.Fprintf(b.out, "mirror: %s@%s: dropping local replace %s => %s\n", mod, ver, old, r.New.Path)
		}
	}
	return out, nil
}

func (b *builder) moduleTime(ctx context.Context, mod, ver string) (time.Time, error) {
	var m struct{ Time *time.Time }
	if err := b.goJSON(ctx, &m, "list", "-m", "-json", mod+"@"+ver); err != nil {
		return time.Time{}, err
	}
	if m.Time == nil {
		return time.Unix(0, 0).UTC(), nil
	}
	return *m.Time, nil
}

func (b *builder) moduleDir(ctx context.Context, mod, ver string) (string, error) {
	var dl struct{ Dir, Error string }
	if err := b.goJSON(ctx, &dl, "mod", "download", "-json", mod+"@"+ver); err != nil {
		return "", err
	}
	if dl.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", mod, ver, dl.Error)
	}
	return dl.Dir, nil
}

// goJSON runs the go tool outside any module and decodes its JSON output.
func (b *builder) goJSON(ctx context.Context, v any, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = filepath.Join(b.dir, ".tmp")
	cmd.Env = append(b.goEnv(), "GO111MODULE=on")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		return fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	if jerr := json.Unmarshal(out, v); jerr != nil {
		return fmt.Errorf("go %s: %w (%v: %s)", strings.Join(args, " "), jerr, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// cmd runs a command in dir, streaming its output to the job's log file
// and quoting the tail of it in the error.
func (b *builder) cmd(ctx context.Context, dir string, env []string, name string, args ...string) error {
	c := exec.CommandContext(ctx, name, args...)
	c.Dir = dir
	if env != nil {
		c.Env = env
	}
	var tail tailBuffer
	fmt.Fprintf(b.out, "$ %s %s  # in %s\n", name, strings.Join(args, " "), dir)
	// One writer for both: exec then calls it from one goroutine at a time.
	w := io.MultiWriter(b.out, &tail)
	c.Stdout, c.Stderr = w, w
	if err := c.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail.String())
	}
	return nil
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.b)) }
