// Package facts gathers what kk needs to know about a host in one command: OS, kernel, arch,
// CPU, memory, disk, swap, clock, init system, package manager, commands, listening ports and
// the NVIDIA GPUs on its PCI bus (vendor 0x10de, display or 3D class; found before any driver).
package facts

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kk-project/kk/pipeline"
)

// TaskName is the name of the gathering task; other tasks list it in After.
const TaskName = "facts"

// Commands are the commands whose presence is recorded (what Kubernetes nodes need, and what
// kk itself uses on hosts).
var Commands = []string{
	"sudo", "sh", "tar", "sha256sum", "systemctl", "ip", "iptables", "mount", "nsenter", "modprobe",
	"sysctl", "swapoff", "conntrack", "socat", "ebtables", "ethtool", "ipset", "tc", "touch",
	"apt-get", "dnf", "yum", "zypper",
}

// script prints key=value lines; one round trip for every fact.
func script() string {
	return `set +e
. /etc/os-release 2>/dev/null
echo "hostname=$(hostname 2>/dev/null || cat /etc/hostname)"
echo "os_id=$ID"
echo "os_version=$VERSION_ID"
echo "os_pretty=$PRETTY_NAME"
echo "kernel=$(uname -r)"
echo "machine=$(uname -m)"
echo "cpus=$(nproc 2>/dev/null || grep -c ^processor /proc/cpuinfo)"
awk '/^MemTotal:/{print "mem_kb="$2} /^SwapTotal:/{print "swap_kb="$2}' /proc/meminfo
df -Pk /var/lib 2>/dev/null | awk 'NR==2{print "disk_free_kb="$4; print "disk_size_kb="$2}'
echo "init=$(cat /proc/1/comm 2>/dev/null)"
echo "container=$(systemd-detect-virt --container 2>/dev/null || { [ -f /run/.containerenv ] && echo podman; } || { [ -f /.dockerenv ] && echo docker; } || echo none)"
echo "cgroup=$( [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ] && echo 2 || echo 1)"
echo "uid=$(id -u)"
for c in ` + strings.Join(Commands, " ") + `; do command -v "$c" >/dev/null 2>&1 && echo "cmd=$c"; done
if command -v ss >/dev/null 2>&1; then ss -Htln 2>/dev/null | awk '{print "port="$4}'
else awk 'NR>1 && $4=="0A"{split($2,a,":"); print "port=:" strtonum("0x" a[2])}' /proc/net/tcp /proc/net/tcp6 2>/dev/null; fi
` + nvidiaPCI("/sys/bus/pci/devices") + `
echo "time=$(date +%s)"
`
}

// nvidiaPCI prints "nvidia_pci=ADDRESS DEVICE" for each NVIDIA (vendor 0x10de) display or 3D
// controller (class 0x03xxxx) under the sysfs PCI devices folder dir: its audio and USB
// functions are not GPUs.
func nvidiaPCI(dir string) string {
	return `for d in ` + dir + `/*; do [ "$(cat "$d/vendor" 2>/dev/null)" = 0x10de ] || continue
  case "$(cat "$d/class" 2>/dev/null)" in 0x03*) echo "nvidia_pci=${d##*/} $(cat "$d/device")";; esac; done`
}

// Task gathers facts on every host, as root (so it also proves SSH and sudo work).
func Task() pipeline.Task {
	return pipeline.Task{
		Name:     TaskName,
		Desc:     "gather OS, hardware, clock and port facts (proves SSH and sudo)",
		Hosts:    pipeline.AllHosts(),
		Retries:  1,
		Timeout:  time.Minute,
		ReadOnly: true, // gathering never changes a host, so dry runs gather too
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			before := time.Now()
			out, err := t.Sudo(ctx, script())
			if err != nil {
				return false, fmt.Errorf("gather facts (as root): %w", err)
			}
			after := time.Now()
			f := Parse(out)
			mid := before.Add(after.Sub(before) / 2).Unix()
			f.TimeSkewSec = f.Time - mid
			t.SetFacts(f)
			return false, nil
		},
	}
}

// Parse reads the script's key=value output.
func Parse(out string) *pipeline.Facts {
	f := &pipeline.Facts{Commands: map[string]bool{}}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"`)
		num := func() int { n, _ := strconv.Atoi(strings.TrimSpace(v)); return n }
		switch k {
		case "hostname":
			f.Hostname = v
		case "os_id":
			f.OSID = v
		case "os_version":
			f.OSVersion = v
		case "os_pretty":
			f.OSPretty = v
		case "kernel":
			f.Kernel = v
		case "machine":
			f.Arch = NormalizeArch(v)
		case "cpus":
			f.CPUs = num()
		case "mem_kb":
			f.MemoryMiB = num() / 1024
		case "swap_kb":
			f.SwapMiB = num() / 1024
		case "disk_free_kb":
			f.DiskFreeMiB = num() / 1024
		case "disk_size_kb":
			f.DiskSizeMiB = num() / 1024
		case "init":
			f.Init = v
		case "container":
			if v != "none" {
				f.Container = v
			}
		case "cgroup":
			f.CgroupVersion = num()
		case "uid":
			f.Privileged = v == "0"
		case "cmd":
			f.Commands[v] = true
		case "port":
			if i := strings.LastIndex(v, ":"); i >= 0 {
				if p, err := strconv.Atoi(v[i+1:]); err == nil && !slices.Contains(f.ListeningPorts, p) {
					f.ListeningPorts = append(f.ListeningPorts, p)
				}
			}
		case "nvidia_pci":
			f.NvidiaPCI = append(f.NvidiaPCI, v)
		case "time":
			f.Time, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	slices.Sort(f.ListeningPorts)
	for _, pm := range []string{"apt-get", "dnf", "yum", "zypper"} {
		if f.Commands[pm] {
			f.PackageManager = pm
			break
		}
	}
	return f
}

// NormalizeArch maps uname -m to Go/Kubernetes arch names.
func NormalizeArch(m string) string {
	switch m {
	case "x86_64", "amd64":
		return "amd64"
	case "aarch64", "arm64":
		return "arm64"
	case "armv7l", "armv7":
		return "arm"
	case "ppc64le":
		return "ppc64le"
	case "s390x":
		return "s390x"
	}
	return m
}
