// Package s6 talks to Debian's s6 (2.11 and newer): it runs the s6 tools from the command
// directory, turns their failures into *CommandError values that carry the exit code and
// stderr, reads a service's state, and tells whether s6 is the container's supervisor.
//
// State comes from s6 itself: the status file that s6-supervise keeps in supervise/status
// (35 bytes in s6 2.11 and 2.15; 43 bytes in the s6 releases between that stored a pgid),
// read directly so that a status of 100 slots costs 100 small reads instead of 100 process
// spawns. Unknown layouts fall back
// to `s6-svstat -o`, whose field names exist in both generations, and then to the human
// `s6-svstat` line (2.11 prints "up (pid N) S seconds", newer s6 "up (pid N pgid N) …").
// A missing status file does not: s6-supervise takes its lock and opens its control FIFO a
// moment before its first write, and a reading then is ErrNoStatus — s6-svstat reads the
// same file, and its whole seconds are no stamp to compare with (Status.Stamped).
//
// Whether s6-supervise is running on a service is the same test s6-svok makes: someone holds
// the lock on supervise/lock.
package s6
