package pipeline

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/kk-project/kk/pipeline/connector"
)

// DialFunc opens the connection to one host. The engine calls it at most once per host.
type DialFunc func(ctx context.Context) (connector.Connector, error)

// Host is one machine the engine runs tasks on.
type Host struct {
	Name  string
	Roles []string

	dial DialFunc

	mu     sync.Mutex
	dialed bool
	conn   connector.Connector
	err    error
	facts  *Facts
}

// NewHost returns a host that is dialed lazily, the first time a task needs it.
func NewHost(name string, roles []string, dial DialFunc) *Host {
	return &Host{Name: name, Roles: roles, dial: dial}
}

// Has reports whether the host holds role r.
func (h *Host) Has(r string) bool { return slices.Contains(h.Roles, r) }

// Connector dials the host once and returns the shared connector; a failed dial is remembered,
// so every later task on the host fails fast with the same reason.
func (h *Host) Connector(ctx context.Context) (connector.Connector, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.dialed {
		if h.dial == nil {
			h.err = fmt.Errorf("host %s: no connector configured", h.Name)
		} else {
			h.conn, h.err = h.dial(ctx)
			if h.err != nil {
				h.conn = nil // never keep a typed nil behind the interface
			}
			if h.err != nil && ctx.Err() != nil {
				// a cancelled dial is not a property of the host: allow a later retry
				return nil, h.err
			}
		}
		h.dialed = true
	}
	return h.conn, h.err
}

// Close closes the host's connection if it was opened.
func (h *Host) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn == nil {
		return nil
	}
	err := h.conn.Close()
	h.conn, h.dialed = nil, false
	return err
}

// Facts returns what a facts task gathered on the host, or nil before that.
func (h *Host) Facts() *Facts {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.facts
}

// SetFacts records gathered facts.
func (h *Host) SetFacts(f *Facts) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.facts = f
}

// Facts is what kk knows about a host after gathering: typed, never a string-keyed map.
type Facts struct {
	Hostname    string
	OSID        string // "debian", "ubuntu", "centos", ...
	OSVersion   string
	OSPretty    string
	Kernel      string
	Arch        string // amd64, arm64 (normalised from uname -m)
	CPUs        int
	MemoryMiB   int
	SwapMiB     int
	DiskFreeMiB int    // on the filesystem of /var/lib
	Time        int64  // host clock, unix seconds, when gathered
	TimeSkewSec int64  // host clock minus kk's clock
	Init        string // "systemd" or what PID 1 is
	// Container is the container technology the host runs in ("systemd-nspawn",
	// "docker", "lxc", ...; "" on a VM or bare metal). Modules adapt to it as kind
	// does: containerd restricts oom_score_adj, kube-proxy leaves conntrack alone.
	Container      string
	CgroupVersion  int    // 1 or 2
	PackageManager string // apt-get, dnf, yum, zypper or ""
	Commands       map[string]bool
	ListeningPorts []int
	Privileged     bool // the connector can run commands as root
}
