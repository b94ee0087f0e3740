// Command init is s6gate's /init, the container entrypoint: an s6-overlay v3 compatible init
// on top of Debian's s6-svscan. Every argument is the CMD; there are no options. The same
// binary also serves as the stage-2 child, the s6-svscan signal hooks, stage 3 and halt,
// chosen by the name it is started under. See docs/init.md and package boot.
package main

import (
	"os"

	"github.com/s6gate/s6gate/pkg/boot"
)

func main() {
	os.Exit(boot.Main(os.Args))
}
