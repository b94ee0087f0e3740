// Command s6util is a multi-call binary: installed under the names of s6-portable-utils
// commands (s6-mkdir, s6-echo, s6-rmrf, s6-chown, s6-chmod, s6-sleep, s6-cat, s6-ln, s6-touch,
// s6-hiercopy) and of s6-overlay's helpers (with-retries, logutil-service, logutil-newfifo),
// it acts as that program. See package s6util and docs/init.md.
package main

import (
	"os"

	"github.com/s6gate/s6gate/pkg/s6util"
)

func main() {
	os.Exit(s6util.Main(os.Args))
}
