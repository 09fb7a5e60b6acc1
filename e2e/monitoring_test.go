//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kk-project/kk/e2e/testbed"
)

// monitoringNS is the namespace of kk's monitoring stack (KubeSphere's).
const monitoringNS = "kubesphere-monitoring-system"

// promQuery asks the Prometheus of the monitoring stack, through the API server's service
// proxy, for the instant vector of query: each sample's labels and value.
func promQuery(t *testing.T, kcfg, query string) ([]map[string]string, error) {
	t.Helper()
	out, err := kubectl(t, kcfg, "get", "--raw",
		"/api/v1/namespaces/"+monitoringNS+"/services/prometheus-k8s:web/proxy/api/v1/query?query="+url.QueryEscape(query))
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  []any
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Status != "success" {
		return nil, fmt.Errorf("query %s: %v: %.300s", query, err, out)
	}
	var samples []map[string]string
	for _, s := range r.Data.Result {
		m := s.Metric
		if len(s.Value) == 2 {
			m["__value__"] = fmt.Sprint(s.Value[1])
		}
		samples = append(samples, m)
	}
	return samples, nil
}

// monitoringWorks checks the monitoring stack of the file (spec.monitoring, spec.etcd.monitoring):
// its images came with the bundle, Prometheus runs with the file's retention on a claim of the
// default class, and it scrapes, each target up: node-exporter on every node, every kubelet
// (and its cAdvisor), every API server and every etcd member (over TLS with the client
// certificate kk put in a Secret), kube-state-metrics; the etcd leader is labelled.
func monitoringWorks(t *testing.T, bed *testbed.Bed, kcfg, exportOut string, etcdMembers int) {
	t.Helper()
	for _, img := range []string{"quay.io/prometheus/prometheus:", "quay.io/prometheus-operator/prometheus-operator:",
		"quay.io/prometheus-operator/prometheus-config-reloader:", "quay.io/prometheus/node-exporter:",
		"registry.k8s.io/kube-state-metrics/kube-state-metrics:", "quay.io/prometheus/alertmanager:"} {
		if !strings.Contains(exportOut, "image "+img) {
			t.Errorf("the bundle of a file with monitoring and alerting on lacks %s", img)
		}
	}
	mustKubectl(t, kcfg, "-n", monitoringNS, "wait", "--for=condition=Available", "prometheus/k8s", "alertmanager/main", "--timeout=300s")
	if out := mustKubectl(t, kcfg, "-n", monitoringNS, "get", "pvc", "-o",
		`jsonpath={range .items[*]}{.spec.storageClassName} {.status.phase} {.spec.resources.requests.storage}{"\n"}{end}`); strings.TrimSpace(out) != "local Bound 1Gi" {
		t.Errorf("Prometheus' volume claims: %q, want one of 1Gi bound on the default class local", out)
	}
	if out := mustKubectl(t, kcfg, "-n", monitoringNS, "get", "statefulset", "prometheus-k8s", "-o", "jsonpath={.spec.template.spec.containers[0].args}"); !strings.Contains(out, "--storage.tsdb.retention.time=1d") {
		t.Errorf("Prometheus without the file's retention 1d: %s", out)
	}
	// every machine is a control plane and a worker, etcd has etcdMembers; the kubelets are
	// scraped twice (their metrics and cAdvisor's), kube-state-metrics twice (the cluster's
	// objects and its own)
	nodes := len(bed.Machines)
	want := map[string]int{"node-exporter": nodes, "kubelet": 2 * nodes, "apiserver": nodes, "etcd": etcdMembers, "kube-state-metrics": 2}
	var up []map[string]string
	waitFor(t, 4*time.Minute, "every target up", func() bool {
		var err error
		if up, err = promQuery(t, kcfg, `up`); err != nil {
			t.Log(err)
			return false
		}
		got := map[string]int{}
		for _, s := range up {
			if s["__value__"] == "1" {
				got[s["job"]]++
			}
		}
		for job, n := range want {
			if got[job] != n {
				return false
			}
		}
		return true
	})
	var lines []string
	for _, s := range up {
		lines = append(lines, fmt.Sprintf("%s %s %s", s["job"], s["instance"], s["__value__"]))
	}
	slices.Sort(lines)
	t.Logf("Prometheus' targets (job instance up):\n%s", strings.Join(lines, "\n"))
	// the etcd member's role, from kk's recording rule
	waitFor(t, 2*time.Minute, "etcd's leader labelled", func() bool {
		leaders, err := promQuery(t, kcfg, `etcd_member:leader{leader="true"}`)
		return err == nil && len(leaders) == 1
	})
	// kube-state-metrics and node-exporter report what they should
	if s, err := promQuery(t, kcfg, `count(kube_node_info)`); err != nil || len(s) != 1 || s[0]["__value__"] != fmt.Sprint(nodes) {
		t.Errorf("kube_node_info of %d nodes: %v %v", nodes, s, err)
	}
	// (a test machine's / is an overlay, which node-exporter leaves out, as it does a
	// container's: its disk is mounted on /var/lib/containerd)
	if s, err := promQuery(t, kcfg, `count(count by (node) (node_filesystem_size_bytes{fstype!="tmpfs"}))`); err != nil || len(s) != 1 || s[0]["__value__"] != fmt.Sprint(nodes) {
		t.Errorf("filesystem sizes of every node: %v %v", s, err)
	}
}

// crashPod is a busybox pod that exits at once, again and again (CrashLoopBackOff).
const crashPod = `apiVersion: v1
kind: Pod
metadata: {name: e2e-crasher, namespace: default}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: crash
    image: %s
    imagePullPolicy: Never
    command: [sh, -c, "echo crashing on purpose; exit 3"]
`

