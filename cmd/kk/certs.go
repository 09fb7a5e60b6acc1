package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/certs"
	"github.com/kk-project/kk/modules/etcd"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/modules/kubernetes"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/session"
)

func newCertsCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "certs",
		Short: "Inspect the cluster's certificates",
		Args:  cobra.NoArgs,
	}
	c.AddCommand(newCertsCheckExpirationCommand(g), newCertsRenewCommand(g))
	return c
}

// loadCertCluster loads the Cluster file and names its control-plane and etcd hosts, in file
// order (an error when there is none).
func loadCertCluster(file string, warn io.Writer) (*config.Cluster, []string, error) {
	cl, err := loadCluster(file, warn)
	if err != nil {
		return nil, nil, err
	}
	var hosts []string
	for _, h := range cl.Hosts {
		if h.Has(config.RoleControlPlane) || h.Has(config.RoleEtcd) {
			hosts = append(hosts, h.Name)
		}
	}
	if len(hosts) == 0 {
		return nil, nil, fmt.Errorf("%s: no control-plane or etcd host", file)
	}
	return cl, hosts, nil
}

func newCertsRenewCommand(g *globals) *cobra.Command {
	var file string
	var local localRenewFlags
	c := &cobra.Command{
		Use:   "renew",
		Short: "Renew every leaf certificate of the control planes and kk's etcd (never a CA), one host at a time",
		Long: `Renews, without touching any CA:
  - kk's etcd certificates (etcd type kubekey): re-issued here from the etcd CA in the workdir,
    pushed to the members, which restart one at a time, each healthy before the next (quorum
    is never lost); kube-apiserver's etcd client certificate on the control planes;
  - on each control plane, one at a time: kubeadm certs renew all (with the lifetime of the
    cluster's kubeadm-config), then its static pods restarted and waited for (with a stacked
    etcd the API server is stopped while etcd restarts), so the API behind the load balancer
    never goes away;
  - the admin kubeconfig on the control planes and in the workdir.
The kubelet's client certificate is rotated by the kubelet itself. --dry-run lists what would
be renewed where.`,
		Example: `  kk certs renew -f cluster.yaml --dry-run
  kk certs renew -f cluster.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if local.on {
				return runLocalRenew(cmd, local)
			}
			cl, hosts, err := loadCertCluster(file, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			o := g.Options
			o.Out, o.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if g.DryRun {
				return renewDryRun(cmd, cl, hosts, o)
			}
			if err := g.confirm(fmt.Sprintf("certs renew: %s", cl)); err != nil {
				return err
			}
			plan, err := certs.NewRenewPlan(cl, g.Workdir)
			if err != nil {
				return err
			}
			if len(plan.EtcdIssued) > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "re-issued from the etcd CA in %s: %s\n", etcd.PKIDir(g.Workdir), strings.Join(plan.EtcdIssued, ", "))
			}
			s, err := session.New(cl, o)
			if err != nil {
				return err
			}
			defer s.Close()
			col := certs.NewCollector(cl.Etcd.Type)
			read := col.Task()
			read.After = []string{kubernetes.TaskKubeconfig}
			tasks := append([]pipeline.Task{facts.Task()}, plan.Tasks...)
			if _, err := s.Run(cmd.Context(), "certs renew", append(tasks, read)); err != nil {
				return err
			}
			var rows []certs.Row
			for _, r := range col.Reports(hosts, time.Now()) {
				rows = append(rows, r.Rows...)
			}
			fmt.Fprintln(cmd.OutOrStdout())
			if err := certs.WriteTable(cmd.OutOrStdout(), rows); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "\nrenewed; the admin kubeconfig is %s\n", plan.Kubeconfig)
			return nil
		},
	}
	c.Flags().StringVarP(&file, "filename", "f", "", "Cluster file")
	local.register(c)
	return c
}

// renewDryRun reads the certificates (read-only) and lists, per host, those kk certs renew
// would renew.
func renewDryRun(cmd *cobra.Command, cl *config.Cluster, hosts []string, o session.Options) error {
	o.DryRun = true
	s, err := session.New(cl, o)
	if err != nil {
		return err
	}
	defer s.Close()
	col := certs.NewCollector(cl.Etcd.Type)
	if _, err := s.Run(cmd.Context(), "certs renew (dry run)", []pipeline.Task{col.Task()}); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintln(out, "\nkk certs renew would renew (no CA is ever renewed):")
	for _, r := range col.Reports(hosts, time.Now()) {
		var names []string
		for _, row := range r.Rows {
			if row.Renews {
				names = append(names, row.Certificate+" ("+row.Residual+" left)")
			}
		}
		if len(names) == 0 {
			names = []string{"nothing"}
		}
		fmt.Fprintf(out, "  %s: %s\n", r.Host, strings.Join(names, ", "))
	}
	if cl.Etcd.Type == config.EtcdKubeKey {
		fmt.Fprintln(out, "etcd members restart one at a time; then each control plane's static pods, one control plane at a time")
	} else {
		fmt.Fprintln(out, "each control plane's static pods restart, one control plane at a time")
	}
	return nil
}

func newCertsCheckExpirationCommand(g *globals) *cobra.Command {
	var file, output, failWithin string
	c := &cobra.Command{
		Use:   "check-expiration",
		Short: "Say when each certificate of the control-plane and etcd hosts expires (read-only)",
		Long: `Reads, on every control-plane and etcd host, kubeadm's certificates (/etc/kubernetes/pki), the
client certificates of admin.conf, super-admin.conf, controller-manager.conf and scheduler.conf,
the kubelet's client certificate and kk's etcd certificates (etcd type kubekey), and prints
when each expires, which CA signed it and whether kk certs renew renews it. Certificates
expiring within 30 days are marked; a CA expiring within a year is warned about. No key is
read.`,
		Example: `  kk certs check-expiration -f cluster.yaml
  kk certs check-expiration -f cluster.yaml -o json
  kk certs check-expiration -f cluster.yaml --fail-within 30d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("--output %q: want table or json", output)
			}
			var within time.Duration
			if failWithin != "" {
				var err error
				if within, err = certs.ParseWithin(failWithin); err != nil {
					return fmt.Errorf("--fail-within: %w", err)
				}
			}
			cl, hosts, err := loadCertCluster(file, cmd.ErrOrStderr())
			if err != nil {
				return err
			}

			out, notes := cmd.OutOrStdout(), cmd.OutOrStdout()
			if output == "json" {
				notes = cmd.ErrOrStderr() // stdout holds the JSON alone
			}
			o := g.Options
			o.ContinueOnError = true // report every host
			o.Out = notes
			o.Err = cmd.ErrOrStderr()
			s, err := session.New(cl, o)
			if err != nil {
				return err
			}
			defer s.Close()
			col := certs.NewCollector(cl.Etcd.Type)
			rep, _ := s.Run(cmd.Context(), "certs", []pipeline.Task{col.Task()})
			if rep == nil {
				return fmt.Errorf("certs check-expiration did not run")
			}
			reports := col.Reports(hosts, time.Now())
			var rows []certs.Row
			for _, r := range reports {
				rows = append(rows, r.Rows...)
			}
			if output == "json" {
				if err := certs.WriteJSON(out, rows); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(out)
				if len(rows) == 0 {
					fmt.Fprintln(out, "no certificate found on the control-plane and etcd hosts")
				} else if err := certs.WriteTable(out, rows); err != nil {
					return err
				}
			}
			writeCertNotes(notes, cl, reports, rows)

			if f := rep.Failures(); len(f) > 0 {
				msgs := make([]string, len(f))
				for i, r := range f {
					msgs[i] = r.Err.Error()
				}
				return fmt.Errorf("certificates not read on %d of %d hosts: %s", len(f), len(hosts), strings.Join(msgs, "; "))
			}
			if failWithin != "" {
				if n := len(certs.ExpiringWithin(rows, within)); n > 0 {
					return fmt.Errorf("%d of %d certificates expire within %s", n, len(rows), failWithin)
				}
			}
			return nil
		},
	}
	c.Flags().StringVarP(&file, "filename", "f", "", "Cluster file")
	c.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	c.Flags().StringVar(&failWithin, "fail-within", "", "exit non-zero when a certificate expires within this time (72h, 30d, 1d12h)")
	return c
}

