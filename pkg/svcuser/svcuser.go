// Package svcuser is the service user: the one unprivileged account that every gateway, every
// operator verb and the boot reconciler act as (SPEC §11).
//
// Why one account for everything: the service user owns the data root and the gateways' scan
// directory, and the gateways' s6-svscan runs as it (s6's "user tree"). If root ever acted in
// those places, a file the service user planted there (a symlink as a slot's
// supervise/control, a FIFO as a state file, a service directory) could steer root into
// writing, truncating or running something. So a program started as root does its root-only
// work first (only gw-reconcile --boot has any) and then calls Become before it touches
// anything the service user can write: from then on it has exactly the service user's rights,
// and everything it creates is the service user's without a single chown.
//
// Become changes the credentials of the whole process (all threads: Go's syscall.Setuid does
// that on Linux), so library code never calls it: only a command's main does.
package svcuser

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// User is a resolved account.
type User struct {
	Name     string
	UID, GID int
}

// Lookup resolves a user name (or a numeric uid) through the system's user database. With cgo
// disabled this reads /etc/passwd, which is what a static binary in a container wants.
func Lookup(name string) (User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		if _, numErr := strconv.Atoi(name); numErr == nil {
			u, err = user.LookupId(name)
		}
		if err != nil {
			return User{}, fmt.Errorf("service user %q: %w", name, err)
		}
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return User{}, fmt.Errorf("service user %q: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return User{}, fmt.Errorf("service user %q: gid %q: %w", name, u.Gid, err)
	}
	return User{Name: u.Username, UID: uid, GID: gid}, nil
}

// Become makes the process the service user called name when it runs as root: supplementary
// groups are reduced to the user's primary group, then the gid and the uid are set (in that
// order: after setuid nothing else could be changed). It returns the user it became.
//
// Called by any other user it changes nothing and returns the user the process already is:
// the service user itself (a container run with --user 10000), or any other unprivileged
// uid, which then acts as itself (a container run with --user 1000, or OpenShift's
// arbitrary uids: what it can do is what that uid may do on the data root). An
// unprivileged caller already has no more rights than it should, and it cannot switch.
//
// After Become, the process cannot get root back: Become checks that setuid(0) fails.
func Become(name string) (User, error) {
	if euid := os.Geteuid(); euid != 0 {
		return Self(name), nil
	}
	u, err := Lookup(name)
	if err != nil {
		return User{}, err
	}
	if u.UID == 0 {
		return u, nil // the service user is root: nothing to drop
	}
	if err := syscall.Setgroups([]int{u.GID}); err != nil {
		return User{}, fmt.Errorf("become service user %q: setgroups: %w", name, err)
	}
	if err := syscall.Setgid(u.GID); err != nil {
		return User{}, fmt.Errorf("become service user %q: setgid %d: %w", name, u.GID, err)
	}
	if err := syscall.Setuid(u.UID); err != nil {
		return User{}, fmt.Errorf("become service user %q: setuid %d: %w", name, u.UID, err)
	}
	if syscall.Setuid(0) == nil || os.Geteuid() != u.UID || os.Getegid() != u.GID {
		return User{}, fmt.Errorf("become service user %q: privileges were not dropped", name)
	}
	return u, nil
}

// Drop is Become for a caller that does not need to know who it is afterwards: run as root it
// becomes the service user; otherwise it does nothing and reads no user database (every
// gateway start comes through here).
func Drop(name string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	_, err := Become(name)
	return err
}

// Self returns the user the process runs as (effective ids): the service user called name
// when that is who it is, else the account of its uid, named after /etc/passwd when it is
// listed there and after the number otherwise.
func Self(name string) User {
	euid, egid := os.Geteuid(), os.Getegid()
	if u, err := Lookup(name); err == nil && u.UID == euid {
		return u
	}
	u := User{Name: strconv.Itoa(euid), UID: euid, GID: egid}
	if pw, err := user.LookupId(u.Name); err == nil {
		u.Name = pw.Username
	}
	return u
}
