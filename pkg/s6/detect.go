package s6

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Well-known paths of an s6-overlay style container.
const (
	DefaultProcRoot = "/proc"
	DefaultBasedir  = "/run/s6/basedir"
)

// Detect reports whether s6 supervises this container: basedir (normally /run/s6/basedir)
// is a directory and s6-svscan is the init — PID 1's command name is "s6-svscan", or, when a
// container init such as `docker run --init` is PID 1, the s6-svscan that /init recorded in
// <basedir>/../svscan.pid is alive. The basedir is required: a process that merely happens
// to be called s6-svscan, or a stray basedir from an s6 install on a systemd host, is not
// enough. Anything unreadable (no /proc, a /proc that hides PID 1 from an unprivileged user)
// means "not s6" — detection never fails.
func Detect(procRoot, basedir string) bool {
	st, err := os.Stat(basedir)
	if err != nil || !st.IsDir() {
		return false
	}
	if commIs(procRoot, "1", "s6-svscan") {
		return true
	}
	pid, err := os.ReadFile(filepath.Join(filepath.Dir(basedir), "svscan.pid"))
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(pid)))
	return err == nil && n > 1 && commIs(procRoot, strconv.Itoa(n), "s6-svscan")
}

func commIs(procRoot, pid, want string) bool {
	comm, err := os.ReadFile(filepath.Join(procRoot, pid, "comm"))
	return err == nil && strings.TrimSpace(string(comm)) == want
}
