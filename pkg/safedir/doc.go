// Package safedir opens directories inside the data root without following symbolic links, and
// reads, writes and removes single files through the opened directory.
//
// The data root is a volume that the unprivileged service user can write. Anything running as
// root (the boot reconciler, verbs run through `docker exec`) must not be steered by a symlink
// planted there into reading or clobbering a file elsewhere. So:
//
//   - Open walks every component below the trusted base with openat(O_NOFOLLOW|O_DIRECTORY);
//     a symlink anywhere on the way is an error (ErrSymlink), never followed.
//   - ReadFile opens with O_NOFOLLOW, accepts only regular files, caps the size and treats a
//     short read as an error.
//   - WriteFile is atomic (github.com/google/renameio/v2 inside the opened directory: temp file,
//     fsync, rename, then fsync of the directory), replaces a symlink instead of writing through
//     it, and keeps the owner of the file it replaces.
//
// The base path itself (for example /opt/data) is configuration and is trusted as given.
// Linux only: it relies on openat(2), flock(2) and /proc/self/fd.
package safedir
