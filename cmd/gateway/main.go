// Command gateway is the per-profile supervised process (`gateway run`) and the operator verbs. See docs/gateway.md. Its code is package internal/cmd/gateway, shared with
// the multi-call binary cmd/s6gate (installed as /usr/local/bin/s6gate, with gateway a link to it).
package main

import (
	"os"

	"github.com/s6gate/s6gate/internal/cmd/gateway"
)

func main() {
	os.Exit(gateway.Main(os.Args))
}
