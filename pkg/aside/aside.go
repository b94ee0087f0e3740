//go:build linux

package aside

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/s6gate/s6gate/pkg/safedir"
	"golang.org/x/sys/unix"
)

// A set-aside tree is named "." + base + oldMark + token beside the directory, or
// insideMark + token inside it.
const (
	oldMark    = ".old-"
	insideMark = ".old-"
)

// MaxDepth is how many directories Remove holds open at once: a subtree deeper than that is
// moved up to the top of the tree being removed (one rename) and removed from there.
const MaxDepth = 64

// ErrBusy means another remover holds the tree's lock.
var ErrBusy = errors.New("another process is removing it")

// SetAside moves the directory dir out of the way and returns the path of the set-aside tree
// ("" when dir does not exist, nothing to do). Normally that is one rename, in dir's parent, to
// "." + base + ".old-" + a random token; the caller then makes dir anew. When dir cannot be
// renamed (a mount point, or an overlayfs directory of a lower layer), it stays where it is,
// and its entries are moved into a new directory inside it, ".old-" + a token: one rename per
// entry of dir itself, none for what lies below them.
//
// The set-aside tree is sealed: root's with mode 0700 when the caller is root (else mode 0700
// only), so nobody but root can reach into it any more or add to it. A symlink or a file at
// dir is set aside as it is, never followed.
func SetAside(dir string) (string, error) {
	dir = filepath.Clean(dir)
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	if base == "/" || base == "." || base == ".." {
		return "", &os.PathError{Op: "set aside", Path: dir, Err: errors.New("not a directory of its own")}
	}
	pfd, err := unix.Open(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return "", nil
	}
	if err != nil {
		return "", &os.PathError{Op: "open", Path: parent, Err: err}
	}
	defer unix.Close(pfd)
	name := "." + base + oldMark + token()
	err = renameNoReplace(pfd, base, pfd, name)
	switch {
	case err == nil:
		seal(pfd, name)
		return filepath.Join(parent, name), nil
	case errors.Is(err, unix.ENOENT):
		return "", nil
	case errors.Is(err, unix.EBUSY), errors.Is(err, unix.EXDEV):
		return moveEntries(pfd, dir)
	}
	return "", &os.LinkError{Op: "rename", Old: dir, New: filepath.Join(parent, name), Err: err}
}

// moveEntries is SetAside for a directory that cannot be renamed: its entries move into a
// sealed ".old-<token>" directory inside it.
func moveEntries(pfd int, dir string) (string, error) {
	dfd, err := safedir.OpenAt(pfd, filepath.Base(dir), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return "", &os.PathError{Op: "open", Path: dir, Err: err}
	}
	d := os.NewFile(uintptr(dfd), dir)
	defer d.Close()
	trash := insideMark + token()
	if err := safedir.MkdirAt(dfd, trash, 0o700); err != nil {
		return "", &os.PathError{Op: "mkdir", Path: filepath.Join(dir, trash), Err: err}
	}
	seal(dfd, trash)
	tfd, err := safedir.OpenAt(dfd, trash, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return "", &os.PathError{Op: "open", Path: filepath.Join(dir, trash), Err: err}
	}
	defer unix.Close(tfd)
	for rewound := false; ; {
		names, err := d.Readdirnames(1024)
		if err != nil && err != io.EOF {
			return "", err
		}
		if len(names) == 0 {
			if rewound {
				return filepath.Join(dir, trash), nil
			}
			// Once more from the start: a directory read while its entries leave may skip
			// some.
			if _, err := d.Seek(0, io.SeekStart); err != nil {
				return "", err
			}
			rewound = true
			continue
		}
		for _, n := range names {
			if n == trash {
				continue
			}
			rewound = false
			err := safedir.RenameAt(dfd, n, tfd, n, false)
			if err == nil || errors.Is(err, unix.ENOENT) {
				continue
			}
			// An entry that cannot move either (overlayfs again) is removed where it is.
			if rerr := removeIn(dfd, n, filepath.Join(dir, n)); rerr != nil {
				return "", fmt.Errorf("set aside %s: %w", filepath.Join(dir, n), rerr)
			}
		}
	}
}

