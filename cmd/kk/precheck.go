package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/facts"
	"github.com/kk-project/kk/modules/osprep"
	"github.com/kk-project/kk/modules/precheck"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/session"
)

func newPrecheckCommand(g *globals) *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "precheck",
		Short: "Check that every host is fit for Kubernetes (read-only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := loadCluster(file, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			o := g.Options
			o.ContinueOnError = true // report every host
			o.Out = cmd.OutOrStdout()
			s, err := session.New(cl, o)
			if err != nil {
				return err
			}
			defer s.Close()
			rep, _ := s.Run(cmd.Context(), "precheck", []pipeline.Task{facts.Task()})
			if rep == nil {
				return fmt.Errorf("precheck did not run")
			}
			rows := precheckRows(cl, s, rep)
			fmt.Fprintln(cmd.OutOrStdout())
			precheck.WriteTable(cmd.OutOrStdout(), rows)
			bad := 0
			for _, r := range rows {
				if !r.OK() {
					bad++
				}
			}
			if bad > 0 {
				return fmt.Errorf("precheck failed on %d of %d hosts", bad, len(rows))
			}
			return nil
		},
	}
	c.Flags().StringVarP(&file, "filename", "f", "", "Cluster file")
	return c
}

func precheckRows(cl *config.Cluster, s *session.Session, rep *pipeline.Report) []precheck.Row {
	errs := map[string]error{}
	for _, f := range rep.Failures() {
		errs[f.Host] = f.Err
	}
	var cmds []string
	for _, p := range osprep.DefaultPackages {
		cmds = append(cmds, p.Command)
	}
	var rows []precheck.Row
	for _, h := range cl.Hosts {
		roles := make([]string, len(h.Roles))
		for i, r := range h.Roles {
			roles[i] = string(r)
		}
		req := precheck.For(roles, h.Arch, cmds).Of(cl, h.Name)
		rows = append(rows, precheck.Evaluate(h.Name, s.Facts(h.Name), errs[h.Name], req))
	}
	return rows
}
