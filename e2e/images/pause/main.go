// Command pause is the process of kk's test pause image
// (registry.k8s.io/pause): it holds a pod sandbox's namespaces by doing
// nothing, reaps the zombies it inherits as PID 1, and exits cleanly on
// SIGINT or SIGTERM. It is built static (CGO_ENABLED=0) and put at /pause.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const version = "kk-pause 1"

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-v" || os.Args[1] == "--version") {
		fmt.Println(version)
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "Warning: pause should be the first process")
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range sigs {
		switch sig {
		case syscall.SIGCHLD:
			reap()
		default:
			fmt.Fprintf(os.Stderr, "Shutting down, got signal: %v\n", sig)
			os.Exit(0)
		}
	}
}

// reap collects every exited child without blocking.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
