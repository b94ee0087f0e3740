// Command gateway is the per-profile supervised process (`gateway run`) and the operator verbs. See docs/gateway.md. Its code is package internal/cmd/gateway, shared with
// the multi-call binary cmd/s6gate (installed as /usr/local/bin/s6gate, with gateway a link to it).
//
// containermaxprocs=0: the Go runtime neither sizes GOMAXPROCS from the cgroup's CPU quota
// nor keeps the cgroup's two files open for the process's whole life at its lowest free
// descriptors (4 and 5 in a slot, where s6's notification descriptor is 3) — descriptors an
// exec-supervised command asks for as its ready.notify_fd (pkg/gatewayrun, exec.go). Every
// s6gate process is small; gateway run sets GOMAXPROCS to 1 itself.
//
//go:debug containermaxprocs=0
package main

import (
	"os"

	"github.com/s6gate/s6gate/internal/cmd/gateway"
)

func main() {
	os.Exit(gateway.Main(os.Args))
}
