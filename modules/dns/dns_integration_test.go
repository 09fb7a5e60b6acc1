//go:build integration

package dns

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kk-project/kk/e2e/apiserver"
	"github.com/kk-project/kk/modules/kubeapply"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/pipeline/connector/connectortest"
)

// kubeadmCoreDNS is what kubeadm leaves in kube-system: its Corefile and Deployment.
const kubeadmCoreDNS = `
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  Corefile: |
    .:53 {
        errors
        forward . /etc/resolv.conf
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system}
spec:
  replicas: 2
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      containers:
      - name: coredns
        image: registry.k8s.io/coredns/coredns:v1.12.1
        args: [-conf, /etc/coredns/Corefile]
        volumeMounts: [{name: config-volume, mountPath: /etc/coredns}]
      volumes:
      - name: config-volume
        configMap: {name: coredns, items: [{key: Corefile, path: Corefile}]}
`

// TestCoreDNSTaskOnKubeadmObjects: the CoreDNS task replaces kubeadm's Corefile with spec.dns's
// and puts the Corefile's digest on the Deployment's pod template (leaving kubeadm's fields
// alone); a second run is ok without a change; a new dnsEtcHosts changes both again.
func TestCoreDNSTaskOnKubeadmObjects(t *testing.T) {
	srv := apiserver.Start(t)
	ctx := context.Background()
	if _, err := kubeapply.ApplyYAML(ctx, srv.Config, []byte(kubeadmCoreDNS), kubeapply.Options{FieldManager: "kubeadm"}); err != nil {
		t.Fatal(err)
	}
	kc := func(context.Context) (*rest.Config, error) { return srv.Config, nil }
	run := func(s Spec) *pipeline.Report {
		t.Helper()
		conn := &connectortest.Script{}
		host := pipeline.NewHost("cp1", []string{"control-plane"}, func(context.Context) (connector.Connector, error) { return conn, nil })
		g, err := pipeline.NewGraph(Tasks(s, kc, nil)[:1], []*pipeline.Host{host})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := pipeline.Run(ctx, g, pipeline.Options{Name: "dns"})
		if err != nil {
			t.Fatal(err)
		}
		if err := rep.Err(ctx); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	c := cluster()
	c.Network.Plugin = "none" // no pods run here: do not wait for CoreDNS
	c.DNS.DNSEtcHosts = "10.0.0.5 git.corp"
	s, err := NewSpec(c)
	if err != nil {
		t.Fatal(err)
	}
	if rep := run(s); rep.Count(pipeline.StatusChanged) != 1 {
		t.Fatalf("first run: %s", rep.Totals())
	}
	cs := kubernetes.NewForConfigOrDie(srv.Config)
	check := func(s Spec) {
		t.Helper()
		cm, err := cs.CoreV1().ConfigMaps("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data["Corefile"] != s.CoreDNSCorefile {
			t.Errorf("Corefile:\n%s\nwant:\n%s", cm.Data["Corefile"], s.CoreDNSCorefile)
		}
		d, err := cs.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Spec.Template.Annotations["kk.io/corefile-sha256"]; got != sha256hex(s.CoreDNSCorefile) {
			t.Errorf("pod template digest %q", got)
		}
		if *d.Spec.Replicas != 2 || d.Spec.Template.Spec.Containers[0].Image != "registry.k8s.io/coredns/coredns:v1.12.1" {
			t.Errorf("kubeadm's Deployment fields changed: %+v", d.Spec)
		}
	}
	check(s)
	if rep := run(s); rep.Count(pipeline.StatusOK) != 1 {
		t.Errorf("second run: %s, want ok", rep.Totals())
	}
	c.DNS.DNSEtcHosts = "10.0.0.6 wiki.corp"
	s2, err := NewSpec(c)
	if err != nil {
		t.Fatal(err)
	}
	if rep := run(s2); rep.Count(pipeline.StatusChanged) != 1 {
		t.Errorf("new dnsEtcHosts: %s, want changed", rep.Totals())
	}
	check(s2)
	if !strings.Contains(s2.CoreDNSCorefile, "10.0.0.6 wiki.corp") {
		t.Errorf("Corefile without the new host:\n%s", s2.CoreDNSCorefile)
	}

	// nodelocaldns's objects apply as written (a server-side dry run of them then changes nothing)
	res, err := kubeapply.Apply(ctx, srv.Config, s2.NodeLocalDNSObjects, kubeapply.Options{})
	if err != nil || res.Count(kubeapply.Created) != 3 {
		t.Fatalf("nodelocaldns objects: %s, %v", res, err)
	}
	res, err = kubeapply.Apply(ctx, srv.Config, s2.NodeLocalDNSObjects, kubeapply.Options{DryRun: true})
	if err != nil || res.Changed() != 0 {
		t.Errorf("nodelocaldns dry run after apply: %s, %v", res, err)
	}
	var ds *unstructured.Unstructured
	for _, o := range res.Objects {
		if o.Object.GetKind() == "DaemonSet" {
			ds = o.Object
		}
	}
	if hn, _, _ := unstructured.NestedBool(ds.Object, "spec", "template", "spec", "hostNetwork"); !hn {
		t.Error("DaemonSet lost hostNetwork")
	}
}
