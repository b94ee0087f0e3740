//go:build linux

package safedir

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// ErrSymlink is returned (inside an *os.PathError) when a path component or a file that must
// be opened is a symbolic link.
var ErrSymlink = errors.New("refusing to follow a symbolic link")

// ErrNotRegular is returned when a file to read is not a regular file (a FIFO, a device, a dir).
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is returned when a file is larger than the caller's limit.
var ErrTooLarge = errors.New("file too large")

// Dir is an open directory. Its methods act on single names directly inside it.
//
// It holds the raw descriptor, not an *os.File: os.NewFile costs a fcntl(2) per directory
// and its Close a few more steps, and the boot reconciler and `gateway status` open a few
// directories per profile. Close must be called (there is no finalizer); a second Close is
// os.ErrClosed, as for an *os.File.
type Dir struct {
	fd      int
	path    string
	created bool
	// What createsExact needs, found out once (a Dir is shared by the boot reconciler's
	// workers): whether creations in it are subject to the umask alone, and that umask.
	modesOnce sync.Once
	umaskOnly bool
	umask     uint32
}

// Open opens base/rel. base is trusted; every component of rel is opened with O_NOFOLLOW.
// rel may be "" (base itself) and must be relative and clean (no "..").
func Open(base, rel string) (*Dir, error) {
	return open(base, rel, false, 0)
}

// MkdirAll opens base/rel like Open, creating the missing components of rel with mode perm
// (applied exactly, whatever the umask). Created reports whether the last component was
// created by this call.
func MkdirAll(base, rel string, perm os.FileMode) (d *Dir, created bool, err error) {
	d, err = open(base, rel, true, perm)
	if err != nil {
		return nil, false, err
	}
	return d, d.created, nil
}

func open(base, rel string, create bool, perm os.FileMode) (*Dir, error) {
	if rel != "" && (filepath.IsAbs(rel) || filepath.Clean(rel) != rel || rel == ".." || strings.HasPrefix(rel, "../")) {
		return nil, &os.PathError{Op: "open", Path: rel, Err: errors.New("not a clean relative path")}
	}
	fd, err := unix.Open(base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: base, Err: err}
	}
	path := base
	created := false
	if rel != "" {
		for _, name := range strings.Split(rel, "/") {
			path = filepath.Join(path, name)
			created = false
			next, err := openDirAt(fd, name)
			if errors.Is(err, unix.ENOENT) && create {
				if err = unix.Mkdirat(fd, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
					unix.Close(fd)
					return nil, &os.PathError{Op: "mkdir", Path: path, Err: err}
				}
				created = err == nil
				next, err = openDirAt(fd, name)
				if err == nil && created {
					err = unix.Fchmod(next, unixMode(perm))
				}
			}
			unix.Close(fd)
			if err != nil {
				return nil, &os.PathError{Op: "open", Path: path, Err: err}
			}
			fd = next
		}
	}
	return &Dir{fd: fd, path: path, created: created}, nil
}

// openDirAt opens name in dirfd as a directory without following a symlink. A symlink is
// reported as ErrSymlink rather than the kernel's ELOOP or ENOTDIR.
func openDirAt(dirfd int, name string) (int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == nil {
		return fd, nil
	}
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		var st unix.Stat_t
		if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return -1, ErrSymlink
		}
	}
	return -1, err
}

// unixMode is m as chmod(2) wants it, set-id and sticky bits included.
func unixMode(m os.FileMode) uint32 {
	b := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		b |= unix.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		b |= unix.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		b |= unix.S_ISVTX
	}
	return b
}

// Path is the directory's path, for messages.
func (d *Dir) Path() string { return d.path }

// Join is the path of name inside d, for messages.
func (d *Dir) Join(name string) string { return filepath.Join(d.path, name) }

// Fd is the directory's file descriptor, valid until Close.
func (d *Dir) Fd() int { return d.fd }

// Chmod sets the directory's own mode, exactly.
func (d *Dir) Chmod(perm os.FileMode) error {
	if err := unix.Fchmod(d.Fd(), unixMode(perm)); err != nil {
		return &os.PathError{Op: "chmod", Path: d.path, Err: err}
	}
	return nil
}

// Close releases the directory.
func (d *Dir) Close() error {
	if d.fd < 0 {
		return &os.PathError{Op: "close", Path: d.path, Err: os.ErrClosed}
	}
	err := unix.Close(d.fd)
	d.fd = -1
	if err != nil {
		return &os.PathError{Op: "close", Path: d.path, Err: err}
	}
	return nil
}

