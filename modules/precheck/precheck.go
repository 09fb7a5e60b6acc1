// Package precheck judges whether hosts are fit for Kubernetes from their gathered facts:
// OS, kernel, arch, CPU, memory, disk, swap, clock skew, required commands, ports in use,
// SSH and sudo. Nothing here runs on a host: the facts task does the one round trip.
package precheck

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/kubernetes"
	"github.com/kk-project/kk/pipeline"
)

// Requirement is what one host must offer, from its roles.
type Requirement struct {
	Arch         string // expected arch from the config ("" = any supported)
	MinCPUs      int
	MinMemoryMiB int
	MinDiskMiB   int
	MaxSkewSec   int64
	Commands     []string
	Ports        []int // must be free
	// ImageGCHighPercent is kubelet's imageGCHighThresholdPercent where the cluster's images
	// live only on its nodes, unpinned (docker, no registry to pull them again): /var/lib
	// fuller than that is warned about. 0: not checked.
	ImageGCHighPercent int
	// DiskEviction is kubelet's evictionHard for /var/lib's file system (nodefs.available and
	// imagefs.available: a share, "5%", or a quantity, "2Gi") on a host that runs kubelet:
	// with less free, kubelet taints its node disk-pressure and no pod is scheduled there.
	// nil: not checked.
	DiskEviction map[string]string
	// GPUToolkit: NVIDIA's container toolkit goes on the host if it is a GPU host (NVIDIA
	// GPUs on its PCI bus, or DeclaredGPU), from its Debian package: such a host needs
	// apt-get.
	GPUToolkit, DeclaredGPU bool
	kubelet                 bool // a control plane or worker
}

// Defaults for control-plane and other nodes (kubeadm's own minimums for control planes).
const (
	ControlPlaneCPUs      = 2
	ControlPlaneMemoryMiB = 1700
	NodeMemoryMiB         = 1024
	MinDiskMiB            = 2048
	MaxSkewSec            = 10
	// ImageGCHighPercent is kubelet's default imageGCHighThresholdPercent.
	ImageGCHighPercent = 85
)

// Ports a node's components listen on, by role.
var (
	ControlPlanePorts = []int{6443, 10257, 10259}
	EtcdPorts         = []int{2379, 2380}
	NodePorts         = []int{10250}
)

// For returns the requirement for a host with the given roles.
func For(roles []string, arch string, commands []string) Requirement {
	r := Requirement{Arch: arch, MinCPUs: 1, MinMemoryMiB: NodeMemoryMiB, MinDiskMiB: MinDiskMiB, MaxSkewSec: MaxSkewSec, Commands: commands}
	if slices.Contains(roles, "control-plane") {
		r.MinCPUs, r.MinMemoryMiB = ControlPlaneCPUs, ControlPlaneMemoryMiB
		r.Ports = append(r.Ports, ControlPlanePorts...)
	}
	if slices.Contains(roles, "etcd") {
		r.Ports = append(r.Ports, EtcdPorts...)
	}
	if slices.Contains(roles, "control-plane") || slices.Contains(roles, "worker") {
		r.Ports = append(r.Ports, NodePorts...)
		r.kubelet = true
	}
	return r
}

// Of adds what cluster c's settings require of its host host: ImageGCOf(c), NVIDIA's
// toolkit, and where the host runs kubelet, its disk eviction thresholds
// (kubeletConfiguration.evictionHard over kk's).
func (r Requirement) Of(c *config.Cluster, host string) Requirement {
	r.ImageGCHighPercent = ImageGCOf(c)
	r.GPUToolkit, r.DeclaredGPU = c.GPU.Toolkit, slices.Contains(c.DeclaredGPUHosts(), host)
	if !r.kubelet {
		return r
	}
	set, _ := c.Kubernetes.KubeletConfiguration["evictionHard"].(map[string]any)
	r.DiskEviction = map[string]string{}
	for _, k := range []string{"nodefs.available", "imagefs.available"} {
		r.DiskEviction[k] = kubernetes.EvictionHard[k]
		if v, ok := set[k].(string); ok {
			r.DiskEviction[k] = v
		}
	}
	return r
}

// evictionMiB is the free space in MiB below which threshold v ("5%" of sizeMiB, or a
// quantity) evicts; ok is false for a value that is neither.
func evictionMiB(v string, sizeMiB int) (int, bool) {
	if pct, found := strings.CutSuffix(strings.TrimSpace(v), "%"); found {
		p, err := strconv.ParseFloat(pct, 64)
		if err != nil || p < 0 || p > 100 {
			return 0, false
		}
		return int(p * float64(sizeMiB) / 100), true
	}
	q, err := resource.ParseQuantity(v)
	if err != nil {
		return 0, false
	}
	return int(q.Value() >> 20), true
}

// ImageGCOf is the ImageGCHighPercent to check for cluster c: its kubelet's threshold
// (kubeletConfiguration's, or kubelet's default) where the images kk imports are exposed to
// the collection, 0 where they are not: a private registry serves them again, and containerd
// reports the images kk imports pinned, which kubelet never collects (docker cannot pin).
func ImageGCOf(c *config.Cluster) int {
	if c.Registry.PrivateRegistry != "" || c.Kubernetes.ContainerManager != "docker" {
		return 0
	}
	switch v := c.Kubernetes.KubeletConfiguration["imageGCHighThresholdPercent"].(type) {
	case int:
		return v
	case int64:
		return int(v)
	case float64:
		return int(v)
	}
	return ImageGCHighPercent
}

// Row is one host's verdict.
type Row struct {
	Host      string
	Facts     *pipeline.Facts
	Err       error // facts could not be gathered (SSH or sudo failed)
	Missing   []string
	PortsBusy []int
	Problems  []string
	Warnings  []string // not a failure, but what the user must know
}