// removeIn removes name in dirfd.
func removeIn(dirfd int, name, path string) error {
	pfd, err := unix.FcntlInt(uintptr(dirfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return err
	}
	t, err := claimAt(pfd, name, path)
	if err != nil {
		return err
	}
	_, err = t.Remove()
	return err
}

// seal gives the set-aside directory name in dirfd to root (when the caller is root) with mode
// 0700. Best effort: a symlink or file set aside is left as it is (Remove unlinks it).
func seal(dirfd int, name string) {
	fd, err := safedir.OpenAt(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if os.Geteuid() == 0 {
		_ = unix.Fchown(fd, 0, 0)
	}
	_ = unix.Fchmod(fd, 0o700)
}

// Leftovers returns the set-aside trees of dir that are still there, beside it and inside it.
func Leftovers(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	var out []string
	for _, where := range []struct{ dir, prefix string }{
		{parent, "." + base + oldMark},
		{dir, insideMark},
	} {
		f, err := os.Open(where.dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return out, err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return out, err
		}
		for _, n := range names {
			if strings.HasPrefix(n, where.prefix) && len(n) > len(where.prefix) {
				out = append(out, filepath.Join(where.dir, n))
			}
		}
	}
	return out, nil
}

// Remove removes the set-aside tree at path: Claim, then Tree.Remove. A missing path is no
// error.
func Remove(path string) (int64, error) {
	t, err := Claim(path)
	if err != nil {
		return 0, err
	}
	return t.Remove()
}

// Tree is a set-aside tree claimed for removal by this process.
type Tree struct {
	path   string
	parent int      // the directory that holds it (ours to close)
	name   string   // its name there
	top    *os.File // the tree's top directory, locked; nil when it is not a directory
}

// Claim opens the set-aside tree at path (a directory, or whatever was set aside: a symlink is
// never followed) and takes its lock, an exclusive flock on its top, without waiting: ErrBusy
// when another remover holds it, so two removers never work on one tree. The lock is held
// until Remove or Close.
func Claim(path string) (*Tree, error) {
	path = filepath.Clean(path)
	pfd, err := unix.Open(filepath.Dir(path), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: filepath.Dir(path), Err: err}
	}
	return claimAt(pfd, filepath.Base(path), path)
}

// ClaimIn is Claim of the entry name of the directory dirfd, for a caller that reached that
// directory through descriptors (never a path a user could have swapped for a symlink). dirfd
// stays the caller's.
func ClaimIn(dirfd int, dirPath, name string) (*Tree, error) {
	pfd, err := unix.Dup(dirfd)
	if err != nil {
		return nil, &os.PathError{Op: "dup", Path: dirPath, Err: err}
	}
	unix.CloseOnExec(pfd)
	return claimAt(pfd, name, filepath.Join(dirPath, name))
}

// claimAt is Claim of name in pfd, which it takes over.
func claimAt(pfd int, name, path string) (*Tree, error) {
	t := &Tree{path: path, parent: pfd, name: name}
	fd, err := openDir(pfd, name)
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP):
		return t, nil // gone already, or not a directory: Remove unlinks it
	case err != nil:
		unix.Close(pfd)
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	t.top = os.NewFile(uintptr(fd), path)
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("remove %s: %w", path, ErrBusy)
		}
		return nil, &os.PathError{Op: "flock", Path: path, Err: err}
	}
	return t, nil
}

// Path is where the tree is.
func (t *Tree) Path() string { return t.path }

// Close gives the claim up, removing nothing.
func (t *Tree) Close() error {
	if t.top != nil {
		t.top.Close()
	}
	return unix.Close(t.parent)
}

// Remove removes the claimed tree and returns how many entries it removed. It works with
// descriptors only: nothing is ever followed through a symlink, and at most MaxDepth
// directories are open at once. It releases the claim.
func (t *Tree) Remove() (int64, error) {
	defer t.Close()
	r := &remover{}
	if t.top == nil {
		err := safedir.UnlinkAt(t.parent, t.name)
		if err == nil {
			return 1, nil
		}
		if errors.Is(err, unix.ENOENT) {
			return 0, nil
		}
		return 0, &os.PathError{Op: "unlinkat", Path: t.path, Err: err}
	}
	if err := r.empty(t.top); err != nil {
		return r.n, err
	}
	if err := safedir.RmdirAt(t.parent, t.name); err != nil && !errors.Is(err, unix.ENOENT) {
		return r.n, &os.PathError{Op: "rmdir", Path: t.path, Err: err}
	}
	return r.n + 1, nil
}

// remover removes one tree and counts what it removed.
type remover struct {
	n    int64
	flat int // names made at the top for subtrees moved up
}

// level is one open directory on the way down.
type level struct {
	f       *os.File
	name    string   // its name in the level above
	pending []string // names read and not yet removed
	rewound bool     // read again from the start since the last name it gave
}

