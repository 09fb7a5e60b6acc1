package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/modules/etcd"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/progress"
	"github.com/kk-project/kk/pipeline/session"
)

func newEtcdCommand(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "etcd",
		Short: "Back up and restore the cluster's etcd",
		Args:  cobra.NoArgs,
	}
	c.AddCommand(newEtcdBackupCommand(g), newEtcdRestoreCommand(g))
	return c
}

// defaultBackupDir is where kk etcd backup writes: <workdir>/backups/etcd.
func defaultBackupDir(g *globals) string {
	w := g.Workdir
	if w == "" {
		w = "kubekey"
	}
	return filepath.Join(w, "backups", "etcd")
}

func newEtcdBackupCommand(g *globals) *cobra.Command {
	var file, dir string
	var list bool
	c := &cobra.Command{
		Use:   "backup",
		Short: "Take an etcd snapshot and fetch it to this machine, or list the periodic backups (--list)",
		Long: `Takes a snapshot of the cluster's etcd on the first member, in the Cluster file's order, whose
etcdctl endpoint health passes, checks it (etcdutl snapshot status), fetches it to DIR and
removes it from the member. Beside the snapshot NAME.db it writes NAME.db.sha256 (sha256sum
format) and NAME.json: the etcd cluster ID and members, the revision and number of keys, the
sha256, the time, the member it came from and its etcd version. kk etcd restore checks all of
them before it stops anything.

The snapshot holds every Secret of the cluster: it is written with mode 0600 in a directory of
mode 0700; keep it as safe as the cluster's CA keys.

Etcd type kubekey: etcdctl with kk's admin certificate on the members. Type kubeadm (stacked
etcd on the control planes): etcdctl inside the etcd static pod's container (crictl exec), with
kubeadm's health-check client certificate; the snapshot is written in the etcd data dir,
which the pod mounts from the host. Type external is refused: kk does not run that etcd.

--list reads, on every member, the snapshots the periodic backup (backup-etcd.timer) keeps in
etcd.backupDir and says how many it keeps (etcd.keepBackupNumber), and lists the snapshots
kk etcd backup wrote in DIR. It changes nothing.`,
		Example: `  kk etcd backup -f cluster.yaml
  kk etcd backup -f cluster.yaml -o /srv/backups/etcd
  kk etcd backup -f cluster.yaml --list`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, spec, err := loadEtcdCluster(file, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if dir == "" {
				dir = defaultBackupDir(g)
			}
			if list {
				return runEtcdBackupList(cmd, g, cl, spec, dir)
			}
			b, err := etcd.NewBackup(cl, spec, dir)
			if err != nil {
				return err
			}
			o := g.Options
			o.Out, o.Err = cmd.OutOrStdout(), cmd.ErrOrStderr()
			s, err := session.New(cl, o)
			if err != nil {
				return err
			}
			defer s.Close()
			res, rep, err := etcd.RunBackup(cmd.Context(), s.Run, b)
			if g.DryRun {
				if rep == nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), "dry run: no snapshot was taken")
				return nil
			}
			if err != nil {
				return fmt.Errorf("etcd backup: %w", err)
			}
			for _, u := range res.Unhealthy {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: passed over: %s\n", u)
			}
			writeBackupResult(cmd.OutOrStdout(), res)
			return nil
		},
	}
	c.Flags().StringVarP(&file, "filename", "f", "", "Cluster file")
	c.Flags().StringVarP(&dir, "output", "o", "", "directory the snapshot is written to (default <workdir>/backups/etcd)")
	c.Flags().BoolVar(&list, "list", false, "list the periodic backups on the members and the snapshots in the output directory (read-only)")
	return c
}

func writeBackupResult(w io.Writer, res *etcd.BackupResult) {
	p := res.Path
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	m := res.Meta
	var names []string
	for _, x := range m.Members {
		names = append(names, x.Name)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "snapshot\t%s\n", p)
	fmt.Fprintf(tw, "size\t%s (%d bytes)\n", progress.HumanBytes(m.Size), m.Size)
	fmt.Fprintf(tw, "revision\t%d (%d keys)\n", m.Revision, m.TotalKeys)
	fmt.Fprintf(tw, "sha256\t%s\n", m.SHA256)
	fmt.Fprintf(tw, "taken\t%s on %s (etcd %s)\n", m.Time.Format(time.RFC3339), m.Member, m.EtcdVersion)
	fmt.Fprintf(tw, "cluster\tetcd cluster %s, members %s\n", m.ClusterID, strings.Join(names, ", "))
	tw.Flush()
	fmt.Fprintf(w, "\nrestore with: kk etcd restore -f <cluster file> --snapshot %s\n", p)
}

