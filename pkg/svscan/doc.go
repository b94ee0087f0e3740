// Package svscan is gw-svscan (docs/gw-svscan.md): the gateways' scanner, s6-svscan 2.11's
// scan, restart and stop for the service user's scan directory, run by root so that an
// isolated slot's s6-supervise can have its profile's uid P as its real uid (and signal the
// slot's command, which runs as P) while it writes its supervise/ files as the service user.
// It is the only privileged code of the gateways' tree (SPEC §11, §13).
//
// What it guarantees, run as root (Run):
//
//   - The service user is the owner and group of the scan directory, neither of them 0; every
//     supervisor runs as it — uid and gid (svc, svc, svc), no supplementary group — except an
//     isolated slot's, which runs as real uid and gid P, effective and saved the service
//     user's: a directory gateway-<profile> with a valid UIDFile (a number in the uid range
//     of gw-svscan's own environment, not 0, not the service user's, not a live slot's). A
//     directory whose UIDFile fails a check is not started at all.
//   - Nothing in the scan directory is followed, executed or trusted: the directory is opened
//     once and becomes the working directory; every file operation is relative to a
//     descriptor with O_NOFOLLOW or AT_SYMLINK_NOFOLLOW and checked with fstat after the open
//     (control_linux.go, isolate_linux.go). The programs it starts are s6-supervise and
//     setpriv, at paths fixed at start from root's environment. It never runs .s6-svscan's
//     finish, crash or SIG* scripts.
//   - gw-svscan never changes its own credentials, so no tenant can signal it: an isolated
//     supervisor gets its credentials from setpriv, in the child (IsolatedArgs).
//   - The environment reaches an isolated slot although its supervisor is exec'd with
//     AT_SECURE: the variables glibc would drop (UnsecureEnv) travel as carriers (KeepEnv),
//     which `gateway run` turns back (RestoreKeptEnv).
//   - Otherwise it behaves as s6-svscan 2.11 (src/supervision/s6-svscan.c): the same control
//     commands and signals, a pipe per logged service kept for its lifetime, a dead
//     supervisor started again one second later, the same stop. The differences (symlinks are
//     not services, readiness waits for the supervisors, a logger's stdout is a pipe whose lines
//     gw-svscan prefixes with the gateway's name: forward_linux.go) are on the doc page.
//
// Limits: Linux only (openat, fchdir, /proc/self/fd, setresuid through setpriv); one
// process per scan directory (it takes s6-svscan's lock). The service user is trusted with
// every profile: it writes the UIDFile of each slot and controls every supervisor. Not
// root, gw-svscan is s6-svscan itself (internal/cmd/gwsvscan execs it): there is no one to
// protect from anyone.
package svscan
