package charts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeChart writes a chart directory named name at version under dir.
func writeChart(t *testing.T, dir, name, version string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	files := map[string]string{
		"Chart.yaml":            "apiVersion: v2\nname: " + name + "\nversion: " + version + "\n",
		"values.yaml":           "greeting: hello\n",
		"templates/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}}\ndata: {greeting: {{ .Values.greeting }}}\n",
	}
	for f, body := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(p, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, f), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// A directory is packaged as NAME-VERSION.tgz, which loads back as the same chart; an archive
// is its own package, with the same digest.
func TestPackage(t *testing.T) {
	tmp := t.TempDir()
	src := writeChart(t, tmp, "hello", "1.2.3")
	c, err := Inspect(src)
	if err != nil || c != (Chart{Name: "hello", Version: "1.2.3"}) || c.FileName() != "hello-1.2.3.tgz" {
		t.Fatalf("Inspect(dir) = %+v, %v", c, err)
	}
	out := filepath.Join(tmp, "out")
	a, err := Package(src, out)
	if err != nil {
		t.Fatal(err)
	}
	if a.Chart != c || a.Path != filepath.Join(out, "hello-1.2.3.tgz") || len(a.SHA256) != 64 || a.Size == 0 {
		t.Fatalf("package %+v", a)
	}
	if back, err := Inspect(a.Path); err != nil || back != c {
		t.Errorf("the package loads as %+v, %v", back, err)
	}
	again, err := Package(a.Path, filepath.Join(tmp, "unused"))
	if err != nil || again != a {
		t.Errorf("an archive's package: %+v, %v; want %+v", again, err, a)
	}
	if _, err := os.Stat(filepath.Join(tmp, "unused")); !os.IsNotExist(err) {
		t.Errorf("an archive was written again: %v", err)
	}
}

func TestInspectRefuses(t *testing.T) {
	tmp := t.TempDir()
	badVersion := writeChart(t, tmp, "bad", "one")
	empty := filepath.Join(tmp, "empty")
	notGzip := filepath.Join(tmp, "x.tgz")
	big := filepath.Join(tmp, "big.tgz")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(notGzip, []byte("not a chart"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, nil, 0o644); err != nil || os.Truncate(big, MaxArchive+1) != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		filepath.Join(tmp, "missing.tgz"): "no such file",
		empty:                             "Chart.yaml",
		badVersion:                        `version "one" is invalid`,
		notGzip:                           "chart archive",
		big:                               "above the",
		os.DevNull:                        "neither a .tgz archive nor a chart directory",
	} {
		if _, err := Inspect(path); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("Inspect(%s): %v, want an error naming it and %q", path, err, want)
		}
		if _, err := Package(path, filepath.Join(tmp, "out")); err == nil {
			t.Errorf("Package(%s) accepted it", path)
		}
	}
}
