// Package s6util implements, in Go, the small programs that s6-overlay images expect and that
// Debian does not ship: the s6-portable-utils commands that scripts use (s6-mkdir, s6-echo,
// s6-rmrf, s6-chown, s6-chmod, s6-sleep, s6-cat, s6-ln, s6-touch, s6-hiercopy) and
// s6-overlay's helpers with-retries, logutil-service and logutil-newfifo. Options, exit codes
// and messages follow the originals (usage errors exit 100, system errors 111). Main picks the
// program by the base name of argv[0], so one binary serves them all through symlinks.
package s6util
