package s6util

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// errText is strerror-like: the system error alone, without Go's "op path:" prefix.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err.Error()
	}
	return err.Error()
}

// parseOctal parses a mode written in octal ("0755", "2700", "644").
func parseOctal(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 8, 32)
	return uint32(n), err == nil && s != ""
}

// s6-mkdir [ -p ] [ -v ] [ -m mode ] dir...: mkdir; -m sets the exact mode (no umask), and
// with -p the parents get it too; exit 111 if a directory could not be made.
func mkdirMain(p *proc) int {
	opts, dirs, ok := getopt(p.Args, "pvm:")
	if !ok {
		return p.dieUsage()
	}
	parents, verbose, mode, exact := false, false, uint32(0o777), false
	for _, o := range opts {
		switch o.name {
		case 'p':
			parents = true
		case 'v':
			verbose = true
		case 'm':
			m, ok := parseOctal(o.val)
			if !ok {
				return p.dieUsage()
			}
			mode, exact = m, true
		}
	}
	if exact {
		old := unix.Umask(0)
		defer unix.Umask(old)
	}
	one := func(dir string, existOK bool) int {
		if err := unix.Mkdir(dir, mode); err != nil {
			if existOK && err == unix.EEXIST {
				return 0
			}
			p.warn("unable to mkdir %s: %s", dir, errText(err))
			return 111
		}
		if verbose {
			fmt.Fprintf(p.Stderr, "%s: created directory %s\n", p.name, dir)
		}
		return 0
	}
	code := 0
	for _, dir := range dirs {
		if !parents {
			code |= one(dir, false)
			continue
		}
		e := 0
		for i := 1; i < len(dir) && e == 0; i++ {
			if dir[i] == '/' {
				e = one(dir[:i], true)
			}
		}
		if e == 0 {
			e = one(dir, true)
		}
		code |= e
	}
	return code
}

// s6-echo [ -n ] [ -s sep ] args...: args separated by sep's first character (a space).
func echoMain(p *proc) int {
	opts, args, ok := getopt(p.Args, "ns:")
	if !ok {
		return p.dieUsage()
	}
	sep, nl := " ", "\n"
	for _, o := range opts {
		switch o.name {
		case 'n':
			nl = ""
		case 's':
			sep = ""
			if o.val != "" {
				sep = o.val[:1]
			}
		}
	}
	if _, err := io.WriteString(p.Stdout, strings.Join(args, sep)+nl); err != nil {
		return p.fatal(111, "unable to write to stdout: %s", errText(err))
	}
	return 0
}

// s6-rmrf file...: rm -rf, every argument; a missing file is not an error.
func rmrfMain(p *proc) int {
	if len(p.Args) == 0 {
		return p.dieUsage()
	}
	for _, f := range p.Args {
		if err := os.RemoveAll(f); err != nil {
			return p.fatal(111, "unable to remove %s: %s", f, errText(err))
		}
	}
	return 0
}

// s6-chown [ -U ] [ -u uid ] [ -g gid ] file: numeric ids only; -U takes them from $UID and
// $GID (as s6-envuidgid sets them).
func chownMain(p *proc) int {
	opts, args, ok := getopt(p.Args, "Uu:g:")
	if !ok {
		return p.dieUsage()
	}
	uid, gid := -1, -1
	for _, o := range opts {
		var err error
		switch o.name {
		case 'u':
			uid, err = strconv.Atoi(o.val)
		case 'g':
			gid, err = strconv.Atoi(o.val)
		case 'U':
			for _, v := range []struct {
				name string
				dst  *int
			}{{"UID", &uid}, {"GID", &gid}} {
				s, set := lookupEnv(p.Environ, v.name)
				if !set {
					return p.fatal(100, "%s not set", v.name)
				}
				n, e := strconv.Atoi(s)
				if e != nil || n < 0 {
					return p.fatal(100, "invalid %s", v.name)
				}
				*v.dst = n
			}
		}
		if err != nil || (o.name != 'U' && (uid < -1 || gid < -1)) {
			return p.dieUsage()
		}
	}
	if len(args) == 0 {
		return p.dieUsage()
	}
	if err := os.Chown(args[0], uid, gid); err != nil {
		return p.fatal(111, "unable to chown %s: %s", args[0], errText(err))
	}
	return 0
}

// s6-chmod mode file: an absolute octal mode, setuid/setgid/sticky bits included.
func chmodMain(p *proc) int {
	if len(p.Args) < 2 {
		return p.dieUsage()
	}
	m, ok := parseOctal(p.Args[0])
	if !ok || m > 0o7777 {
		return p.dieUsage()
	}
	if err := unix.Chmod(p.Args[1], m); err != nil {
		return p.fatal(111, "unable to change mode of %s: %s", p.Args[1], errText(err))
	}
	return 0
}

// s6-sleep [ -m ] duration [ prog... ]: sleeps (seconds, or milliseconds with -m), then execs
// into prog if there is one.
func sleepMain(p *proc) int {
	opts, args, ok := getopt(p.Args, "m")
	if !ok || len(args) == 0 {
		return p.dieUsage()
	}
	n, err := strconv.ParseUint(args[0], 10, 32)
	if err != nil {
		return p.dieUsage()
	}
	unit := time.Second
	if len(opts) > 0 {
		unit = time.Millisecond
	}
	time.Sleep(time.Duration(n) * unit)
	if len(args) == 1 {
		return 0
	}
	return p.exec(args[1:], p.Environ)
}

