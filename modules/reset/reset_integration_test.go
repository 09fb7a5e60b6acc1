//go:build integration

package reset_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/e2e/testbed"
	"github.com/kk-project/kk/modules/reset"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/pipeline/session"
)

// fabricate leaves on a machine what a cluster leaves (a unit enabled and running, files and
// directories, interfaces, iptables chains with rules jumping to them, a bind mount under
// /var/lib/kubelet, a CNI network namespace, a kk /etc/hosts block, kk's sysctl file), next to
// things that are not kk's and must stay.
const fabricate = `set -e
mkdir -p /etc/kubernetes/manifests /var/lib/kubelet/pods/p1/volumes/v /var/lib/etcd/member /etc/ssl/etcd/ssl \
  /etc/cni/net.d /var/lib/cni/networks /opt/cni/bin /etc/kubekey/haproxy /usr/local/lib/kk /root/.kube \
  /etc/systemd/system/kubelet.service.d /var/tmp/kk-bind
echo 'apiVersion: v1' > /etc/kubernetes/admin.conf
cp /etc/kubernetes/admin.conf /root/.kube/config
echo x > /etc/kubernetes/manifests/haproxy.yaml
echo x > /etc/kubekey/haproxy/haproxy.cfg
echo x > /etc/cni/net.d/10-flannel.conflist
touch /opt/cni/bin/bridge /opt/cni/bin/flannel /opt/cni/bin/not-kks /var/lib/etcd.kk-restore-20260101
printf '#!/bin/sh\n' > /usr/local/bin/kubeadm
chmod +x /usr/local/bin/kubeadm
printf '[Unit]\nDescription=fake kubelet\n[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n' \
  > /etc/systemd/system/kubelet.service
echo '[Service]' > /etc/systemd/system/kubelet.service.d/10-kubeadm.conf
systemctl daemon-reload
systemctl enable --now kubelet.service
ip link add cni0 type bridge 2>/dev/null || ip link add cni0 type dummy
ip link add flannel.1 type vxlan id 1 dstport 8472 2>/dev/null || ip link add flannel.1 type dummy
ip link set cni0 up
iptables -N KUBE-TEST
iptables -A FORWARD -m comment --comment "kk reset test" -j KUBE-TEST
iptables -t nat -N cali-test
iptables -t nat -A POSTROUTING -j cali-test
iptables -N NOT-KKS
iptables -A FORWARD -j NOT-KKS
mount --bind /var/tmp/kk-bind /var/lib/kubelet/pods/p1/volumes/v
ip netns add cni-0000-kk-test
printf '# BEGIN kk managed hosts\n10.99.0.1 kk-fake-node\n# END kk managed hosts\n# BEGIN kk registry\n10.99.0.2 kk-registry-kept\n# END kk registry\n' >> /etc/hosts
echo 'net.ipv4.ip_forward = 1' > /etc/sysctl.d/99-kubernetes-kk.conf
echo br_netfilter > /etc/modules-load.d/kubernetes-kk.conf
`

