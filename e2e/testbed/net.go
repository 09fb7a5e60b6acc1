package testbed

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// usedSubnets returns the 10.231.X octets used by interfaces of the root namespace other than skip.
func usedSubnets(skip string) (map[int]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	used := map[int]string{}
	for _, it := range ifs {
		if it.Name == skip {
			continue
		}
		addrs, err := it.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip4 := ipn.IP.To4()
			if ip4 != nil && ip4[0] == 10 && ip4[1] == 231 {
				used[int(ip4[2])] = it.Name
			}
		}
	}
	return used, nil
}

// chooseSubnet settles b.subnet: the explicit one, the remembered one, or one derived from the
// name, skipping subnets another interface of this machine already uses.
func (b *bed) chooseSubnet(st *state) error {
	used, err := usedSubnets(b.bridge())
	if err != nil {
		return b.errf("list interfaces", err)
	}
	up := linkExists(b.bridge())
	switch {
	case b.subnet != 0:
		if st != nil && st.Subnet != 0 && st.Subnet != b.subnet && up {
			return b.errf("choose subnet", fmt.Errorf("bed is up on 10.231.%d.0/24, not the requested %d: take it down first", st.Subnet, b.subnet))
		}
		if other, ok := used[b.subnet]; ok {
			return b.errf("choose subnet", fmt.Errorf("10.231.%d.0/24 is already used by interface %s", b.subnet, other))
		}
		return nil
	case st != nil && st.Subnet != 0:
		if _, clash := used[st.Subnet]; !clash || up {
			b.subnet = st.Subnet
			return nil
		}
	}
	s0 := defaultSubnet(b.name)
	for k := 0; k < 241; k++ {
		s := (s0-10+k)%241 + 10
		if _, clash := used[s]; !clash {
			b.subnet = s
			return nil
		}
	}
	return b.errf("choose subnet", errors.New("no free 10.231.X.0/24 subnet"))
}

func listLinks() ([]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(ifs))
	for _, it := range ifs {
		names = append(names, it.Name)
	}
	return names, nil
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// listNetns lists the bed's network namespaces (by name, from /run/netns).
func (b *bed) listNetns() ([]string, error) {
	ents, err := os.ReadDir("/run/netns")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if b.isOwnObj(e.Name()) {
			out = append(out, e.Name())
		}
	}
	sort.Slice(out, func(i, j int) bool { return nsIndex(out[i]) < nsIndex(out[j]) })
	return out, nil
}

func nsIndex(ns string) int {
	i := strings.LastIndex(ns, "-n")
	n, _ := strconv.Atoi(ns[i+2:])
	return n
}

// netLock serializes subnet choice and bridge creation among all beds of this machine (whatever
// their state dir), so that two beds starting at once never take the same subnet.
const netLock = "/run/kk-testbed-net.lock"

// ensureBridge settles the bed's subnet and creates its bridge with the gateway address (the only
// address the bed puts into the root namespace).
func (b *bed) ensureBridge(ctx context.Context) error {
	unlock, err := lockFile(ctx, netLock)
	if err != nil {
		return b.errf("lock network setup", err)
	}
	defer unlock()
	if err := b.chooseSubnet(b.prev); err != nil {
		return err
	}
	if err := b.writeState(&state{Kind: b.kind, Subnet: b.subnet}); err != nil {
		return b.errf("write state", err)
	}
	br, gw := b.bridge(), b.gateway()
	if !linkExists(br) {
		if err := run(ctx, nil, "ip", "link", "add", br, "type", "bridge"); err != nil {
			return b.errf("create bridge "+br, err)
		}
	}
	it, err := net.InterfaceByName(br)
	if err != nil {
		return b.errf("bridge "+br, err)
	}
	addrs, _ := it.Addrs()
	have := false
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.String() == gw {
			have = true
		}
	}
	if !have {
		if err := run(ctx, nil, "ip", "addr", "add", gw+"/24", "dev", br); err != nil {
			return b.errf("address bridge "+br, err)
		}
	}
	if err := run(ctx, nil, "ip", "link", "set", br, "up"); err != nil {
		return b.errf("bring up bridge "+br, err)
	}
	return nil
}

