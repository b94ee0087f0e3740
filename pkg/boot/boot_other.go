//go:build !linux

package boot

import (
	"fmt"
	"os"
	"runtime"
)

// Main reports that /init only exists for Linux containers.
func Main(argv []string) int {
	fmt.Fprintf(os.Stderr, "s6gate-init: fatal: not supported on %s (Linux containers only)\n", runtime.GOOS)
	return codeSystem
}