// One machine with a cluster's leftovers fabricated: the residue check names each; a dry run
// reports them and changes nothing; the reset leaves nothing the check finds and keeps what is
// not kk's; a second run changes nothing.
func TestResetOnMachine(t *testing.T) {
	bed := testbed.Require(t, testbed.Options{Name: "kkreset"}, 1)
	c, _, err := v1alpha2.Load(bed.ClusterFile)
	if err != nil {
		t.Fatal(err)
	}
	m := bed.Machines[0]
	rootSSH(t, bed, m, fabricate)
	s := reset.SpecFor(c, false)

	before := reset.ParseResidue(rootSSH(t, bed, m, reset.ResidueScript(s)))
	t.Logf("residue check before the reset:\n  %s", strings.Join(before, "\n  "))
	for _, want := range []string{"unit kubelet.service (active)", "unit kubelet.service",
		"path /etc/systemd/system/multi-user.target.wants/kubelet.service", "path /etc/kubernetes",
		"path /var/lib/kubelet", "path /var/lib/etcd", "path /var/lib/etcd.kk-restore-20260101", "path /etc/cni/net.d/10-flannel.conflist",
		"path /opt/cni/bin/flannel", "path /usr/local/bin/kubeadm", "path /root/.kube/config",
		"path /etc/sysctl.d/99-kubernetes-kk.conf", "path /etc/modules-load.d/kubernetes-kk.conf",
		"iface cni0", "iface flannel.1", "chain filter KUBE-TEST", "chain nat cali-test",
		"mount /var/lib/kubelet/pods/p1/volumes/v", "netns cni-0000-kk-test", "hosts-line 10.99.0.1 kk-fake-node",
	} {
		if !hasPrefix(before, want) {
			t.Errorf("residue check misses %q:\n%s", want, strings.Join(before, "\n"))
		}
	}
	for _, kept := range []string{"not-kks", "NOT-KKS", "kk-registry-kept"} {
		if hasSubstring(before, kept) {
			t.Errorf("residue check names %s, which is not kk's", kept)
		}
	}

	// a dry run reports the leftovers and changes nothing
	var mu sync.Mutex
	found := map[string][]string{}
	dry := s
	dry.OnResidue = func(host string, items []string) { mu.Lock(); found[host] = items; mu.Unlock() }
	rep, out, err := run(t, c, bed, true, reset.Tasks(dry, pipeline.AllHosts()))
	if err != nil || rep.Count(pipeline.StatusPlanned) != 1 || len(found[m.Name]) != len(before) {
		t.Fatalf("dry run: %v, planned %d, %d leftovers reported of %d\n%s", err, rep.Count(pipeline.StatusPlanned), len(found[m.Name]), len(before), out)
	}
	if got := rootSSH(t, bed, m, "systemctl is-active kubelet.service || true"); got != "active\n" {
		t.Fatalf("dry run stopped kubelet: %q", got)
	}

	first, out, err := run(t, c, bed, false, reset.Tasks(s, pipeline.AllHosts()))
	if err != nil {
		t.Fatalf("reset: %v\n%s", err, out)
	}
	if got := first.Count(pipeline.StatusChanged); got != 1 {
		t.Errorf("reset changed %d hosts, want 1\n%s", got, out)
	}
	if left := reset.ParseResidue(rootSSH(t, bed, m, reset.ResidueScript(s))); len(left) > 0 {
		t.Errorf("left after the reset:\n%s", strings.Join(left, "\n"))
	}
	// (the runtime stays, and it watches the CNI configuration directory: that stays, empty)
	kept := rootSSH(t, bed, m, "ls /opt/cni/bin; iptables -S FORWARD; grep -c kk-registry-kept /etc/hosts; ls -A /etc/cni; ls -A /etc/cni/net.d | wc -l")
	for _, want := range []string{"not-kks\n", "-A FORWARD -j NOT-KKS\n", "1\nnet.d\n0\n"} {
		if !strings.Contains(kept, want) {
			t.Errorf("after the reset, lacks %q (not kk's, must stay):\n%s", want, kept)
		}
	}
	if strings.Contains(kept, "KUBE-TEST") {
		t.Errorf("a rule to KUBE-TEST is left:\n%s", kept)
	}

	second, out, err := run(t, c, bed, false, reset.Tasks(s, pipeline.AllHosts()))
	if err != nil {
		t.Fatalf("second reset: %v\n%s", err, out)
	}
	if got := second.Count(pipeline.StatusChanged); got != 0 {
		t.Errorf("second reset changed %d, want 0\n%s", got, out)
	}
	t.Logf("residue before: %d items; after the reset: none; second run: %d changed, %d ok", len(before),
		second.Count(pipeline.StatusChanged), second.Count(pipeline.StatusOK))
}

func hasPrefix(items []string, p string) bool {
	for _, i := range items {
		if strings.HasPrefix(i, p) {
			return true
		}
	}
	return false
}

func hasSubstring(items []string, p string) bool {
	for _, i := range items {
		if strings.Contains(i, p) {
			return true
		}
	}
	return false
}

// run runs tasks on the machines, as the Cluster file's login user (sudo with a password).
func run(t *testing.T, c *config.Cluster, bed *testbed.Bed, dry bool, tasks []pipeline.Task) (*pipeline.Report, string, error) {
	t.Helper()
	var out bytes.Buffer
	sess, err := session.New(c, session.Options{Workdir: t.TempDir(), KnownHosts: bed.KnownHosts, DryRun: dry, Out: &out, Err: &out})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	rep, err := sess.Run(ctx, "reset", tasks)
	t.Logf("run (dry %v): %v", dry, time.Since(start).Round(time.Millisecond))
	return rep, out.String(), err
}

func rootSSH(t *testing.T, bed *testbed.Bed, m testbed.Machine, cmd string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := connector.DialSSH(ctx, connector.SSHConfig{Host: m.Name, Address: m.Address, Port: 22, User: "root",
		PrivateKeyPath: bed.KeyPath, KnownHostsPath: bed.KnownHosts})
	if err != nil {
		t.Fatalf("%s: %v", m.Name, err)
	}
	defer conn.Close()
	res, err := conn.Exec(ctx, cmd, connector.ExecOptions{})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		t.Fatalf("%s: %v\nstdout: %s", m.Name, err, res.Stdout)
	}
	return res.Stdout
}
