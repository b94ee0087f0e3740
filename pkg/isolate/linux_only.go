//go:build !linux

package isolate

// s6gate runs on Linux only: this package reads /proc and uses prlimit(2), ptrace(2) and
// the kernel's per-uid process accounting. Building for another GOOS stops here, on
// purpose, with the identifier below as the message.
var _ = s6gate_is_Linux_only__build_with_GOOS_linux