// OpenDir opens the directory name inside d without following a symlink.
func (d *Dir) OpenDir(name string) (*Dir, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	fd, err := openDirAt(d.Fd(), name)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: d.Join(name), Err: err}
	}
	return &Dir{fd: fd, path: d.Join(name)}, nil
}

// ReadDir lists the directory. Entry types come from the directory itself, so a symlink shows
// as a symlink.
func (d *Dir) ReadDir() ([]fs.DirEntry, error) {
	// Read through a fresh descriptor so repeated calls start at the beginning.
	fd, err := unix.Openat(d.Fd(), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: d.path, Err: err}
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer f.Close()
	return f.ReadDir(-1)
}

// Lstat describes name without following a symlink.
func (d *Dir) Lstat(name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := checkName(name); err != nil {
		return st, err
	}
	if err := unix.Fstatat(d.Fd(), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return st, &os.PathError{Op: "lstat", Path: d.Join(name), Err: err}
	}
	return st, nil
}

// OpenPath opens rel, a clean relative path inside d that may have several components (never
// ".."), with flag (O_CLOEXEC is added), and returns the raw descriptor, which the caller
// closes. Unlike the single-name methods it follows symlinks in rel's directories, exactly as
// open(2) of the whole path would (O_NOFOLLOW in flag still guards the last component): it is
// for reads that a path would do anyway, as one openat from d instead of a walk from the root
// (`gateway status` reads s6's files of every slot this way). Errors are *os.PathError.
func (d *Dir) OpenPath(rel string, flag int) (int, error) {
	if err := checkRel(rel); err != nil {
		return -1, err
	}
	fd, err := unix.Openat(d.fd, rel, flag|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: d.Join(rel), Err: err}
	}
	return fd, nil
}

// LstatPath describes rel inside d (see OpenPath) without following a symlink at its last
// component.
func (d *Dir) LstatPath(rel string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := checkRel(rel); err != nil {
		return st, err
	}
	if err := unix.Fstatat(d.fd, rel, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return st, &os.PathError{Op: "lstat", Path: d.Join(rel), Err: err}
	}
	return st, nil
}

// ReadFile reads the regular file name, refusing symlinks, FIFOs and anything larger than
// limit bytes. A missing file gives an error satisfying errors.Is(err, fs.ErrNotExist).
func (d *Dir) ReadFile(name string, limit int64) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	p := d.Join(name)
	// O_NONBLOCK: opening a FIFO planted under this name must not hang.
	fd, err := unix.Openat(d.Fd(), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			err = ErrSymlink
		}
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	b, _, err := readOpen(fd, p, limit)
	return b, err
}

// ReadFileStat is ReadFile that also returns the file's stat, taken from the descriptor it
// read (no extra call): its modification time, say, belongs to the content returned.
func (d *Dir) ReadFileStat(name string, limit int64) ([]byte, unix.Stat_t, error) {
	if err := checkName(name); err != nil {
		return nil, unix.Stat_t{}, err
	}
	p := d.Join(name)
	fd, err := unix.Openat(d.Fd(), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			err = ErrSymlink
		}
		return nil, unix.Stat_t{}, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return readOpen(fd, p, limit)
}

// ReadFileBeneath is ReadFile of rel, a clean relative path of several names inside d, in one
// openat2(2) that refuses a symlink at any of them (RESOLVE_NO_SYMLINKS) and anything outside
// d (RESOLVE_BENEATH): what opening each directory with O_NOFOLLOW and then ReadFile would
// read, without a descriptor per directory. Its errors are not ReadFile's: on any error
// (a missing or refused name, or a kernel or seccomp policy without openat2) a caller that
// needs to know why takes the long way, which says it in ReadFile's terms.
func (d *Dir) ReadFileBeneath(rel string, limit int64) ([]byte, error) {
	if err := checkRel(rel); err != nil {
		return nil, err
	}
	p := d.Join(rel)
	if noOpenat2.Load() {
		return nil, &os.PathError{Op: "openat2", Path: p, Err: unix.ENOSYS}
	}
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(d.fd, rel, &how)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
			noOpenat2.Store(true) // not here: every later call takes the long way at once
		}
		return nil, &os.PathError{Op: "openat2", Path: p, Err: err}
	}
	b, _, err := readOpen(fd, p, limit)
	return b, err
}

// noOpenat2 is set once openat2(2) turned out to be missing or forbidden (seccomp).
var noOpenat2 atomic.Bool

