package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
)

// endpointHealth is one entry of `etcdctl endpoint health -w json`.
type endpointHealth struct {
	Endpoint string `json:"endpoint"`
	Health   bool   `json:"health"`
	Took     string `json:"took"`
	Error    string `json:"error"`
}

// Unhealthy reads the output of `etcdctl endpoint health --cluster -w json` and returns one
// line per member of s that is not healthy, naming the member and why; nil when all are.
func (s Spec) Unhealthy(stdout, stderr string) []string {
	var hs []endpointHealth
	if err := json.Unmarshal([]byte(strings.TrimSpace(stdout)), &hs); err != nil {
		msg := lastLines(stderr, 3)
		if msg == "" {
			msg = strings.TrimSpace(stdout)
		}
		return []string{"etcdctl endpoint health: " + msg}
	}
	byURL := map[string]endpointHealth{}
	for _, h := range hs {
		byURL[strings.TrimSuffix(h.Endpoint, "/")] = h
	}
	var bad []string
	for _, m := range s.Members {
		url := m.ClientURL(ClientPort(s.Etcd))
		h, ok := byURL[url]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%s (%s): not a started member of the cluster (missing from the member list)", m.Name, url))
		case !h.Health:
			why := h.Error
			if why == "" {
				why = "unhealthy"
			}
			bad = append(bad, fmt.Sprintf("%s (%s): %s", m.Name, url, why))
		}
	}
	return bad
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// probe runs the cluster health check once on t's host with the admin certificate.
func (s Spec) probe(ctx context.Context, t *pipeline.Target) ([]string, error) {
	res, err := t.Exec(ctx, etcdctlCmd(s.endpoints(), "endpoint", "health", "--cluster", "-w", "json"), connector.ExecOptions{Sudo: true})
	if err != nil {
		return nil, err
	}
	return s.Unhealthy(res.Stdout, res.Stderr), nil
}

func healthTask(s Spec) pipeline.Task {
	return pipeline.Task{
		Name: TaskHealth, Desc: "every etcd member healthy (etcdctl endpoint health --cluster)",
		Hosts: pipeline.FirstOf(string(config.RoleEtcd)), After: []string{TaskService}, Barrier: true,
		Timeout: HealthTimeout + time.Minute,
		Check: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			bad, err := s.probe(ctx, t)
			return len(bad) == 0, err
		},
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			bad, err := s.waitClusterHealthy(ctx, t, HealthTimeout, 3*time.Second)
			switch {
			case err != nil && len(bad) > 0: // ctx ended while waiting
				return false, fmt.Errorf("%w; last check: %s", err, strings.Join(bad, "; "))
			case err != nil:
				return false, err
			case len(bad) > 0:
				return false, fmt.Errorf("etcd is not healthy after %s: %s", HealthTimeout, strings.Join(bad, "; "))
			}
			return false, nil
		},
	}
}

// waitClusterHealthy probes the cluster's health from t's host every interval until every
// member is healthy. When timeout passes first, bad says which members are not; when ctx
// ends while waiting, err is ctx's error and bad what the last probe found.
func (s Spec) waitClusterHealthy(ctx context.Context, t *pipeline.Target, timeout, interval time.Duration) (bad []string, err error) {
	_, err = poll(ctx, timeout, interval, func() (bool, error) {
		var perr error
		bad, perr = s.probe(ctx, t)
		return len(bad) == 0, perr
	})
	return bad, err
}

// poll calls try every interval until it reports done or fails, or timeout has passed since
// the first call (done is then false); a ctx that ends while waiting ends it with ctx's
// error. kk's retry loop with backoff is pipeline/retry; this is the fixed-interval wait for
// a state on a host.
func poll(ctx context.Context, timeout, interval time.Duration, try func() (bool, error)) (bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		done, err := try()
		if err != nil || done {
			return done, err
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(interval):
		}
	}
}
