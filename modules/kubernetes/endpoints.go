package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

// TaskEtcdEndpoints keeps the API servers' etcd members current; TaskEtcdConfigMap keeps them
// in the kubeadm-config ConfigMap before control planes join.
const (
	TaskEtcdEndpoints = "kubernetes/etcd-endpoints"
	TaskEtcdConfigMap = "kubernetes/etcd-configmap"
)

const apiServerManifest = "/etc/kubernetes/manifests/kube-apiserver.yaml"

// EtcdEndpointsTask makes the API servers reach every etcd member of the config (etcd types
// kubekey and external) after members were added or removed (kk add nodes, kk delete node):
// the cluster's ClusterConfiguration in the kubeadm-config ConfigMap, from which kubeadm
// writes the API server of a joining control plane and of an upgrade, and each control
// plane's --etcd-servers, one API server restarted at a time and waited ready.
func EtcdEndpointsTask(s Spec, sel pipeline.Selector, after []string) pipeline.Task {
	want := strings.Join(s.Etcd.Endpoints, ",")
	manifestCurrent := etcdServersAre(want, apiServerManifest)
	var one sync.Mutex
	return pipeline.Task{
		Name: TaskEtcdEndpoints, Desc: "the API servers reach every etcd member (kubeadm-config, --etcd-servers; one control plane at a time)",
		Hosts: sel, After: after, Timeout: 10 * time.Minute,
		Skip: skipStacked(s),
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if t.Name == s.FirstControlPlane {
				// a dry run before kubeadm init: no ConfigMap (nor kubectl) to read yet
				if none, err := noAPIYet(ctx, t); err != nil || none {
					return false, err
				}
				if ok, err := s.configMapEndpointsCurrent(ctx, t); err != nil || !ok {
					return false, err
				}
			}
			return t.Test(ctx, manifestCurrent)
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			changed := false
			if t.Name == s.FirstControlPlane {
				ok, err := s.configMapEndpointsCurrent(ctx, t)
				if err != nil {
					return false, err
				}
				if !ok {
					if err := s.setConfigMapEndpoints(ctx, t); err != nil {
						return false, err
					}
					changed = true
				}
			}
			if ok, err := t.Test(ctx, manifestCurrent); err != nil || ok {
				return changed, err
			}
			one.Lock()
			defer one.Unlock()
			t.Log.Info("kube-apiserver --etcd-servers=" + want)
			local := LocalAPIReady(s.BindPort)
			_, err := t.Sudo(ctx, setEtcdServers(want, apiServerManifest)+` && `+
				`for i in $(seq 150); do if pgrep -af kube-apiserver | grep -qF -- `+connector.Quote("--etcd-servers="+want)+` && `+local+`; then sleep 6; exit 0; fi; sleep 2; done; `+
				`echo "kube-apiserver did not come back ready with the new etcd members" >&2; exit 1`)
			return true, err
		},
	}
}

// etcdConfigMapTask writes every etcd member of the config into the kubeadm-config ConfigMap
// on the first control plane before the other control planes join (kk add nodes with
// members added since kubeadm init): kubeadm join writes the joining API server's
// --etcd-servers from it, so a joined API server needs no restart for the new members. On a
// fresh cluster kubeadm init wrote them already.
func etcdConfigMapTask(s Spec, sel pipeline.Selector) pipeline.Task {
	return pipeline.Task{
		Name: TaskEtcdConfigMap, Desc: "the kubeadm-config ConfigMap lists every etcd member (before control planes join)",
		Hosts: sel, After: []string{TaskInit}, Skip: skipStacked(s),
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			if none, err := noAPIYet(ctx, t); err != nil || none {
				return false, err
			}
			return s.configMapEndpointsCurrent(ctx, t)
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			return true, s.setConfigMapEndpoints(ctx, t)
		},
	}
}

// etcdServersAre is a shell test that the API server manifest at path has --etcd-servers=want
// (kubeadm writes each flag as a line "    - --flag=value").
func etcdServersAre(want, path string) string {
	return "grep -qxF -- " + connector.Quote("    - --etcd-servers="+want) + " " + path
}

// setEtcdServers is the shell command that sets --etcd-servers=want in the manifest at path.
func setEtcdServers(want, path string) string {
	return `sed -i 's#^    - --etcd-servers=.*$#    - --etcd-servers=` + want + `#' ` + path
}

func skipStacked(s Spec) string {
	if s.Etcd.Type == config.EtcdKubeadm || len(s.Etcd.Endpoints) == 0 {
		return "stacked etcd: kubeadm keeps its members"
	}
	return ""
}

// clusterConfigMap reads the ClusterConfiguration of the kubeadm-config ConfigMap.
func clusterConfigMap(ctx context.Context, t *pipeline.Target) (map[string]any, error) {
	out, err := t.Sudo(ctx, Kubectl+" -n kube-system get configmap kubeadm-config -o jsonpath='{.data.ClusterConfiguration}'")
	if err != nil {
		return nil, fmt.Errorf("read the kubeadm-config ConfigMap: %w", err)
	}
	var cc map[string]any
	if err := yaml.Unmarshal([]byte(out), &cc); err != nil {
		return nil, fmt.Errorf("kubeadm-config ClusterConfiguration: %w", err)
	}
	return cc, nil
}

func externalEtcdOf(cc map[string]any) map[string]any {
	e, _ := cc["etcd"].(map[string]any)
	ext, _ := e["external"].(map[string]any)
	return ext
}

func (s Spec) configMapEndpointsCurrent(ctx context.Context, t *pipeline.Target) (bool, error) {
	cc, err := clusterConfigMap(ctx, t)
	if err != nil {
		return false, err
	}
	var have []string
	if l, ok := externalEtcdOf(cc)["endpoints"].([]any); ok {
		for _, e := range l {
			have = append(have, fmt.Sprint(e))
		}
	}
	return slices.Equal(have, s.Etcd.Endpoints), nil
}

// setConfigMapEndpoints writes the endpoints into the kubeadm-config ConfigMap.
func (s Spec) setConfigMapEndpoints(ctx context.Context, t *pipeline.Target) error {
	cc, err := clusterConfigMap(ctx, t)
	if err != nil {
		return err
	}
	ext := externalEtcdOf(cc)
	if ext == nil {
		return fmt.Errorf("the kubeadm-config ConfigMap has no external etcd (etcd.type changed?)")
	}
	ext["endpoints"] = s.Etcd.Endpoints
	data, err := yaml.Marshal(cc)
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{"data": map[string]string{"ClusterConfiguration": string(data)}})
	if err != nil {
		return err
	}
	res, err := t.Exec(ctx, Kubectl+" -n kube-system patch configmap kubeadm-config --type merge --patch-file /dev/stdin",
		connector.ExecOptions{Sudo: true, Stdin: patch})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		return fmt.Errorf("update the etcd endpoints of the kubeadm-config ConfigMap: %w", err)
	}
	return nil
}
