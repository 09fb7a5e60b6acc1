package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
)

// NodeCacheNetlink is the github.com/vishvananda/netlink release the node-cache stand-in
// creates its dummy interface with (as k8s.io/dns's pkg/netif does).
const NodeCacheNetlink = "v1.3.1"

// NodeCachePath is where the node-cache stand-in is put: upstream ships node-cache only in its
// image (registry.k8s.io/dns/k8s-dns-node-cache), so it lives under BinPath.
func NodeCachePath(version string) string { return BinPath("node-cache", version, "node-cache") }

// nodeCacheModule is the import path of the stand-in's throwaway module.
const nodeCacheModule = "kk.mirror/node-cache"

// nodeCacheMain is the stand-in for k8s.io/dns's cmd/node-cache, whose module the proxy here
// does not serve. Like node-cache it is CoreDNS (coremain with the plugins node-cache links)
// plus the node setup node-cache does before and while CoreDNS serves: it takes node-cache's
// flags, creates the dummy interface (-interfacename, default nodelocaldns) holding the
// -localip addresses, keeps node-cache's iptables NOTRACK/ACCEPT rules for them
// (-setupiptables, re-checked every -syncinterval seconds), writes the Corefile from
// -basecorefile with the __PILLAR__ placeholders substituted when that file exists (the
// cluster DNS address from the -upstreamsvc service's environment variable), serves its own
// metrics on -metrics-listen-address, and removes the rules and the interface on exit unless
// -skipteardown. kube-dns ConfigMap stub domains (-kubednscm) and ebtables are not done. On a
// kernel without dummy interfaces (kk's CI VMs) the addresses go on lo instead, logged.
const nodeCacheMain = `// Command node-cache is kk's e2e stand-in for k8s.io/dns's node-cache (built by e2e/mirror).
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/coremain"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vishvananda/netlink"

	// the plugins node-cache links
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/debug"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/pprof"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/rewrite"
	_ "github.com/coredns/coredns/plugin/template"
	_ "github.com/coredns/coredns/plugin/whoami"
)

type params struct {
	localIPStr, interfaceName, metricsAddr      string
	baseCorefile, corefile, kubednsCM           string
	upstreamSvc, healthPort, pidfile            string
	setupInterface, setupIptables, setupEbtables bool
	skipTeardown                                bool
	interval, initialDelay                      time.Duration
	localIPs                                    []net.IP
	localPort                                   string
}

type rule struct {
	table, chain string
	args         []string
}

var (
	p     params
	rules []rule
)

func init() {
	flag.StringVar(&p.localIPStr, "localip", "", "comma-separated string of ip addresses to bind dnscache to")
	flag.BoolVar(&p.setupInterface, "setupinterface", true, "indicates whether network interface should be setup")
	flag.StringVar(&p.interfaceName, "interfacename", "nodelocaldns", "name of the interface to be created")
	flag.DurationVar(&p.interval, "syncinterval", 60, "interval(in seconds) to check for iptables rules")
	flag.DurationVar(&p.initialDelay, "initialdelay", 10, "initial delay(in seconds) before configuring iptables")
	flag.StringVar(&p.metricsAddr, "metrics-listen-address", "0.0.0.0:9353", "address to serve metrics on")
	flag.BoolVar(&p.setupIptables, "setupiptables", true, "indicates whether iptables rules should be setup")
	flag.BoolVar(&p.setupEbtables, "setupebtables", false, "indicates whether ebtables rules should be setup (not done by this stand-in)")
	flag.StringVar(&p.baseCorefile, "basecorefile", "/etc/coredns/Corefile.base", "Path to the template Corefile for node-cache")
	flag.StringVar(&p.corefile, "corefile", "/etc/Corefile", "Path to the Corefile to be used by node-cache")
	flag.StringVar(&p.kubednsCM, "kubednscm", "", "Path where the kube-dns configmap will be mounted (not read by this stand-in)")
	flag.StringVar(&p.upstreamSvc, "upstreamsvc", "kube-dns", "Service name whose cluster IP is upstream for node-cache")
	flag.StringVar(&p.healthPort, "health-port", "8080", "port used by health plugin")
	flag.BoolVar(&p.skipTeardown, "skipteardown", false, "indicates whether iptables rules should be torn down on exit")
}

func fatalf(format string, args ...any) {
	clog.Errorf(format, args...)
	os.Exit(1)
}

func parse() {
	flag.Parse()
	for _, s := range strings.Split(p.localIPStr, ",") {
		ip := net.ParseIP(s)
		if ip == nil {
			fatalf("Error parsing flags - invalid localip specified - %q, Exiting", s)
		}
		if len(p.localIPs) > 0 && (ip.To4() == nil) != (p.localIPs[0].To4() == nil) {
			fatalf("Error parsing flags - unexpected IP Family for localIP - %q, Exiting", s)
		}
		p.localIPs = append(p.localIPs, ip)
	}
	p.localPort = "53"
	if f := flag.Lookup("dns.port"); f != nil {
		p.localPort = f.Value.String()
	}
	if f := flag.Lookup("pidfile"); f != nil {
		p.pidfile = f.Value.String()
	}
	if f := flag.Lookup("conf"); f != nil && f.Value.String() != "" {
		p.corefile = f.Value.String()
	}
	if err := flag.Set("conf", p.corefile); err != nil {
		fatalf("set -conf: %v", err)
	}
	clog.Infof("Using Corefile %s", p.corefile)
}

// writeCorefile writes the Corefile from the base one, as node-cache does; without a base
// file (node-cache logs the same error) the -conf file is used as it is.
func writeCorefile() {
	base, err := os.ReadFile(p.baseCorefile)
	if err != nil {
		clog.Errorf("Failed to read node-cache coreFile %s - %v", p.baseCorefile, err)
		return
	}
	env := "$" + strings.ToUpper(strings.ReplaceAll(p.upstreamSvc, "-", "_")) + "_SERVICE_HOST"
	clusterIP := net.ParseIP(os.ExpandEnv(env))
	if clusterIP == nil {
		clog.Warningf("Unable to lookup IP address of Upstream service %s, env %s", p.upstreamSvc, env)
	}
	local := strings.ReplaceAll(p.localIPStr, ",", " ")
	base = bytes.ReplaceAll(base, []byte("__PILLAR__UPSTREAM__SERVERS__"), []byte("/etc/resolv.conf"))
	base = bytes.ReplaceAll(base, []byte("__PILLAR__CLUSTER__DNS__"), []byte(clusterIP.String()))
	base = bytes.ReplaceAll(base, []byte("__PILLAR__LOCAL__DNS__"), []byte(local))
	base = bytes.ReplaceAll(base, []byte("__PILLAR__DNS__SERVER__"), nil)
	if err := os.WriteFile(p.corefile, base, 0o666); err != nil {
		clog.Errorf("Failed to write config file %s - err %v", p.corefile, err)
		return
	}
	clog.Infof("Using config file:\n%s", base)
}

func initRules() {
	for _, ip := range strings.Split(p.localIPStr, ",") {
		lp, hp := p.localPort, p.healthPort
		rules = append(rules,
			rule{"raw", "PREROUTING", []string{"-p", "tcp", "-d", ip, "--dport", lp, "-j", "NOTRACK"}},
			rule{"raw", "PREROUTING", []string{"-p", "udp", "-d", ip, "--dport", lp, "-j", "NOTRACK"}},
			rule{"filter", "INPUT", []string{"-p", "tcp", "-d", ip, "--dport", lp, "-j", "ACCEPT"}},
			rule{"filter", "INPUT", []string{"-p", "udp", "-d", ip, "--dport", lp, "-j", "ACCEPT"}},
			rule{"raw", "OUTPUT", []string{"-p", "tcp", "-s", ip, "--sport", lp, "-j", "NOTRACK"}},
			rule{"raw", "OUTPUT", []string{"-p", "udp", "-s", ip, "--sport", lp, "-j", "NOTRACK"}},
			rule{"filter", "OUTPUT", []string{"-p", "tcp", "-s", ip, "--sport", lp, "-j", "ACCEPT"}},
			rule{"filter", "OUTPUT", []string{"-p", "udp", "-s", ip, "--sport", lp, "-j", "ACCEPT"}},
			rule{"raw", "OUTPUT", []string{"-p", "tcp", "-d", ip, "--dport", lp, "-j", "NOTRACK"}},
			rule{"raw", "OUTPUT", []string{"-p", "udp", "-d", ip, "--dport", lp, "-j", "NOTRACK"}},
			rule{"raw", "OUTPUT", []string{"-p", "tcp", "-d", ip, "--dport", hp, "-j", "NOTRACK"}},
			rule{"raw", "OUTPUT", []string{"-p", "tcp", "-s", ip, "--sport", hp, "-j", "NOTRACK"}},
		)
	}
}

func iptables(op string, r rule) error {
	bin := "iptables"
	if p.localIPs[0].To4() == nil {
		bin = "ip6tables"
	}
	args := append([]string{"-w", "5", "-t", r.table, op, r.chain}, r.args...)
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", bin, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func mask(ip net.IP) net.IPMask {
	if ip.To4() != nil {
		return net.CIDRMask(32, 32)
	}
	return net.CIDRMask(128, 128)
}

// onLoopback is set when the kernel has no dummy interfaces (no dummy module, as on some
// VM kernels): the local addresses then go on lo, which delivers them locally the same way.
// Upstream node-cache has no such fallback (it fails to bind); this stand-in keeps kk's tests
// running on such kernels and says so in its log.
var onLoopback bool

// ensureInterface makes the dummy interface with every local address, as k8s.io/dns's
// netif.EnsureDummyDevice does.
func ensureInterface() error {
	name := p.interfaceName
	if onLoopback {
		name = "lo"
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		if _, notFound := err.(netlink.LinkNotFoundError); !notFound {
			return err
		}
		err := netlink.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}})
		if errors.Is(err, syscall.EOPNOTSUPP) {
			clog.Warningf("this kernel has no dummy interfaces (%v): the local addresses go on lo (kk e2e stand-in only)", err)
			onLoopback = true
			return ensureInterface()
		}
		if err != nil {
			return fmt.Errorf("add interface %s: %w", name, err)
		}
		clog.Infof("Added interface - %s", name)
		if l, err = netlink.LinkByName(name); err != nil {
			return err
		}
	}
	for _, ip := range p.localIPs {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: mask(ip)}}
		if err := netlink.AddrAdd(l, a); err != nil && !os.IsExist(err) {
			return fmt.Errorf("add %s to %s: %w", ip, name, err)
		}
	}
	return nil
}

func setupNetworking(iptablesToo bool) {
	if iptablesToo && p.setupIptables {
		for _, r := range rules {
			if iptables("-C", r) == nil {
				continue
			}
			if err := iptables("-I", r); err != nil {
				clog.Errorf("Error adding iptables rule %v - %s", r, err)
				continue
			}
			clog.Infof("Added back nodelocaldns rule - %v", r)
		}
	}
	if p.setupInterface {
		if err := ensureInterface(); err != nil {
			clog.Errorf("Error checking dummy device %s - %s", p.interfaceName, err)
		}
	}
}

func teardown() {
	clog.Infof("Tearing down")
	if p.setupInterface && onLoopback {
		if l, err := netlink.LinkByName("lo"); err == nil {
			for _, ip := range p.localIPs {
				if err := netlink.AddrDel(l, &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: mask(ip)}}); err != nil {
					clog.Errorf("remove %s from lo: %v", ip, err)
				}
			}
		}
	} else if p.setupInterface {
		if l, err := netlink.LinkByName(p.interfaceName); err == nil {
			if err := netlink.LinkDel(l); err != nil {
				clog.Errorf("remove %s: %v", p.interfaceName, err)
			}
		}
	}
	if p.setupIptables {
		for _, r := range rules {
			for iptables("-C", r) == nil {
				if err := iptables("-D", r); err != nil {
					clog.Errorf("%v", err)
					break
				}
			}
		}
	}
}

func periodic() {
	if p.pidfile != "" {
		for i := 0; i < 5; i++ {
			if _, err := os.Stat(p.pidfile); err == nil {
				setupNetworking(true)
				break
			}
			time.Sleep(time.Second)
		}
	}
	for range time.Tick(p.interval * time.Second) {
		setupNetworking(true)
	}
}

func main() {
	clog.Infof("Starting node-cache (kk e2e stand-in), CoreDNS %s", coremain.CoreVersion)
	parse()
	if p.setupIptables {
		initRules()
	}
	go func() {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.Handler())
		clog.Errorf("metrics on %s: %v", p.metricsAddr, http.ListenAndServe(p.metricsAddr, mux))
	}()
	writeCorefile()
	// the interface now, the iptables rules once CoreDNS serves (node-cache's order)
	setupNetworking(false)
	if !p.skipTeardown {
		caddy.OnProcessExit = append(caddy.OnProcessExit, teardown)
	}
	go periodic()
	coremain.Run()
	clog.Errorf("Untrapped signal, tearing down")
	teardown()
}
`

