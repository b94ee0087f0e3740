package gwreconcile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/bootrecord"
	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/reconcile"
	"github.com/s6gate/s6gate/pkg/svcuser"
)

// The steps of a boot, as a failure names them (in the log line, the record, every verb).
const (
	stepRecord   = "record the boot"
	stepUser     = "find the service user"
	stepDataRoot = "check the data root"
	stepScanDir  = "prepare the gateways' scan directory"
	stepProfiles = "reconcile the profiles"
)

const fixReadOnly = "mount the data volume read-write (not :ro), then restart the container"

// stepError is a failed boot step, with what to do about it.
type stepError struct {
	step string
	err  error
	fix  string
}

func (e *stepError) Error() string { return e.err.Error() + "; fix: " + e.fix }
func (e *stepError) Unwrap() error { return e.err }

// bootAndRecord is `gw-reconcile --boot`: the root step (the scan directory anew, the data root
// handed over), the rest as the service user, and the outcome recorded (package bootrecord) for
// the gateways' tree service and the verbs. A failed step logs one ERROR line naming the step
// and the fix, and is recorded: nothing starts on the half-built scan directory.
func bootAndRecord(s config.Settings, stdout, stderr io.Writer, log *slog.Logger) int {
	// Run at runtime (a live s6-svscan on the scan directory), or pointed at a directory it must
	// never touch, --boot refuses before it records anything: this start's record, and the
	// gateways' tree that relies on it, stay as they are.
	if err := reconcile.CheckBootScanDir(s); err != nil {
		fmt.Fprintln(stderr, exitcode.Line("gw-reconcile", "", err))
		return exitcode.Of(err)
	}
	failed := func(se *stepError) int {
		log.Error("the boot failed: no gateway starts until this is fixed and the container restarted",
			"step", se.step, "err", se.err.Error(), "fix", se.fix)
		if err := bootrecord.Write(s.ScanDir, bootrecord.Record{State: bootrecord.Failed, Step: se.step, Reason: se.err.Error(), Fix: se.fix}); err != nil {
			log.Error("cannot record the failed boot", "err", err)
		}
		return exitcode.Of(se.err)
	}
	if err := bootrecord.Write(s.ScanDir, bootrecord.Record{State: bootrecord.Booting}); err != nil {
		return failed(&stepError{stepRecord, err, "root must be able to write " + bootrecord.Path(s.ScanDir) + " (is /run full or read-only?)"})
	}
	root := os.Geteuid() == 0
	var svc svcuser.User
	uid, gid := -1, -1
	if root {
		var err error
		if svc, err = svcuser.Lookup(s.User); err != nil {
			return failed(&stepError{stepUser, err, "GATEWAY_USER must name a user of the image (default gateway)"})
		}
		uid, gid = svc.UID, svc.GID
	}
	if err := s.CheckHome(); err != nil {
		return failed(&stepError{stepDataRoot, err, "mount the data volume at " + s.Home + ", or set GATEWAY_HOME to where it is"})
	}
	if err := reconcile.PrepareBoot(s, uid, gid); err != nil {
		fix := "see the error; GATEWAY_SCANDIR (default /run/gateways) must be a directory root can make under a writable /run"
		var sde *reconcile.ScanDirError
		if !errors.As(err, &sde) {
			fix = fmt.Sprintf("give the data root to the service user (chown %d:%d on the volume), then restart the container", uid, gid)
		}
		return failed(&stepError{stepScanDir, err, fix})
	}
	if root && svc.UID != 0 {
		if se := dataRootProblem(s.Home, svc); se != nil {
			return failed(se)
		}
		if err := reconcileAsChild(svc, stdout, stderr); err != nil {
			return failed(err)
		}
	} else if err := reconcileHere(s, false, true, false, stdout, stderr); err != nil {
		var se *stepError
		if !errors.As(err, &se) {
			se = &stepError{stepProfiles, err, "see the lines above"}
		}
		return failed(se)
	}
	if err := bootrecord.Write(s.ScanDir, bootrecord.Record{State: bootrecord.OK}); err != nil {
		return failed(&stepError{stepRecord, err, "root must be able to write " + bootrecord.Path(s.ScanDir)})
	}
	return exitcode.OK
}

