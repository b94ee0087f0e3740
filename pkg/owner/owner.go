// Package owner resolves the service user that owns everything s6gate creates.
//
// Operators often run the verbs as root (the default of `docker exec`), while the gateways run
// as the unprivileged service user. Anything root creates for a gateway (homes, state files,
// slots, log directories) must therefore end up owned by the service user, or the gateway and
// later unprivileged verbs are locked out. An *Owner carries that uid/gid; a nil *Owner means
// "leave ownership as the kernel sets it", which is what a non-root caller gets: it cannot give
// files away, and everything it creates is already its own.
package owner

import (
	"fmt"
	"os"
	"os/user"
	"strconv"

	"golang.org/x/sys/unix"
)

// Owner is a uid/gid pair. The nil *Owner is valid and means "do not chown".
type Owner struct {
	UID, GID int
}

// Lookup resolves a user name (or a numeric uid) through the system's user database.
// With CGO disabled this reads /etc/passwd, which is what a static binary in a container wants.
func Lookup(name string) (*Owner, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, numErr := strconv.Atoi(name); numErr == nil {
			u, err = user.LookupId(name)
		}
		if err != nil {
			return nil, fmt.Errorf("service user %q: %w", name, err)
		}
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("service user %q: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("service user %q: gid %q: %w", name, u.Gid, err)
	}
	return &Owner{UID: uid, GID: gid}, nil
}

// ForCaller returns the owner that files created by this process should get: the service
// user when the process runs as root, nil otherwise (a non-root process owns what it creates,
// and a failed chown would only be noise).
func ForCaller(serviceUser string) (*Owner, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	return Lookup(serviceUser)
}

// Fchown gives the open file descriptor fd to o. A nil o does nothing.
func (o *Owner) Fchown(fd int) error {
	if o == nil {
		return nil
	}
	if err := unix.Fchown(fd, o.UID, o.GID); err != nil {
		return &os.PathError{Op: "fchown", Path: "fd " + strconv.Itoa(fd), Err: err}
	}
	return nil
}

// Lchown gives path (never the target of a symlink) to o. A nil o does nothing.
func (o *Owner) Lchown(path string) error {
	if o == nil {
		return nil
	}
	return os.Lchown(path, o.UID, o.GID)
}

// FchownAt gives name inside the directory dirfd to o without following a symlink.
// A nil o does nothing.
func (o *Owner) FchownAt(dirfd int, name string) error {
	if o == nil {
		return nil
	}
	if err := unix.Fchownat(dirfd, name, o.UID, o.GID, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "fchownat", Path: name, Err: err}
	}
	return nil
}

// String renders o for logs.
func (o *Owner) String() string {
	if o == nil {
		return "(caller)"
	}
	return strconv.Itoa(o.UID) + ":" + strconv.Itoa(o.GID)
}
