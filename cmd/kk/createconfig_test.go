package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiversion "k8s.io/apimachinery/pkg/version"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/cluster"
)

// fromClusterAPIServer serves, as kube-apiserver does, the objects kk create config
// --from-cluster reads of a cluster: two nodes, kubeadm's and kube-proxy's ConfigMaps and
// calico's DaemonSet; everything else is not found.
func fromClusterAPIServer(t *testing.T) string {
	t.Helper()
	cp := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "cp1", Labels: map[string]string{"node-role.kubernetes.io/control-plane": ""}}}
	cp.Spec.Taints = []corev1.Taint{{Key: "node-role.kubernetes.io/control-plane", Effect: corev1.TaintEffectNoSchedule}}
	w := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}}
	for i, n := range []*corev1.Node{&cp, &w} {
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("10.9.0.%d", 11+i)}}
		n.Status.NodeInfo = corev1.NodeSystemInfo{Architecture: "amd64", KubeletVersion: "v1.33.5", ContainerRuntimeVersion: "containerd://2.1.4"}
	}
	objects := map[string]any{
		"/api/v1/nodes": corev1.NodeList{TypeMeta: metav1.TypeMeta{Kind: "NodeList", APIVersion: "v1"}, Items: []corev1.Node{cp, w}},
		"/api/v1/namespaces/kube-system/configmaps/kubeadm-config": corev1.ConfigMap{TypeMeta: metav1.TypeMeta{Kind: "ConfigMap", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{Name: "kubeadm-config", Namespace: "kube-system"},
			Data: map[string]string{"ClusterConfiguration": `apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.33.5
clusterName: cluster.local
controlPlaneEndpoint: lb.kubesphere.local:6443
networking: {dnsDomain: cluster.local, podSubnet: 10.233.64.0/18, serviceSubnet: 10.233.0.0/18}
etcd: {local: {dataDir: /var/lib/etcd}}
`}},
		"/api/v1/namespaces/kube-system/configmaps/kube-proxy": corev1.ConfigMap{TypeMeta: metav1.TypeMeta{Kind: "ConfigMap", APIVersion: "v1"},
			ObjectMeta: metav1.ObjectMeta{Name: "kube-proxy", Namespace: "kube-system"}, Data: map[string]string{"config.conf": "mode: ipvs\n"}},
		"/apis/apps/v1/namespaces/kube-system/daemonsets/calico-node": appsv1.DaemonSet{TypeMeta: metav1.TypeMeta{Kind: "DaemonSet", APIVersion: "apps/v1"},
			ObjectMeta: metav1.ObjectMeta{Name: "calico-node", Namespace: "kube-system"}},
		"/api/v1/namespaces/kube-system/pods": corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}},
		"/version":                            apiversion.Info{GitVersion: "v1.33.5"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		body, ok := objects[r.URL.Path]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			body = metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
				Reason: metav1.StatusReasonNotFound, Code: http.StatusNotFound, Message: r.URL.Path + " not found"}
		}
		json.NewEncoder(w).Encode(body)
	}))
	return serverKubeconfig(t, srv)
}

// The file kk create config --from-cluster writes loads, once its passwords are filled in,
// with the loader of kk create cluster -f, and says what the cluster runs.
func TestCreateConfigFromCluster(t *testing.T) {
	kc := fromClusterAPIServer(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "c.yaml")
	msg, err := kk(t, "create", "config", "--from-cluster", "--kubeconfig", kc, "--name", "prod", "-f", out)
	if err != nil {
		t.Fatalf("%s %v", msg, err)
	}
	if !strings.Contains(msg, "wrote "+out+": 2 hosts, Kubernetes v1.33.5, etcd kubeadm, network calico") {
		t.Errorf("message:\n%s", msg)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	filled := filepath.Join(dir, "filled.yaml")
	if err := os.WriteFile(filled, []byte(strings.ReplaceAll(string(data), cluster.PasswordPlaceholder, "s3cret")), 0o600); err != nil {
		t.Fatal(err)
	}
	var warn strings.Builder
	c, err := loadCluster(filled, &warn)
	if err != nil || warn.Len() != 0 {
		t.Fatalf("does not load: %v %s\n%s", err, warn.String(), data)
	}
	if c.Name != "prod" || len(c.Hosts) != 2 || c.Kubernetes.Version != "v1.33.5" || c.Etcd.Type != config.EtcdKubeadm ||
		c.Network.Plugin != "calico" || c.Kubernetes.ProxyMode != "ipvs" || c.Network.KubePodsCIDR != "10.233.64.0/18" {
		t.Errorf("cluster %+v", c)
	}
	if got := fromClusterHostNames(c.HostsWithRole(config.RoleWorker)); !slices.Equal(got, []string{"w1"}) {
		t.Errorf("workers %v", got)
	}
	if h := c.Hosts[1]; h.Address != "10.9.0.12" || h.Password != "s3cret" {
		t.Errorf("host %+v", h)
	}

	// $KUBECONFIG when --kubeconfig is not given; the default file name; stdout with -f -
	t.Setenv("KUBECONFIG", kc)
	t.Chdir(dir)
	if msg, err := kk(t, "create", "config", "--from-cluster"); err != nil || !strings.Contains(msg, "wrote config-sample.yaml") {
		t.Errorf("$KUBECONFIG: %s %v", msg, err)
	}
	if msg, err := kk(t, "create", "config", "--from-cluster", "-f", "-"); err != nil || !strings.Contains(msg, "kind: Cluster") {
		t.Errorf("stdout: %s %v", msg, err)
	}
}

func TestCreateConfigFromClusterFlags(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "c.yaml")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--from-cluster", "--with-kubernetes", "v1.33.5"}, "--from-cluster writes the version the cluster runs"},
		{[]string{"--kubeconfig", filepath.Join(dir, "kc")}, "add --from-cluster"},
		{[]string{"--from-cluster", "--kubeconfig", filepath.Join(dir, "missing")}, "--from-cluster needs a running cluster"},
	} {
		msg, err := kk(t, append([]string{"create", "config", "-f", out}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q\n%s", c.args, err, c.want, msg)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused command wrote its file")
	}
	// --with-kubesphere appends to a sample, not to a running cluster's file
	msg, err := kk(t, "create", "config", "--from-cluster", "--kubeconfig", fromClusterAPIServer(t), "-f", out, "--with-kubesphere", "v3.4.1")
	if err == nil || !strings.Contains(err.Error(), "--from-cluster reads a running cluster") {
		t.Errorf("--with-kubesphere --from-cluster: %s %v", msg, err)
	}
}

func fromClusterHostNames(hs []*config.Host) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Name)
	}
	return out
}
