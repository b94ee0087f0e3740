package s6

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/proc"
	"github.com/s6gate/s6gate/pkg/safedir"
)

// clockTicks is USER_HZ, the unit of a process's start time in /proc/<pid>/stat: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// ScannerAge reports how long the scanner of scandir — the s6-svscan or gw-svscan holding
// scandir/.s6-svscan/lock, the lock s6-svscan takes — has been running. ok is false when that
// cannot be told: nobody holds the lock, it cannot be opened, or its holder is not visible
// from here (another PID namespace). It spawns nothing, writes nothing and follows no
// symlink below scandir's parent.
//
// A scanner answers on its control FIFO before its first scan has started every supervisor:
// its age is what tells "still starting the slots a boot registered" from "running, and this
// slot was never scanned".
func ScannerAge(scandir string) (age time.Duration, ok bool) {
	d, err := safedir.Open(filepath.Dir(scandir), filepath.Join(filepath.Base(scandir), ".s6-svscan"))
	if err != nil {
		return 0, false
	}
	defer d.Close()
	fd, err := d.OpenPath("lock", unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK) // a FIFO planted as lock never blocks
	if err != nil {
		return 0, false
	}
	defer unix.Close(fd)
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	if unix.FcntlFlock(uintptr(fd), unix.F_GETLK, &lk) != nil || lk.Type == unix.F_UNLCK || lk.Pid <= 0 {
		return 0, false
	}
	start, err := proc.StartTime(int(lk.Pid))
	if err != nil {
		return 0, false
	}
	up, err := uptime()
	if err != nil {
		return 0, false
	}
	age = up - time.Duration(start)*time.Second/clockTicks
	return max(age, 0), true
}

// uptime is the system's, from /proc/uptime: the clock process start times count from.
func uptime() (time.Duration, error) {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, err
	}
	f, _, _ := strings.Cut(string(b), " ")
	secs, err := strconv.ParseFloat(f, 64)
	if err != nil {
		return 0, err
	}
	return time.Duration(secs * float64(time.Second)), nil
}
