// Package verblock serialises the operator verbs that act on one profile (SPEC §12).
//
// register, unregister, start, stop and restart each read a profile's slot and state, decide,
// and change both. Two of them interleaved can leave the recorded intent and s6 disagreeing,
// or make one call's undo delete what another call created. So every verb (and the
// reconciler, and gw-render) holds the profile's verb lock from its first check to its last
// change.
//
// The lock must survive the very things the verbs do: unregister deletes the slot and
// register creates it, and a lock on either would let a waiting verb lock a dead inode. So the
// lock is a file of its own, <scandir>/.s6gate-locks/<profile> (s6-svscan ignores dot
// entries), that nothing ever deletes while the scan directory lives; it is gone only when the
// whole scan directory is remade at boot, when no verb runs. Once granted, Acquire re-checks
// that the file it locked is still the one at that name, so even a lock file deleted by hand
// cannot let two holders in. Callers then re-check their own preconditions (is the profile
// still registered?) under the lock.
//
// The lock is flock(2): it is released when the holder closes it or dies, so a verb killed
// half-way never blocks the next one.
package verblock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/safedir"
)

// Dir is the directory of the lock files inside the scan directory.
const Dir = ".s6gate-locks"

// BusyError means another verb held the profile's lock until the caller's deadline.
type BusyError struct {
	Profile string
	Waited  time.Duration
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("another command is acting on gateway '%s' (waited %s for it to finish)", e.Profile, e.Waited.Round(time.Millisecond))
}

// Lock is a held verb lock.
type Lock struct{ f *os.File }

// Acquire takes the verb lock of profile in scandir, waiting until ctx ends. profile must be a
// valid profile name (it becomes a file name). A ctx that ends first gives a *BusyError.
func Acquire(ctx context.Context, scandir, profile string) (*Lock, error) {
	locks, err := OpenLocks(scandir)
	if err != nil {
		return nil, err
	}
	defer locks.Close()
	return locks.Acquire(ctx, profile)
}

// Locks is the open lock directory of a scan directory, for a caller that takes many verb
// locks in a row (the boot reconciler): it is opened (and made) once, not per lock.
type Locks struct {
	dir *safedir.Dir
	// opened, set only by this package's tests, runs between opening a lock file and locking
	// it: the window in which a file replaced at the name is what the re-check catches.
	opened func(profile string)
}

// OpenLocks opens, creating it if need be, the lock directory of scandir.
func OpenLocks(scandir string) (*Locks, error) {
	d, _, err := safedir.MkdirAll(scandir, Dir, 0o700)
	if err != nil {
		return nil, fmt.Errorf("verb lock: %w", err)
	}
	return &Locks{dir: d}, nil
}

// Close releases the directory; locks taken through it stay held.
func (l *Locks) Close() error { return l.dir.Close() }

// Acquire is the package's Acquire through an open lock directory. It may be called from
// several goroutines at once.
func (l *Locks) Acquire(ctx context.Context, profile string) (*Lock, error) {
	locks := l.dir
	begin := time.Now()
	pause := 2 * time.Millisecond
	for {
		f, err := locks.OpenFile(profile, unix.O_RDWR|unix.O_CREAT, 0o600)
		if err != nil {
			return nil, fmt.Errorf("verb lock: %w", err)
		}
		if l.opened != nil {
			l.opened(profile)
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			if same(locks, profile, f) {
				return &Lock{f: f}, nil
			}
			f.Close() // the file was replaced while we waited: lock the one there now
			continue
		}
		f.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return nil, fmt.Errorf("verb lock: %w", &os.PathError{Op: "flock", Path: locks.Join(profile), Err: err})
		}
		select {
		case <-ctx.Done():
			return nil, &BusyError{Profile: profile, Waited: time.Since(begin)}
		case <-time.After(pause):
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// same reports whether f is still the file called name in dir.
func same(dir *safedir.Dir, name string, f *os.File) bool {
	at, err := dir.Lstat(name)
	if err != nil {
		return false
	}
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return false
	}
	return st.Dev == at.Dev && st.Ino == at.Ino
}

// Release drops the lock.
func (l *Lock) Release() {
	if l != nil && l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
}
