// Command gw-reconcile is the boot hook that rebuilds every profile's s6 slot from the data volume. See docs/gw-reconcile.md. Its code is package internal/cmd/gwreconcile, shared with
// the multi-call binary cmd/s6gate (installed as /usr/local/bin/s6gate, with gw-reconcile a link to it).
package main

import (
	"os"

	"github.com/s6gate/s6gate/internal/cmd/gwreconcile"
)

func main() {
	os.Exit(gwreconcile.Main(os.Args))
}
