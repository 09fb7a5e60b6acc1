package reset

import (
	"fmt"
	"strings"

	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/templates"
)

// scriptData is what lib.sh, reset.sh and residue.sh are rendered with: every list already
// quoted for the shell.
type scriptData struct {
	Lib                                string
	All, Docker, KeepRuntime, IPVS     bool
	CRISocket, ChainRE, NftRE          string
	IPSetRE, HostsBlocks, VIP          string
	KKUnits, RuntimeUnits, Units       string
	Paths, DataDirs, CNIPlugins        string
	EmptyDirs, MountPrefixes, Procs    string
	EmptiedDirs                        string
	Ifaces, IfacePrefixes, RouteProtos string
}

func (s Spec) data() scriptData {
	vip := ""
	if s.VIP != "" {
		vip = connector.Quote(s.VIP)
	}
	dataDirs := []string{"/var/lib/etcd"}
	if s.EtcdDataDir != "/var/lib/etcd" && s.EtcdDataDir != "" {
		dataDirs = append(dataDirs, s.EtcdDataDir)
	}
	return scriptData{
		All: s.All, Docker: s.ContainerManager == Docker, KeepRuntime: !s.All, IPVS: s.ProxyMode == "ipvs",
		CRISocket: connector.Quote(strings.TrimPrefix(s.CRISocket, "unix://")),
		ChainRE:   connector.Quote(s.chainRE()), NftRE: connector.Quote(nftRE), IPSetRE: connector.Quote(ipsetRE),
		HostsBlocks: connector.Quote(strings.Join(hostsBlocks, "|")), VIP: vip,
		KKUnits: words(KKUnits), RuntimeUnits: words(s.RuntimeUnits()), Units: words(s.Units()),
		Paths: words(s.Paths()), DataDirs: words(dataDirs), CNIPlugins: words(cniPlugins),
		EmptyDirs: words(s.emptyDirs()), MountPrefixes: words(s.mountPrefixes()), Procs: strings.Join(s.procs(), " "),
		EmptiedDirs: words(s.emptiedDirs()),
		Ifaces:      strings.Join(s.ifaces(), " "), IfacePrefixes: words(kkIfacePrefixes), RouteProtos: words(routeProtos),
	}
}

// words quotes each item for the shell, space separated.
func words(items []string) string { return connector.Cmd(items...) }

// render renders one of the reset templates with the shared part in front.
func (s Spec) render(name string) string {
	d := s.data()
	lib, err := templates.Render("reset/lib.sh", d)
	if err != nil {
		panic(err) // the templates are embedded: a failure is a bug the unit tests catch
	}
	d.Lib = string(lib)
	out, err := templates.Render("reset/"+name, d)
	if err != nil {
		panic(err)
	}
	return string(out)
}

// Script is the reset of one host, run as root (sh).
func Script(s Spec) string { return s.render("reset.sh") }

// ResidueScript is the read-only check of one host, run as root (sh): one line per thing kk
// left there ("unit kubelet.service", "path /etc/kubernetes", "iface cni0",
// "chain filter KUBE-FORWARD (iptables-nft)", "mount /var/lib/kubelet/...", "hosts-line ...").
func ResidueScript(s Spec) string { return s.render("residue.sh") }

// ParseResidue returns the leftovers the residue script printed, one per non-empty line.
func ParseResidue(stdout string) []string {
	var out []string
	for _, l := range strings.Split(stdout, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// runCommand runs a script given on stdin with sh, its stdin then /dev/null (so that no
// command of it reads the rest of the script); the host's log records this line, not the
// script.
const runCommand = `sh -c "$(cat)" kk-reset </dev/null`

// describe is a short list of leftovers for an error or a log line.
func describe(items []string) string {
	const most = 12
	if len(items) <= most {
		return strings.Join(items, "; ")
	}
	return fmt.Sprintf("%s; and %d more", strings.Join(items[:most], "; "), len(items)-most)
}
