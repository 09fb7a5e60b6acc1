package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/kk-project/kk/pipeline/connector"
)

// DialFunc opens the connection to one host. The engine calls it when a task needs the host
// and no connection is open: once per host when all goes well, again after a failed dial or a
// connection that broke (see connector.TransientError).
type DialFunc func(ctx context.Context) (connector.Connector, error)

// Host is one machine the engine runs tasks on.
type Host struct {
	Name  string
	Roles []string

	dial DialFunc

	mu      sync.Mutex
	conn    connector.Connector
	dialing *dialCall // the dial in flight, shared by every task that needs the host meanwhile
	facts   *Facts
}

// dialCall is one dial in flight; done is closed when conn and err are set.
type dialCall struct {
	done chan struct{}
	conn connector.Connector
	err  error
}

// NewHost returns a host that is dialed lazily, the first time a task needs it.
func NewHost(name string, roles []string, dial DialFunc) *Host {
	return &Host{Name: name, Roles: roles, dial: dial}
}

// Has reports whether the host holds role r.
func (h *Host) Has(r string) bool { return slices.Contains(h.Roles, r) }

// Connector returns the host's shared connection, dialing it when none is open. Tasks that
// ask while a dial is in flight share its outcome. A failed dial is not remembered: the next
// call (a retried task) dials again.
func (h *Host) Connector(ctx context.Context) (connector.Connector, error) {
	return h.connect(ctx, nil)
}

// connect is Connector with the run's dial gate (nil: no bound on simultaneous dials).
func (h *Host) connect(ctx context.Context, gate *dialGate) (connector.Connector, error) {
	for {
		h.mu.Lock()
		if h.conn != nil {
			c := h.conn
			h.mu.Unlock()
			return c, nil
		}
		if h.dial == nil {
			h.mu.Unlock()
			return nil, fmt.Errorf("host %s: no connector configured", h.Name)
		}
		if call := h.dialing; call != nil {
			h.mu.Unlock()
			select {
			case <-call.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if call.err != nil && isContextErr(call.err) && ctx.Err() == nil {
				continue // the dialing task's own deadline or cancellation: dial for this one
			}
			return call.conn, call.err
		}
		call := &dialCall{done: make(chan struct{})}
		h.dialing = call
		h.mu.Unlock()

		call.conn, call.err = gate.dial(ctx, h.dial)
		if call.err != nil {
			call.conn = nil // never keep a typed nil behind the interface
		}
		h.mu.Lock()
		h.dialing = nil
		h.conn = call.conn
		h.mu.Unlock()
		close(call.done)
		return call.conn, call.err
	}
}

// forget drops c as the host's connection (closing it) when it still is: after a transient
// connection error the next task, or the retry, dials afresh. A newer connection is kept.
func (h *Host) forget(c connector.Connector) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c != nil && h.conn == c {
		_ = h.conn.Close()
		h.conn = nil
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// Close closes the host's connection if it was opened.
func (h *Host) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn == nil {
		return nil
	}
	err := h.conn.Close()
	h.conn = nil
	return err
}

// Facts returns what a facts task gathered on the host, or nil before that.
func (h *Host) Facts() *Facts {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.facts
}

// SetFacts records gathered facts.
// DiskUsedPercent is how full /var/lib's filesystem is as kubelet counts it (what is not
// available to unprivileged users, of the size: its image garbage collection and eviction
// thresholds), 0 when unknown.
func (f *Facts) DiskUsedPercent() int {
	if f == nil || f.DiskSizeMiB <= 0 {
		return 0
	}
	return 100 - 100*f.DiskFreeMiB/f.DiskSizeMiB
}

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
	DiskFreeMiB int    // on the filesystem of /var/lib, free to unprivileged users
	DiskSizeMiB int    // the size of that filesystem
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
	// NvidiaPCI are the host's NVIDIA display and 3D controllers on its PCI bus, found with
	// or without a driver: "ADDRESS DEVICE-ID" ("0000:3b:00.0 0x20b0").
	NvidiaPCI []string
}

// NvidiaGPU reports whether the facts list NVIDIA GPUs on the host's PCI bus.
func (f *Facts) NvidiaGPU() bool { return f != nil && len(f.NvidiaPCI) > 0 }
