package facts

import (
	"os"
	"os/exec"
	"path/filepath"
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
disk_size_kb=102400000
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
		f.MemoryMiB != 7960 || f.SwapMiB != 0 || f.DiskFreeMiB != 20000 || f.DiskUsedPercent() != 80 || f.Init != "systemd" || !f.Privileged ||
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

// The PCI scan finds NVIDIA's display and 3D controllers and nothing else: not the GPU's own
// audio function, not another vendor's graphics.
func TestNvidiaPCI(t *testing.T) {
	dir := t.TempDir()
	for addr, f := range map[string][3]string{
		"0000:3b:00.0": {"0x10de", "0x030200", "0x20b0"}, // A100: 3D controller
		"0000:3b:00.1": {"0x10de", "0x040300", "0x10f0"}, // its HDMI audio
		"0000:af:00.0": {"0x10de", "0x030000", "0x2684"}, // a VGA GeForce
		"0000:00:02.0": {"0x8086", "0x030000", "0x9bc4"}, // Intel graphics
	} {
		d := filepath.Join(dir, addr)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, name := range []string{"vendor", "class", "device"} {
			if err := os.WriteFile(filepath.Join(d, name), []byte(f[i]+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	out, err := exec.Command("sh", "-c", nvidiaPCI(dir)).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	f := Parse(string(out))
	if !reflect.DeepEqual(f.NvidiaPCI, []string{"0000:3b:00.0 0x20b0", "0000:af:00.0 0x2684"}) {
		t.Errorf("NVIDIA PCI devices %q from:\n%s", f.NvidiaPCI, out)
	}
	// none on this machine's script run against an empty folder
	if out, _ := exec.Command("sh", "-c", nvidiaPCI(t.TempDir())).CombinedOutput(); len(out) != 0 {
		t.Errorf("empty folder: %q", out)
	}
}
