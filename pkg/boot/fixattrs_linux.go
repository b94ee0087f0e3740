package boot

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/s6util"
)

// fixAttrsDir is s6-overlay's (deprecated) /etc/fix-attrs.d, next to /etc/cont-init.d.
func (l layout) fixAttrsDir() string { return filepath.Join(filepath.Dir(l.ContInit), "fix-attrs.d") }

// fixAttrs applies /etc/fix-attrs.d/* in lexical order (dot files skipped), as s6-overlay's
// fix-attrs does before cont-init.d. Each line is `path recurse account fmode dmode`: path a
// glob; recurse true or false; account user[:group][,UID:GID fallback]; fmode the mode of files,
// dmode of directories (octal). Empty lines and lines starting with # are skipped. As in
// s6-overlay, the first line that fails ends its file (later files still run). It reports
// whether a file failed.
func fixAttrs(l layout, log *logger, hidden bool) (failed bool) {
	dir := l.fixAttrsDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !os.IsNotExist(err) {
			log.printf("fix-attrs: cannot list %s: %v", dir, err)
			return true
		}
		return false
	}
	applied := false
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
			continue
		}
		path := filepath.Join(dir, e.Name())
		log.printf("fix-attrs: applying %s", path)
		applied = true
		if err := applyFixAttrsFile(path, hidden); err != nil {
			log.printf("fix-attrs: warning: %s: %v", path, err)
			failed = true
		}
	}
	if applied {
		log.printf("fix-attrs: warning: fix-attrs is deprecated, please fix volume permissions in your container manager instead")
	}
	return failed
}

func applyFixAttrsFile(path string, hidden bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if err := applyFixAttrsLine(fields, hidden); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	return sc.Err()
}

func applyFixAttrsLine(fields []string, hidden bool) error {
	if len(fields) < 5 {
		return fmt.Errorf("want `path recurse account fmode dmode`, got %q", strings.Join(fields, " "))
	}
	glob, recurse, account := fields[0], fields[1] == "true", fields[2]
	fmode, err1 := strconv.ParseUint(fields[3], 8, 32)
	dmode, err2 := strconv.ParseUint(fields[4], 8, 32)
	if err1 != nil || err2 != nil || fmode > 0o7777 || dmode > 0o7777 {
		return fmt.Errorf("bad mode in %q (want octal, e.g. 0644 0755)", strings.Join(fields, " "))
	}
	uid, gid, err := s6util.ResolveAccount(account)
	if err != nil {
		return err
	}
	paths, err := filepath.Glob(glob)
	if err != nil || len(paths) == 0 {
		paths = []string{glob} // as the shell leaves an unmatched pattern: it fails below
	}
	for _, p := range paths {
		if err := applyAttrs(p, recurse, uid, gid, uint32(fmode), uint32(dmode), hidden); err != nil {
			return err
		}
	}
	return nil
}

// applyAttrs gives path the owner, and the mode of a file or of a directory; with recurse, to
// everything under a directory too (dot files only when hidden: S6_FIX_ATTRS_HIDDEN).
func applyAttrs(path string, recurse bool, uid, gid int, fmode, dmode uint32, hidden bool) error {
	if err := os.Chown(path, uid, gid); err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return chmodErr(path, fmode)
	}
	if err := chmodErr(path, dmode); err != nil {
		return err
	}
	if !recurse {
		return nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !hidden && strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if err := applyAttrs(filepath.Join(path, e.Name()), recurse, uid, gid, fmode, dmode, hidden); err != nil {
			return err
		}
	}
	return nil
}

func chmodErr(path string, mode uint32) error {
	if err := unix.Chmod(path, mode); err != nil {
		return &os.PathError{Op: "chmod", Path: path, Err: err}
	}
	return nil
}
