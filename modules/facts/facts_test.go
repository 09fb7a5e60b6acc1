package facts

import (
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	out := `hostname=n1
os_id=debian
os_version="12"
os_pretty="Debian GNU/Linux 12 (bookworm)"
kernel=6.1.0-18-amd64
machine=x86_64
cpus=4
mem_kb=8151040
swap_kb=0
disk_free_kb=20480000
init=systemd
uid=0
cmd=sh
cmd=apt-get
cmd=iptables
port=0.0.0.0:22
port=[::]:22
port=127.0.0.1:2379
port=*:6443
time=1700000000
`
	f := Parse(out)
	if f.Hostname != "n1" || f.OSID != "debian" || f.OSVersion != "12" || f.Arch != "amd64" || f.CPUs != 4 ||
		f.MemoryMiB != 7960 || f.SwapMiB != 0 || f.DiskFreeMiB != 20000 || f.Init != "systemd" || !f.Privileged ||
		f.PackageManager != "apt-get" || !f.Commands["iptables"] || f.Commands["socat"] || f.Time != 1700000000 {
		t.Errorf("parsed %+v", f)
	}
	if !reflect.DeepEqual(f.ListeningPorts, []int{22, 2379, 6443}) {
		t.Errorf("ports %v", f.ListeningPorts)
	}
}

func TestNormalizeArch(t *testing.T) {
	for in, want := range map[string]string{"x86_64": "amd64", "aarch64": "arm64", "riscv64": "riscv64"} {
		if got := NormalizeArch(in); got != want {
			t.Errorf("%s -> %s, want %s", in, got, want)
		}
	}
}
