// Command gw-render renders, publishes and removes a profile's s6 slot. See docs/gw-render.md. Its code is package internal/cmd/gwrender, shared with
// the multi-call binary cmd/s6gate (installed as /usr/local/bin/s6gate, with gw-render a link to it).
package main

import (
	"os"

	"github.com/s6gate/s6gate/internal/cmd/gwrender"
)

func main() {
	os.Exit(gwrender.Main(os.Args))
}
