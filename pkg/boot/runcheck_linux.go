package boot

import (
	"errors"
	"fmt"
	"slices"

	"golang.org/x/sys/unix"
)

// runCheck is what /init found out about /run before it writes there: a line worth logging
// (empty when there is nothing to say), or, in Fatal, the one line that explains why the
// container cannot boot and how to fix it.
type runCheck struct {
	Note  string
	Fatal string
}

// creds are the effective ids a check is made for.
type creds struct {
	UID, GID int
	Groups   []int // supplementary groups
}

func currentCreds() creds {
	groups, _ := unix.Getgroups()
	return creds{UID: unix.Geteuid(), GID: unix.Getegid(), Groups: groups}
}

// canWrite reports whether c may create entries in a directory of this owner, group and
// mode, by the classic permission bits (no ACLs: /run is a tmpfs or an emptyDir).
func (c creds) canWrite(uid, gid, mode uint32) bool {
	switch {
	case c.UID == 0:
		return true
	case int(uid) == c.UID:
		return mode&0o300 == 0o300
	case int(gid) == c.GID || slices.Contains(c.Groups, int(gid)):
		return mode&0o030 == 0o030
	default:
		return mode&0o003 == 0o003
	}
}

// checkRun decides whether /init, running as c, may use run as /run. It follows s6-overlay
// 3's preinit where a non-root /init cannot fix /run itself:
//
//   - root: any writable directory (a missing one is created later);
//   - /run owned by c.UID: it must be writable by its owner;
//   - /run of uid 0 that c can write through its sticky bit (mode 1777, what Docker's
//     --tmpfs gives with this image; or group-writable, setgid and sticky for c's group):
//     accepted with a warning ("single-uid mapping": nobody else can remove /init's files);
//   - /run of gid 0, group-writable and not world-writable, for a process of gid 0 (the
//     OpenShift arbitrary-uid layout): accepted;
//   - /run of uid 0 that c can write without a sticky bit (mode 0777: a Kubernetes
//     emptyDir): only with worldWritableOK
//     (S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES), with a warning;
//   - anything else, or a /run that c cannot write at all: refused.
//
// Whoever runs it, a read-only /run and a /run mounted noexec (s6-supervise runs every
// service's ./run from it) are refused.
func checkRun(run string, c creds, worldWritableOK bool) runCheck {
	var st unix.Stat_t
	err := unix.Stat(run, &st)
	if errors.Is(err, unix.ENOENT) && c.UID == 0 {
		return runCheck{} // created by prepareRun
	}
	if err != nil {
		return runCheck{Fatal: fmt.Sprintf("%s: %v: %s", run, err, runFix(run, c.UID))}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return runCheck{Fatal: fmt.Sprintf("%s is not a directory: %s", run, runFix(run, c.UID))}
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(run, &fs); err != nil {
		fs.Flags = 0 // cannot tell: the writes below will
	}
	if fs.Flags&unix.ST_RDONLY != 0 {
		return runCheck{Fatal: fmt.Sprintf("%s is on a read-only file system: %s", run, runFix(run, c.UID))}
	}
	mode := st.Mode & 0o7777
	owner := int(st.Uid)
	if !c.canWrite(st.Uid, st.Gid, mode) {
		return runCheck{Fatal: fmt.Sprintf("%s (owner uid %d, mode %04o) is not writable by uid %d: %s", run, owner, mode, c.UID, runFix(run, c.UID))}
	}
	if fs.Flags&unix.ST_NOEXEC != 0 {
		return runCheck{Fatal: fmt.Sprintf("%s is mounted noexec, so s6-supervise cannot start any service from it: mount it with exec (docker run --tmpfs %s:exec)", run, run)}
	}
	if c.UID == 0 || owner == c.UID {
		return runCheck{}
	}
	// Writable, but someone else's: only the layouts s6-overlay accepts.
	sameGroup := int(st.Gid) == c.GID
	switch {
	case c.GID == 0 && st.Gid == 0 && mode&0o070 == 0o070 && mode&0o002 == 0:
		return runCheck{Note: fmt.Sprintf("%s belongs to uid %d, not %d, and is writable by group 0 (mode %04o): used with gid 0", run, owner, c.UID, mode)}
	case owner == 0 && stickyForUs(mode, sameGroup):
		return runCheck{Note: fmt.Sprintf("warning: %s belongs to uid 0, not %d, and is writable by others (mode %04o); its sticky bit keeps /init's files its own (single-uid mapping)", run, c.UID, mode)}
	case owner == 0 && worldWritableOK:
		return runCheck{Note: fmt.Sprintf("warning: %s belongs to uid 0, not %d, and is writable by others (mode %04o) without a sticky bit: INSECURE, accepted because %s is set", run, c.UID, mode, envWorldWritableRun)}
	}
	return runCheck{Fatal: fmt.Sprintf("%s belongs to uid %d, not %d, and is writable by others (mode %04o), which a non-root /init cannot fix: %s, or accept it with %s=1",
		run, owner, c.UID, mode, ownRunFix(run, c.UID), envWorldWritableRun)}
}

// stickyForUs reports whether mode gives the caller's class (group when it is the directory's
// group, else other) rwx with the sticky bit (and setgid for the group), as preinit's
// "${x}x${x}w${x}r.*os${y}" test does.
func stickyForUs(mode uint32, group bool) bool {
	if group {
		return mode&0o070 == 0o070 && mode&unix.S_ISVTX != 0 && mode&unix.S_ISGID != 0
	}
	return mode&0o007 == 0o007 && mode&unix.S_ISVTX != 0
}

// runFix is the end of the line for a /run the caller cannot use at all.
func runFix(run string, uid int) string {
	if uid == 0 {
		return fmt.Sprintf("give the container a writable %s (docker run --tmpfs %s:exec)", run, run)
	}
	return ownRunFix(run, uid) + ", or run as root"
}

// ownRunFix names the ways to give uid a /run of its own.
func ownRunFix(run string, uid int) string {
	return fmt.Sprintf("give uid %d a %s it owns (docker run --tmpfs %s:exec,uid=%d)", uid, run, run, uid)
}

// claimRun makes a /run that another uid owns, or that others can write, root's with mode
// 0755, as s6-overlay does when it runs as root: the image's /run is 1777 so that --user and
// --tmpfs work without root, but a root /init shares its /run with nobody. It returns a line
// to log ("" when nothing changed).
func claimRun(run string) string {
	var st unix.Stat_t
	if err := unix.Lstat(run, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return ""
	}
	mode := st.Mode & 0o7777
	if st.Uid == 0 && mode&0o022 == 0 {
		return ""
	}
	if err := unix.Chown(run, 0, 0); err != nil {
		return fmt.Sprintf("warning: cannot give %s (owner uid %d, mode %04o) to root: %v", run, st.Uid, mode, err)
	}
	if err := unix.Chmod(run, 0o755); err != nil {
		return fmt.Sprintf("warning: cannot make %s (owner uid %d, mode %04o) mode 0755: %v", run, st.Uid, mode, err)
	}
	return fmt.Sprintf("%s (owner uid %d, mode %04o) made root's, mode 0755", run, st.Uid, mode)
}
