package v1alpha2

import (
	"strings"
	"testing"
)

// Each case edits base (lines 6-9 are the hosts, 10-13 roleGroups) or appends
// to it (appended text starts on line 14), and expects an error on a line.
func TestValidation(t *testing.T) {
	host0 := "  - {name: n1, address: 10.0.0.1, password: x}"
	cases := []struct {
		name string
		old  string // replaced in base by new; "" appends new
		new  string
		line int
		want []string
	}{
		{"missing host name", host0, "  - {address: 10.0.0.1, password: x}", 7, []string{"spec.hosts[0].name: name is required"}},
		{"duplicate host name", "{name: n2,", "{name: n1,", 8, []string{`spec.hosts[1].name: duplicate host name "n1" (also spec.hosts[0])`}},
		{"invalid node name", "{name: n3,", "{name: Node_3,", 9, []string{`spec.hosts[2].name: "Node_3" is not a valid node name`}},
		{"duplicate address", "address: 10.0.0.2", "address: 10.0.0.1", 8, []string{"spec.hosts[1].address: duplicate address 10.0.0.1:22"}},
		{"host without address", host0, "  - {name: n1, password: x}", 7, []string{"spec.hosts[0].address: address is required"}},
		{"bad address", "address: 10.0.0.1,", "address: 10.0.0.300,", 7, []string{`"10.0.0.300" is not a valid IP address or host name`}},
		{"bad internal address", "address: 10.0.0.1,", "address: 10.0.0.1, internalAddress: node-a,", 7, []string{"spec.hosts[0].internalAddress", "not an IP address"}},
		{"port too big", "address: 10.0.0.1,", "address: 10.0.0.1, port: 70000,", 7, []string{"spec.hosts[0].port: port 70000 is out of range 1-65535"}},
		{"negative port", "address: 10.0.0.1,", "address: 10.0.0.1, port: -1,", 7, []string{"spec.hosts[0].port"}},
		{"unsupported arch", "address: 10.0.0.1,", "address: 10.0.0.1, arch: ppc64le,", 7, []string{`spec.hosts[0].arch: unsupported arch "ppc64le"`}},
		{"unknown role", "    worker: [n2, n3]", "    worker: [n2, n3]\n    wroker: [n1]", 14, []string{`spec.roleGroups.wroker: unknown role "wroker"`}},
		{"host not in hosts", "worker: [n2, n3]", "worker: [n2, n4]", 13, []string{`spec.roleGroups.worker[1]: host "n4" is not in spec.hosts`}},
		{"range not in hosts", "worker: [n2, n3]", `worker: ["n[2:5]"]`, 13, []string{`hosts "n4", "n5" (from range "n[2:5]") are not in spec.hosts`}},
		{"backwards range", "worker: [n2, n3]", `worker: ["n[3:1]"]`, 13, []string{`spec.roleGroups.worker[0]: malformed range "n[3:1]"`}},
		{"non-numeric range", "worker: [n2, n3]", `worker: ["n[1:x]"]`, 13, []string{`malformed range "n[1:x]"`}},
		{"no control plane", "    control-plane: [n1]\n", "", 10, []string{"spec.roleGroups: no control-plane host"}},
		{"no etcd", "    etcd: [n1]\n", "", 10, []string{"spec.roleGroups: no etcd host"}},
		{"no hosts", "  - {name: n1, address: 10.0.0.1, password: x}\n  - {name: n2, address: 10.0.0.2, password: x}\n  - {name: n3, address: 10.0.0.3, password: x}\n  roleGroups:\n    etcd: [n1]\n    control-plane: [n1]\n    worker: [n2, n3]\n", "", 6, []string{"spec.hosts: no hosts"}},
		{"jump host unknown", "address: 10.0.0.2,", "address: 10.0.0.2, jumpHost: bastion,", 8, []string{`spec.hosts[1].jumpHost: jump host "bastion" is not in spec.hosts`}},
		{"jump host self", "address: 10.0.0.2,", "address: 10.0.0.2, jumpHost: n2,", 8, []string{"cannot be its own jump host"}},
		{"jump host cycle", "address: 10.0.0.2,", "address: 10.0.0.2, jumpHost: n3,", 0, nil}, // set up below
		{"bad load balancer", "", "  controlPlaneEndpoint:\n    internalLoadbalancer: nginx\n", 15, []string{`spec.controlPlaneEndpoint.internalLoadbalancer: internalLoadbalancer "nginx" is not supported`}},
		{"kube-vip without address", "", "  controlPlaneEndpoint:\n    internalLoadbalancer: kube-vip\n", 14, []string{"spec.controlPlaneEndpoint.address: internalLoadbalancer kube-vip needs address"}},
		{"haproxy with address", "", "  controlPlaneEndpoint:\n    internalLoadbalancer: haproxy\n    address: 10.0.0.100\n", 16, []string{"address must be empty with internalLoadbalancer haproxy"}},
		{"endpoint address not IP", "", "  controlPlaneEndpoint:\n    address: lb.example.com\n", 15, []string{`"lb.example.com" is not an IP address`}},
		{"bad version", "", "  kubernetes:\n    version: 1.30\n", 15, []string{`spec.kubernetes.version: version "1.30" is not of the form vX.Y.Z`}},
		{"bad version suffix", "", "  kubernetes:\n    version: v1.21.5-k3s\n", 15, []string{"vX.Y.Z"}},
		{"bad container manager", "", "  kubernetes:\n    containerManager: crio\n", 15, []string{`spec.kubernetes.containerManager: containerManager "crio" is not supported: use containerd or docker (kk installs those two`}},
		{"bad proxy mode", "", "  kubernetes:\n    proxyMode: userspace\n", 15, []string{`proxyMode "userspace"`}},
		{"cert validity not a duration", "", "  kubernetes:\n    certificateValidityPeriod: 1y\n", 15, []string{`spec.kubernetes.certificateValidityPeriod: "1y" is not a duration`}},
		{"cert validity too short", "", "  kubernetes:\n    certificateValidityPeriod: 30m\n", 15, []string{"30m0s is shorter than 1h0m0s"}},
		{"cert validity on v1beta3", "", "  kubernetes:\n    version: v1.30.14\n    certificateValidityPeriod: 4h\n", 16, []string{"needs Kubernetes v1.31 or newer", "v1.30.14 uses v1beta3"}},
		{"bad extra SAN", "", "  kubernetes:\n    apiserverCertExtraSans: [\"not a name\"]\n", 15, []string{"spec.kubernetes.apiserverCertExtraSans[0]"}},
		{"bad etcd type", "", "  etcd:\n    type: etcdadm\n", 15, []string{`spec.etcd.type: etcd type "etcdadm" is not supported`}},
		{"external etcd without endpoints", "", "  etcd:\n    type: external\n", 14, []string{"spec.etcd.external.endpoints: etcd type external needs external.endpoints"}},
		{"external etcd bad endpoint", "", "  etcd:\n    type: external\n    external:\n      endpoints: [10.0.0.9:2379]\n", 17, []string{"spec.etcd.external.endpoints[0]", "http(s)"}},
		{"external etcd cert without key", "", "  etcd:\n    type: external\n    external:\n      endpoints: [\"https://10.0.0.9:2379\"]\n      certFile: /c.pem\n", 16, []string{"certFile and keyFile go together"}},
		{"bad pod CIDR", "", "  network:\n    kubePodsCIDR: 10.233.64.0/33\n", 15, []string{`spec.network.kubePodsCIDR: "10.233.64.0/33" is not a CIDR`}},
		{"bad service CIDR", "", "  network:\n    kubeServiceCIDR: 10.233.0.1/18\n", 15, []string{"host bits set", "10.233.0.0/18"}},
		{"CIDR overlap", "", "  network:\n    kubePodsCIDR: 10.233.0.0/16\n    kubeServiceCIDR: 10.233.0.0/18\n", 16, []string{"spec.network.kubeServiceCIDR: service CIDR 10.233.0.0/18 overlaps pod CIDR 10.233.0.0/16"}},
		{"hosts inside pod CIDR", "", "  network:\n    kubePodsCIDR: 10.0.0.0/16\n", 7, []string{"spec.hosts[0].internalAddress", "inside the cluster range 10.0.0.0/16"}},
		{"bad NVIDIA driver version", "", "  gpu:\n    driver:\n      version: latest\n", 16, []string{`spec.gpu.driver.version: nvidia-driver: "latest" is not an NVIDIA driver version`}},
		{"unknown gpu field", "", "  gpu:\n    drivers: {version: 570.195.03}\n", 15, []string{"spec.gpu.drivers"}},
		{"bad toolkit version", "", "  gpu:\n    toolkit:\n      version: latest\n", 16, []string{"spec.gpu.toolkit.version: nvidia-container-toolkit"}},
		{"bad MIG strategy", "", "  gpu:\n    devicePlugin:\n      migStrategy: all\n", 16, []string{`spec.gpu.devicePlugin.migStrategy: "all": want none, single or mixed`}},
		{"time-slicing of one", "", "  gpu:\n    devicePlugin:\n      timeSlicing: {replicas: 1}\n", 16, []string{"spec.gpu.devicePlugin.timeSlicing.replicas: 1: want 2 or more"}},
		{"time-slicing without replicas", "", "  gpu:\n    devicePlugin:\n      timeSlicing: {}\n", 16, []string{"spec.gpu.devicePlugin.timeSlicing.replicas: 0: want 2 or more"}},
		{"time-slicing with MIG mixed", "", "  gpu:\n    devicePlugin:\n      migStrategy: mixed\n      timeSlicing: {replicas: 4}\n", 17, []string{"spec.gpu.devicePlugin.timeSlicing: kk time-slices whole GPUs"}},
		{"bad plugin", "", "  network:\n    plugin: weave\n", 15, []string{`network plugin "weave" is not supported`}},
		{"calico both modes", "", "  network:\n    calico: {ipipMode: Always, vxlanMode: Always}\n", 15, []string{"ipipMode and vxlanMode cannot both be on"}},
		{"addon without source", "", "  addons:\n  - name: a\n", 15, []string{"spec.addons[0].sources", "sources needs chart"}},
		{"addon chart without repo", "", "  addons:\n  - name: a\n    sources: {chart: {name: c}}\n", 16, []string{`chart "c" needs repo`}},
		{"duplicate addon", "", "  addons:\n  - {name: a, sources: {yaml: {path: [a.yaml]}}}\n  - {name: a, sources: {yaml: {path: [b.yaml]}}}\n", 16, []string{`duplicate addon name "a"`}},
		{"private registry with scheme", "", "  registry:\n    privateRegistry: https://r.example.com\n", 15, []string{"without a scheme"}},
		{"bad metadata name", "name: t", "name: My_Cluster", 4, []string{`metadata.name: "My_Cluster" is not a valid name`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == nil {
				return
			}
			src := base + tc.new
			if tc.old != "" {
				if !strings.Contains(base, tc.old) {
					t.Fatalf("%q not in base", tc.old)
				}
				src = strings.Replace(base, tc.old, tc.new, 1)
			}
			_, _, errs := parse(t, src)
			if errs == nil {
				t.Fatalf("no error for:\n%s", src)
			}
			wantError(t, errs, tc.line, tc.want...)
		})
	}
}

