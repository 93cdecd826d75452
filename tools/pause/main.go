// Command pause is the process that holds a pod sandbox's namespaces open.
//
// It is the PID 1 of the sandbox when the pod shares its PID namespace, so it
// also reaps orphaned children; without that, zombies would pile up until the
// sandbox is removed. It exits 0 on SIGTERM or SIGINT so that a sandbox stop
// is quick and reported as clean.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		os.Exit(0)
	}
}

// reap collects every exited child. SIGCHLD signals coalesce, so one signal
// may stand for several exits: loop until no child is left waiting.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
