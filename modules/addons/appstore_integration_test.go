//go:build integration

package addons_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/artifacts/charts"
	"github.com/kk-project/kk/artifacts/versions"
	"github.com/kk-project/kk/e2e/apiserver"
	"github.com/kk-project/kk/e2e/images"
	"github.com/kk-project/kk/e2e/mirror"
	"github.com/kk-project/kk/modules/addons"
	"github.com/kk-project/kk/modules/platform"
)

// startChartMuseum runs the ChartMuseum binary $KK_CHARTMUSEUM, by default the mirror's build
// of the version table's release (make integration builds the mirror first), on a loopback
// port with local storage, as the app store runs it, and returns its base URL once /health
// answers.
func startChartMuseum(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("KK_CHARTMUSEUM")
	if bin == "" {
		dir := os.Getenv("KK_MIRROR_DIR")
		if dir == "" {
			dir = images.DefaultMirrorDir
		}
		bin = filepath.Join(dir, mirror.ChartMuseumPath(versions.DefaultAddons().ChartMuseum))
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("ChartMuseum binary: %v (make mirror builds it; KK_CHARTMUSEUM names another)", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var logs bytes.Buffer
	cmd := exec.Command(bin, fmt.Sprintf("--port=%d", port), "--storage=local", "--storage-local-rootdir="+t.TempDir(), "--disable-metrics")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("chartmuseum's log:\n%s", logs.String())
		}
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("chartmuseum did not answer /health: %v\n%s", err, logs.String())
		}
	}
}

// The app store's repository with a real ChartMuseum: kk's upload puts the chart once (a
// second run uploads nothing), index.yaml lists it with the archive's digest, the archive it
// serves loads with Helm's loader as the same chart, and kk's chart addon installs it from the
// repository into a real API server, as a cluster's addon would from the app store's Service.
func TestChartFromAppStore(t *testing.T) {
	base := startChartMuseum(t)
	ctx := context.Background()
	a, err := charts.Package("testdata/tinychart", filepath.Join(t.TempDir(), "pkg"))
	if err != nil {
		t.Fatal(err)
	}
	repo := platform.HTTPRepo(base, nil)
	up, kept, err := platform.Upload(ctx, repo, []charts.Archive{a}, os.ReadFile)
	if err != nil || len(up) != 1 || len(kept) != 0 {
		t.Fatalf("first upload: %v, kept %v, %v", up, kept, err)
	}
	up, kept, err = platform.Upload(ctx, repo, []charts.Archive{a}, os.ReadFile)
	if err != nil || len(up) != 0 || len(kept) != 0 {
		t.Fatalf("second upload: %v, kept %v, %v: want nothing uploaded", up, kept, err)
	}
	t.Logf("uploaded %s (sha256 %s) once; a second run uploaded nothing", a.Chart, a.SHA256)

	resp, err := http.Get(base + "/index.yaml")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var index struct {
		Entries map[string][]struct {
			Version string
			Digest  string
			URLs    []string
		}
	}
	if err := yaml.Unmarshal(body, &index); err != nil {
		t.Fatalf("index.yaml: %v\n%s", err, body)
	}
	e := index.Entries[a.Name]
	if len(e) != 1 || e[0].Version != a.Version || e[0].Digest != a.SHA256 || len(e[0].URLs) != 1 {
		t.Fatalf("index.yaml entries of %s: %+v\n%s", a.Name, e, body)
	}
	t.Logf("index.yaml: %s %s digest %s at %s", a.Name, e[0].Version, e[0].Digest, e[0].URLs[0])
	resp, err = http.Get(base + "/" + strings.TrimPrefix(e[0].URLs[0], "/"))
	if err != nil {
		t.Fatal(err)
	}
	tgz, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	ch, err := loader.LoadArchive(bytes.NewReader(tgz))
	if err != nil || ch.Name() != a.Name || ch.Metadata.Version != a.Version || len(ch.Templates) == 0 {
		t.Fatalf("the served archive loads as %v, %v", ch, err)
	}
	t.Logf("pulled %s (%d bytes) and loaded chart %s %s with %d templates", e[0].URLs[0], len(tgz), ch.Name(), ch.Metadata.Version, len(ch.Templates))

	s := apiserver.Start(t)
	addon := config.Addon{Name: "tiny", Namespace: "kk-appstore", Sources: config.AddonSources{Chart: config.Chart{
		Name: a.Name, Version: a.Version, Repo: base, Wait: true}}}
	res, err := addons.Install(ctx, s.Config, []config.Addon{addon}, addons.Options{WaitTimeout: time.Minute, Log: t.Logf})
	if err != nil || len(res) != 1 || res[0].Action != "installed" {
		t.Fatalf("install from the repository: %+v, %v", res, err)
	}
	cs := kubernetes.NewForConfigOrDie(s.Config)
	if _, err := cs.CoreV1().ConfigMaps("kk-appstore").Get(ctx, "tiny-settings", metav1.GetOptions{}); err != nil {
		t.Fatalf("the chart's ConfigMap: %v", err)
	}
	t.Logf("kk's chart addon installed %s %s from %s: release %s", a.Name, a.Version, base, res[0].Action)
}
