package addons

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kk-project/kk/api/config"
)

// TestYAMLValues: sources.yaml.values are substituted into the manifests as .Values (nested
// keys as for charts); a manifest naming a key that is not given fails naming the file; an
// addon without values is applied as written ("{{" in it left alone).
func TestYAMLValues(t *testing.T) {
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "app.yaml")
	os.WriteFile(tmpl, []byte(`apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Values.name }}
data:
  image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
  replicas: "{{ .Values.replicas }}"
`), 0o644)
	a := config.Addon{Name: "app", Sources: config.AddonSources{Yaml: config.AddonYaml{Path: []string{tmpl},
		Values: []string{"name=web", "image.repository=reg.local/web", "image.tag=v2,replicas=3"}}}}
	objs, err := yamlObjects(context.Background(), a, Options{HTTPTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].GetName() != "web" {
		t.Fatalf("objects %v", objs)
	}
	data, _, _ := unstructured.NestedStringMap(objs[0].Object, "data")
	if data["image"] != "reg.local/web:v2" || data["replicas"] != "3" {
		t.Errorf("data %v", data)
	}

	a.Sources.Yaml.Values = []string{"name=web"}
	if _, err := yamlObjects(context.Background(), a, Options{HTTPTimeout: time.Second}); err == nil ||
		!strings.Contains(err.Error(), tmpl) || !strings.Contains(err.Error(), "sources.yaml.values") {
		t.Errorf("a missing value: %v", err)
	}
	a.Sources.Yaml.Values = []string{"novalue"}
	if _, err := yamlObjects(context.Background(), a, Options{HTTPTimeout: time.Second}); err == nil || !strings.Contains(err.Error(), `sources.yaml.values "novalue"`) {
		t.Errorf("a malformed value: %v", err)
	}

	literal := filepath.Join(dir, "literal.yaml")
	os.WriteFile(literal, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lit}\ndata: {tpl: \"{{ .Values.x }}\"}\n"), 0o644)
	a = config.Addon{Name: "lit", Sources: config.AddonSources{Yaml: config.AddonYaml{Path: []string{literal}}}}
	objs, err = yamlObjects(context.Background(), a, Options{HTTPTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _ := unstructured.NestedString(objs[0].Object, "data", "tpl"); v != "{{ .Values.x }}" {
		t.Errorf("an addon without values was rendered: %q", v)
	}
}
