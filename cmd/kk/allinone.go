package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/api/v1alpha2"
)

// allInOne is the cluster of `kk create cluster` without -f: this machine alone holds etcd,
// the control plane and the workloads, reached with the local connector (no SSH). Empty
// version and containerManager take the defaults.
func allInOne(version, containerManager string, warn io.Writer) (*config.Cluster, error) {
	name, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("all-in-one: hostname: %w", err)
	}
	name = strings.ToLower(strings.SplitN(name, ".", 2)[0])
	ip, err := defaultRouteAddress()
	if err != nil {
		return nil, fmt.Errorf("all-in-one: %w (write a Cluster file with kk create config and pass -f)", err)
	}
	if containerManager == "" {
		containerManager = v1alpha2.DefaultContainerManager
	}
	kube := ""
	if version != "" {
		kube = "\n    version: " + version
	}
	doc := fmt.Sprintf(`apiVersion: kubekey.kubesphere.io/v1alpha2
kind: Cluster
metadata:
  name: %[1]s
spec:
  hosts:
  - {name: %[1]s, address: 127.0.0.1, internalAddress: %[2]s}
  roleGroups:
    etcd: [%[1]s]
    control-plane: [%[1]s]
    worker: [%[1]s]
  controlPlaneEndpoint:
    domain: lb.kubesphere.local
    port: 6443
  kubernetes:
    containerManager: %[4]s%[3]s
  etcd:
    type: kubekey
  network:
    plugin: %[5]s
`, name, ip, kube, containerManager, v1alpha2.AllInOneNetworkPlugin)
	c, warns, err := v1alpha2.Parse("all-in-one ("+name+")", []byte(doc))
	for _, w := range warns {
		fmt.Fprintf(warn, "warning: %s\n", w)
	}
	return c, err
}

// defaultRouteAddress is the IPv4 address of the interface holding the default route, read
// from /proc/net/route and the interface list (no packet is sent).
func defaultRouteAddress() (string, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	ifname := ""
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 2 && fs[1] == "00000000" && fs[0] != "Iface" {
			ifname = fs[0]
			break
		}
	}
	if ifname == "" {
		return "", fmt.Errorf("no default route: cannot tell this machine's address")
	}
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return "", err
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return "", err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.String(), nil
		}
	}
	return "", fmt.Errorf("interface %s of the default route has no IPv4 address", ifname)
}
