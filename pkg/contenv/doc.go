// Package contenv is the s6-overlay "container environment": the environment that a container
// was started with, kept as a directory with one file per variable so that processes started
// later from a minimal environment (s6 services, whose supervisor runs with PATH only) can get
// it back. It is the writing side (what /init does at boot) and the reading side (what
// `with-contenv` and `printcontenv` do).
//
// # The directory format (an s6 envdir)
//
// DefaultDir, /run/s6/container_environment, mode 0755, holds one regular file per variable,
// mode 0644: the file name is the variable's name and the content its value, with no trailing
// newline. Reading follows `s6-envdir -Lf`, so files written by hand or by other tools mean the
// same thing to this package and to s6:
//   - names that start with a dot or contain '=' are ignored;
//   - the whole file is the value (no size clamp below the kernel's limit of MaxValueSize),
//     minus exactly one trailing newline if there is one (so `echo v > DIR/NAME` gives "v");
//     NUL bytes become newlines;
//   - an empty file means "unset this variable";
//   - entries that are not regular files (after following symlinks) are ignored.
//
// Limits, stated rather than hidden: a value that itself ends in a newline loses that last
// newline on the way back (s6-overlay behaves the same), an empty value comes back as "unset",
// and a name longer than a file name can be (255 bytes) or containing '/' is not dumped.
//
// # with-contenv semantics (Restore)
//
// If S6_KEEP_ENV is a non-zero number in the current environment, or if the directory does
// not exist (a host with no /init, as in tests), the environment is kept as it was given.
// Otherwise the result starts from the current PATH only and the directory is applied on top
// of it: the container's PATH wins when it was dumped; the caller's PATH survives when it was
// not. This is s6-overlay v3's `emptyenv -p` + `s6-envdir -Lf`, except that a missing
// directory is not an error. The program is then looked up in the resulting PATH
// (DefaultPath when there is none), like execvp.
//
// # Exit codes of the chain loaders built on this package
//
// 126 the program was found but could not be executed (permission, bad format);
// 127 the program was not found (also: a script whose interpreter is missing).
package contenv