// readOpen reads and closes fd, the file p opened for reading: a regular file of at most
// limit bytes. It returns the file's stat too.
func readOpen(fd int, p string, limit int64) ([]byte, unix.Stat_t, error) {
	// The raw descriptor: an *os.File would cost a fcntl(2) and, for this non-blocking
	// descriptor, a failed epoll_ctl(2) per read (status reads three files per gateway).
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, st, &os.PathError{Op: "fstat", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, st, &os.PathError{Op: "read", Path: p, Err: ErrNotRegular}
	}
	if st.Size > limit {
		return nil, st, &os.PathError{Op: "read", Path: p, Err: fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, st.Size, limit)}
	}
	buf := make([]byte, st.Size)
	n, err := readFull(fd, buf)
	if err != nil {
		return nil, st, &os.PathError{Op: "read", Path: p, Err: fmt.Errorf("short read (%d of %d bytes): %w", n, st.Size, err)}
	}
	return buf, st, nil
}

// WriteFile atomically and durably replaces name with data: a temp file in d (named as
// IsTempName recognises) gets mode perm (exactly) and data, is fsynced and renamed over name,
// and the directory is fsynced. The new file is the caller's; a caller running as root keeps
// the owner of the regular file it replaces. A symlink at name is replaced, never written
// through. On failure name is unchanged and the temp file removed.
func (d *Dir) WriteFile(name string, data []byte, perm os.FileMode) error {
	return d.writeFile(name, data, perm, true)
}

// WriteFileAtomic is WriteFile without the fsyncs: readers never see a partial file, but after
// a crash of the machine the file may be missing or empty. For records that mean nothing once
// the machine crashed (a live process's identity), where a thousand starts would otherwise
// wait on the disk for nothing.
func (d *Dir) WriteFileAtomic(name string, data []byte, perm os.FileMode) error {
	return d.writeFile(name, data, perm, false)
}

func (d *Dir) writeFile(name string, data []byte, perm os.FileMode, durable bool) (err error) {
	if err := checkName(name); err != nil {
		return err
	}
	fail := func(op string, err error) error {
		return fmt.Errorf("write %s: %w", d.Join(name), &os.PathError{Op: op, Path: d.Join(name), Err: err})
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := "." + name + strconv.FormatUint(binary.LittleEndian.Uint64(rnd[:])>>1, 10)
	fd, err := unix.Openat(d.fd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fail("create", err)
	}
	defer func() {
		if fd >= 0 {
			unix.Close(fd)
		}
		if err != nil {
			_ = unix.Unlinkat(d.fd, tmp, 0)
		}
	}()
	if os.Geteuid() == 0 {
		if st, err := d.Lstat(name); err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && (st.Uid != 0 || st.Gid != 0) {
			if err := unix.Fchown(fd, int(st.Uid), int(st.Gid)); err != nil {
				return fail("chown", err)
			}
		}
	}
	// Exact: neither the umask nor a chown (which may clear mode bits) decides it.
	if err := unix.Fchmod(fd, uint32(perm.Perm())); err != nil {
		return fail("chmod", err)
	}
	for b := data; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fail("write", err)
		}
		b = b[n:]
	}
	if durable {
		if err := fsync(fd); err != nil {
			return fail("sync", err)
		}
	}
	err = unix.Close(fd)
	fd = -1
	if err != nil {
		return fail("close", err)
	}
	if err := unix.Renameat(d.fd, tmp, d.fd, name); err != nil {
		return fail("rename", err)
	}
	if durable {
		// The rename is durable only once the directory is on disk too.
		if err := fsync(d.fd); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("write %s: fsync directory: %w", d.Join(name), &os.PathError{Op: "sync", Path: d.path, Err: err})
		}
	}
	return nil
}

// Link makes name in d a hard link to the file srcName in src (linkat(2) without following
// a symlink: a symlink at srcName is linked as the symlink). It never replaces an existing name.
func (d *Dir) Link(src *Dir, srcName, name string) error {
	if err := checkName(srcName); err != nil {
		return err
	}
	if err := checkName(name); err != nil {
		return err
	}
	if err := unix.Linkat(src.fd, srcName, d.fd, name, 0); err != nil {
		return &os.LinkError{Op: "link", Old: src.Join(srcName), New: d.Join(name), Err: err}
	}
	return nil
}

// IsTempName reports whether entry is a temporary file that WriteFile leaves behind when it
// is killed between creating its temp file and the rename: "." + name + decimal digits, for
// one of the given names. The boot reconciler sweeps them.
func IsTempName(entry string, names ...string) bool {
	for _, n := range names {
		digits, ok := strings.CutPrefix(entry, "."+n)
		if ok && digits != "" && strings.Trim(digits, "0123456789") == "" {
			return true
		}
	}
	return false
}

