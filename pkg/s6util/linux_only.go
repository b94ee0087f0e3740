//go:build !linux

package s6util

// s6util's programs are Linux system tools (mkfifo, mknod, setgroups, exec): building for
// another GOOS stops here, on purpose, with the identifier below as the message.
var _ = s6gate_is_Linux_only__build_with_GOOS_linux
