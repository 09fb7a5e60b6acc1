package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/certs"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/session"
)

func newCertsCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "certs",
		Short: "Inspect the cluster's certificates",
		Args:  cobra.NoArgs,
	}
	c.AddCommand(newCertsCheckExpirationCommand(g))
	return c
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
			cl, err := loadCluster(file, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			var hosts []string
			for _, h := range cl.Hosts {
				if h.Has(config.RoleControlPlane) || h.Has(config.RoleEtcd) {
					hosts = append(hosts, h.Name)
				}
			}
			if len(hosts) == 0 {
				return fmt.Errorf("%s: no control-plane or etcd host", file)
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
