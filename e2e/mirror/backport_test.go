package mirror

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKubernetesBackports(t *testing.T) {
	for v, want := range map[string]bool{"v1.28.15": true, "v1.30.14": true, "v1.31.13": true, "v1.31.14": false, "v1.35.4": false, "v1.37.2": false} {
		if got := len(kubernetesBackports(v)) == 1; got != want {
			t.Errorf("kubernetesBackports(%s): patched %v, want %v", v, got, want)
		}
	}
	if j := (&builder{}).kubernetesJob("v1.30.14"); !strings.Contains(j.recipe, "backport:kubeadm-http-proxy-cidr") {
		t.Errorf("v1.30.14's recipe %q does not name its backport (a cached unpatched build would be kept)", j.recipe)
	}
}

// TestBackportApply: the copy gets the fix, the source tree is untouched, and
// a file without the old text (already fixed, or another release) is an error.
func TestBackportApply(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "mod")
	if err := os.MkdirAll(filepath.Join(src, "cmd", "x"), 0o555); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(src, "cmd", "x", "main.go")
	if err := os.WriteFile(file, []byte("package main\n\nfunc main() { println(\"old\") }\n"), 0o444); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "copy")
	if err := copyTree(src, dst); err != nil {
		t.Fatal(err)
	}
	p := backport{name: "t", module: "example.com/m", version: "v1.0.0", file: "cmd/x/main.go", old: `println("old")`, new: `println("new")`}
	copied := filepath.Join(dst, "cmd", "x", "main.go")
	if err := p.apply(copied); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(copied); !strings.Contains(string(data), `println("new")`) {
		t.Errorf("patched copy:\n%s", data)
	}
	if data, _ := os.ReadFile(file); !strings.Contains(string(data), `println("old")`) {
		t.Errorf("the source was changed:\n%s", data)
	}
	if err := p.apply(copied); err == nil || !strings.Contains(err.Error(), "backport t") {
		t.Errorf("applying twice: %v, want an error naming the backport", err)
	}
}
