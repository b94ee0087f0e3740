package slot

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/owner"
)

// The scan directory belongs to the service user, so every path in it could be swapped for a
// symlink at any moment. Everything here works on directory descriptors opened with
// O_NOFOLLOW, creates with O_EXCL, and sets modes through descriptors (fchmod after creation,
// so the umask never matters).

// openDir opens name (relative to dirfd, or a path with AT_FDCWD) as a directory, refusing a
// symlink.
func openDir(dirfd int, name string) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

func join(d *os.File, name string) string { return filepath.Join(d.Name(), name) }

// writeAt creates name in d (it must not exist) with content and exactly mode.
func writeAt(d *os.File, name, content string, mode os.FileMode) error {
	fd, err := unix.Openat(int(d.Fd()), name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: join(d, name), Err: err}
	}
	f := os.NewFile(uintptr(fd), join(d, name))
	_, err = f.WriteString(content)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// mkdirAt creates the directory name in d with exactly mode (set-gid and sticky included) and
// returns it open.
func mkdirAt(d *os.File, name string, mode os.FileMode) (*os.File, error) {
	if err := unix.Mkdirat(int(d.Fd()), name, 0o700); err != nil {
		return nil, &os.PathError{Op: "mkdir", Path: join(d, name), Err: err}
	}
	sub, err := openDir(int(d.Fd()), name)
	if err != nil {
		return nil, err
	}
	if err := unix.Fchmod(int(sub.Fd()), unixMode(mode)); err != nil {
		sub.Close()
		return nil, &os.PathError{Op: "chmod", Path: join(d, name), Err: err}
	}
	return sub, nil
}

// mkfifoAt creates the FIFO name in d with exactly mode. The mode is set through a descriptor
// (O_RDWR opens a FIFO without blocking on Linux), never through the name.
func mkfifoAt(d *os.File, name string, mode os.FileMode) error {
	if err := unix.Mkfifoat(int(d.Fd()), name, 0o600); err != nil {
		return &os.PathError{Op: "mkfifo", Path: join(d, name), Err: err}
	}
	fd, err := unix.Openat(int(d.Fd()), name, unix.O_RDWR|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: join(d, name), Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return &os.PathError{Op: "mkfifo", Path: join(d, name), Err: errors.New("replaced while being created")}
	}
	if err := unix.Fchmod(fd, unixMode(mode)); err != nil {
		return &os.PathError{Op: "chmod", Path: join(d, name), Err: err}
	}
	return nil
}

func unixMode(m os.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&os.ModeSetgid != 0 {
		b |= unix.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		b |= unix.S_ISVTX
	}
	return b
}

// fifodirMode is s6's mode for event directories: group members may subscribe, nobody may
// list or delete others' subscriptions.
const fifodirMode = 0o730 | os.ModeSetgid | os.ModeSticky

// seedAt creates, in the service directory d, whichever of event/, supervise/,
// supervise/event/ and supervise/control are missing, with their modes, and returns the
// relative names it created (children after their parent).
func seedAt(d *os.File) ([]string, error) {
	var created []string
	mkdir := func(parent *os.File, name, rel string, mode os.FileMode) (*os.File, error) {
		sub, err := mkdirAt(parent, name, mode)
		if err == nil {
			created = append(created, rel)
			return sub, nil
		}
		if errors.Is(err, unix.EEXIST) {
			return openDir(int(parent.Fd()), name)
		}
		return nil, err
	}
	ev, err := mkdir(d, "event", "event", fifodirMode)
	if err != nil {
		return nil, err
	}
	ev.Close()
	sup, err := mkdir(d, "supervise", "supervise", 0o755)
	if err != nil {
		return nil, err
	}
	defer sup.Close()
	sev, err := mkdir(sup, "event", "supervise/event", fifodirMode)
	if err != nil {
		return nil, err
	}
	sev.Close()
	switch err := mkfifoAt(sup, "control", 0o660); {
	case err == nil:
		created = append(created, "supervise/control")
	case !errors.Is(err, unix.EEXIST):
		return nil, err
	}
	return created, nil
}

// chownCreated gives the entries seedAt created in d to own, children before parents, without
// following symlinks. A nil own does nothing.
func chownCreated(d *os.File, created []string, own *owner.Owner) error {
	if own == nil {
		return nil
	}
	for i := len(created) - 1; i >= 0; i-- {
		dir, name := filepath.Split(created[i])
		parent := d
		if dir != "" {
			p, err := openDir(int(d.Fd()), filepath.Clean(dir))
			if err != nil {
				return err
			}
			defer p.Close()
			parent = p
		}
		if err := own.FchownAt(int(parent.Fd()), name); err != nil {
			return err
		}
	}
	return nil
}

// chownTree gives d and everything below it to own, children before their directory, through
// descriptors and without following symlinks. A nil own does nothing.
func chownTree(d *os.File, own *owner.Owner) error {
	if own == nil {
		return nil
	}
	if err := chownBelow(d, own); err != nil {
		return err
	}
	return own.Fchown(int(d.Fd()))
}

func chownBelow(d *os.File, own *owner.Owner) error {
	fd, err := unix.Openat(int(d.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: d.Name(), Err: err}
	}
	list := os.NewFile(uintptr(fd), d.Name())
	entries, err := list.ReadDir(-1)
	list.Close()
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			sub, err := openDir(int(d.Fd()), e.Name())
			if err != nil {
				return err
			}
			err = chownBelow(sub, own)
			sub.Close()
			if err != nil {
				return err
			}
		}
		if err := own.FchownAt(int(d.Fd()), e.Name()); err != nil {
			return err
		}
	}
	return nil
}
