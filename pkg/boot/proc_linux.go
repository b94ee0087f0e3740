package boot

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/proc"
)

// statusCode maps a wait status to an exit code the way shells and tini do: the exit status,
// or 128 + the signal number for a process killed by a signal.
func statusCode(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return codeSignalled + int(ws.Signal())
	default:
		return 255
	}
}

// listProcs reads every process of procRoot (normally /proc). Processes that vanish while
// being read are skipped.
func listProcs(procRoot string) ([]proc.Stat, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, err
	}
	var out []proc.Stat
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "stat"))
		if err != nil {
			continue
		}
		if st, err := proc.ParseStat(b); err == nil {
			out = append(out, st)
		}
	}
	return out, nil
}

// descendants returns the pids of every process below root in the process tree.
func descendants(procs []proc.Stat, root int) []int {
	children := map[int][]int{}
	for _, p := range procs {
		children[p.PPID] = append(children[p.PPID], p.PID)
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// cmdlineArgv0 returns argv[0] of a live process, or "" when it cannot be read.
func cmdlineArgv0(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// procComm returns the command name of a process, or "".
func procComm(pid int) string {
	st, err := proc.Read(pid)
	if err != nil {
		return ""
	}
	return st.Comm
}

// readPidFile reads a pid written by writePidFile; 0 when absent or invalid.
func readPidFile(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

func writePidFile(path string, pid int) error {
	return os.WriteFile(path, []byte(strconv.Itoa(pid)+"\n"), 0o644)
}

// waitGone waits until process pid (not necessarily a child) no longer exists, or until the
// deadline. It uses a pidfd when the kernel has them (woken by the exit itself) and falls back
// to probing every 10 ms. It reports whether the process is gone.
func waitGone(pid int, deadline time.Time) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err == nil {
		defer unix.Close(fd)
		for {
			left := time.Until(deadline)
			if left <= 0 {
				return false
			}
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(fds, int(left.Milliseconds())+1)
			if err == nil && n > 0 {
				return true
			}
			if err != nil && !errors.Is(err, unix.EINTR) {
				break
			}
		}
	} else if errors.Is(err, unix.ESRCH) {
		return true
	}
	for time.Now().Before(deadline) {
		if unix.Kill(pid, 0) == unix.ESRCH {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return unix.Kill(pid, 0) == unix.ESRCH
}

// inForeground reports whether fd is this process's controlling terminal and this process
// group is its foreground group (docker run -it): only then can a child be put in front.
func inForeground(fd int) bool {
	pgrp, err := unix.IoctlGetInt(fd, unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}

// initSignals are the signals a Go program that is PID 1 must catch itself: the Go runtime
// installs a handler for every signal, so without Notify any of these would kill the init.
func initSignals() []os.Signal {
	return []os.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGQUIT, unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2, unix.SIGPWR, unix.SIGALRM}
}
