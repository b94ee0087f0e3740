// Command s6-rc is s6-rc's service manager interface (change, list, listall, diff) on the
// live state that s6gate's /init builds from /etc/s6-overlay/s6-rc.d. See docs/s6-rc.md and
// package s6rc.
package main

import (
	"os"

	"github.com/s6gate/s6gate/pkg/s6rc"
)

func main() {
	os.Exit(s6rc.Main(os.Args))
}