// addHostNet creates machine i's network namespace with eth0 (veth peer on the bridge).
func (b *bed) addHostNet(ctx context.Context, i int) error {
	ns, veth, m := b.netns(i), b.veth(i), fmt.Sprintf("n%d", i)
	if err := run(ctx, nil, "ip", "netns", "add", ns); err != nil {
		return b.merrf(m, "create netns", err)
	}
	if err := run(ctx, nil, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns); err != nil {
		return b.merrf(m, "create veth", err)
	}
	if err := run(ctx, nil, "ip", "link", "set", veth, "master", b.bridge(), "up"); err != nil {
		return b.merrf(m, "attach veth to bridge", err)
	}
	script := fmt.Sprintf("link set lo up\naddr add %s/24 dev eth0\nlink set eth0 up\nroute add default via %s\n", b.addr(i), b.gateway())
	if err := run(ctx, []byte(script), "ip", "-n", ns, "-batch", "-"); err != nil {
		return b.merrf(m, "configure netns", err)
	}
	return nil
}

// delHostNet kills what runs in machine i's namespace and deletes it and its veth.
func (b *bed) delHostNet(ctx context.Context, ns string) error {
	var errs []error
	if _, err := os.Stat(filepath.Join("/run/netns", ns)); err == nil {
		for round := 0; round < 50; round++ {
			out, _ := output(ctx, nil, "ip", "netns", "pids", ns)
			pids := strings.Fields(out)
			if len(pids) == 0 {
				break
			}
			for _, p := range pids {
				if pid, err := strconv.Atoi(p); err == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			waitGoneStr(ctx, pids)
		}
		if err := run(ctx, nil, "ip", "netns", "del", ns); err != nil {
			errs = append(errs, fmt.Errorf("delete netns %s: %w", ns, err))
		}
	}
	if i := nsIndex(ns); i > 0 {
		if v := b.veth(i); linkExists(v) {
			if err := run(ctx, nil, "ip", "link", "del", v); err != nil && linkExists(v) {
				errs = append(errs, fmt.Errorf("delete veth %s: %w", v, err))
			}
		}
	}
	return errors.Join(errs...)
}

func waitGoneStr(ctx context.Context, pids []string) {
	var ps []int
	for _, p := range pids {
		if pid, err := strconv.Atoi(p); err == nil {
			ps = append(ps, pid)
		}
	}
	waitGone(ctx, 2*time.Second, ps...)
}

// delNetwork deletes every namespace and veth of the bed, then its bridge.
func (b *bed) delNetwork(ctx context.Context) error {
	var errs []error
	nss, err := b.listNetns()
	if err != nil {
		errs = append(errs, err)
	}
	for _, ns := range nss {
		if err := b.delHostNet(ctx, ns); err != nil {
			errs = append(errs, err)
		}
	}
	links, _ := listLinks()
	for _, l := range links {
		if b.isVeth(l) {
			if err := run(ctx, nil, "ip", "link", "del", l); err != nil && linkExists(l) {
				errs = append(errs, fmt.Errorf("delete veth %s: %w", l, err))
			}
		}
	}
	if linkExists(b.bridge()) {
		if err := run(ctx, nil, "ip", "link", "del", b.bridge()); err != nil && linkExists(b.bridge()) {
			errs = append(errs, fmt.Errorf("delete bridge %s: %w", b.bridge(), err))
		}
	}
	if len(errs) > 0 {
		return b.errf("network teardown", errors.Join(errs...))
	}
	return nil
}

// waitSSHBanner dials addr:22 once and checks until addr:22 answers with an SSH banner.
func waitSSHBanner(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(addr, "22"))
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if n >= 4 && string(buf[:4]) == "SSH-" {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("unexpected banner %q", buf[:n])
	}
	return err
}
