package binaries

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFiles(t *testing.T) {
	var f Files
	if _, err := f.Path("amd64", "kubelet"); err == nil || !strings.Contains(err.Error(), "kubelet") {
		t.Fatalf("empty set: %v", err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "kubelet")
	os.WriteFile(p, []byte("x"), 0o755)
	f.Add("amd64", "kubelet", p)
	f.Add("amd64", "cni/bridge", p)
	f.Add("amd64", "cni/loopback", p)
	if got, err := f.Path("amd64", "kubelet"); err != nil || got != p {
		t.Fatalf("Path = %q, %v", got, err)
	}
	if got := f.Names("amd64", "cni/"); strings.Join(got, ",") != "cni/bridge,cni/loopback" {
		t.Errorf("Names = %v", got)
	}
	err := f.Check([]string{"amd64", "arm64"}, []string{"kubelet"})
	if err == nil || !strings.Contains(err.Error(), "kubelet (linux/arm64)") || strings.Contains(err.Error(), "amd64") {
		t.Errorf("Check = %v", err)
	}
	s1, err := f.sha256(p)
	if err != nil || s1 != "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881" {
		t.Errorf("sha256 = %s, %v", s1, err)
	}
	if in := To("/usr/local/bin", "cni/bridge"); in[0].Dest != "/usr/local/bin/bridge" {
		t.Errorf("To = %+v", in)
	}
}