// writeCertNotes prints, after the rows, the files that were no certificate, the CAs that
// expire within a year, and whether each host has the auto-renew timer.
func writeCertNotes(w io.Writer, cl *config.Cluster, reports []certs.Report, rows []certs.Row) {
	var lines []string
	for _, r := range reports {
		for _, p := range r.Problems {
			lines = append(lines, "warning: "+p.Error())
		}
	}
	lines = append(lines, certs.CAWarnings(rows)...)
	for _, r := range reports {
		state := r.Timer.String()
		if !r.Read {
			state = "unknown (host not read)"
		} else if r.Timer.LoadState == "not-found" && cl.Kubernetes.AutoRenewCerts {
			state += " (kubernetes.autoRenewCerts is true in the Cluster file)"
		}
		lines = append(lines, fmt.Sprintf("%s: auto-renew timer %s: %s", r.Host, certs.TimerUnit, state))
	}
	if len(lines) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, strings.Join(lines, "\n"))
	}
}

// localRenewFlags are kk certs renew --local's: what kk-certs-renew.service passes when it
// runs kk on a control-plane or etcd host (hidden: users run kk certs renew -f).
type localRenewFlags struct {
	on                  bool
	host, etcdType, api string
	within              string
	etcdPort            int
}

func (f *localRenewFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.BoolVar(&f.on, "local", false, "renew on this host (what kk-certs-renew.service runs)")
	fl.StringVar(&f.host, "host", "", "with --local: this host's name in the Cluster file")
	fl.StringVar(&f.within, "within", "30d", "with --local: renew the certificates that expire within this time")
	fl.StringVar(&f.etcdType, "etcd-type", config.EtcdKubeKey, "with --local: the cluster's etcd type")
	fl.IntVar(&f.etcdPort, "etcd-port", 2379, "with --local: etcd's client port")
	fl.StringVar(&f.api, "api-server", "", "with --local: this control plane's API server URL")
	for _, n := range []string{"local", "host", "within", "etcd-type", "etcd-port", "api-server"} {
		_ = fl.MarkHidden(n)
	}
}

