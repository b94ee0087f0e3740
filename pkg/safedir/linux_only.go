//go:build !linux

package safedir

// s6gate runs on Linux only: this package needs renameat2(RENAME_NOREPLACE), flock(2) and
// /proc/self/fd, and everything that touches the data root is built on it. Building for
// another GOOS stops here, on purpose, with the identifier below as the message.
var _ = s6gate_is_Linux_only__build_with_GOOS_linux