func runEtcdBackupList(cmd *cobra.Command, g *globals, cl *config.Cluster, spec etcd.Spec, dir string) error {
	out := cmd.OutOrStdout()
	var runErr error
	if spec.Type == config.EtcdKubeKey {
		l, err := etcd.NewBackupList(spec)
		if err != nil {
			return err
		}
		o := g.Options
		o.ContinueOnError = true // every member is read
		o.Out, o.Err = out, cmd.ErrOrStderr()
		s, err := session.New(cl, o)
		if err != nil {
			return err
		}
		defer s.Close()
		rep, _ := s.Run(cmd.Context(), "etcd backup list", []pipeline.Task{l.Task()})
		if rep == nil {
			return errors.New("etcd backup --list did not run")
		}
		fmt.Fprintf(out, "\nperiodic backups in %s on the members (%s.timer keeps the newest %d: etcd.keepBackupNumber)\n",
			l.Dir(), etcd.BackupUnit, l.Keep())
		tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "HOST\tTIMER\tSNAPSHOT\tSIZE\tTIME")
		for _, m := range l.Members() {
			switch {
			case !m.Read:
				fmt.Fprintf(tw, "%s\t?\t(not read)\t\t\n", m.Host)
			case len(m.Snapshots) == 0:
				fmt.Fprintf(tw, "%s\t%s\t(none)\t\t\n", m.Host, m.Timer)
			}
			for i, sn := range m.Snapshots {
				host, timer := m.Host, m.Timer
				if i > 0 {
					host, timer = "", ""
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", host, timer, sn.Name, progress.HumanBytes(sn.Size), sn.Time.Local().Format(time.RFC3339))
			}
		}
		tw.Flush()
		if f := rep.Failures(); len(f) > 0 {
			msgs := make([]string, len(f))
			for i, r := range f {
				msgs[i] = r.Err.Error()
			}
			runErr = fmt.Errorf("%d members not read: %s", len(f), strings.Join(msgs, "; "))
		}
	} else {
		fmt.Fprintf(out, "etcd type %s: kk installs the periodic etcd backup only for etcd type kubekey\n", spec.Type)
	}
	writeLocalSnapshots(out, dir)
	return runErr
}

