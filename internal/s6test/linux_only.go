//go:build !linux

package s6test

import "syscall"

// s6test drives Debian's s6 and Linux namespaces: building it for another GOOS stops here, on
// purpose, with the identifier below as the message.
var _ = s6gate_is_Linux_only__build_with_GOOS_linux

func privateMountNamespace(*syscall.SysProcAttr) {}
