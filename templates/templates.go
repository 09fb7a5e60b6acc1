// Package templates holds every file kk renders onto hosts (systemd units, configs, manifests),
// embedded into the binary, and renders them with text/template.
package templates

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"strings"
	"text/template"
)

//go:embed all:files
var files embed.FS

//go:generate go run ./gen/promcrds -o files/platform/monitoring-crds.yaml
//go:generate go run ./gen/snapcrds -o files/platform/snapshot-crds.yaml

// FS returns the embedded template tree (rooted at "files").
func FS() fs.FS {
	sub, err := fs.Sub(files, "files")
	if err != nil {
		panic(err) // the embed directive guarantees the directory exists
	}
	return sub
}

var funcs = template.FuncMap{
	"join":   strings.Join,
	"quote":  func(s string) string { return fmt.Sprintf("%q", s) },
	"indent": func(n int, s string) string { return indent(n, s) },
}

// Render executes the named template (a path under templates/files, e.g. "os/kk-sysctl.conf")
// with data. Missing keys are errors, so a typo in a template never renders an empty value.
func Render(name string, data any) ([]byte, error) {
	src, err := fs.ReadFile(FS(), name)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	return b.Bytes(), nil
}

func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n")
}
