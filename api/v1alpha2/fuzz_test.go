package v1alpha2

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// addSeeds adds the testdata files matching pattern, and a few small broken documents, to
// the fuzzer's corpus.
func addSeeds(f *testing.F, pattern string) {
	files, _ := filepath.Glob(pattern)
	if len(files) == 0 {
		f.Fatalf("no seed files %s", pattern)
	}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"apiVersion: kubekey.kubesphere.io/v1alpha2\nkind: Cluster\nspec:\n\thosts: []\n",
		"apiVersion: kubekey.kubesphere.io/v1alpha2\nkind: Manifest\nspec: {arches: [amd64]\n",
		"a: &a [*a]\n",
		"kind: Cluster\nspec:\n  etcd:\n    extraArgs: {--x: [1], y: 2}\n",
		"kind: Cluster\nspec:\n  gpu: {driver: {version: 570.195.03}}\n---\nkind: Cluster\nspec:\n  gpu: {driver: [1]}\n",
		"kind: Cluster\nspec:\n  gpu: {toolkit: {version: v1.20.2}}\n  kubernetes: {nvidiaRuntime: true}\n---\nkind: Cluster\nspec:\n  gpu: null\n  hosts: [{name: g, labels: {nvidia.com/gpu.present: \"true\"}}]\n",
		"kind: Cluster\nspec:\n  gpu: {devicePlugin: {enabled: true, migStrategy: single, timeSlicing: {replicas: 4}}}\n---\nkind: Cluster\nspec:\n  gpu: {devicePlugin: {timeSlicing: {replicas: x}}}\n",
		"apiVersion: installer.kubesphere.io/v1alpha1\nkind: ClusterConfiguration\nspec:\n  gateway: {enabled: true}\n" +
			"  workspaces:\n  - {name: a, adminGroup: g, namespaces: [a, b], quota: {requests.nvidia.com/gpu: 1}}\n  - [x]\n",
		"apiVersion: installer.kubesphere.io/v1alpha1\nkind: ClusterConfiguration\nspec:\n  openpitrix: {store: {enabled: true, charts: [a.tgz, ./a.tgz, {x: 1}, ~/c]}}\n",
		"apiVersion: kubekey.kubesphere.io/v1alpha2\nkind: Manifest\nspec:\n  arches: [amd64]\n" +
			"  charts: [{name: a, version: 1.0.0, path: x}, {name: a, version: 1.0.0}, {name: ../b, version: x}, [y]]\n",
	} {
		f.Add([]byte(s))
	}
}

// checkResult holds for any input: a value comes back exactly when there is no error, the
// error is an ErrorList naming the source, and every line it names is in the file.
func checkResult(t *testing.T, data []byte, ok bool, err error) {
	if ok == (err != nil) {
		t.Fatalf("value returned: %v, error: %v", ok, err)
	}
	if err == nil {
		return
	}
	var list ErrorList
	if !errors.As(err, &list) || len(list) == 0 {
		t.Fatalf("error %T is not a non-empty ErrorList: %v", err, err)
	}
	// YAML breaks lines at \n, \r, NEL, LS and PS: count them all (an upper bound for \r\n).
	lines := 1
	for _, br := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
		lines += bytes.Count(data, []byte(br))
	}
	for _, e := range list {
		if e.File != "fuzz.yaml" || e.Line < 0 || e.Line > lines+1 || e.Msg == "" {
			t.Fatalf("bad error entry %+v (file has %d lines)", e, lines)
		}
	}
}

// FuzzParseCluster feeds arbitrary bytes to the Cluster parser: it must not panic, and its
// result must be consistent (see checkResult).
func FuzzParseCluster(f *testing.F) {
	addSeeds(f, "testdata/*.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, _, err := ParseWithOptions("fuzz.yaml", data, ParseOptions{SkipFileChecks: true, HomeDir: "/home/fuzz"})
		checkResult(t, data, c != nil, err)
	})
}

// FuzzParseManifest feeds arbitrary bytes to the Manifest parser, as FuzzParseCluster does.
func FuzzParseManifest(f *testing.F) {
	addSeeds(f, "testdata/manifest-*.yml")
	f.Fuzz(func(t *testing.T, data []byte) {
		m, _, err := ParseManifest("fuzz.yaml", data)
		checkResult(t, data, m != nil, err)
	})
}

// FuzzParseStoreCharts feeds arbitrary YAML as the value of spec.openpitrix.store.charts: the
// parser must not panic, every error must name a line of the file, and what it keeps must be
// clean paths (under the Cluster file's folder when relative), each once, each from a line of
// the file.
func FuzzParseStoreCharts(f *testing.F) {
	for _, s := range []string{"[a.tgz, ./b, ~/c, /d]", "[a, a]", "{a: 1}", "[[x], null, \"\"]", "&x [*x]", "- a\n- b: c\n", "[\"a\\x00b\"]", "[../../x.tgz]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		var doc yaml.Node
		if yaml.Unmarshal(value, &doc) != nil || len(doc.Content) != 1 {
			return
		}
		lines := 1 + bytes.Count(value, []byte("\n")) + bytes.Count(value, []byte("\r"))
		rep := &report{file: "/etc/kk/fuzz.yaml", lines: lineIndex{}}
		charts := parseStoreCharts(doc.Content[0], rep, "spec.openpitrix.store.charts", "/etc/kk", "/home/fuzz")
		for _, e := range rep.errs {
			if e.File != "/etc/kk/fuzz.yaml" || e.Line < 1 || e.Line > lines+1 || e.Msg == "" {
				t.Fatalf("bad error %+v (value has %d lines)", e, lines)
			}
		}
		seen := map[string]bool{}
		for _, c := range charts {
			if !filepath.IsAbs(c.Path) || filepath.Clean(c.Path) != c.Path || seen[c.Path] || strings.ContainsAny(c.Path, "\x00\n\r") {
				t.Fatalf("chart path %q (seen %v)", c.Path, seen[c.Path])
			}
			seen[c.Path] = true
			var line int
			if _, err := fmt.Sscanf(strings.TrimPrefix(c.Source, "/etc/kk/fuzz.yaml:"), "%d", &line); err != nil || line < 1 || line > lines+1 {
				t.Fatalf("chart source %q", c.Source)
			}
		}
	})
}