// writeLocalSnapshots lists the snapshots kk etcd backup wrote in dir, newest first.
func writeLocalSnapshots(w io.Writer, dir string) {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.db"))
	slices.Reverse(paths) // names end in the time they were taken
	fmt.Fprintf(w, "\nsnapshots taken by kk etcd backup in %s\n", dir)
	if len(paths) == 0 {
		fmt.Fprintln(w, "(none)")
		return
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SNAPSHOT\tSIZE\tREVISION\tTAKEN\tON")
	for _, p := range paths {
		size := ""
		if st, err := os.Stat(p); err == nil {
			size = progress.HumanBytes(st.Size())
		}
		rev, taken, on := "?", "?", "?"
		if b, err := os.ReadFile(etcd.MetaPath(p)); err == nil {
			var m etcd.SnapshotMeta
			if json.Unmarshal(b, &m) == nil {
				rev, taken, on = fmt.Sprint(m.Revision), m.Time.Local().Format(time.RFC3339), m.Member
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", filepath.Base(p), size, rev, taken, on)
	}
	tw.Flush()
}

func newEtcdRestoreCommand(g *globals) *cobra.Command {
	var file, snapshot string
	c := &cobra.Command{
		Use:   "restore",
		Short: "Restore every etcd member from a snapshot taken by kk etcd backup (etcd type kubekey)",
		Long: `Restores the etcd kk runs (etcd type kubekey) from a snapshot taken by kk etcd backup.

Before anything stops it checks that the snapshot matches SNAPSHOT.sha256, that its metadata
(NAME.json beside NAME.db) names the live cluster's etcd cluster ID and the Cluster file's etcd
members (names and peer URLs), uploads it to every member (` + etcd.RestoreSnapshot + `)
and checks it there (sha256, etcdutl snapshot status). Then, after a confirmation (--yes
skips it):

  1. kube-apiserver stops on every control plane: its manifest is moved to ` + etcd.ParkedDir + `
  2. etcd stops on every member
  3. each member's data dir is moved aside to <data dir>.kk-restore-<time> (never deleted)
     and restored: etcdutl snapshot restore with the member's name and peer URL, every
     member in the initial cluster, the cluster token, and the revision bumped and marked
     compacted (so that Kubernetes' watchers relist)
  4. the members start together and the cluster must become healthy
  5. the kube-apiserver manifests are moved back and /readyz must answer on each control plane

Each step finishes on every host before the next starts, and none starts after a failure. A
restore that was interrupted converges when run again with the same snapshot.

Etcd types kubeadm and external are refused, with what to do instead.`,
		Example: `  kk etcd restore -f cluster.yaml --snapshot kubekey/backups/etcd/etcd-snapshot-prod-20250101T020000Z.db
  kk etcd restore -f cluster.yaml --snapshot FILE --dry-run   # the checks, and the plan
  kk etcd restore -f cluster.yaml --snapshot FILE --yes       # no confirmation`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if snapshot == "" {
				return errors.New("--snapshot FILE is required (a snapshot written by kk etcd backup)")
			}
			cl, spec, err := loadEtcdCluster(file, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			r, err := etcd.NewRestore(cl, spec, snapshot, time.Now())
			if err != nil {
				return fmt.Errorf("etcd restore refused, nothing was changed: %w", err)
			}
			out := cmd.OutOrStdout()
			m := r.Meta
			fmt.Fprintf(out, "snapshot %s: etcd cluster %s, revision %d (%d keys), taken %s on %s; checksum and members match %s\n",
				snapshot, m.ClusterID, m.Revision, m.TotalKeys, m.Time.Format(time.RFC3339), m.Member, file)
			o := g.Options
			o.Out, o.Err = out, cmd.ErrOrStderr()
			s, err := session.New(cl, o)
			if err != nil {
				return err
			}
			defer s.Close()
			var cps, members []string
			for _, h := range cl.HostsWithRole(config.RoleControlPlane) {
				cps = append(cps, h.Name)
			}
			for _, x := range spec.Members {
				members = append(members, x.Name)
			}
			confirm := func() error {
				q := fmt.Sprintf("restore etcd of %s from %s (revision %d, taken %s): etcd stops on %s and their data dirs are moved aside to %s",
					cl.Name, filepath.Base(snapshot), m.Revision, m.Time.Format(time.RFC3339), strings.Join(members, ", "), r.AsideDir())
				if len(cps) > 0 {
					q += "; kube-apiserver stops on " + strings.Join(cps, ", ") + " until etcd is back"
				}
				return g.confirm(q)
			}
			if _, err := etcd.RunRestore(cmd.Context(), s.Run, r, confirm); err != nil {
				return fmt.Errorf("etcd restore: %w", err)
			}
			if !g.DryRun {
				fmt.Fprintf(out, "\netcd restored from %s (its revision %d, counted on from %d). The old data dirs are kept at %s on %s: remove them once the cluster is as it should be.\n",
					snapshot, m.Revision, m.Revision+etcd.BumpRevision, r.AsideDir(), strings.Join(members, ", "))
			}
			return nil
		},
	}
	c.Flags().StringVarP(&file, "filename", "f", "", "Cluster file")
	c.Flags().StringVar(&snapshot, "snapshot", "", "snapshot written by kk etcd backup (NAME.db, with NAME.db.sha256 and NAME.json beside it)")
	return c
}

// loadEtcdCluster loads the Cluster file and the etcd spec the backup and restore work on.
func loadEtcdCluster(file string, warn io.Writer) (*config.Cluster, etcd.Spec, error) {
	cl, err := loadCluster(file, warn)
	if err != nil {
		return nil, etcd.Spec{}, err
	}
	spec, err := etcd.MaintenanceSpec(cl)
	return cl, spec, err
}
