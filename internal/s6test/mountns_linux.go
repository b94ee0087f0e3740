package s6test

import "syscall"

// privateMountNamespace makes the process started with attr enter a mount namespace of its own
// (Go makes its mounts private before the program runs).
func privateMountNamespace(attr *syscall.SysProcAttr) { attr.Unshareflags = syscall.CLONE_NEWNS }
