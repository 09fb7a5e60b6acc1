package mirror

import (
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"

	"github.com/kk-project/kk/artifacts/versions"
)

// TestNodeCacheSpec: the mirror builds the node-cache tag kk deploys, from the CoreDNS release
// it pins, as one job registered after CoreDNS's.
func TestNodeCacheSpec(t *testing.T) {
	s := DefaultSpec()
	if want := versions.DefaultAddons().NodeLocalDNS; s.NodeCache != want {
		t.Errorf("DefaultSpec NodeCache %q, kk's version table deploys %q", s.NodeCache, want)
	}
	b := &builder{spec: s}
	var names []string
	for _, j := range b.jobs() {
		names = append(names, j.name)
		if j.name == "node-cache" {
			if j.version != s.NodeCache || !strings.Contains(j.recipe, "coredns "+s.CoreDNS) || j.outputs[0] != rel(NodeCachePath(s.NodeCache)) {
				t.Errorf("node-cache job %+v", j)
			}
		}
	}
	if !strings.Contains(strings.Join(names, " "), "coredns node-cache") {
		t.Errorf("jobs %v: want node-cache right after coredns", names)
	}
}

// TestNodeCacheSource: the stand-in parses as Go, imports coremain and every plugin kk's
// nodelocaldns Corefile uses, and declares node-cache's flags (kk's manifest passes the real
// ones).
func TestNodeCacheSource(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", nodeCacheMain, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	imports := map[string]bool{}
	for _, i := range f.Imports {
		p, _ := strconv.Unquote(i.Path.Value)
		imports[p] = true
	}
	for _, want := range []string{"github.com/coredns/coredns/coremain", "github.com/vishvananda/netlink"} {
		if !imports[want] {
			t.Errorf("does not import %s", want)
		}
	}
	// the plugins of modules/dns's nodelocaldns Corefile
	for _, pl := range []string{"errors", "cache", "reload", "loop", "bind", "forward", "prometheus", "health", "hosts", "rewrite"} {
		pkg := pl
		if pl == "prometheus" {
			pkg = "metrics"
		}
		if !imports["github.com/coredns/coredns/plugin/"+pkg] {
			t.Errorf("plugin %s (package %s) is not linked", pl, pkg)
		}
	}
	for _, flag := range []string{"localip", "setupinterface", "interfacename", "syncinterval", "initialdelay", "metrics-listen-address",
		"setupiptables", "setupebtables", "basecorefile", "corefile", "kubednscm", "upstreamsvc", "health-port", "skipteardown"} {
		if !strings.Contains(nodeCacheMain, `"`+flag+`", `) {
			t.Errorf("flag -%s is not declared", flag)
		}
	}
}
