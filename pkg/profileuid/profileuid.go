//go:build linux

// Package profileuid gives every profile a uid of its own from GATEWAY_UID_RANGE (SPEC §13):
// the uid (and gid, the same number) its command runs as, so that one profile's processes are
// counted, limited and signalled as that profile's, and can write nothing of another's.
//
// A uid is claimed once and kept for good, like a user account: a profile unregistered and
// registered again gets the same uid back, so the files its command wrote stay its own. Claims
// are symbolic links in <data root>/.s6gate-uids, each named by the uid it claims and pointing
// at the profile's name: symlinkat(2) creates one atomically and fails if the uid is taken,
// so two registrations can never share a uid, and a claim is never half-written. The links
// are only ever read with readlinkat(2), never followed.
//
// A profile's uid is found by probing: it starts at a slot given by a hash of the name and
// walks on to the next uid while a slot holds another name's claim. Claims are never removed,
// so a probe chain never breaks: a purged profile's claim is retired instead (Retire: it then
// points at a name no profile can have), so its uid is never handed out again. The directory belongs to the service user and is open to no
// one else: a claims directory that anyone else could write is refused, since whoever writes
// a claim decides which uid a profile runs as.
//
// Only the service user's side uses this package (the verbs, gw-reconcile); gw-svscan, which
// starts a slot's supervisor with the uid, reads it from the slot and checks only that it
// lies in the range.
package profileuid

import (
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/safedir"
)

// DirName is the claims directory, under the data root.
const DirName = ".s6gate-uids"

// ErrNone means the profile has no uid yet.
var ErrNone = errors.New("no uid claimed")

// FullError means every uid of the range is claimed.
type FullError struct{ Range config.UIDRange }

func (e *FullError) Error() string {
	return fmt.Sprintf("all %d uids of GATEWAY_UID_RANGE=%s are claimed; widen the range", e.Range.Size(), e.Range)
}

// Claims is the open claims directory. Its methods may be called concurrently.
type Claims struct {
	d       *safedir.Dir
	r       config.UIDRange
	claimed atomic.Bool // a claim was made since the last Sync
}

// Open opens <root>/.s6gate-uids, creating it (mode 0700) when create is set. It refuses a
// directory that is not the caller's or that others may write.
func Open(root string, r config.UIDRange, create bool) (*Claims, error) {
	if r.Off() {
		return nil, errors.New("GATEWAY_UID_RANGE=off: profiles have no uid of their own")
	}
	var (
		d   *safedir.Dir
		err error
	)
	if create {
		d, _, err = safedir.MkdirAll(root, DirName, 0o700)
	} else {
		d, err = safedir.Open(root, DirName)
	}
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(d.Fd(), &st); err != nil {
		d.Close()
		return nil, &os.PathError{Op: "fstat", Path: d.Path(), Err: err}
	}
	if int(st.Uid) != os.Geteuid() || st.Mode&0o022 != 0 {
		d.Close()
		return nil, fmt.Errorf("uid claims %s: owned by uid %d with mode %#o; only its owner, the service user (uid %d), may write it",
			d.Path(), st.Uid, st.Mode&0o7777, os.Geteuid())
	}
	return &Claims{d: d, r: r}, nil
}

// Close closes the directory.
func (c *Claims) Close() error { return c.d.Close() }

// Lookup returns the uid claimed for name, or ErrNone.
func (c *Claims) Lookup(name string) (int, error) {
	uid, _, err := c.probe(name)
	if err == nil && uid == 0 {
		err = ErrNone
	}
	return uid, err
}

// Allocate returns the uid claimed for name, claiming one first if it has none.
func (c *Claims) Allocate(name string) (int, error) {
	for {
		uid, free, err := c.probe(name)
		if err != nil || uid != 0 {
			return uid, err
		}
		err = safedir.SymlinkAt(name, c.d.Fd(), strconv.Itoa(free))
		if errors.Is(err, unix.EEXIST) {
			continue // another profile claimed it meanwhile: probe again
		}
		if err != nil {
			return 0, &os.PathError{Op: "symlink", Path: c.d.Join(strconv.Itoa(free)), Err: err}
		}
		c.claimed.Store(true)
		return free, nil
	}
}

