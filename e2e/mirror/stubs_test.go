package mirror

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// kk's own directive for a module wins over the one carried from upstream's go.mod, wherever
// each came; the others stay in order.
func TestLastReplace(t *testing.T) {
	got := lastReplace([]string{
		"github.com/abbot/go-http-auth => github.com/containous/go-http-auth v0.4.1-0.2026",
		"github.com/gorilla/mux => github.com/containous/mux v0.0.0-2025",
		"k8s.io/api v0.0.0 => k8s.io/api v0.36.1",
		"github.com/abbot/go-http-auth => ./patched/github.com-abbot-go-http-auth",
	})
	want := []string{
		"github.com/gorilla/mux => github.com/containous/mux v0.0.0-2025",
		"k8s.io/api v0.0.0 => k8s.io/api v0.36.1",
		"github.com/abbot/go-http-auth => ./patched/github.com-abbot-go-http-auth",
	}
	if !slices.Equal(got, want) {
		t.Errorf("lastReplace:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// A stand-in package replaces the Go files of its folder and leaves its sub-packages; an
// added file joins upstream's and may not overwrite one; a folder upstream lacks is an error.
func TestPackageStandInPut(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		p = filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("providers/dns/x/x.go", "package x // imports a refused SDK")
	write("providers/dns/x/internal/client.go", "package internal")
	write("auth.go", "package auth")
	si := packageStandIn{module: "m", version: "v1", dir: "providers/dns/x", files: map[string]string{"standin.go": "package x"}}
	if err := si.put(root); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(root, "providers/dns/x"))
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"internal", "standin.go"}) {
		t.Errorf("after the stand-in: %v", names)
	}
	add := packageStandIn{module: "m", version: "v1", dir: ".", add: true, files: map[string]string{"kk.go": "package auth"}}
	if err := add.put(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "auth.go")); err != nil {
		t.Errorf("an added file removed upstream's: %v", err)
	}
	add.files = map[string]string{"auth.go": "package auth // kk's"}
	if err := add.put(root); err == nil {
		t.Error("an added file overwrote upstream's")
	}
	// files below the package: an embed target the module zip lacks
	embed := packageStandIn{module: "m", version: "v1", dir: ".", add: true, files: map[string]string{"ui/app/dist/index.html": "kk"}}
	if err := embed.put(root); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "ui/app/dist/index.html")); err != nil || string(b) != "kk" {
		t.Errorf("nested added file: %q %v", b, err)
	}
	if err := embed.put(root); err == nil {
		t.Error("an added nested file overwrote one already there")
	}
	missing := packageStandIn{module: "m", version: "v1", dir: "providers/dns/nope", files: map[string]string{"s.go": "package nope"}}
	if err := missing.put(root); err == nil {
		t.Error("a stand-in for a package upstream lacks was written")
	}
}
