// Command gw-mark writes, checks and clears the planned-stop marker. See docs/gw-mark.md. Its code is package internal/cmd/gwmark, shared with
// the multi-call binary cmd/s6gate (installed as /usr/local/bin/s6gate, with gw-mark a link to it).
package main

import (
	"os"

	"github.com/s6gate/s6gate/internal/cmd/gwmark"
)

func main() {
	os.Exit(gwmark.Main(os.Args))
}
