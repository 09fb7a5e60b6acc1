package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/kk-project/kk/artifacts/versions"
)

// version and commit are set at build time: -ldflags "-X main.version=v0.1.0 -X main.commit=abc".
var (
	version = "v0.1.0-dev"
	commit  = ""
)

// versionInfo is what kk version prints with -o json or yaml.
type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

func newVersionCommand() *cobra.Command {
	var output string
	var supported bool
	c := &cobra.Command{
		Use:   "version",
		Short: "Print kk's version, or the Kubernetes versions it installs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			if supported {
				// KubeKey's output: one version a line
				_, err := fmt.Fprintln(w, strings.Join(versions.Supported(), "\n"))
				return err
			}
			v := versionInfo{Version: version, Commit: buildCommit(), GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
			switch output {
			case "":
				fmt.Fprintf(w, "kk %s (commit %s, %s, %s)\n", v.Version, v.Commit, v.GoVersion, v.Platform)
			case "short":
				fmt.Fprintln(w, v.Version)
			case "json":
				data, err := json.MarshalIndent(v, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintln(w, string(data))
			case "yaml":
				data, err := yaml.Marshal(v)
				if err != nil {
					return err
				}
				w.Write(data)
			default:
				return fmt.Errorf("kk version: -o %q: use short, json or yaml", output)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&supported, "show-supported-k8s", false, "print the Kubernetes versions kk installs, one a line")
	c.Flags().StringVarP(&output, "output", "o", "", "format: short, json or yaml")
	return c
}

// buildCommit is the commit kk was built from: the -ldflags value, else the VCS stamp.
func buildCommit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
