//go:build !linux

package settlefork

// settlefork forks with Linux system calls: building it for another GOOS stops here, on
// purpose, with the identifier below as the message.
var _ = s6gate_is_Linux_only__build_with_GOOS_linux
