// Command with-contenv runs a program with the container environment /init saved. See docs/init.md. Its code is package internal/cmd/withcontenv, shared with
// the multi-call binary cmd/s6gate (installed as /usr/local/bin/s6gate, with with-contenv a link to it).
package main

import (
	"os"

	"github.com/s6gate/s6gate/internal/cmd/withcontenv"
)

func main() {
	os.Exit(withcontenv.Main(os.Args))
}
