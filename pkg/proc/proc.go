// Package proc reads process identity from /proc: a PID alone is not an identity (PIDs are
// reused, and in a container they repeat from boot to boot), a PID plus its start time
// (field 22 of /proc/<pid>/stat, in clock ticks since boot) is.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// Stat holds the fields of /proc/<pid>/stat that s6gate uses.
type Stat struct {
	PID       int
	Comm      string
	State     byte
	PPID      int
	StartTime uint64
}

// ParseStat parses the content of /proc/<pid>/stat. The command name sits in parentheses and
// may itself contain spaces and ')' characters, so fields are counted from the last ')'.
func ParseStat(b []byte) (Stat, error) {
	open := bytes.IndexByte(b, '(')
	closeIdx := bytes.LastIndexByte(b, ')')
	if open < 1 || closeIdx < open {
		return Stat{}, errors.New("proc stat: no (comm) field")
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return Stat{}, fmt.Errorf("proc stat: pid: %w", err)
	}
	rest := bytes.Fields(b[closeIdx+1:])
	// rest[0] is field 3 (state); field N is rest[N-3].
	if len(rest) < 22-2 {
		return Stat{}, fmt.Errorf("proc stat: %d fields after comm, want at least 20", len(rest))
	}
	if len(rest[0]) != 1 {
		return Stat{}, fmt.Errorf("proc stat: state %q", rest[0])
	}
	ppid, err := strconv.Atoi(string(rest[4-3]))
	if err != nil {
		return Stat{}, fmt.Errorf("proc stat: ppid: %w", err)
	}
	start, err := strconv.ParseUint(string(rest[22-3]), 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("proc stat: starttime: %w", err)
	}
	return Stat{PID: pid, Comm: string(b[open+1 : closeIdx]), State: rest[0][0], PPID: ppid, StartTime: start}, nil
}

// Read reads /proc/<pid>/stat. A process that does not exist gives an error satisfying
// errors.Is(err, fs.ErrNotExist).
func Read(pid int) (Stat, error) {
	if pid <= 0 {
		return Stat{}, fmt.Errorf("proc: invalid pid %d", pid)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	st, err := ParseStat(b)
	if err != nil {
		return Stat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// StartTime returns the start time of pid (field 22 of its stat file).
func StartTime(pid int) (uint64, error) {
	st, err := Read(pid)
	if err != nil {
		return 0, err
	}
	return st.StartTime, nil
}

// Alive reports whether pid exists, is not a zombie and, if startTime is non-nil, started at
// that time (so a recycled PID does not count).
func Alive(pid int, startTime *uint64) bool {
	st, err := Read(pid)
	if err != nil || st.State == 'Z' || st.State == 'X' {
		return false
	}
	return startTime == nil || *startTime == st.StartTime
}
