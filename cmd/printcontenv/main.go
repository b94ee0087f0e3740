// Command printcontenv prints one variable of the container environment /init saved. See docs/init.md. Its code is package internal/cmd/printcontenv, shared with
// the multi-call binary cmd/s6gate (installed as /usr/local/bin/s6gate, with printcontenv a link to it).
package main

import (
	"os"

	"github.com/s6gate/s6gate/internal/cmd/printcontenv"
)

func main() {
	os.Exit(printcontenv.Main(os.Args))
}