// Create creates the regular file name with content and exactly mode perm. It fails if name
// exists (whatever it is: O_EXCL), so it never writes through anything planted there.
func (d *Dir) Create(name string, content []byte, perm os.FileMode) error {
	if err := checkName(name); err != nil {
		return err
	}
	// Created 0600 and then chmod-ed to perm, unless creating with perm is known to give
	// exactly perm here (createsExact): never wider than perm at any moment.
	mode := uint32(0o600)
	if d.createsExact(perm) {
		mode = unixMode(perm)
	}
	fd, err := unix.Openat(d.Fd(), name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return &os.PathError{Op: "create", Path: d.Join(name), Err: err}
	}
	// Plain write(2)s on the raw descriptor: an *os.File would cost a fcntl(2) per file, and a
	// slot has seven.
	err = writeAll(fd, content)
	if err == nil && !d.createsExact(perm) {
		err = unix.Fchmod(fd, unixMode(perm))
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		return &os.PathError{Op: "create", Path: d.Join(name), Err: err}
	}
	return nil
}

// fsync is fsync(2), retried on EINTR.
func fsync(fd int) error {
	for {
		if err := unix.Fsync(fd); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// createsExact reports whether a file or directory created directly in d with mode perm gets
// exactly perm, so that Create and Mkdir need no chmod afterwards. That holds when perm has
// only permission bits, the umask clears none of them, d has no default ACL (which would
// replace the umask) and d is not set-gid (a directory made in it would inherit the bit).
// Otherwise, or when any of it cannot be told, the caller chmods. Either way nothing is ever
// created wider than perm: the mode given to open(2) and mkdir(2) is perm itself, which the
// kernel only narrows.
//
// d finds this out once, when it first creates something (the umask from /proc/self/status,
// Linux 4.7 and later), and a directory Mkdir makes inherits it: a process must not change its
// umask while it creates files in an open Dir (s6gate's programs never change it, but for
// s6util's s6-mkdir -m, which creates with mkdir(2) and chmods).
func (d *Dir) createsExact(perm os.FileMode) bool {
	if perm&^os.ModePerm != 0 {
		return false
	}
	d.modesOnce.Do(func() {
		var st unix.Stat_t
		if unix.Fstat(d.fd, &st) != nil || st.Mode&unix.S_ISGID != 0 || hasDefaultACL(d.fd) {
			return
		}
		d.umask, d.umaskOnly = readUmask()
	})
	return d.umaskOnly && uint32(perm)&d.umask == 0
}

// hasDefaultACL reports whether the directory fd has a default ACL (or whether that cannot
// be told: then it answers yes, the safe side).
func hasDefaultACL(fd int) bool {
	_, err := unix.Fgetxattr(fd, "system.posix_acl_default", nil)
	return !errors.Is(err, unix.ENODATA) && !errors.Is(err, unix.EOPNOTSUPP)
}

// readUmask is the process's umask from /proc/self/status (Linux 4.7 and later); ok is false
// when it cannot be read.
func readUmask() (umask uint32, ok bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			return uint32(m), err == nil
		}
	}
	return 0, false
}

// readFull reads len(b) bytes from fd, like io.ReadFull on a file.
func readFull(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Read(fd, b[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			if n == 0 {
				return n, io.EOF
			}
			return n, io.ErrUnexpectedEOF
		}
		n += m
	}
	return n, nil
}

// writeAll writes b to fd, retrying short writes and EINTR.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		b = b[n:]
	}
	return nil
}

// Mkdir creates the directory name with exactly mode perm (set-gid and sticky included) and
// returns it open.
func (d *Dir) Mkdir(name string, perm os.FileMode) (*Dir, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	exact := d.createsExact(perm)
	mode := uint32(0o700)
	if exact {
		mode = unixMode(perm)
	}
	if err := unix.Mkdirat(d.Fd(), name, mode); err != nil {
		return nil, &os.PathError{Op: "mkdir", Path: d.Join(name), Err: err}
	}
	sub, err := d.OpenDir(name)
	if err != nil {
		return nil, err
	}
	if exact {
		// Made here with an exact mode without the set-gid bit: it has no default ACL either
		// and is not set-gid, so what it creates is subject to the same umask alone.
		sub.modesOnce.Do(func() { sub.umaskOnly, sub.umask = true, d.umask })
	} else if err := unix.Fchmod(sub.Fd(), unixMode(perm)); err != nil {
		sub.Close()
		return nil, &os.PathError{Op: "chmod", Path: d.Join(name), Err: err}
	}
	return sub, nil
}