// OK reports whether the host passed.
func (r Row) OK() bool { return r.Err == nil && len(r.Problems) == 0 }

// Evaluate checks one host's facts against its requirement.
func Evaluate(host string, f *pipeline.Facts, gatherErr error, req Requirement) Row {
	row := Row{Host: host, Facts: f, Err: gatherErr}
	if gatherErr != nil || f == nil {
		if row.Err == nil {
			row.Err = fmt.Errorf("no facts gathered")
		}
		row.Problems = append(row.Problems, "cannot reach the host as root: "+row.Err.Error())
		return row
	}
	add := func(format string, a ...any) { row.Problems = append(row.Problems, fmt.Sprintf(format, a...)) }
	if f.Arch != "amd64" && f.Arch != "arm64" {
		add("unsupported arch %s (amd64 and arm64 are supported)", f.Arch)
	} else if req.Arch != "" && f.Arch != req.Arch {
		add("arch is %s but the config says %s", f.Arch, req.Arch)
	}
	if f.CPUs < req.MinCPUs {
		add("%d CPU(s), need at least %d", f.CPUs, req.MinCPUs)
	}
	if f.MemoryMiB < req.MinMemoryMiB {
		add("%d MiB memory, need at least %d MiB", f.MemoryMiB, req.MinMemoryMiB)
	}
	if f.DiskFreeMiB < req.MinDiskMiB {
		add("%d MiB free on /var/lib, need at least %d MiB", f.DiskFreeMiB, req.MinDiskMiB)
	}
	for _, sig := range slices.Sorted(maps.Keys(req.DiskEviction)) {
		v := req.DiskEviction[sig]
		if need, ok := evictionMiB(v, f.DiskSizeMiB); ok && f.DiskSizeMiB > 0 && f.DiskFreeMiB < need {
			add("%d MiB (%d%%) free on /var/lib, under kubelet's evictionHard %s %s: its node would be tainted "+
				"disk-pressure and no pod scheduled there (free disk space, or set kubeletConfiguration.evictionHard)",
				f.DiskFreeMiB, 100-f.DiskUsedPercent(), sig, v)
			break
		}
	}
	if req.GPUToolkit && (req.DeclaredGPU || f.NvidiaGPU()) && f.PackageManager != "apt-get" {
		pm := f.PackageManager
		if pm == "" {
			pm = "none"
		}
		add("a GPU host: kk installs NVIDIA's container toolkit from its Debian package, and this host's package manager is %s, not apt-get", pm)
	}
	if used := f.DiskUsedPercent(); req.ImageGCHighPercent > 0 && req.ImageGCHighPercent < 100 && used >= req.ImageGCHighPercent {
		row.Warnings = append(row.Warnings, fmt.Sprintf("/var/lib is %d%% used: above %d%% kubelet's image garbage collection deletes "+
			"the imported images no pod runs, and with no registry a pod that needs one later cannot start "+
			"(free disk space, or set kubeletConfiguration.imageGCHighThresholdPercent)", used, req.ImageGCHighPercent))
	}
	if f.SwapMiB > 0 {
		add("swap is on (%d MiB): run kk init os", f.SwapMiB)
	}
	if abs(f.TimeSkewSec) > req.MaxSkewSec {
		add("clock is %+ds off kk's clock (limit %ds): sync time (NTP)", f.TimeSkewSec, req.MaxSkewSec)
	}
	if f.Init != "systemd" {
		add("PID 1 is %q, kk needs systemd", f.Init)
	}
	for _, c := range req.Commands {
		if !f.Commands[c] {
			row.Missing = append(row.Missing, c)
		}
	}
	if len(row.Missing) > 0 {
		add("missing commands %s: run kk init os", strings.Join(row.Missing, ", "))
	}
	for _, p := range req.Ports {
		if slices.Contains(f.ListeningPorts, p) {
			row.PortsBusy = append(row.PortsBusy, p)
		}
	}
	if len(row.PortsBusy) > 0 {
		add("ports in use: %s", joinInts(row.PortsBusy))
	}
	return row
}

// WriteTable prints one line per host, then every problem.
func WriteTable(w io.Writer, rows []Row) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSSH/SUDO\tOS\tKERNEL\tARCH\tCPU\tMEMORY\tNVIDIA GPU\tDISK FREE\tSWAP\tSKEW\tMISSING COMMANDS\tPORTS IN USE\tRESULT")
	for _, r := range rows {
		if r.Facts == nil {
			fmt.Fprintf(tw, "%s\tfailed\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\tFAIL\n", r.Host)
			continue
		}
		f := r.Facts
		result := "ok"
		if !r.OK() {
			result = "FAIL"
		}
		fmt.Fprintf(tw, "%s\tok\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\t%+ds\t%s\t%s\t%s\n", r.Host, f.OSID+" "+f.OSVersion, f.Kernel, f.Arch, f.CPUs,
			mib(f.MemoryMiB), len(f.NvidiaPCI), mib(f.DiskFreeMiB), onOff(f.SwapMiB), f.TimeSkewSec, dash(strings.Join(r.Missing, ",")), dash(joinInts(r.PortsBusy)), result)
	}
	tw.Flush()
	for _, r := range rows {
		for _, p := range r.Problems {
			fmt.Fprintf(w, "%s: %s\n", r.Host, p)
		}
		for _, p := range r.Warnings {
			fmt.Fprintf(w, "%s: warning: %s\n", r.Host, p)
		}
	}
}

func mib(n int) string {
	if n >= 10240 {
		return strconv.Itoa(n/1024) + " GiB"
	}
	return strconv.Itoa(n) + " MiB"
}

func onOff(swap int) string {
	if swap > 0 {
		return mib(swap)
	}
	return "off"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