// Sync makes the claims made so far durable (one fsync of the directory for any number of
// them). A process started with a new uid must not outlive a crash that forgets the claim,
// or the files it wrote would belong to a uid the profile no longer has: callers Sync
// before they publish a slot that names the uid.
func (c *Claims) Sync() error {
	if !c.claimed.Swap(false) {
		return nil
	}
	if err := unix.Fsync(c.d.Fd()); err != nil {
		c.claimed.Store(true)
		return &os.PathError{Op: "fsync", Path: c.d.Path(), Err: err}
	}
	return nil
}

// probe walks name's probe chain: it returns the uid claimed for name, or 0 and the first
// free uid of the chain.
func (c *Claims) probe(name string) (uid, free int, err error) {
	if err := profile.Validate(name); err != nil {
		return 0, 0, err
	}
	size := c.r.Size()
	start := int(hash(name) % uint64(size))
	buf := make([]byte, 256)
	for i := range size {
		u := c.r.First + (start+i)%size
		n, err := safedir.ReadlinkAt(c.d.Fd(), strconv.Itoa(u), buf)
		switch {
		case errors.Is(err, unix.ENOENT):
			return 0, u, nil
		case errors.Is(err, unix.EINVAL):
			continue // not a symlink: not a claim of ours, and never reused
		case err != nil:
			return 0, 0, &os.PathError{Op: "readlink", Path: c.d.Join(strconv.Itoa(u)), Err: err}
		case string(buf[:n]) == name:
			return u, 0, nil
		}
	}
	return 0, 0, &FullError{Range: c.r}
}

// hash is FNV-1a of the name: where its probe chain starts.
func hash(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// Allocate returns the uid of profile name under settings s, claiming one if it has none and
// making the claim durable: 0 when GATEWAY_UID_RANGE is off. It is for a single profile (a
// verb); a run over many profiles opens Claims once.
func Allocate(s config.Settings, name string) (int, error) {
	if s.UIDs.Off() {
		return 0, nil
	}
	c, err := Open(s.Home, s.UIDs, true)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	uid, err := c.Allocate(name)
	if err == nil {
		err = c.Sync()
	}
	return uid, err
}

// retiredTarget is what a retired uid's claim points at: never a valid profile name (those
// never start with a dot), so no probe takes it for its own, and the chains through it stay
// whole.
const retiredTarget = ".retired"

// Retire gives up name's claim for good (a purged profile): its uid is never handed out again,
// to this name or another — whatever that uid may still own somewhere stays out of every later
// profile's reach — and a later registration of the name claims a new uid. The claim is
// replaced, not removed (a removed one would break the probe chains that pass it), in one
// rename, and made durable. It returns the retired uid, or 0 when name had none.
func (c *Claims) Retire(name string) (int, error) {
	uid, err := c.Lookup(name)
	if errors.Is(err, ErrNone) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	tmp := ".retire-" + strconv.Itoa(uid)
	_ = unix.Unlinkat(c.d.Fd(), tmp, 0)
	if err := unix.Symlinkat(retiredTarget, c.d.Fd(), tmp); err != nil {
		return 0, &os.PathError{Op: "symlink", Path: c.d.Join(tmp), Err: err}
	}
	if err := unix.Renameat(c.d.Fd(), tmp, c.d.Fd(), strconv.Itoa(uid)); err != nil {
		_ = unix.Unlinkat(c.d.Fd(), tmp, 0)
		return 0, &os.LinkError{Op: "rename", Old: c.d.Join(tmp), New: c.d.Join(strconv.Itoa(uid)), Err: err}
	}
	if err := unix.Fsync(c.d.Fd()); err != nil {
		return uid, &os.PathError{Op: "fsync", Path: c.d.Path(), Err: err}
	}
	return uid, nil
}

// Retire retires name's uid under settings s (Claims.Retire); 0 and no error when the range
// is off or the claims directory does not exist.
func Retire(s config.Settings, name string) (int, error) {
	if s.UIDs.Off() {
		return 0, nil
	}
	c, err := Open(s.Home, s.UIDs, false)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.Retire(name)
}

// Lookup returns name's uid under settings s without claiming one: 0 when it has none or the
// range is off.
func Lookup(s config.Settings, name string) (int, error) {
	if s.UIDs.Off() {
		return 0, nil
	}
	c, err := Open(s.Home, s.UIDs, false)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer c.Close()
	uid, err := c.Lookup(name)
	if errors.Is(err, ErrNone) {
		return 0, nil
	}
	return uid, err
}