// dataRootProblem is the root step's check that the service user u can use the data root: a
// read-only file system, or owner, group and mode that leave u out. A directory with an ACL is
// left to the service user's own check (checkHomeWritable, in the child), which asks the kernel.
func dataRootProblem(home string, u svcuser.User) *stepError {
	var sfs unix.Statfs_t
	if err := unix.Statfs(home, &sfs); err == nil && sfs.Flags&unix.ST_RDONLY != 0 {
		return &stepError{stepDataRoot, fmt.Errorf("data root %s is on a read-only file system", home), fixReadOnly}
	}
	var st unix.Stat_t
	if err := unix.Stat(home, &st); err != nil {
		return &stepError{stepDataRoot, &os.PathError{Op: "stat", Path: home, Err: err}, "mount the data volume at " + home}
	}
	if _, err := unix.Getxattr(home, "system.posix_acl_access", nil); err == nil {
		return nil
	}
	var need uint32
	switch {
	case int(st.Uid) == u.UID:
		need = unix.S_IWUSR | unix.S_IXUSR
	case int(st.Gid) == u.GID:
		need = unix.S_IWGRP | unix.S_IXGRP
	default:
		need = unix.S_IWOTH | unix.S_IXOTH
	}
	if st.Mode&need == need {
		return nil
	}
	return &stepError{
		step: stepDataRoot,
		err: fmt.Errorf("data root %s (owner uid %d, gid %d, mode %04o) is not writable by the service user %s (uid %d)",
			home, st.Uid, st.Gid, st.Mode&0o7777, u.Name, u.UID),
		fix: fmt.Sprintf("give it to the service user (chown %d:%d on the volume), then restart the container", u.UID, u.GID),
	}
}

// reconcileAsChild runs the service user's part of the boot (gw-reconcile --boot --prepared)
// as u, in a child process: the root step stays root to record the outcome, and the child has
// exactly the service user's rights (SPEC §11). The child's output passes through; when it
// fails, its last line is the reason.
func reconcileAsChild(u svcuser.User, stdout, stderr io.Writer) *stepError {
	self, err := os.Executable()
	if err != nil {
		return &stepError{stepProfiles, err, "the image must hold gw-reconcile"}
	}
	cmd := exec.Command(self, "--boot", "--prepared")
	cmd.Args[0] = "gw-reconcile" // the multi-call binary dispatches on it
	cmd.Env = os.Environ()
	cmd.Stdout = stdout
	last := &lastLine{w: stderr}
	cmd.Stderr = last
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
		Uid: uint32(u.UID), Gid: uint32(u.GID), Groups: []uint32{uint32(u.GID)},
	}}
	err = cmd.Run()
	if err == nil {
		return nil
	}
	line := strings.TrimPrefix(last.String(), "gw-reconcile: ")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || line == "" {
		return &stepError{stepProfiles, fmt.Errorf("gw-reconcile as the service user %s: %w", u.Name, err), "see the lines above"}
	}
	reason, fix, ok := strings.Cut(line, "; fix: ")
	if !ok {
		fix = "see the lines above"
	}
	step := stepProfiles
	if strings.HasPrefix(reason, "data root ") {
		step = stepDataRoot
	}
	return &stepError{step, errors.New(reason), fix}
}

// lastLine passes what is written to w and keeps the last non-empty line.
type lastLine struct {
	mu   sync.Mutex
	w    io.Writer
	tail []byte // the unfinished line
	last string
}

func (l *lastLine) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tail = append(l.tail, p...)
	for {
		i := bytes.IndexByte(l.tail, '\n')
		if i < 0 {
			break
		}
		if line := strings.TrimSpace(string(l.tail[:i])); line != "" {
			l.last = line
		}
		l.tail = l.tail[i+1:]
	}
	return l.w.Write(p)
}

func (l *lastLine) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if line := strings.TrimSpace(string(l.tail)); line != "" {
		return line
	}
	return l.last
}

// checkBootRecord is `gw-reconcile --check-boot`, run by the gateways' tree service before it
// starts its scanner: 0 when this start's boot succeeded; otherwise one ERROR line saying why
// (and, when the boot never finished — gw-reconcile killed — that is recorded as its failure,
// so the verbs say it too) and 1.
func checkBootRecord(s config.Settings, stderr io.Writer) int {
	r, ok, err := bootrecord.Read(s.ScanDir)
	switch {
	case err != nil:
	case !ok:
		err = fmt.Errorf("this start of the container has no boot record (%s): gw-reconcile --boot (/etc/cont-init.d/20-s6gate-reconcile) did not run, or refused to; see the lines above", bootrecord.Path(s.ScanDir))
	case r.State == bootrecord.OK:
		return exitcode.OK
	case r.State == bootrecord.Booting:
		r = bootrecord.Record{State: bootrecord.Failed, Step: "boot",
			Reason: "gw-reconcile --boot did not finish (killed?)", Fix: "see the lines above, then restart the container"}
		if werr := bootrecord.Write(s.ScanDir, r); werr != nil && os.Geteuid() == 0 {
			fmt.Fprintf(stderr, "gw-reconcile: cannot record the failed boot: %v\n", werr)
		}
		err = r.Err()
	default:
		err = r.Err()
	}
	fmt.Fprintf(stderr, "gw-reconcile: ERROR: the gateways' tree does not start: %v\n", err)
	return exitcode.Failed
}