// runLocalRenew is kk certs renew --local: the renewal on the host itself, as root.
func runLocalRenew(cmd *cobra.Command, f localRenewFlags) error {
	within, err := certs.ParseWithin(f.within)
	if err != nil {
		return fmt.Errorf("--within: %w", err)
	}
	host := f.host
	if host == "" {
		host, _ = os.Hostname()
	}
	shell := func(ctx context.Context, script string) (string, error) {
		c := exec.CommandContext(ctx, "/bin/sh", "-c", script)
		c.Env = append(os.Environ(), "PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin")
		var out, errb strings.Builder
		c.Stdout, c.Stderr = &out, io.MultiWriter(&errb, cmd.ErrOrStderr())
		if err := c.Run(); err != nil {
			return out.String(), fmt.Errorf("%w: %s", err, strings.TrimSpace(errb.String()))
		}
		return out.String(), nil
	}
	renewed, err := certs.RenewLocal(cmd.Context(), certs.LocalOptions{
		Host: host, EtcdType: f.etcdType, Etcd: config.Etcd{Port: f.etcdPort}, Within: within,
		APIServer: f.api, Shell: shell,
	}, cmd.OutOrStdout())
	if len(renewed) > 0 {
		fmt.Fprintf(cmd.OutOrStdout(), "%s: renewed %s\n", host, strings.Join(renewed, ", "))
	}
	return err
}
