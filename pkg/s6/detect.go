package s6

import (
	"os"
	"path/filepath"
	"strings"
)

// Well-known paths of an s6-overlay style container.
const (
	DefaultProcRoot = "/proc"
	DefaultBasedir  = "/run/s6/basedir"
)

// Detect reports whether s6 supervises this container: PID 1's command name is "s6-svscan"
// and basedir (normally /run/s6/basedir) is a directory. Both are required: a process
// that merely happens to be called s6-svscan, or a stray basedir from an s6 install on a
// systemd host, is not enough. Anything unreadable (no /proc, a /proc that hides PID 1 from
// an unprivileged user) means "not s6" — detection never fails.
func Detect(procRoot, basedir string) bool {
	comm, err := os.ReadFile(filepath.Join(procRoot, "1", "comm"))
	if err != nil || strings.TrimSpace(string(comm)) != "s6-svscan" {
		return false
	}
	st, err := os.Stat(basedir)
	return err == nil && st.IsDir()
}
