package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kk-project/kk/api/config"
	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/pipeline"
	"github.com/kk-project/kk/pipeline/session"
)

// globals are the flags every command shares; one value per process, passed down explicitly.
type globals struct {
	session.Options
	yes bool
}

func newRootCommand() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "kk",
		Short: "Build and run Kubernetes clusters over SSH",
		Long: `kk installs Kubernetes clusters on machines it reaches over SSH, online or air-gapped.
It reads KubeKey's kubekey.kubesphere.io/v1alpha2 Cluster files as they are.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := root.PersistentFlags()
	f.BoolVar(&g.Debug, "debug", false, "print every command and log line")
	f.BoolVarP(&g.yes, "yes", "y", false, "answer yes to every confirmation")
	f.BoolVar(&g.DryRun, "dry-run", false, "inspect hosts and print what would change, change nothing")
	f.IntVar(&g.Concurrency, "concurrency", 32, "most task×host operations running at once")
	f.StringVar(&g.Workdir, "workdir", "kubekey", "working directory for logs, downloads and generated files")
	f.StringVar(&g.KnownHosts, "known-hosts", "", "known_hosts file used to verify host keys (default ~/.ssh/known_hosts)")
	f.BoolVar(&g.TrustOnFirstUse, "trust-on-first-use", false, "accept and record the host key of hosts not yet in known_hosts (a changed key is still refused)")
	f.BoolVar(&g.ContinueOnError, "continue-on-error", false, "also run a failed host's tasks that do not depend on what failed (by default a failed host is dropped from the run, the others go on)")
	f.IntVar(&g.MaxFailPercent, "max-fail-percentage", 0, "stop at a cluster-wide step when more than this % of its hosts have failed (0 = no limit)")
	f.BoolVar(&g.ContinueOnError, "ignore-err", false, "KubeKey's name for --continue-on-error")
	f.DurationVar(&g.Timeout, "task-timeout", 10*time.Minute, "time limit of one task on one host")

	root.AddCommand(
		newVersionCommand(),
		newCreateCommand(g),
		newDeleteCommand(g),
		newPrecheckCommand(g),
		newCertsCommand(g),
		newEtcdCommand(g),
		newAddCommand(g),
		newUpgradeCommand(g),
		newKubeconfigCommand(g),
		newInitCommand(g),
		newArtifactCommand(g),
		newCompletionCommand(),
		newNodeCommand(),
	)
	registerInitRegistry(root, g)
	return root
}

// loadCluster reads and validates a Cluster file; warnings go to warn.
func loadCluster(path string, warn io.Writer) (*config.Cluster, error) {
	if path == "" {
		return nil, fmt.Errorf("no cluster file: pass -f FILE (kk create config writes a sample)")
	}
	c, warns, err := v1alpha2.Load(path)
	for _, w := range warns {
		fmt.Fprintln(warn, "warning:", w)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// confirm asks before a command changes hosts, unless --yes or --dry-run. Without a terminal
// to ask on, it refuses rather than guess.
func (g *globals) confirm(question string) error {
	if g.yes || g.DryRun {
		return nil
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return fmt.Errorf("%s: no terminal to confirm on; pass --yes", question)
	}
	fmt.Fprintf(os.Stderr, "%s [yes/no]: ", question)
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(line)); a != "yes" && a != "y" {
		return fmt.Errorf("cancelled")
	}
	return nil
}

// runTasks runs tasks on the hosts of cl in one session with the global options, as name.
func runTasks(cmd *cobra.Command, g *globals, cl *config.Cluster, name string, tasks []pipeline.Task) (*pipeline.Report, error) {
	o := g.Options
	o.Out = cmd.OutOrStdout()
	s, err := session.New(cl, o)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Run(cmd.Context(), name, tasks)
}
