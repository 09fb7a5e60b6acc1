package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClientModule(t *testing.T) {
	if got, err := ClientModule("v8.7.0"); err != nil || got != Base+"/client/v8" {
		t.Errorf("ClientModule(v8.7.0) = %q, %v", got, err)
	}
	for _, bad := range []string{"v1.2.3", "8.7.0", ""} {
		if _, err := ClientModule(bad); err == nil {
			t.Errorf("ClientModule(%q): no error", bad)
		}
	}
}

// crdDir is a module folder whose config/crd holds a CRD under each of Files' names.
func crdDir(t *testing.T, body func(name string) string) string {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "config", "crd"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range Files {
		if err := os.WriteFile(filepath.Join(dir, "config", "crd", f), []byte(body(f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Assemble keeps each CRD as it is, in Files' order, under a header naming the release, and
// refuses a file that is no CRD or that holds template braces.
func TestAssemble(t *testing.T) {
	crd := func(name string) string {
		return "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: " + name + "\n"
	}
	out, err := Assemble(crdDir(t, crd), Base+"/client/v8", "v8.7.0")
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	first, _, _ := strings.Cut(s, "\n")
	if !strings.Contains(first, "external-snapshotter v8.7.0 ") {
		t.Errorf("header %q", first)
	}
	last := -1
	for _, f := range Files {
		i := strings.Index(s, "# Source: config/crd/"+f+"\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: "+f+"\n")
		if i <= last {
			t.Errorf("%s missing, altered or out of order", f)
		}
		last = i
	}
	if strings.Count(s, "---\n") != len(Files) {
		t.Errorf("%d documents, want %d:\n%s", strings.Count(s, "---\n"), len(Files), s)
	}
	if _, err := Assemble(crdDir(t, func(string) string { return "kind: ConfigMap\n" }), "m", "v8.7.0"); err == nil {
		t.Error("a ConfigMap was taken for a CRD")
	}
	if _, err := Assemble(crdDir(t, func(n string) string { return crd(n) + "x: \"{{ .Y }}\"\n" }), "m", "v8.7.0"); err == nil {
		t.Error("template braces were accepted")
	}
}
