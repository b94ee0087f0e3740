//go:build !linux

package profileuid

// s6gate runs on Linux only: this package claims uids with symlinkat(2) and fsync(2) on a
// directory descriptor. Building for another GOOS stops here, on purpose, with the
// identifier below as the message.
var _ = s6gate_is_Linux_only__build_with_GOOS_linux
