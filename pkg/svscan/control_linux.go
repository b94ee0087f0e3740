package svscan

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/s6gate/s6gate/pkg/safedir"
	"golang.org/x/sys/unix"
)

// openControl makes .s6-svscan (0700) with its lock and control FIFO (0600), all the service
// user's, as s6-svscan does when the service user runs it, and returns the FIFO's read end; a
// write end stays open so that reading never sees an end of file. Anything the service user
// left there is opened without following a symlink and accepted only if it is what s6-svscan
// would make, with one link and owned by the service user (or by root, from a scanner that
// was stopped half-way): a hard link to someone else's file is never locked or chowned.
func openControl(dir int, scanDir string, uid, gid int) (int, error) {
	ctlPath := scanDir + "/.s6-svscan"
	created := true
	if err := safedir.MkdirAt(dir, ".s6-svscan", 0o700); errors.Is(err, unix.EEXIST) {
		created = false
	} else if err != nil {
		return -1, &SystemError{&os.PathError{Op: "mkdir", Path: ctlPath, Err: err}}
	}
	cdir, err := safedir.OpenAt(dir, ".s6-svscan", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return -1, &SetupError{Path: ctlPath, Reason: "exists and is not a directory"}
	} else if err != nil {
		return -1, &SystemError{&os.PathError{Op: "open", Path: ctlPath, Err: err}}
	}
	defer unix.Close(cdir)
	if err := adopt(cdir, ctlPath, unix.S_IFDIR, uid, gid); err != nil {
		return -1, err
	}
	if created {
		if err := unix.Fchmod(cdir, 0o700); err != nil {
			return -1, &SystemError{&os.PathError{Op: "chmod", Path: ctlPath, Err: err}}
		}
	}

	lockPath := ctlPath + "/lock"
	lock, err := safedir.OpenAt(cdir, "lock", unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CREAT, 0o600)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENXIO) || errors.Is(err, unix.EISDIR) {
		return -1, &SetupError{Path: lockPath, Reason: "is not a regular file"}
	} else if err != nil {
		return -1, &SystemError{&os.PathError{Op: "open", Path: lockPath, Err: err}}
	}
	// The lock stays held (and its descriptor open) for gw-svscan's lifetime.
	if err := adopt(lock, lockPath, unix.S_IFREG, uid, gid); err != nil {
		return -1, err
	}
	// The lock s6-svscan takes (skalibs fd_lock: a POSIX write lock on the whole file), so
	// that neither scanner runs beside the other.
	if err := unix.FcntlFlock(uintptr(lock), unix.F_SETLK, &unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}); err != nil {
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return -1, &SetupError{Path: scanDir, Reason: "another instance of s6-svscan or gw-svscan is already running on it"}
		}
		return -1, &SystemError{&os.PathError{Op: "lock", Path: lockPath, Err: err}}
	}

	fifoPath := ctlPath + "/control"
	if err := safedir.MkfifoAt(cdir, "control", 0o600); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, &SystemError{&os.PathError{Op: "mkfifo", Path: fifoPath, Err: err}}
	}
	r, err := safedir.OpenAt(cdir, "control", unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ELOOP) {
		return -1, &SetupError{Path: fifoPath, Reason: "is not a FIFO"}
	} else if err != nil {
		return -1, &SystemError{&os.PathError{Op: "open", Path: fifoPath, Err: err}}
	}
	if err := adopt(r, fifoPath, unix.S_IFIFO, uid, gid); err != nil {
		return -1, err
	}
	if err := unix.Fchmod(r, 0o600); err != nil {
		return -1, &SystemError{&os.PathError{Op: "chmod", Path: fifoPath, Err: err}}
	}
	// The write end: the same FIFO reopened through its descriptor, never by name again.
	if _, err := unix.Open("/proc/self/fd/"+strconv.Itoa(r), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err != nil {
		return -1, &SystemError{&os.PathError{Op: "open for writing", Path: fifoPath, Err: err}}
	}
	return r, nil
}

// adopt checks that the open file fd is of type typ, has one link (a directory: any) and
// belongs to the service user or root, and makes it the service user's.
func adopt(fd int, path string, typ uint32, uid, gid int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &SystemError{&os.PathError{Op: "fstat", Path: path, Err: err}}
	}
	names := map[uint32]string{unix.S_IFDIR: "a directory", unix.S_IFREG: "a regular file", unix.S_IFIFO: "a FIFO"}
	switch {
	case st.Mode&unix.S_IFMT != typ:
		return &SetupError{Path: path, Reason: "is not " + names[typ]}
	case typ != unix.S_IFDIR && st.Nlink != 1:
		return &SetupError{Path: path, Reason: fmt.Sprintf("has %d links (a hard link is never adopted)", st.Nlink)}
	case int(st.Uid) != uid && st.Uid != 0:
		return &SetupError{Path: path, Reason: fmt.Sprintf("belongs to uid %d, neither the service user (%d) nor root", st.Uid, uid)}
	}
	if int(st.Uid) != uid || int(st.Gid) != gid {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return &SystemError{&os.PathError{Op: "chown", Path: path, Err: err}}
		}
	}
	return nil
}

// readControl sends what s6-svscanctl writes into the control FIFO to ctl, forever.
func readControl(fd int, ctl chan<- []byte) {
	f := os.NewFile(uintptr(fd), ".s6-svscan/control")
	buf := make([]byte, 64)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			ctl <- append([]byte(nil), buf[:n]...)
		}
		if err != nil {
			return
		}
	}
}