func TestJumpHostCycle(t *testing.T) {
	src := strings.Replace(base, "address: 10.0.0.2,", "address: 10.0.0.2, jumpHost: n3,", 1)
	src = strings.Replace(src, "address: 10.0.0.3,", "address: 10.0.0.3, jumpHost: n2,", 1)
	_, _, errs := parse(t, src)
	wantError(t, errs, 8, "spec.hosts[1].jumpHost: jump hosts form a cycle")

	src = strings.Replace(base, "address: 10.0.0.2,", "address: 10.0.0.2, jumpHost: n1,", 1)
	c, _ := mustParse(t, src)
	if c.Host("n2").JumpHost != "n1" {
		t.Error("jumpHost not converted")
	}
}

func TestAllErrorsAtOnce(t *testing.T) {
	src := strings.Replace(base, "{name: n2,", "{name: n1,", 1) + "  hostz: []\n  kubernetes:\n    version: latest\n  etcd:\n    type: nope\n"
	_, _, errs := parse(t, src)
	if len(errs) < 4 {
		t.Fatalf("want at least 4 errors, got:\n%v", errs)
	}
	for i := 1; i < len(errs); i++ {
		if errs[i].Line < errs[i-1].Line {
			t.Errorf("errors not sorted by line:\n%v", errs)
		}
	}
	if got := strings.Count(errs.Error(), "\n"); got != len(errs)-1 {
		t.Errorf("one error per line expected:\n%v", errs)
	}
}

