package v1alpha2

import (
	"errors"
	"strings"
	"testing"

	"github.com/kk-project/kk/api/config"
)

// base is a valid minimal cluster; tests append to or edit it.
const base = `apiVersion: kubekey.kubesphere.io/v1alpha2
kind: Cluster
metadata:
  name: t
spec:
  hosts:
  - {name: n1, address: 10.0.0.1, password: x}
  - {name: n2, address: 10.0.0.2, password: x}
  - {name: n3, address: 10.0.0.3, password: x}
  roleGroups:
    etcd: [n1]
    control-plane: [n1]
    worker: [n2, n3]
`

// parse parses src without disk checks.
func parse(t *testing.T, src string) (*config.Cluster, Warnings, ErrorList) {
	t.Helper()
	c, w, err := ParseWithOptions("test.yaml", []byte(src), ParseOptions{SkipFileChecks: true, HomeDir: "/home/u"})
	if err == nil {
		if c == nil {
			t.Fatal("nil cluster without error")
		}
		return c, w, nil
	}
	if c != nil {
		t.Fatal("cluster returned with an error")
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, not ErrorList: %v", err, err)
	}
	return nil, w, list
}

// mustParse fails the test on any error.
func mustParse(t *testing.T, src string) (*config.Cluster, Warnings) {
	t.Helper()
	c, w, errs := parse(t, src)
	if errs != nil {
		t.Fatalf("unexpected errors:\n%v", errs)
	}
	return c, w
}

// wantError requires an error whose text holds every part of want, on line
// (when line > 0).
func wantError(t *testing.T, errs ErrorList, line int, want ...string) {
	t.Helper()
	for _, e := range errs {
		if line > 0 && e.Line != line {
			continue
		}
		s := e.Error()
		ok := true
		for _, w := range want {
			if !strings.Contains(s, w) {
				ok = false
			}
		}
		if ok {
			if e.File != "test.yaml" {
				t.Errorf("error without the file name: %v", e)
			}
			return
		}
	}
	t.Errorf("no error on line %d containing %q in:\n%v", line, want, errs)
}

func hasWarning(w Warnings, part string) bool {
	for _, x := range w {
		if strings.Contains(x, part) {
			return true
		}
	}
	return false
}
