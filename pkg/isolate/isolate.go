//go:build linux

// Package isolate confines a profile's command to the profile (SPEC §13): the command runs as
// the profile's own uid and gid (package profileuid), never as the service user, with
// RLIMIT_NPROC on that uid, and its whole process tree is ended before its gateway records a
// stop.
//
// It works from the credentials gw-svscan gives an isolated slot's supervisor: the profile's
// uid as the real uid, the service user as the effective and saved one (and the same for the
// gids). Everything the slot runs inherits them: its scripts and `gateway run` write the
// profile's state as the service user, while their real uid lets them signal the command, set
// its limits (prlimit) and switch to the profile's uid for good without privileges
// (setresuid may pick any of the real, effective and saved uids). Current tells whether this
// process was started like that.
//
// Why the real uid: the kernel lets a process signal another whose real or saved uid is the
// sender's real or effective one, and counts RLIMIT_NPROC per real uid. So the tenant's
// command (all three uids the profile's) can signal its own supervisor and gateway but no
// other profile's processes, and its process count is its own.
//
// A command that forks without end stops at its limit; KillAll ends every process whose
// real and effective uids are the profile's (the command's tree, including what it
// daemonised), never the supervisor or the gateway, whose effective uid is the service user.
package isolate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/safedir"
)

// Current returns the profile uid this process runs for, and whether it runs isolated at all:
// true when its real uid differs from its effective uid and lies in r (the slot's supervisor
// was started by gw-svscan with the profile's uid as its real uid).
func Current(r config.UIDRange) (uid int, ok bool) {
	ruid, euid := unix.Getuid(), unix.Geteuid()
	return ruid, ruid != euid && euid != 0 && r.Contains(ruid)
}

// Default process limits: a quarter of the container's pids limit when it has one (so that
// one runaway profile leaves room for the others), else DefaultMaxProcs; never below
// MinMaxProcs.
const (
	DefaultMaxProcs = 1024
	MinMaxProcs     = 32
)

// Limit is a profile's process limit: profile.json's "max_processes", else GATEWAY_MAX_PROCS,
// else derived from the container's pids limit (pidsMax, 0 = none).
func Limit(s config.Settings, p profile.Policy, pidsMax int) int {
	switch {
	case p.MaxProcs > 0:
		return p.MaxProcs
	case s.MaxProcs > 0:
		return s.MaxProcs
	case pidsMax > 0:
		return max(MinMaxProcs, pidsMax/4)
	}
	return DefaultMaxProcs
}

// PidsMax reads the container's pids limit from its cgroup (v2 pids.max, or v1's pids
// controller): 0 when there is none or it cannot be read.
func PidsMax() int {
	for _, p := range []string{"/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil { // "max"
			return 0
		}
		return n
	}
	return 0
}

// Become turns this process into the profile's for good: real, effective and saved gids and
// uids all uid (allowed without privileges: uid is its real uid), and RLIMIT_NPROC limit (soft
// and hard, so the command cannot raise it). It is the last step before exec supervision
// execs the command. Go applies setresuid and setresgid to every thread.
func Become(uid, limit int) error {
	if err := unix.Setrlimit(unix.RLIMIT_NPROC, &unix.Rlimit{Cur: uint64(limit), Max: uint64(limit)}); err != nil {
		return fmt.Errorf("process limit %d: %w", limit, err)
	}
	if err := syscall.Setresgid(uid, uid, uid); err != nil {
		return fmt.Errorf("become gid %d: %w", uid, err)
	}
	if err := syscall.Setresuid(uid, uid, uid); err != nil {
		return fmt.Errorf("become uid %d: %w", uid, err)
	}
	return nil
}