func TestWarnings(t *testing.T) {
	src := strings.Replace(base, "etcd: [n1]", "etcd: [n1, n2]", 1)
	_, w := mustParse(t, src)
	if !hasWarning(w, "test.yaml:11: spec.roleGroups.etcd: 2 etcd members") {
		t.Errorf("even etcd warning missing: %v", w)
	}

	src = strings.Replace(base, "control-plane: [n1]", "control-plane: [n1, n2]", 1)
	_, w = mustParse(t, src)
	if !hasWarning(w, "several control planes but no load balancer") {
		t.Errorf("LB warning missing: %v", w)
	}

	src = strings.Replace(base, "worker: [n2, n3]", "worker: [n2]", 1)
	_, w = mustParse(t, src)
	if !hasWarning(w, `host "n3" has no role`) {
		t.Errorf("no-role warning missing: %v", w)
	}

	src = base + "  etcd:\n    type: kubeadm\n"
	_, w = mustParse(t, src)
	if !hasWarning(w, "roleGroups.etcd is ignored") {
		t.Errorf("ignored etcd warning missing: %v", w)
	}

	src = strings.Replace(base, "control-plane: [n1]", "control-plane: [n1, n2]", 1) + "  etcd:\n    type: kubeadm\n  controlPlaneEndpoint:\n    internalLoadbalancer: haproxy\n"
	_, w = mustParse(t, src)
	if !hasWarning(w, "2 control planes with etcd type kubeadm make 2 etcd members") {
		t.Errorf("kubeadm even warning missing: %v", w)
	}

	src = base + "  gpu:\n    devicePlugin:\n      enabled: false\n      timeSlicing: {replicas: 2}\n"
	c, w := mustParse(t, src)
	if !hasWarning(w, "test.yaml:15: spec.gpu.devicePlugin: enabled is false") || c.GPU.DevicePlugin || !c.GPU.Toolkit {
		t.Errorf("devicePlugin off with settings: warnings %v, gpu %+v", w, c.GPU)
	}
	// spec.gpu alone: the device plugin on, whole GPUs
	if c, w := mustParse(t, base+"  gpu: {}\n"); len(w) != 0 || !c.GPU.DevicePlugin || c.GPU.MIGStrategy != "none" || c.GPU.TimeSlicingReplicas != 0 {
		t.Errorf("spec.gpu {}: warnings %v, gpu %+v", w, c.GPU)
	}
	// KubeKey's nvidiaRuntime alone: the toolkit, not kk's device plugin (the user brings one)
	if c, _ := mustParse(t, base+"  kubernetes:\n    nvidiaRuntime: true\n"); !c.GPU.Toolkit || c.GPU.DevicePlugin {
		t.Errorf("nvidiaRuntime alone: gpu %+v", c.GPU)
	}

	// docker: NVIDIA's runtime is its default on the GPU hosts, no RuntimeClass
	for _, src := range []string{"  kubernetes:\n    containerManager: docker\n  gpu: {}\n", "  kubernetes:\n    containerManager: docker\n    nvidiaRuntime: true\n"} {
		if c, w := mustParse(t, base+src); !c.GPU.Toolkit || !hasWarning(w, "containerManager docker: NVIDIA's runtime is docker's default on the GPU hosts") ||
			!hasWarning(w, "kk makes no RuntimeClass nvidia") {
			t.Errorf("%s: warnings %v, gpu %+v", src, w, c.GPU)
		}
	}

	_, w = mustParse(t, base)
	if len(w) != 0 {
		t.Errorf("base has warnings: %v", w)
	}
}

