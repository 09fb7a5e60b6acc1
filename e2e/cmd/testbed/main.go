// Command testbed brings kk's local test machines up and down (see package e2e/testbed).
//
//	testbed up   [-n 3] [--name kkt] [--dir DIR] [--subnet X] [--light]
//	testbed down [--name kkt] [--dir DIR] [--light]
//	testbed ssh  [--name kkt] [--dir DIR] n1 [command...]
//
// Machines keep running after the command exits; "down" removes them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/kk-project/kk/e2e/testbed"
)

func usage() {
	fmt.Fprint(os.Stderr, `usage:
  testbed up   [-n N] [--name NAME] [--dir DIR] [--subnet X] [--light]
  testbed down [--name NAME] [--dir DIR] [--light]
  testbed ssh  [--name NAME] [--dir DIR] n1 [command...]
`)
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "testbed:", err)
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.ExitCode())
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, cmd string, args []string) error {
	fs := flag.NewFlagSet("testbed "+cmd, flag.ContinueOnError)
	var o testbed.Options
	n := fs.Int("n", 3, "number of machines")
	light := fs.Bool("light", false, "light hosts (network namespaces with sshd) instead of systemd-nspawn machines")
	fs.StringVar(&o.Name, "name", "kkt", "bed name ([a-z0-9], at most 8)")
	fs.StringVar(&o.Dir, "dir", "", "state dir (default $KK_TESTBED_DIR or /var/tmp/kk-testbed)")
	fs.IntVar(&o.Subnet, "subnet", 0, "third octet of the bed network 10.231.X.0/24 (default: derived from the name)")
	fs.Usage = usage
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch cmd {
	case "up":
		start := time.Now()
		up := testbed.Up
		if *light {
			up = testbed.LightUp
		}
		b, err := up(ctx, o, *n)
		if err != nil {
			return err
		}
		printBed(b, time.Since(start))
		return nil
	case "down":
		down := testbed.Down
		if *light {
			down = testbed.LightDown
		}
		if err := down(ctx, o); err != nil {
			return err
		}
		fmt.Printf("testbed %s: down\n", o.Name)
		return nil
	case "ssh":
		if fs.NArg() < 1 {
			return errors.New("ssh: which machine? (n1, n2, ...)")
		}
		return sshTo(ctx, o, fs.Arg(0), fs.Args()[1:])
	default:
		usage()
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func printBed(b *testbed.Bed, took time.Duration) {
	kind := "machines"
	if b.Light {
		kind = "light hosts"
	}
	fmt.Printf("testbed %s: %d %s up in %v\n", b.Name, len(b.Machines), kind, took.Round(time.Millisecond))
	for _, m := range b.Machines {
		fmt.Printf("  %-4s %s\n", m.Name, m.Address)
	}
	fmt.Printf("cluster file: %s\nkey:          %s\nknown_hosts:  %s\n", b.ClusterFile, b.KeyPath, b.KnownHosts)
	if b.User != "" {
		fmt.Printf("user:         %s (sudo needs the password in the cluster file)\n", b.User)
	}
	fmt.Printf("example:      kk precheck -f %s --known-hosts %s\n", b.ClusterFile, b.KnownHosts)
	if len(b.Machines) > 0 {
		fmt.Printf("debug shell:  %s\n", joinArgs(b.SSHArgs(b.Machines[0])))
	}
}

func joinArgs(a []string) string {
	s := ""
	for i, x := range a {
		if i > 0 {
			s += " "
		}
		s += x
	}
	return s
}

// sshTo runs ssh to a machine of a bed that is up, as root, with the bed's key and known_hosts.
func sshTo(ctx context.Context, o testbed.Options, name string, command []string) error {
	dir := o.Dir
	if dir == "" {
		dir = os.Getenv("KK_TESTBED_DIR")
	}
	if dir == "" {
		dir = "/var/tmp/kk-testbed"
	}
	bedDir := filepath.Join(dir, o.Name)
	cluster, err := os.ReadFile(filepath.Join(bedDir, "cluster.yaml"))
	if err != nil {
		return fmt.Errorf("ssh: bed %s is not up (run testbed up): %w", o.Name, err)
	}
	re := regexp.MustCompile(`name: (n[0-9]+), address: ([0-9.]+),`)
	for _, m := range re.FindAllStringSubmatch(string(cluster), -1) {
		if m[1] != name {
			continue
		}
		b := &testbed.Bed{KeyPath: filepath.Join(bedDir, "id_ed25519"), KnownHosts: filepath.Join(bedDir, "known_hosts")}
		argv := append(b.SSHArgs(testbed.Machine{Name: m[1], Address: m[2]}), command...)
		c := exec.CommandContext(ctx, argv[0], argv[1:]...)
		c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
		return c.Run()
	}
	return fmt.Errorf("ssh: no machine %s in %s", name, filepath.Join(bedDir, "cluster.yaml"))
}