// Start starts cmd (not yet started) as the profile's uid with the profile's process limit,
// for the wrapper, which stays the service user. The child sets its uid and gid through
// SysProcAttr.Credential: unprivileged, setuid and setgid move only the effective ids (uid is
// the real one), and the exec then copies them to the saved ones, so the command has all
// three. The limit is set on the child with prlimit while it is stopped at the exec (ptrace's
// exec stop): before the command's first instruction, so it can neither fork beyond it nor
// raise it; the wrapper's own limit stays unlimited, so a profile at its limit never keeps its
// gateway from creating a thread.
func Start(cmd *exec.Cmd, uid, limit int) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid), NoSetGroups: true}
	cmd.SysProcAttr.Ptrace = true
	// ptrace requests must come from the thread that is the child's tracer: the one that forked.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	err := stoppedAtExec(pid)
	if err == nil {
		err = unix.Prlimit(pid, unix.RLIMIT_NPROC, &unix.Rlimit{Cur: uint64(limit), Max: uint64(limit)}, nil)
		if err != nil {
			err = fmt.Errorf("process limit %d: %w", limit, err)
		}
	}
	if derr := syscall.PtraceDetach(pid); err == nil && derr != nil {
		err = fmt.Errorf("ptrace detach: %w", derr)
	}
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return err
	}
	return nil
}

// stoppedAtExec waits for the traced child's SIGTRAP stop after its execve.
func stoppedAtExec(pid int) error {
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, unix.WALL, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait for the command's exec: %w", err)
		}
		if ws.Stopped() && ws.StopSignal() == unix.SIGTRAP {
			return nil
		}
		if ws.Exited() || ws.Signaled() {
			return fmt.Errorf("the command ended before its exec completed (%v)", ws)
		}
		// Another stop (a signal delivered before the exec): pass it on and wait again.
		sig := 0
		if ws.Stopped() {
			sig = int(ws.StopSignal())
		}
		if err := unix.PtraceCont(pid, sig); err != nil {
			return fmt.Errorf("ptrace cont: %w", err)
		}
	}
}

// KillAll ends every process whose real and effective uids are uid (the command's whole tree,
// whatever it forked or daemonised; never this process, nor the profile's supervisor or
// gateway, whose effective uid is the service user's): SIGKILL to each it finds, again and
// again until a scan finds none but zombies. A fork bomb cannot outrun it: the profile is at
// its process limit, and a killed process keeps its place in the count until it is reaped.
// It returns how many it killed; the caller must be able to signal uid's processes (its real
// uid is uid, or it is root). It gives up after 10 s.
func KillAll(uid int) (int, error) {
	self := os.Getpid()
	killed := map[int]bool{}
	deadline := time.Now().Add(10 * time.Second)
	for {
		procs, err := Processes(uid)
		if err != nil {
			return len(killed), err
		}
		alive := 0
		for _, p := range procs {
			if p.PID == self || p.State == 'Z' {
				continue
			}
			alive++
			if unix.Kill(p.PID, unix.SIGKILL) == nil {
				killed[p.PID] = true
			}
		}
		if alive == 0 {
			return len(killed), nil
		}
		if time.Now().After(deadline) {
			return len(killed), fmt.Errorf("%d processes of uid %d are still alive after SIGKILL", alive, uid)
		}
		time.Sleep(time.Millisecond)
	}
}

// Proc is a process found by Processes.
type Proc struct {
	PID   int
	State byte // /proc/PID/status "State:" letter (R, S, D, T, t, Z, …)
}

// Processes lists the processes whose real and effective uids are both uid.
func Processes(uid int) ([]Proc, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	var out []Proc
	buf := make([]byte, 4096)
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		b, err := readFile("/proc/"+n+"/status", buf)
		if err != nil {
			continue // gone meanwhile
		}
		ruid, euid, state, ok := parseStatus(b)
		if ok && ruid == uid && euid == uid {
			out = append(out, Proc{PID: pid, State: state})
		}
	}
	return out, nil
}

func readFile(name string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n, err := unix.Read(fd, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// parseStatus takes the real and effective uids and the state letter from /proc/PID/status.
func parseStatus(b []byte) (ruid, euid int, state byte, ok bool) {
	var haveUID bool
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.HasPrefix(line, []byte("State:")):
			f := bytes.Fields(line[len("State:"):])
			if len(f) > 0 && len(f[0]) == 1 {
				state = f[0][0]
			}
		case bytes.HasPrefix(line, []byte("Uid:")):
			f := bytes.Fields(line[len("Uid:"):])
			if len(f) < 2 {
				return 0, 0, 0, false
			}
			var err1, err2 error
			ruid, err1 = strconv.Atoi(string(f[0]))
			euid, err2 = strconv.Atoi(string(f[1]))
			haveUID = err1 == nil && err2 == nil
		}
	}
	return ruid, euid, state, haveUID && state != 0
}