func TestExternalEtcdFiles(t *testing.T) {
	src := base + "  etcd:\n    type: external\n    external:\n      endpoints: [\"https://10.0.0.9:2379\"]\n      caFile: /nonexistent/ca.pem\n"
	_, _, err := ParseWithOptions("test.yaml", []byte(src), ParseOptions{HomeDir: "/home/u"})
	if err == nil || !strings.Contains(err.Error(), "test.yaml:18: spec.etcd.external.caFile: cannot read /nonexistent/ca.pem") {
		t.Errorf("got %v", err)
	}
	c, _ := mustParse(t, src) // file checks skipped
	if c.Etcd.Type != "external" || c.Etcd.External.CAFile != "/nonexistent/ca.pem" {
		t.Errorf("etcd: %+v", c.Etcd)
	}
}

func TestDualStack(t *testing.T) {
	src := strings.Replace(base, "address: 10.0.0.1,", "address: 10.0.0.1, internalAddress: \"10.0.0.1,fd00::1\",", 1) +
		"  network:\n    kubePodsCIDR: 10.233.64.0/18,fd85::/108\n    kubeServiceCIDR: 10.233.0.0/18,fd86::/108\n"
	c, _ := mustParse(t, src)
	h := c.Host("n1")
	if h.InternalIPv4() != "10.0.0.1" || h.InternalIPv6() != "fd00::1" || h.InternalIP() != "10.0.0.1" {
		t.Errorf("dual stack: %q %q", h.InternalIPv4(), h.InternalIPv6())
	}
}
