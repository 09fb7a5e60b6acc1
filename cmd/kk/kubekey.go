package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/kk-project/kk/api/v1alpha2"
	"github.com/kk-project/kk/artifacts/catalog"
)

// This file holds what lets KubeKey users type what they are used to: the download flags
// every downloading command shares (with KubeKey's KKZONE), KubeKey flags kk refuses by name,
// and the overwrite rule of the commands that write a file.

// downloadFlags say where components are downloaded from; every command that downloads
// registers them, so KKZONE=cn and KK_MIRROR work the same everywhere.
type downloadFlags struct {
	mirror, zone string
}

func (d *downloadFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&d.mirror, "mirror", os.Getenv("KK_MIRROR"), "download components from this mirror, upstream paths under its URL (default $KK_MIRROR)")
	fs.StringVar(&d.zone, "zone", os.Getenv("KKZONE"), `download preset: "cn" for KubeKey's China mirrors (default $KKZONE)`)
}

// resolver is the checked resolver of the flags.
func (d downloadFlags) resolver() (catalog.Resolver, error) {
	r := catalog.Resolver{Mirror: d.mirror, Zone: d.zone}
	if err := r.Validate(); err != nil {
		return r, fmt.Errorf("--mirror/--zone (KK_MIRROR/KKZONE): %w", err)
	}
	return r, nil
}

// kubekeyFlag is a KubeKey flag kk accepts only to refuse it by name, so a KubeKey habit gets
// a reason instead of "unknown flag".
type kubekeyFlag struct {
	name       string
	takesValue bool
	why        string
	shorthand  string
}

// KubeKey flags several commands share.
var (
	flagDownloadCmd = kubekeyFlag{name: "download-cmd", takesValue: true,
		why: "kk downloads over HTTPS itself and checks every checksum; use --mirror URL, KKZONE=cn or HTTPS_PROXY"}
	flagWithKubeSphere = kubekeyFlag{name: "with-kubesphere",
		why: "kk installs Kubernetes only; install KubeSphere on the finished cluster with its Helm chart"}
	flagWithPackages = kubekeyFlag{name: "with-packages",
		why: "kk installs OS packages with each host's package manager; its bundles carry no OS repository (ISO)"}
)

// refuseKubeKeyFlags registers flags on c, hidden, and makes c fail before anything runs
// when one of them is set.
func refuseKubeKeyFlags(c *cobra.Command, flags ...kubekeyFlag) {
	for _, f := range flags {
		if f.takesValue {
			c.Flags().StringP(f.name, f.shorthand, "", f.why)
		} else {
			c.Flags().BoolP(f.name, f.shorthand, false, f.why)
		}
		_ = c.Flags().MarkHidden(f.name)
	}
	args := c.Args
	// Args runs right after the flags are parsed, before any hook: a refused flag is named
	// even when KubeKey's usage puts a positional value after it (--with-kubesphere v3.4.1).
	c.Args = func(cmd *cobra.Command, a []string) error {
		for _, f := range flags {
			if cmd.Flags().Changed(f.name) {
				return fmt.Errorf("%s: KubeKey's --%s is not supported: %s", cmd.CommandPath(), f.name, f.why)
			}
		}
		if args == nil {
			return nil
		}
		return args(cmd, a)
	}
}

// clusterKind reports whether the file at path holds a KubeKey kind: Cluster document.
func clusterKind(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	for {
		var doc struct {
			Kind string `yaml:"kind"`
		}
		if err := dec.Decode(&doc); err != nil {
			return false
		}
		if doc.Kind == v1alpha2.Kind {
			return true
		}
	}
}

// writeOutput writes data to path ("-": to the command's output). An existing file is
// replaced only when the user confirms (or passes --yes), as KubeKey asks; what refuses
// says why a file must never be replaced ("" when any may be).
func writeOutput(cmd *cobra.Command, g *globals, path string, data []byte, perm os.FileMode, refuse func(path string) string) error {
	if path == "-" {
		_, err := cmd.OutOrStdout().Write(data)
		return err
	}
	if _, err := os.Stat(path); err == nil {
		if refuse != nil {
			if why := refuse(path); why != "" {
				return errors.New(why)
			}
		}
		if err := g.confirm(path + " exists: overwrite it"); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.WriteFile(path, data, perm)
}
