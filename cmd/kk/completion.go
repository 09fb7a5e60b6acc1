package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// completionShells are the shells kk writes completion scripts for.
var completionShells = []string{"bash", "zsh", "fish", "powershell"}

// newCompletionCommand replaces cobra's default completion command so that KubeKey's form,
// kk completion --type bash, works besides cobra's kk completion bash.
func newCompletionCommand() *cobra.Command {
	var shell string
	var noDesc bool
	c := &cobra.Command{
		Use:   "completion [bash|zsh|fish|powershell]",
		Short: "Write the shell completion script of kk",
		Long: `Write the completion script of kk for a shell to the standard output:
  source <(kk completion bash)            # or: kk completion --type bash (KubeKey's form)
  kk completion zsh > "${fpath[1]}/_kk"
  kk completion fish > ~/.config/fish/completions/kk.fish`,
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: completionShells,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if shell != "" && !strings.EqualFold(shell, args[0]) {
					return fmt.Errorf("kk completion: shell %q and --type %q differ; give one", args[0], shell)
				}
				shell = args[0]
			}
			out, root := cmd.OutOrStdout(), cmd.Root()
			switch strings.ToLower(shell) {
			case "bash":
				return root.GenBashCompletionV2(out, !noDesc)
			case "zsh":
				if noDesc {
					return root.GenZshCompletionNoDesc(out)
				}
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, !noDesc)
			case "powershell":
				if noDesc {
					return root.GenPowerShellCompletion(out)
				}
				return root.GenPowerShellCompletionWithDesc(out)
			case "":
				return fmt.Errorf("kk completion: name a shell: %s (or --type SHELL)", strings.Join(completionShells, ", "))
			}
			return fmt.Errorf("kk completion: unknown shell %q: use %s", shell, strings.Join(completionShells, ", "))
		},
	}
	c.Flags().StringVarP(&shell, "type", "t", "", "shell: "+strings.Join(completionShells, ", ")+" (KubeKey's form)")
	c.Flags().BoolVar(&noDesc, "no-descriptions", false, "leave the descriptions out of the completions")
	_ = c.RegisterFlagCompletionFunc("type", cobra.FixedCompletions(completionShells, cobra.ShellCompDirectiveNoFileComp))
	return c
}