// s6-cat: stdin to stdout.
func catMain(p *proc) int {
	if _, err := io.Copy(p.Stdout, p.Stdin); err != nil {
		return p.fatal(111, "unable to fd_cat: %s", errText(err))
	}
	return 0
}

// s6-touch file...: opens each for appending (creating it), then closes it.
func touchMain(p *proc) int {
	if len(p.Args) == 0 {
		return p.dieUsage()
	}
	for _, f := range p.Args {
		fd, err := os.OpenFile(f, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
		if err != nil {
			return p.fatal(111, "unable to touch %s: %s", f, errText(err))
		}
		fd.Close()
	}
	return 0
}

// s6-ln [ -n ] [ -s ] [ -f ] [ -L ] [ -P ] src... dest: ln, with -f replacing dest
// atomically (a link to a temporary name, then rename). Exit 1 for each link not made.
func lnMain(p *proc) int {
	opts, args, ok := getopt(p.Args, "nsfLP")
	if !ok || len(args) < 2 {
		return p.dieUsage()
	}
	sym, force, nodir, follow := false, false, false, false
	for _, o := range opts {
		switch o.name {
		case 'n':
			nodir = true
		case 's':
			sym = true
		case 'f':
			force = true
		case 'L':
			follow = true
		case 'P':
			follow = false
		}
	}
	mk := func(old, new string) error {
		if sym {
			return unix.Symlink(old, new)
		}
		if follow { // -L: link what a symlink points to (linkat's AT_SYMLINK_FOLLOW)
			if target, err := filepath.EvalSymlinks(old); err == nil {
				old = target
			}
		}
		if err := os.Link(old, new); err != nil {
			var le *os.LinkError
			if errors.As(err, &le) {
				return le.Err
			}
			return err
		}
		return nil
	}
	doit := func(old, new string) int {
		err := mk(old, new)
		if err == nil {
			return 0
		}
		if !force || err != unix.EEXIST {
			p.warn("unable to make a link from %s to %s: %s", new, old, errText(err))
			return 1
		}
		tmp := fmt.Sprintf("%s:s6-ln:%d", new, os.Getpid())
		_ = os.Remove(tmp)
		if err := mk(old, tmp); err != nil {
			p.warn("unable to make a link to %s: %s", old, errText(err))
			return 1
		}
		if err := os.Rename(tmp, new); err != nil {
			_ = os.Remove(tmp)
			p.warn("unable to atomically replace %s: %s", new, errText(err))
			return 1
		}
		_ = os.Remove(tmp)
		return 0
	}
	dest := args[len(args)-1]
	if len(args) > 2 {
		e := 0
		for _, src := range args[:len(args)-1] {
			e += doit(src, filepath.Join(dest, filepath.Base(src)))
		}
		return e
	}
	var st fs.FileInfo
	var err error
	if nodir {
		st, err = os.Lstat(dest)
	} else {
		st, err = os.Stat(dest)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return p.fatal(111, "unable to stat %s: %s", dest, errText(err))
	}
	if err != nil || !st.IsDir() {
		return doit(args[0], dest)
	}
	return doit(args[0], filepath.Join(dest, filepath.Base(args[0])))
}

// s6-hiercopy src dst: copies the tree src to dst (created when missing, merged into when it
// exists): modes kept, owners too when run as root, symlinks copied as symlinks, FIFOs and
// device nodes re-created.
func hiercopyMain(p *proc) int {
	if len(p.Args) < 2 {
		return p.dieUsage()
	}
	if err := hiercopy(p.Args[0], p.Args[1], os.Geteuid() == 0); err != nil {
		return p.fatal(111, "unable to copy hierarchy from %s to %s: %s", p.Args[0], p.Args[1], errText(err))
	}
	return 0
}

func hiercopy(src, dst string, owners bool) error {
	st, err := os.Lstat(src)
	if err != nil {
		return err
	}
	sys := st.Sys().(*syscall.Stat_t)
	perm := sys.Mode & 0o7777
	switch st.Mode().Type() {
	case fs.ModeDir:
		if err := unix.Mkdir(dst, 0o700); err != nil && err != unix.EEXIST {
			return &fs.PathError{Op: "mkdir", Path: dst, Err: err}
		}
		entries, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := hiercopy(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()), owners); err != nil {
				return err
			}
		}
	case fs.ModeSymlink:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		_ = os.Remove(dst)
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
		if owners {
			_ = os.Lchown(dst, int(sys.Uid), int(sys.Gid))
		}
		return nil
	case 0:
		if err := copyRegular(src, dst); err != nil {
			return err
		}
	default: // FIFO, socket, device
		_ = os.Remove(dst)
		if err := unix.Mknod(dst, sys.Mode, int(sys.Rdev)); err != nil {
			return &fs.PathError{Op: "mknod", Path: dst, Err: err}
		}
	}
	if owners {
		if err := os.Lchown(dst, int(sys.Uid), int(sys.Gid)); err != nil {
			return err
		}
	}
	if err := unix.Chmod(dst, perm); err != nil { // after chown, which clears setuid bits
		return &fs.PathError{Op: "chmod", Path: dst, Err: err}
	}
	return nil
}

func copyRegular(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func lookupEnv(environ []string, name string) (string, bool) {
	for i := len(environ) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(environ[i], name+"="); ok {
			return v, true
		}
	}
	return "", false
}
