// Package chartstest makes charts for tests of the packages that read them.
package chartstest

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteChartDir writes a minimal chart directory dir/name (a Chart.yaml of name and version,
// one ConfigMap template) and returns its path.
func WriteChartDir(t testing.TB, dir, name, version string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Join(p, "templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	for f, body := range map[string]string{
		"Chart.yaml":        "apiVersion: v2\nname: " + name + "\nversion: " + version + "\n",
		"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}}\n",
	} {
		if err := os.WriteFile(filepath.Join(p, f), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}
