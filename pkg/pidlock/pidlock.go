// Package pidlock is the identity of the live gateway of a profile: the profile lock,
// gateway.lock, which `gateway run` holds (flock) for its whole life, and gateway.pid, its PID
// and start time (SPEC §1, §7). The lock, not the PID file, is the truth — a PID file can be
// stale, a held flock cannot — so Holder reads the holder from /proc/locks, and SweepStale
// (the boot reconciler's first step in every home) clears a dead gateway's identity only when
// nobody holds the lock. The lock file is never removed: removing it could let two processes
// lock two different inodes.
package pidlock

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/safedir"
)

// Files in a profile home that identify the live gateway.
const (
	LockFile = "gateway.lock" // flock held for the gateway's whole life; content: its PID
	PIDFile  = "gateway.pid"  // {"pid": N, "start_time": T}
)

// ErrLocked means another gateway holds the profile lock.
var ErrLocked = errors.New("another gateway holds the profile lock")

// Lock is a held profile lock.
type Lock struct {
	f    *os.File
	home *safedir.Dir
}

// pidRecord is the content of gateway.pid.
type pidRecord struct {
	PID       int     `json:"pid"`
	StartTime *uint64 `json:"start_time,omitempty"`
}

func openLockFile(home *safedir.Dir) (*os.File, error) {
	return home.OpenFile(LockFile, unix.O_RDWR|unix.O_CREAT, 0o640)
}

// TryLock takes the profile lock without waiting. ErrLocked means it is held.
func TryLock(home *safedir.Dir) (*Lock, error) {
	f, err := openLockFile(home)
	if err != nil {
		return nil, err
	}
	if err := flockNB(f); err != nil {
		f.Close()
		return nil, err
	}
	return &Lock{f: f, home: home}, nil
}

func flockNB(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EWOULDBLOCK):
			return ErrLocked
		default:
			return &os.PathError{Op: "flock", Path: f.Name(), Err: err}
		}
	}
}

// Holder returns the PID holding the flock on the profile's lock file, from /proc/locks
// (authoritative: no PID file can be stale). 0 means nobody or unknown.
func Holder(home *safedir.Dir) int {
	st, err := home.Lstat(LockFile)
	if err != nil {
		return 0
	}
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return 0
	}
	return holderFromLocks(b, st.Dev, st.Ino)
}

// holderFromLocks finds the FLOCK holder of (dev, ino) in the content of /proc/locks, whose
// lines read "1: FLOCK  ADVISORY  WRITE 1441 fe:00:762101 0 EOF" (waiters carry "->").
func holderFromLocks(b []byte, dev, ino uint64) int {
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(dev), unix.Minor(dev), ino)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[1] != "FLOCK" {
			continue
		}
		if f[5] == want {
			pid, _ := strconv.Atoi(f[4])
			return pid
		}
	}
	return 0
}

// Acquire takes the profile lock. If it is held and replace is set, it asks the holder to stop
// (SIGTERM), waits up to grace for the lock, then SIGKILLs it and waits a little more.
// Without replace a held lock is ErrLocked, naming the holder.
func Acquire(home *safedir.Dir, replace bool, grace time.Duration, log func(string, ...any)) (*Lock, error) {
	l, err := TryLock(home)
	if !errors.Is(err, ErrLocked) {
		return l, err
	}
	holder := Holder(home)
	if !replace {
		return nil, fmt.Errorf("%w (pid %d); use --replace to take over", ErrLocked, holder)
	}
	if holder <= 0 || holder == os.Getpid() {
		return nil, fmt.Errorf("%w and its holder cannot be identified", ErrLocked)
	}
	log("replacing the gateway that holds the profile lock", "holder_pid", holder)
	_ = syscall.Kill(holder, syscall.SIGTERM)
	if l, err = waitLock(home, grace); err == nil {
		return l, nil
	}
	log("holder ignored SIGTERM; killing it", "holder_pid", holder)
	_ = syscall.Kill(holder, syscall.SIGKILL)
	return waitLock(home, 2*time.Second)
}

func waitLock(home *safedir.Dir, d time.Duration) (*Lock, error) {
	deadline := time.Now().Add(d)
	for {
		l, err := TryLock(home)
		if !errors.Is(err, ErrLocked) || time.Now().After(deadline) {
			return l, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Record writes the holder's identity: its PID into the lock file and gateway.pid.
func (l *Lock) Record(pid int, start *uint64) error {
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	if _, err := l.f.WriteAt([]byte(strconv.Itoa(pid)+"\n"), 0); err != nil {
		return err
	}
	b, _ := json.Marshal(pidRecord{PID: pid, StartTime: start})
	// Atomic, not durable: after a crash of the machine the process it names is gone anyway,
	// and the boot sweep removes it.
	return l.home.WriteFileAtomic(PIDFile, append(b, '\n'), 0o640)
}

// Release removes gateway.pid, empties the lock file and drops the lock.
func (l *Lock) Release() {
	_ = l.home.Remove(PIDFile)
	_ = l.f.Truncate(0)
	_ = l.f.Close()
}

// SweepStale clears a dead gateway's identity from home: when nobody holds the profile lock,
// gateway.pid is removed and the lock file emptied (never removed: removing a lock file can
// let two processes lock two different inodes). A held lock (a live gateway) is left alone
// and reported as live. It reports what it cleared.
func SweepStale(home *safedir.Dir) (live bool, cleared []string, err error) {
	// Opened without O_CREAT: a missing lock file stays missing (one openat, no lstat first).
	if f, err := home.OpenFile(LockFile, unix.O_RDWR, 0); err == nil {
		defer f.Close()
		if err := flockNB(f); errors.Is(err, ErrLocked) {
			return true, nil, nil
		} else if err != nil {
			return false, nil, err
		}
		if st, _ := f.Stat(); st != nil && st.Size() > 0 {
			if err := f.Truncate(0); err != nil {
				return false, nil, err
			}
			cleared = append(cleared, LockFile)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, nil, err
	}
	if _, err := home.Lstat(PIDFile); err == nil {
		if err := home.Remove(PIDFile); err != nil {
			return false, cleared, err
		}
		cleared = append(cleared, PIDFile)
	}
	return false, cleared, nil
}

// KeepAcrossExec makes the lock survive an exec of this process (exec supervision: the
// command that `gateway run` execs goes on holding it, under the same PID): its descriptor
// loses close-on-exec. It returns the descriptor, which the command inherits.
func (l *Lock) KeepAcrossExec() (int, error) {
	fd := int(l.f.Fd())
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
		return -1, &os.PathError{Op: "fcntl", Path: l.f.Name(), Err: err}
	}
	return fd, nil
}
