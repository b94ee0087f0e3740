package boot

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/s6gate/s6gate/pkg/proc"
	"github.com/s6gate/s6gate/pkg/s6"
)

// A nested supervision tree is a service of the root tree whose process is itself a scanner,
// an s6-svscan or s6gate's gw-svscan (s6gate's gateways' tree is one:
// /etc/services.d/s6gate-gateways). Its own
// s6-svscan would bring it down on the SIGTERM that the service's s6-supervise sends, but
// s6-svscan handles a signal only between two scans, and a scan starts every service it has
// not started yet, one fork after another: the first scan after a boot starts all of them. When
// a stop comes during that boot, the scanner goes on starting services (hundreds of gateways,
// every one a run script and a gateway process competing for the CPU with the scan itself)
// for as long as the scan takes, seconds past S6_SERVICES_GRACETIME, before it even looks at
// the SIGTERM; the container's stop overran its grace by as much.
//
// So the stop hook does the nested tree's teardown itself, with signals only (no process to
// start on a machine busy with a boot): it stops the scanner (SIGSTOP: it starts nothing
// more), tells each of its supervisors what the scanner would tell them — a service's to bring
// it down and exit (SIGTERM), a logger's to exit once its logger is down (SIGHUP: s6-log ends
// at the end of its input, after its service's last lines) — and kills the scanner once the
// root tree's s6-supervise wants it down (before, it would start the tree again). A supervisor
// the scanner started meanwhile (the root tree's SIGCONT resumes it) is told the same. All
// within the stop's deadline; what is left then is ended by stage 3 like everything else. The
// nested tree's .s6-svscan/finish does not run.

// nestedPoll is how often the teardown looks for supervisors the scanner started meanwhile
// and whether the root tree wants the scanner down.
const nestedPoll = 5 * time.Millisecond

// nestedTree is a nested tree's scanner and the root tree's service directory it runs in.
type nestedTree struct {
	scanner proc.Stat
	service string // the root tree's service directory (the scanner's s6-supervise's cwd)
}

// nestedTrees finds the nested trees among the services of the root tree whose s6-svscan is
// svscan: s6-supervise children of it whose child is an s6-svscan.
func nestedTrees(svscan int) []nestedTree {
	var out []nestedTree
	for _, sup := range childrenOf(svscan) {
		if procComm(sup) != "s6-supervise" {
			continue
		}
		for _, c := range childrenOf(sup) {
			st, err := proc.Read(c)
			if err != nil || !isScanner(st.Comm) {
				continue
			}
			dir, err := os.Readlink("/proc/" + strconv.Itoa(sup) + "/cwd")
			if err != nil {
				continue
			}
			out = append(out, nestedTree{scanner: st, service: dir})
		}
	}
	return out
}

// isScanner reports whether comm names a scanner: s6-svscan, or gw-svscan (the gateways'
// scanner when the container runs as root; it starts and stops supervisors as s6-svscan does).
func isScanner(comm string) bool { return comm == "s6-svscan" || comm == "gw-svscan" }

// childrenOf lists the children of pid (every thread's), from /proc.
func childrenOf(pid int) []int {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// isLogger reports whether pid is the s6-supervise of a logger (argv "s6-supervise NAME/log").
func isLogger(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	return len(argv) == 2 && filepath.Base(argv[0]) == "s6-supervise" && strings.HasSuffix(argv[1], "/log")
}

// wantsDown reports whether the root tree's s6-supervise of the service in dir no longer
// wants it up (it read our "down"), or cannot tell.
func wantsDown(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "supervise", "status"))
	if err != nil {
		return true
	}
	st, err := s6.ParseStatusFile(b)
	return err != nil || !st.WantUp
}

// downNestedTrees starts the teardown of every nested tree of the root tree whose s6-svscan is
// svscan, and returns a function that waits for it (until the deadline at most).
func downNestedTrees(log *logger, svscan int, deadline time.Time) (wait func()) {
	var wg sync.WaitGroup
	for _, tree := range nestedTrees(svscan) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			downNested(log, tree, deadline)
		}()
	}
	return wg.Wait
}

// downNested tears one nested tree down (see the comment at the top of this file).
func downNested(log *logger, tree nestedTree, deadline time.Time) {
	pid, start := tree.scanner.PID, tree.scanner.StartTime
	told := map[int]bool{} // supervisors sent SIGTERM
	var services, loggers []int
	killed := false
	for !killed && time.Now().Before(deadline) {
		if !proc.Alive(pid, &start) {
			break
		}
		_ = syscall.Kill(pid, syscall.SIGSTOP)
		for _, c := range childrenOf(pid) {
			if told[c] {
				continue
			}
			told[c] = true
			if st, err := proc.Read(c); err != nil || st.State == 'Z' {
				continue // gone already
			}
			if isLogger(c) {
				// Exit once the logger is down (s6-svc -x): s6-log ends at the end of its
				// input, once its service and that service's supervisor are gone, having
				// written their last lines.
				loggers = append(loggers, c)
				_ = syscall.Kill(c, syscall.SIGHUP)
				continue
			}
			services = append(services, c)
			_ = syscall.Kill(c, syscall.SIGTERM) // down and exit (s6-svc -dx)
		}
		if wantsDown(tree.service) {
			// The root tree will not start it again: it can go. SIGKILL ends a stopped
			// process too.
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed = true
			break
		}
		time.Sleep(nestedPoll)
	}
	if !killed {
		// The deadline: stage 3 ends everything next, and a stopped scanner would take no
		// SIGTERM from it.
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	log.printf("stop: %s: nested supervision tree brought down by /init: %d services and %d loggers told to stop, its s6-svscan (pid %d) stopped and killed",
		filepath.Base(tree.service), len(services), len(loggers), pid)
	left := 0
	for _, c := range append(services, loggers...) {
		if !waitGone(c, deadline) {
			left++
		}
	}
	if left > 0 {
		log.printf("stop: %s: warning: %d supervisors of the nested tree still running at the deadline", filepath.Base(tree.service), left)
	}
}
