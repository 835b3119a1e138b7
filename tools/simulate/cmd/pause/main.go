// Command pause is the sandbox ("pause") image of the real node (docs/simulate.md): it holds a
// pod's namespaces and does nothing until it is told to stop. Kubernetes' own pause is C, which
// this repository cannot build from a Go module; this does the same job.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