// nodeCacheSource is the stand-in's module: its go.mod and main.go.
var nodeCacheSource = map[string]string{
	"go.mod":  "module " + nodeCacheModule + "\n\ngo 1.24\n",
	"main.go": nodeCacheMain,
}

// nodeCacheJob builds the node-cache stand-in (nodeCacheMain) against CoreDNS release coredns
// and puts it at NodeCachePath(v), v being the k8s-dns-node-cache tag it stands in for. The
// recipe carries the program's digest, so a change to it rebuilds the binary.
func (b *builder) nodeCacheJob(v, coredns string) job {
	p := NodeCachePath(v)
	sum := sha256.Sum256([]byte(nodeCacheMain))
	recipe := recipeRev + " coredns " + coredns + " netlink " + NodeCacheNetlink + " main " + hex.EncodeToString(sum[:8])
	return job{component: "coredns", name: "node-cache", version: v, recipe: recipe, outputs: withChecksum(p, p+".sha256"),
		build: func(ctx context.Context, stage string) error {
			mod := "github.com/coredns/coredns"
			bins := filepath.Join(stage, "gobin")
			if err := b.goBuild(ctx, goBuild{key: "node-cache-" + v,
				require:     []string{nodeCacheModule + " v0.0.0", mod + " " + coredns, "github.com/vishvananda/netlink " + NodeCacheNetlink},
				replaceFrom: []string{mod + "@" + coredns},
				pkgs:        []string{nodeCacheModule}, ldflags: []string{"-X " + mod + "/coremain.GitCommit=node-cache-" + v},
				stubs: map[string]map[string]string{nodeCacheModule: nodeCacheSource}, out: bins}); err != nil {
				return err
			}
			if err := placeBinary(filepath.Join(bins, "node-cache"), stage, p); err != nil {
				return err
			}
			return writeHexSum(stage, p, p+".sha256")
		}}
}