// hookPod is the alert receiver of the test's file: busybox httpd whose CGI script keeps each
// POST's body (Alertmanager's webhook) in /tmp/hooks, behind the Service e2e-hook.
const hookPod = `apiVersion: v1
kind: Pod
metadata: {name: e2e-hook, namespace: default, labels: {app: e2e-hook}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: hook
    image: %s
    imagePullPolicy: Never
    command:
    - sh
    - -c
    - |
      mkdir -p /www/cgi-bin
      printf '#!/bin/sh\nhead -c "$CONTENT_LENGTH" >> /tmp/hooks\necho >> /tmp/hooks\nprintf "Content-Type: text/plain\\r\\n\\r\\nok\\n"\n' > /www/cgi-bin/hook
      chmod +x /www/cgi-bin/hook
      touch /tmp/hooks
      exec busybox httpd -f -p 8080 -h /www
    ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: e2e-hook, namespace: default}
spec:
  selector: {app: e2e-hook}
  ports: [{port: 8080, targetPort: 8080}]
`

// startCrasher starts the crashing pod and the alert receiver; it returns the pod's name.
func startCrasher(t *testing.T, kcfg, busybox string) string {
	t.Helper()
	mustKubectl(t, kcfg, "apply", "-f", writeClusterFile(t, "crasher.yaml", fmt.Sprintf(crashPod, busybox)),
		"-f", writeClusterFile(t, "hook.yaml", fmt.Sprintf(hookPod, busybox)))
	return "e2e-crasher"
}

// alertReachesReceiver checks alerting: kk's rule KubePodCrashLooping fires for the crashing
// pod, Alertmanager holds the alert (its API), and Alertmanager posted it to the file's
// webhook receiver. The pods go afterwards.
func alertReachesReceiver(t *testing.T, kcfg, pod string) {
	t.Helper()
	mustKubectl(t, kcfg, "wait", "--for=condition=Ready", "pod/e2e-hook", "--timeout=120s")
	waitFor(t, 6*time.Minute, "KubePodCrashLooping for "+pod+" in Alertmanager", func() bool {
		out, err := kubectl(t, kcfg, "get", "--raw", "/api/v1/namespaces/"+monitoringNS+"/services/alertmanager-main:web/proxy/api/v2/alerts?active=true")
		if err != nil {
			return false
		}
		var alerts []struct{ Labels map[string]string }
		if json.Unmarshal([]byte(out), &alerts) != nil {
			return false
		}
		return slices.ContainsFunc(alerts, func(a struct{ Labels map[string]string }) bool {
			return a.Labels["alertname"] == "KubePodCrashLooping" && a.Labels["pod"] == pod
		})
	})
	var hooks string
	waitFor(t, 2*time.Minute, "the alert posted to the webhook receiver", func() bool {
		hooks, _ = kubectl(t, kcfg, "exec", "e2e-hook", "--", "cat", "/tmp/hooks")
		return strings.Contains(hooks, `"alertname":"KubePodCrashLooping"`) && strings.Contains(hooks, `"pod":"`+pod+`"`)
	})
	if t.Failed() {
		t.Logf("the receiver got:\n%.2000s", hooks)
	}
	mustKubectl(t, kcfg, "delete", "pod", pod, "e2e-hook", "--wait=true", "--timeout=120s")
	mustKubectl(t, kcfg, "delete", "service", "e2e-hook")
}

// logPod writes one line with a marker of its own to its standard output, then sleeps.
const logPod = `apiVersion: v1
kind: Pod
metadata: {name: e2e-logger, namespace: default}
spec:
  terminationGracePeriodSeconds: 1
  nodeSelector: {kubernetes.io/hostname: n2}
  containers:
  - name: log
    image: %s
    imagePullPolicy: Never
    command: [sh, -c, "echo %s; exec sleep 3600"]
`

// logLineFound checks logging (spec.logging.enabled): the store and the collector's images came
// with the bundle, and a line a test pod writes is found through the log store's API (LogsQL)
// with the pod's namespace, name and container the collector added.
func logLineFound(t *testing.T, kcfg, exportOut, busybox string) {
	t.Helper()
	for _, img := range []string{"docker.io/victoriametrics/victoria-logs:", "docker.io/victoriametrics/vlagent:"} {
		if !strings.Contains(exportOut, "image "+img) {
			t.Errorf("the bundle of a file with logging on lacks %s", img)
		}
	}
	marker := fmt.Sprintf("kk-e2e-log-marker-%d", time.Now().UnixNano())
	mustKubectl(t, kcfg, "apply", "-f", writeClusterFile(t, "logger.yaml", fmt.Sprintf(logPod, busybox, marker)))
	mustKubectl(t, kcfg, "wait", "--for=condition=Ready", "pod/e2e-logger", "--timeout=120s")
	query := `_time:15m kubernetes.pod_namespace:=default kubernetes.pod_name:=e2e-logger "` + marker + `"`
	var line string
	waitFor(t, 3*time.Minute, "the pod's line in the log store", func() bool {
		out, err := kubectl(t, kcfg, "get", "--raw", "/api/v1/namespaces/kubesphere-logging-system/services/victoria-logs:http/proxy/select/logsql/query?limit=1&query="+url.QueryEscape(query))
		line = strings.TrimSpace(out)
		return err == nil && strings.Contains(line, marker)
	})
	var got map[string]string
	if err := json.Unmarshal([]byte(line), &got); err != nil || got["kubernetes.container_name"] != "log" || got["_msg"] != marker {
		t.Errorf("the stored line %q: %v", line, err)
	}
	mustKubectl(t, kcfg, "delete", "pod", "e2e-logger", "--wait=true", "--timeout=120s")
}