// empty removes everything in top, depth first, with at most MaxDepth directories open.
func (r *remover) empty(top *os.File) error {
	stack := []*level{{f: top}}
	defer func() {
		for i := 1; i < len(stack); i++ {
			stack[i].f.Close()
		}
	}()
	for len(stack) > 0 {
		cur := stack[len(stack)-1]
		if len(cur.pending) == 0 {
			names, err := cur.f.Readdirnames(1024)
			if err != nil && err != io.EOF {
				return &os.PathError{Op: "readdir", Path: cur.f.Name(), Err: err}
			}
			if len(names) > 0 {
				cur.pending, cur.rewound = names, false
				continue
			}
			if !cur.rewound {
				// Once more from the start: a directory read while its entries go may skip
				// some, and subtrees moved up to the top land anywhere in it.
				if _, err := cur.f.Seek(0, io.SeekStart); err != nil {
					return err
				}
				cur.rewound = true
				continue
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return nil // top: the caller removes it
			}
			cur.f.Close()
			up := stack[len(stack)-1]
			if err := safedir.RmdirAt(int(up.f.Fd()), cur.name); err != nil && !errors.Is(err, unix.ENOENT) {
				return &os.PathError{Op: "rmdir", Path: cur.f.Name(), Err: err}
			}
			r.n++
			continue
		}
		name := cur.pending[0]
		cur.pending = cur.pending[1:]
		fd := int(cur.f.Fd())
		path := cur.f.Name() + "/" + name
		err := safedir.UnlinkAt(fd, name)
		if err == nil {
			r.n++
			continue
		}
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
			return &os.PathError{Op: "unlinkat", Path: path, Err: err}
		}
		if len(stack) >= MaxDepth {
			if err := r.moveUp(fd, name, int(stack[0].f.Fd())); err != nil {
				return &os.LinkError{Op: "rename", Old: path, New: stack[0].f.Name(), Err: err}
			}
			continue
		}
		sub, oerr := openDir(fd, name)
		if errors.Is(oerr, unix.ENOENT) {
			continue
		}
		if oerr != nil {
			if errors.Is(oerr, unix.ENOTDIR) || errors.Is(oerr, unix.ELOOP) {
				return &os.PathError{Op: "unlinkat", Path: path, Err: err}
			}
			return &os.PathError{Op: "open", Path: path, Err: oerr}
		}
		stack = append(stack, &level{f: os.NewFile(uintptr(sub), path), name: name})
	}
	return nil
}

// moveUp moves the subtree name of dirfd to the top of the tree, under a name of its own.
func (r *remover) moveUp(dirfd int, name string, top int) error {
	for {
		r.flat++
		err := renameNoReplace(dirfd, name, top, ".aside-"+strconv.Itoa(r.flat))
		if !errors.Is(err, unix.EEXIST) {
			return err
		}
	}
}

// openDir opens name in dirfd as a directory, never following a symlink. A caller that is not
// root may find its own directories without the rights to empty them (mode 0500, 0000): it
// gives itself those rights first, as their owner may.
func openDir(dirfd int, name string) (int, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY
	fd, err := safedir.OpenAt(dirfd, name, flags, 0)
	if errors.Is(err, unix.EACCES) {
		if safedir.ChmodDirAt(dirfd, name, 0o700) == nil {
			fd, err = safedir.OpenAt(dirfd, name, flags, 0)
		}
	}
	if err == nil && os.Geteuid() != 0 {
		_ = unix.Fchmod(fd, 0o700) // entries of a 0500 directory cannot be unlinked
	}
	return fd, err
}

// renameNoReplace renames without replacing what is at the new name; where the file system
// cannot say (no RENAME_NOREPLACE), a plain rename: the new names here are random or fresh.
func renameNoReplace(olddirfd int, oldname string, newdirfd int, newname string) error {
	return safedir.RenameAt(olddirfd, oldname, newdirfd, newname, true)
}

// token is a random name part.
func token() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Idle makes the calling process an idle-priority one: the SCHED_IDLE policy (it runs only
// when a CPU has nothing else to do), nice 19, and the idle I/O class. Linux keeps these per
// thread: they are set on every thread the process has now, and new threads inherit them from
// the thread that makes them. It returns the first error, having tried every setting.
func Idle() error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	const (
		ioprioWhoProcess = 1
		ioprioClassIdle  = 3
		ioprioClassShift = 13
	)
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		keep(unix.SchedSetAttr(tid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}, 0))
		keep(unix.Setpriority(unix.PRIO_PROCESS, tid, 19))
		if _, _, e := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), ioprioClassIdle<<ioprioClassShift); e != 0 {
			keep(e)
		}
	}
	return first
}
