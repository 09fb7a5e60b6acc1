package certs

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/pipeline"
)

// TaskName is the name of the reading task.
const TaskName = "certs/read"

// Collector keeps what the reading task found on each host, for the command to report once
// the run is over.
type Collector struct {
	etcdType string

	mu    sync.Mutex
	hosts map[string]hostFiles
}

type hostFiles struct {
	files Files
	timer Timer
}

// NewCollector returns a collector for a cluster whose etcd is of etcdType.
func NewCollector(etcdType string) *Collector {
	return &Collector{etcdType: etcdType, hosts: map[string]hostFiles{}}
}

// Task reads the certificates and the renewal timer's state on every control-plane and etcd
// host, in one command run as root. It changes nothing (it runs in dry-run too).
func (c *Collector) Task() pipeline.Task {
	script := Script(c.etcdType)
	return pipeline.Task{
		Name:     TaskName,
		Desc:     "read the certificates and " + TimerUnit + "'s state (no keys)",
		Hosts:    pipeline.Role(string(config.RoleControlPlane), string(config.RoleEtcd)),
		ReadOnly: true,
		Retries:  1,
		Timeout:  time.Minute,
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			out, err := t.Sudo(ctx, script)
			if err != nil {
				return false, fmt.Errorf("read certificates (as root): %w", err)
			}
			files, timer := ParseOutput(out)
			c.mu.Lock()
			c.hosts[t.Name] = hostFiles{files, timer}
			c.mu.Unlock()
			return false, nil
		},
	}
}

// Report is what was found on one host.
type Report struct {
	Host string
	// Read is false when the task did not read the host (it failed: see the run's report).
	Read     bool
	Rows     []Row
	Problems []error // files that are no certificate, naming host and path
	Timer    Timer
}

// Reports returns, for each of hosts in that order, its rows at time now.
func (c *Collector) Reports(hosts []string, now time.Time) []Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Report, 0, len(hosts))
	for _, h := range hosts {
		hf, ok := c.hosts[h]
		r := Report{Host: h, Read: ok, Timer: hf.timer}
		if ok {
			r.Rows, r.Problems = Rows(h, hf.files, now, c.etcdType)
		}
		out = append(out, r)
	}
	return out
}
