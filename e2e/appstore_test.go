//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/e2e/images"
	"github.com/kk-project/kk/e2e/mirror"
	"github.com/kk-project/kk/modules/addons"
)

// exampleChart is the chart of examples/charts/hello, which the test's ClusterConfiguration
// loads into the app store (spec.openpitrix.store.charts).
var exampleChart = func() string {
	p, err := filepath.Abs("../examples/charts/hello")
	if err != nil {
		panic(err)
	}
	return p
}()

// chartFromAppStore checks the app store (spec.openpitrix.store): ChartMuseum's image and the
// file's chart came with the bundle, the repository inside the cluster lists the chart, and
// helm (kk's chart addon, the Helm SDK) installs it from that repository, reached as a user
// reaches it from their machine: through kubectl port-forward.
func chartFromAppStore(t *testing.T, kcfg, exportOut string) {
	t.Helper()
	if !strings.Contains(exportOut, "image ghcr.io/helm/chartmuseum:") || !regexp.MustCompile(`chart hello 0\.1\.0`).MatchString(exportOut) {
		t.Errorf("the bundle of a file with the app store on lacks ChartMuseum's image or the chart hello 0.1.0:\n%s", exportOut)
	}
	index := mustKubectl(t, kcfg, "get", "--raw", "/api/v1/namespaces/kubesphere-system/services/http:kk-app-store:http/proxy/index.yaml")
	if !strings.Contains(index, "name: hello") || !strings.Contains(index, "version: 0.1.0") {
		t.Fatalf("the app store's index.yaml does not list hello 0.1.0:\n%s", index)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(envOr("KK_MIRROR_DIR", images.DefaultMirrorDir), mirror.KubernetesPath(e2eK8s, "kubectl"))
	pf := exec.CommandContext(ctx, bin, "--kubeconfig", kcfg, "-n", "kubesphere-system", "port-forward", "--address", "127.0.0.1", "svc/kk-app-store", ":8080")
	stdout, err := pf.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := pf.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pf.Process.Kill(); _ = pf.Wait() }()
	// "Forwarding from 127.0.0.1:PORT -> 8080"
	line, err := bufio.NewReader(stdout).ReadString('\n')
	m := regexp.MustCompile(`127\.0\.0\.1:(\d+)`).FindStringSubmatch(line)
	if err != nil || m == nil {
		t.Fatalf("kubectl port-forward: %q %v", line, err)
	}
	repo := "http://127.0.0.1:" + m[1]
	cfg, err := clientcmd.BuildConfigFromFlags("", kcfg)
	if err != nil {
		t.Fatal(err)
	}
	addon := config.Addon{Name: "e2e-hello", Namespace: "e2e-apps", Sources: config.AddonSources{Chart: config.Chart{
		Name: "hello", Version: "0.1.0", Repo: repo, Wait: true}}}
	res, err := addons.InstallOne(ctx, cfg, addon, addons.Options{WaitTimeout: time.Minute, Log: t.Logf})
	if err != nil || res.Action != "installed" {
		t.Fatalf("helm install hello from the app store at %s: %+v %v", repo, res, err)
	}
	if out := mustKubectl(t, kcfg, "-n", "e2e-apps", "get", "configmap", "e2e-hello-hello", "-o", "jsonpath={.data.greeting}"); out == "" {
		t.Errorf("the chart's ConfigMap has no greeting")
	}
	mustKubectl(t, kcfg, "delete", "namespace", "e2e-apps", "--wait=true", "--timeout=120s")
}
