//go:build integration

package addons_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/e2e/apiserver"
	"github.com/kk-project/kk/modules/addons"
)

func TestAddons(t *testing.T) {
	s := apiserver.Start(t)
	ctx := context.Background()
	cs := kubernetes.NewForConfigOrDie(s.Config)
	o := addons.Options{WaitTimeout: time.Minute, Log: t.Logf}

	// A YAML addon from a directory and one from a URL (served on loopback).
	remote, _ := os.ReadFile("testdata/yaml/20-config.yaml")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.ReplaceAll(string(remote), "addon-config", "remote-config")))
	}))
	defer srv.Close()
	chart := config.Addon{Name: "tiny", Namespace: "kk-charts", Retries: 1, Delay: 1,
		Sources: config.AddonSources{Chart: config.Chart{Path: "testdata/tinychart", ValuesFile: "testdata/values.yaml",
			Values: []string{"extra.color=blue"}, Wait: true}}}
	list := []config.Addon{
		{Name: "dir", Sources: config.AddonSources{Yaml: config.AddonYaml{Path: []string{"testdata/yaml"}}}},
		{Name: "url", Namespace: "kk-remote", Sources: config.AddonSources{Yaml: config.AddonYaml{Path: []string{srv.URL + "/x.yaml"}}}},
		chart,
	}

	ok, why, err := addons.Converged(ctx, s.Config, list, o)
	if err != nil || ok {
		t.Fatalf("before install: Converged = %v (%s), %v", ok, why, err)
	}
	res, err := addons.Install(ctx, s.Config, list, o)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	for _, r := range res {
		t.Logf("%s (%s): %s", r.Addon, r.Kind, r.Action)
		if !r.Changed {
			t.Fatalf("first install of %s changed nothing: %+v", r.Addon, r)
		}
	}
	if res[2].Action != "installed" {
		t.Fatalf("chart: %+v", res[2])
	}
	cm, err := cs.CoreV1().ConfigMaps("kk-charts").Get(ctx, "tiny-settings", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("chart's ConfigMap: %v", err)
	}
	if cm.Data["greeting"] != "bonjour" || cm.Data["color"] != "blue" || cm.Labels["app.kubernetes.io/managed-by"] != "Helm" ||
		cm.Annotations["meta.helm.sh/release-name"] != "tiny" {
		t.Fatalf("chart's ConfigMap: data %v labels %v annotations %v", cm.Data, cm.Labels, cm.Annotations)
	}
	if _, err := cs.CoreV1().ConfigMaps("kk-remote").Get(ctx, "remote-config-2", metav1.GetOptions{}); err != nil {
		t.Fatalf("URL addon's ConfigMap (defaulted to the addon's namespace): %v", err)
	}
	revs, err := addons.ReleaseRevisions(s.Config, chart)
	if err != nil || strings.Join(revs, ",") != "1:deployed" {
		t.Fatalf("release history after install: %v, %v", revs, err)
	}

	// Re-run: converged, nothing changes, no new Helm revision.
	ok, why, err = addons.Converged(ctx, s.Config, list, o)
	if err != nil || !ok {
		t.Fatalf("after install: Converged = %v (%s), %v", ok, why, err)
	}
	res, err = addons.Install(ctx, s.Config, list, o)
	if err != nil {
		t.Fatalf("re-install: %v", err)
	}
	for _, r := range res {
		if r.Changed {
			t.Fatalf("re-install changed %s: %+v", r.Addon, r)
		}
	}
	if res[2].Action != "unchanged" {
		t.Fatalf("chart re-install: %+v", res[2])
	}
	if revs, _ := addons.ReleaseRevisions(s.Config, chart); strings.Join(revs, ",") != "1:deployed" {
		t.Fatalf("release history after re-install: %v", revs)
	}

	// A changed value is an upgrade to revision 2.
	chart.Sources.Chart.Values = []string{"extra.color=green"}
	r, err := addons.InstallOne(ctx, s.Config, chart, o)
	if err != nil || r.Action != "upgraded" {
		t.Fatalf("upgrade: %+v, %v", r, err)
	}
	if revs, _ := addons.ReleaseRevisions(s.Config, chart); strings.Join(revs, ",") != "1:superseded,2:deployed" {
		t.Fatalf("release history after upgrade: %v", revs)
	}
	cm, _ = cs.CoreV1().ConfigMaps("kk-charts").Get(ctx, "tiny-settings", metav1.GetOptions{})
	if cm.Data["color"] != "green" {
		t.Fatalf("after upgrade: %v", cm.Data)
	}

	// An addon with a bad path fails naming the addon and the path.
	bad := config.Addon{Name: "broken", Sources: config.AddonSources{Yaml: config.AddonYaml{Path: []string{"testdata/missing.yaml"}}}}
	_, err = addons.Install(ctx, s.Config, []config.Addon{bad}, o)
	if err == nil || !strings.Contains(err.Error(), "addon broken") || !strings.Contains(err.Error(), "testdata/missing.yaml") {
		t.Fatalf("bad path: %v", err)
	}
	badChart := config.Addon{Name: "nochart", Sources: config.AddonSources{Chart: config.Chart{Path: "testdata/nochart"}}}
	_, err = addons.Install(ctx, s.Config, []config.Addon{badChart}, o)
	if err == nil || !strings.Contains(err.Error(), "addon nochart") || !strings.Contains(err.Error(), "testdata/nochart") {
		t.Fatalf("bad chart path: %v", err)
	}
}
