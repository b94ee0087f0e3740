//go:build !linux

package aside

// s6gate runs on Linux only: this package needs renameat2(RENAME_NOREPLACE), flock(2) and
// sched_setattr(2). Building for another GOOS stops here, on purpose, with the identifier
// below as the message.
var _ = s6gate_is_Linux_only__build_with_GOOS_linux
