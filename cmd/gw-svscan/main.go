// Command gw-svscan is the gateways' scanner: s6-svscan for the service user's scan directory,
// run by root so that each isolated slot's supervisor can get a uid of its own, without root
// ever running anything from that directory. See docs/gw-svscan.md. Its code is package
// internal/cmd/gwsvscan (and pkg/svscan), shared with the multi-call binary cmd/s6gate
// (installed as /usr/local/bin/s6gate, with gw-svscan a link to it).
package main

import (
	"os"

	"github.com/s6gate/s6gate/internal/cmd/gwsvscan"
)

func main() {
	os.Exit(gwsvscan.Main(os.Args))
}
