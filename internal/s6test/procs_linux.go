package s6test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/s6gate/s6gate/pkg/proc"
)

// Proc is one process of a test's own tree, as /proc shows it.
type Proc struct {
	PID, PPID int
	Comm      string   // the name of the program it runs now (what it exec'd last)
	Argv      []string // its command line
}

// Descendants lists the processes below pid: its children, theirs, and so on, found through
// /proc/PID/task/*/children. A test looks for its processes there and never among every
// process of the host, where another test run (a second `go test` of the project, another
// package's binary) has an s6-supervise for a service of the same name, a `gateway` of the
// same profile, a sleep of its own. A process that ends while the tree is read is left out.
func Descendants(pid int) []Proc {
	var out []Proc
	seen := map[int]bool{pid: true}
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		for _, c := range childrenOf(queue[0]) {
			if seen[c] {
				continue
			}
			seen[c] = true
			if p, ok := readProc(c); ok {
				out = append(out, p)
				queue = append(queue, c)
			}
		}
	}
	return out
}

// OwnProcesses lists the processes the test process started, directly or not: every
// s6-svscan of its Envs and Scans and what runs below them.
func OwnProcesses() []Proc { return Descendants(os.Getpid()) }

// Supervisors lists the PIDs of the s6-supervise processes below root that supervise the
// service called name: its argv[1], as s6-svscan starts them, is "name" or "name/log". A child
// that an s6-supervise has forked to start the service and that has not exec'd the run script
// yet has the same command line: it is left out (its parent is an s6-supervise, a
// supervisor's is s6-svscan).
func Supervisors(root int, name string) []int {
	procs := Descendants(root)
	supervise := map[int]bool{}
	for _, p := range procs {
		supervise[p.PID] = p.Comm == "s6-supervise"
	}
	var pids []int
	for _, p := range procs {
		if len(p.Argv) == 2 && filepath.Base(p.Argv[0]) == "s6-supervise" && (p.Argv[1] == name || p.Argv[1] == name+"/log") && !supervise[p.PPID] {
			pids = append(pids, p.PID)
		}
	}
	return pids
}

// Processes lists the processes of this supervision tree: everything below its s6-svscan.
func (s *Scan) Processes() []Proc { return Descendants(s.PID()) }

// Supervisors lists the PIDs of this tree's s6-supervise processes of the service called name
// (and of its logger, name/log).
func (s *Scan) Supervisors(name string) []int { return Supervisors(s.PID(), name) }

// WaitExec waits until process pid runs the program called comm: until it has made the exec
// the test is about to rely on. A process can be seen (its PID in an s6 status, a state file,
// its parent's children) from the moment it was forked, and a supervised one may report
// itself ready before its last exec (`echo >&3; exec sleep 1000`): reading its comm, command
// line, executable or environment at once races that exec. WaitExec fails the test when pid
// is gone or still runs something else after 10 s, naming what it runs.
func WaitExec(t testing.TB, pid int, comm string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := proc.Read(pid)
		switch {
		case err != nil:
			t.Fatalf("waiting for process %d to exec %s: %v", pid, comm, err)
		case st.Comm == comm:
			return
		case st.State == 'Z':
			t.Fatalf("waiting for process %d to exec %s: it exited as %s", pid, comm, st.Comm)
		case time.Now().After(deadline):
			t.Fatalf("process %d still runs %s, not %s, after 10 s", pid, st.Comm, comm)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// childrenOf lists the children of every thread of pid.
func childrenOf(pid int) []int {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	var out []int
	for _, p := range tasks {
		b, _ := os.ReadFile(p)
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

func readProc(pid int) (Proc, bool) {
	st, err := proc.Read(pid)
	if err != nil {
		return Proc{}, false
	}
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	var argv []string
	if s := strings.TrimRight(string(b), "\x00"); s != "" {
		argv = strings.Split(s, "\x00")
	}
	return Proc{PID: pid, PPID: st.PPID, Comm: st.Comm, Argv: argv}, true
}
