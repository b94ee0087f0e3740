//go:build linux

package safedir

import (
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// The functions below are the descriptor-level form of Dir, for the packages that walk or
// build trees by raw descriptors (pkg/aside removing a tree, pkg/svscan scanning one,
// pkg/profileuid claiming uids). They exist so that the rule every one of those calls must
// keep, never follow a symbolic link at the last component and never leak a descriptor into
// a child, is written here once: O_NOFOLLOW and O_CLOEXEC are added to every open, and no
// function here follows a link.

// OpenAt opens name in dirfd with flags, always adding O_NOFOLLOW and O_CLOEXEC.
func OpenAt(dirfd int, name string, flags int, perm uint32) (int, error) {
	return unix.Openat(dirfd, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
}

// OpenDirAt opens name in dirfd as a directory without following a symlink; a symlink is
// reported as ErrSymlink.
func OpenDirAt(dirfd int, name string) (int, error) { return openDirAt(dirfd, name) }

// MkdirAt creates the directory name in dirfd with mode perm (less the umask, as mkdir(2)).
func MkdirAt(dirfd int, name string, perm os.FileMode) error {
	return unix.Mkdirat(dirfd, name, unixMode(perm))
}

// MkfifoAt creates the FIFO name in dirfd with mode perm (less the umask).
func MkfifoAt(dirfd int, name string, perm os.FileMode) error {
	return unix.Mkfifoat(dirfd, name, unixMode(perm))
}

// LstatAt is fstatat(2) of name in dirfd, never following a symlink.
func LstatAt(dirfd int, name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

// UnlinkAt removes the non-directory name in dirfd (a symlink itself, never its target).
func UnlinkAt(dirfd int, name string) error { return unix.Unlinkat(dirfd, name, 0) }

// RmdirAt removes the empty directory name in dirfd.
func RmdirAt(dirfd int, name string) error { return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR) }

// RenameAt renames oldname in olddirfd to newname in newdirfd. With noReplace it never
// replaces what is at newname, where the file system can say so (RENAME_NOREPLACE); where it
// cannot (EINVAL, ENOSYS) it falls back to a plain rename, so callers pass noReplace only for
// names that are random or fresh.
func RenameAt(olddirfd int, oldname string, newdirfd int, newname string, noReplace bool) error {
	if noReplace {
		err := unix.Renameat2(olddirfd, oldname, newdirfd, newname, unix.RENAME_NOREPLACE)
		if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
			return err
		}
	}
	return unix.Renameat(olddirfd, oldname, newdirfd, newname)
}

// SymlinkAt creates the symlink name in dirfd pointing at target. It fails with EEXIST where
// something is already at name: a symlink is created atomically or not at all, which is what
// makes it a claim.
func SymlinkAt(target string, dirfd int, name string) error {
	return unix.Symlinkat(target, dirfd, name)
}

// ReadlinkAt reads the symlink name in dirfd into buf.
func ReadlinkAt(dirfd int, name string, buf []byte) (int, error) {
	return unix.Readlinkat(dirfd, name, buf)
}

// ChmodDirAt sets the mode of the directory name in dirfd. fchmodat(2) has no way not to
// follow a symlink (before fchmodat2), so the directory is first opened with O_PATH and
// O_NOFOLLOW, checked to be a directory, and changed through its descriptor: a symlink
// planted at name is refused with ErrSymlink, never followed.
func ChmodDirAt(dirfd int, name string, perm os.FileMode) error {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
	case unix.S_IFLNK:
		return ErrSymlink
	default:
		return unix.ENOTDIR
	}
	// An O_PATH descriptor cannot be fchmod'ed; its /proc/self/fd link names exactly the
	// directory it was opened on.
	return unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), unixMode(perm))
}