// PrepareHome makes the home of profile name under the data root ready for a command
// running as uid, and returns the path of its profile.CommandDir. The home's group becomes uid (mode
// 0750: the command may enter it and read nothing of the gateway's, no other profile may even
// enter it); profiles/ may be entered by anyone (o+x), so the command reaches its home; profile.CommandDir,
// owned by the service user with group uid and mode 02770, is where the command writes. The
// service user keeps owning everything else, so the command can change none of the gateway's
// own files (state, marker, profile.json), nor rename or replace profile.CommandDir.
//
// It runs in `gateway run` as the service user with uid as its real gid: the group of what it
// creates and changes comes from its file system gid, set to uid on one locked thread only.
// With uid 0 (not isolated) profile.CommandDir is made 0700, the service user's, so HOME is the same path.
func PrepareHome(root, name string, uid int) (string, error) {
	rel := profile.HomeRel(name)
	if rel != "" {
		profiles, err := safedir.Open(root, filepath.Dir(rel))
		if err != nil {
			return "", err
		}
		err = ensureMode(profiles, 0o001, 0)
		profiles.Close()
		if err != nil {
			return "", err
		}
	}
	home, err := safedir.Open(root, rel)
	if err != nil {
		return "", err
	}
	defer home.Close()
	if uid > 0 && rel != "" {
		if err := withGroup(uid, func() error { return ensureGroup(home, uid) }); err != nil {
			return "", err
		}
		if err := ensureMode(home, 0o050, 0o007); err != nil {
			return "", err
		}
	}
	mode, gid := os.FileMode(0o700), -1
	if uid > 0 {
		mode, gid = os.ModeSetgid|0o770, uid
	}
	err = withGroup(gid, func() error {
		d, err := home.OpenDir(profile.CommandDir)
		if errors.Is(err, fs.ErrNotExist) {
			d, err = home.Mkdir(profile.CommandDir, mode)
		}
		if err != nil {
			return err
		}
		defer d.Close()
		if gid > 0 {
			if err := ensureGroup(d, gid); err != nil {
				return err
			}
		}
		return d.Chmod(mode)
	})
	if err != nil {
		return "", fmt.Errorf("the profile's own directory: %w", err)
	}
	return home.Join(profile.CommandDir), nil
}

// withGroup runs fn with the file system gid gid on a thread of its own (gid < 0: as it is).
// The thread is given back to the runtime only if its gid could be restored.
func withGroup(gid int, fn func() error) error {
	if gid < 0 {
		return fn()
	}
	runtime.LockOSThread()
	old, _ := unix.SetfsgidRetGid(gid)
	if now, _ := unix.SetfsgidRetGid(-1); now != gid { // -1 changes nothing: it reads it
		runtime.UnlockOSThread()
		return fmt.Errorf("cannot act as group %d (real gid %d, effective %d)", gid, unix.Getgid(), unix.Getegid())
	}
	err := fn()
	_, _ = unix.SetfsgidRetGid(old)
	if now, _ := unix.SetfsgidRetGid(-1); now == old {
		runtime.UnlockOSThread()
	}
	return err
}

// ensureGroup makes d's group gid (the caller acts as that group).
func ensureGroup(d *safedir.Dir, gid int) error {
	var st unix.Stat_t
	if err := unix.Fstat(d.Fd(), &st); err != nil {
		return &os.PathError{Op: "fstat", Path: d.Path(), Err: err}
	}
	if int(st.Gid) == gid {
		return nil
	}
	if err := unix.Fchown(d.Fd(), -1, gid); err != nil {
		return &os.PathError{Op: "chgrp " + strconv.Itoa(gid), Path: d.Path(), Err: err}
	}
	return nil
}

// ensureMode adds the bits add to d's mode and removes the bits drop.
func ensureMode(d *safedir.Dir, add, drop uint32) error {
	var st unix.Stat_t
	if err := unix.Fstat(d.Fd(), &st); err != nil {
		return &os.PathError{Op: "fstat", Path: d.Path(), Err: err}
	}
	want := (st.Mode&0o7777 | add) &^ drop
	if want == st.Mode&0o7777 {
		return nil
	}
	if err := unix.Fchmod(d.Fd(), want); err != nil {
		return &os.PathError{Op: "chmod", Path: d.Path(), Err: err}
	}
	return nil
}
