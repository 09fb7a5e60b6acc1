package config

import (
	"testing"
)

func testCluster() *Cluster {
	return &Cluster{
		Name: "t",
		Hosts: []*Host{
			{Name: "a", Address: "10.0.0.1", InternalAddress: "10.0.0.1", Port: 22, Roles: []Role{RoleEtcd, RoleControlPlane}},
			{Name: "b", Address: "fd00::2", InternalAddress: "fd00::2", Port: 2222, Roles: []Role{RoleWorker}},
			{Name: "c", Address: "10.0.0.3", InternalAddress: "10.0.0.3,fd00::3", Port: 22, Roles: []Role{RoleControlPlane, RoleWorker}},
		},
		ControlPlaneEndpoint: Endpoint{Domain: "lb.kubesphere.local", Port: 6443},
	}
}

func TestLookups(t *testing.T) {
	c := testCluster()
	cps := c.HostsWithRole(RoleControlPlane)
	if len(cps) != 2 || cps[0].Name != "a" || cps[1].Name != "c" {
		t.Errorf("control planes %v", cps)
	}
	if len(c.HostsWithRole(RoleRegistry)) != 0 {
		t.Error("registry hosts")
	}
	if c.FirstControlPlane().Name != "a" || c.Host("b").Name != "b" || c.Host("x") != nil {
		t.Error("lookups")
	}
	if !c.Host("c").Has(RoleWorker) || c.Host("c").Has(RoleEtcd) {
		t.Error("Has")
	}
	if (&Cluster{}).FirstControlPlane() != nil {
		t.Error("empty cluster has a control plane")
	}
}

func TestAddresses(t *testing.T) {
	c := testCluster()
	if got := c.Host("b").SSHAddress(); got != "[fd00::2]:2222" {
		t.Errorf("SSHAddress %s", got)
	}
	h := c.Host("c")
	if h.InternalIPv4() != "10.0.0.3" || h.InternalIPv6() != "fd00::3" || h.InternalIP() != "10.0.0.3" {
		t.Errorf("c: %s %s", h.InternalIPv4(), h.InternalIPv6())
	}
	if c.Host("b").InternalIP() != "fd00::2" || c.Host("b").InternalIPv4() != "" {
		t.Error("v6-only host")
	}
	if c.ControlPlaneAddress() != "10.0.0.1" {
		t.Errorf("ControlPlaneAddress %s", c.ControlPlaneAddress())
	}
	c.ControlPlaneEndpoint.Address = "10.0.0.100"
	if c.ControlPlaneAddress() != "10.0.0.100" || c.APIServerURL() != "https://lb.kubesphere.local:6443" {
		t.Error("endpoint")
	}
	c.ControlPlaneEndpoint.Address, c.ControlPlaneEndpoint.ExternalDNS = "", true
	if c.ControlPlaneAddress() != "" {
		t.Error("external DNS")
	}
}
