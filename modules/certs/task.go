package certs

import (
	"context"
	"fmt"
	"io"
	"strings"
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

// TaskCAExpiry is the read-only task of kk create cluster's precheck phase that warns about
// the CAs close to expiry.
const TaskCAExpiry = "certs/ca-expiry"

// CAExpiryTask reads the certificates on every control-plane and etcd host (none on new
// machines) and writes to w, before the run changes anything, a warning for each CA that
// expires within a year (CAWarning): kk never re-issues a CA, so its replacement is the
// user's to plan.
func CAExpiryTask(etcdType string, w io.Writer) pipeline.Task {
	if w == nil {
		w = io.Discard
	}
	var mu sync.Mutex
	script := Script(etcdType)
	return pipeline.Task{
		Name: TaskCAExpiry, Desc: "warn about CAs that expire within a year",
		Hosts:    pipeline.Role(string(config.RoleControlPlane), string(config.RoleEtcd)),
		ReadOnly: true, Timeout: time.Minute,
		Run: func(ctx context.Context, t *pipeline.Target) (bool, error) {
			out, err := t.Sudo(ctx, script)
			if err != nil {
				return false, fmt.Errorf("read the certificates (as root): %w", err)
			}
			files, _ := ParseOutput(out)
			rows, _ := Rows(t.Name, files, time.Now(), etcdType)
			if warns := CAWarnings(rows); len(warns) > 0 {
				mu.Lock()
				fmt.Fprintln(w, strings.Join(warns, "\n"))
				mu.Unlock()
			}
			return false, nil
		},
	}
}
