// Package session is the front door of a kk run: it turns a cluster config into engine hosts
// with SSH (or local) connectors, runs a list of tasks with the terminal view and the per-host
// log directory attached, and prints the summary. Commands in cmd/kk call this, nothing lower.
package session

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/connector"
	"github.com/kk-project/kk/pipeline/hostlog"
	"github.com/kk-project/kk/pipeline/progress"
)

// Options are the global flags every command shares.
type Options struct {
	Workdir         string // default ./kubekey
	Concurrency     int
	DryRun          bool
	Debug           bool
	KnownHosts      string // "" = ~/.ssh/known_hosts
	TrustOnFirstUse bool
	// A failed host is dropped from the rest of the run and the other hosts go on (see
	// pipeline.DropFailedHosts). ContinueOnError also runs the failed host's tasks that do not
	// depend on what failed (pipeline.ContinueOnFailure).
	ContinueOnError bool
	// MaxFailPercent stops the run at a cluster-wide (barrier) step when more than this
	// percentage of the hosts it waits for have failed; 0 = no limit.
	MaxFailPercent int
	Timeout        time.Duration
	Out            io.Writer // summary, tables (default os.Stdout)
	Err            io.Writer // progress (default os.Stderr)
}

// Session holds the hosts of one cluster for one command.
type Session struct {
	Cluster *config.Cluster
	Hosts   []*pipeline.Host
	opts    Options
}

// New builds the hosts of c. Nothing is dialed until a task needs the host.
func New(c *config.Cluster, o Options) (*Session, error) {
	if o.Workdir == "" {
		o.Workdir = "kubekey"
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Err == nil {
		o.Err = os.Stderr
	}
	s := &Session{Cluster: c, opts: o}
	for _, h := range c.Hosts {
		roles := make([]string, len(h.Roles))
		for i, r := range h.Roles {
			roles[i] = string(r)
		}
		s.Hosts = append(s.Hosts, pipeline.NewHost(h.Name, roles, s.dialer(h)))
	}
	return s, nil
}

// SSHConfig is how kk reaches host h (jump host included).
func (s *Session) SSHConfig(h *config.Host) connector.SSHConfig {
	cfg := connector.SSHConfig{
		Host: h.Name, Address: h.Address, Port: h.Port, User: h.User, Password: h.Password,
		PrivateKeyPath: h.PrivateKeyPath, KnownHostsPath: s.opts.KnownHosts,
		TrustOnFirstUse: s.opts.TrustOnFirstUse, DialTimeout: h.Timeout,
		Agent: h.Password == "" && h.PrivateKeyPath == "" && h.PrivateKey == "" && os.Getenv("SSH_AUTH_SOCK") != "",
	}
	if h.PrivateKey != "" {
		cfg.PrivateKey = []byte(h.PrivateKey)
	}
	if h.JumpHost != "" {
		if j := s.Cluster.Host(h.JumpHost); j != nil && j != h {
			jc := s.SSHConfig(j)
			cfg.Jump = &jc
		}
	}
	return cfg
}

func (s *Session) dialer(h *config.Host) pipeline.DialFunc {
	return func(ctx context.Context) (connector.Connector, error) {
		if config.IsLocalAddress(h.Address) {
			return connector.NewLocal(), nil
		}
		return connector.DialSSH(ctx, s.SSHConfig(h))
	}
}

// Close closes every opened connection.
func (s *Session) Close() error {
	for _, h := range s.Hosts {
		_ = h.Close()
	}
	return nil
}

// Run executes tasks as one named run: plan in dry-run, progress on stderr, one log per host
// under <workdir>/logs, and the summary table on stdout. The error lists every failure with
// its host and task.
func (s *Session) Run(ctx context.Context, name string, tasks []pipeline.Task) (*pipeline.Report, error) {
	g, err := pipeline.NewGraph(tasks, s.Hosts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if s.opts.DryRun {
		fmt.Fprintf(s.opts.Out, "Plan for %s (dry run: hosts are inspected, nothing is changed):\n", name)
		g.Plan(s.opts.Out)
	}
	logs, err := hostlog.New(s.opts.Workdir, name)
	if err != nil {
		return nil, err
	}
	defer logs.Close()
	policy := pipeline.DropFailedHosts
	if s.opts.ContinueOnError {
		policy = pipeline.ContinueOnFailure
	}
	var logger *slog.Logger
	if s.opts.Debug {
		logger = slog.New(slog.NewTextHandler(s.opts.Err, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	rep, runErr := pipeline.Run(ctx, g, pipeline.Options{
		Name: name, Concurrency: s.opts.Concurrency, DryRun: s.opts.DryRun, Timeout: s.opts.Timeout,
		Failure: policy, MaxFailPercent: s.opts.MaxFailPercent, Logger: logger,
		Observer: pipeline.NewObservers(progress.New(s.opts.Err, s.opts.Debug), logs),
	})
	if rep != nil {
		if s.opts.DryRun {
			fmt.Fprintln(s.opts.Out, "\nWhat would change:")
			rep.WritePlan(s.opts.Out)
			fmt.Fprintln(s.opts.Out)
		}
		rep.WriteTable(s.opts.Out)
		rel, _ := filepath.Abs(logs.Path)
		fmt.Fprintf(s.opts.Out, "logs: %s\n", rel)
	}
	return rep, runErr
}

// Facts returns the facts gathered for host name, if any.
func (s *Session) Facts(name string) *pipeline.Facts {
	for _, h := range s.Hosts {
		if h.Name == name {
			return h.Facts()
		}
	}
	return nil
}