// OpenFile opens the regular file name with flag (O_RDONLY, O_WRONLY or O_RDWR, with O_CREAT,
// O_APPEND, …) and, when it creates it, mode perm (less the umask). It never follows a symlink (ErrSymlink),
// never blocks on a FIFO planted under that name, and refuses anything that is not a regular
// file (ErrNotRegular).
func (d *Dir) OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	p := d.Join(name)
	fd, err := unix.Openat(d.Fd(), name, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, unixMode(perm))
	if err != nil {
		switch {
		case errors.Is(err, unix.ELOOP):
			err = ErrSymlink
		case errors.Is(err, unix.ENXIO): // a FIFO (or socket) nobody reads, opened for writing
			err = ErrNotRegular
		}
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, &os.PathError{Op: "open", Path: p, Err: ErrNotRegular}
	}
	// Regular files ignore O_NONBLOCK; clear it anyway so the descriptor behaves plainly.
	// F_SETFL sets only the status flags (O_APPEND, O_NONBLOCK, …) and ignores the access
	// mode and creation flags, so the caller's flag less O_NONBLOCK is the descriptor's
	// flags less O_NONBLOCK: no F_GETFL needed.
	_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFL, flag&^unix.O_NONBLOCK)
	return os.NewFile(uintptr(fd), p), nil
}

// HasReader reports whether name in d is a FIFO that some process has open for reading — the
// test s6's tools make before they write a command (s6-svscanctl, s6-svc). It opens the FIFO
// for writing without blocking and writes nothing. Anything that is not a readable FIFO — a
// missing name, a FIFO without a reader, a symlink (never followed), a directory, a regular
// file — is reported as false; only a FIFO this process may not open is an error.
func (d *Dir) HasReader(name string) (bool, error) {
	if err := checkName(name); err != nil {
		return false, err
	}
	fd, err := unix.Openat(d.Fd(), name, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENXIO), errors.Is(err, unix.ENOENT), errors.Is(err, unix.ELOOP),
			errors.Is(err, unix.EISDIR), errors.Is(err, unix.ENOTDIR):
			return false, nil
		}
		return false, &os.PathError{Op: "open", Path: d.Join(name), Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, &os.PathError{Op: "fstat", Path: d.Join(name), Err: err}
	}
	return st.Mode&unix.S_IFMT == unix.S_IFIFO, nil
}

// Rename renames old to new, both directly inside d. With noReplace an existing new is an
// error satisfying errors.Is(err, fs.ErrExist) instead of being replaced.
func (d *Dir) Rename(old, new string, noReplace bool) error {
	if err := checkName(old); err != nil {
		return err
	}
	if err := checkName(new); err != nil {
		return err
	}
	var err error
	if noReplace {
		err = unix.Renameat2(d.Fd(), old, d.Fd(), new, unix.RENAME_NOREPLACE)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			// A file system without RENAME_NOREPLACE: check, then rename.
			if _, lerr := d.Lstat(new); lerr == nil {
				err = unix.EEXIST
			} else {
				err = unix.Renameat(d.Fd(), old, d.Fd(), new)
			}
		}
	} else {
		err = unix.Renameat(d.Fd(), old, d.Fd(), new)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: d.Join(old), New: d.Join(new), Err: err}
	}
	return nil
}

// Remove removes the file (not directory) name. A missing file is not an error.
func (d *Dir) Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := unix.Unlinkat(d.Fd(), name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "remove", Path: d.Join(name), Err: err}
	}
	return nil
}

// Lock takes an exclusive flock(2) on the directory, serialising read-modify-write cycles of
// the files in it between processes. The lock is released by the returned function or when
// the process dies.
func (d *Dir) Lock() (unlock func(), err error) {
	// A private descriptor: flock locks belong to the open file description, so two goroutines
	// (or two Dir values) in one process exclude each other too.
	fd, err := unix.Openat(d.Fd(), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: d.path, Err: err}
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "flock", Path: d.path, Err: err}
	}
	return func() { unix.Close(fd) }, nil
}

// checkRel accepts a clean relative path of one or more names, none of them "..".
func checkRel(rel string) error {
	if rel == "" || filepath.IsAbs(rel) || filepath.Clean(rel) != rel || rel == ".." || strings.HasPrefix(rel, "../") {
		return &os.PathError{Op: "open", Path: rel, Err: errors.New("not a clean relative path")}
	}
	return nil
}

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return &os.PathError{Op: "open", Path: name, Err: errors.New("not a single file name")}
	}
	return nil
}
