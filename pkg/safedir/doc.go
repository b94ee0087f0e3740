// Package safedir opens directories inside the data root without following symbolic links, and
// reads, writes and removes single files through the opened directory.
//
// The data root is a volume, and the gateways' scan directory belongs to the service user.
// s6gate's programs act there as the service user (package svcuser), so a planted symlink can
// no longer lead root astray; the rules below still keep every read and write to the one file
// meant, whoever runs the code (a gateway must not be steered into another profile's files,
// a FIFO must not hang a verb, nothing is ever half-written):
//
//   - Open walks every component below the trusted base with openat(O_NOFOLLOW|O_DIRECTORY);
//     a symlink anywhere on the way is an error (ErrSymlink), never followed.
//   - ReadFile opens with O_NOFOLLOW, accepts only regular files, caps the size and treats a
//     short read as an error.
//   - WriteFile is atomic (github.com/google/renameio/v2 inside the opened directory: temp file,
//     fsync, rename, then fsync of the directory) and replaces a symlink instead of writing
//     through it; IsTempName recognises the temp files a killed writer leaves behind.
//   - Create, Mkdir and OpenFile work relative to the directory's descriptor, set exact modes
//     (the umask never matters for Create and Mkdir: they chmod unless the creation itself is
//     known to give the exact mode), and OpenFile accepts only regular files.
//   - ReadFileBeneath reads through several names in one openat2(2) that refuses a symlink
//     anywhere (RESOLVE_NO_SYMLINKS) and anything outside the directory (RESOLVE_BENEATH).
//   - OpenPath and LstatPath are the exception, named so: they follow symlinks in the
//     directories of a relative path as a path read would (for s6's files of a slot, read as
//     the service user), and save the walk from the root.
//
// The base path itself (for example /opt/data) is configuration and is trusted as given.
// Linux only: it relies on openat(2), flock(2) and /proc/self/fd.
package safedir
