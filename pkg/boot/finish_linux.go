package boot

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// killAfterKillWait bounds the wait after SIGKILL: nothing survives it, but a process stuck
// in uninterruptible sleep can take a moment to go.
const killAfterKillWait = 2 * time.Second

// finish is <scandir>/.s6-svscan/finish (and crash): stage 3, run as PID 1 once s6-svscan
// execs into it (or as the sub-reaper pid when /init is not PID 1). It runs
// /etc/cont-finish.d, sends TERM to every process left, waits until they are all gone — at
// most S6_KILL_GRACETIME — then KILLs the rest, and exits with the container's exit code.
func finish(l layout, log *logger, crashed bool) int {
	start := time.Now()
	reap := newReaper()
	defer reap.stop()
	// As PID 1 a Go program dies of any signal it does not catch: a second docker stop must
	// not cut cont-finish.d short.
	sigc := make(chan os.Signal, 8)
	signal.Notify(sigc, initSignals()...)
	defer signal.Stop(sigc)
	go func() {
		for sig := range sigc {
			if sig, ok := sig.(syscall.Signal); ok {
				log.printf("stop: %s ignored: the stop is already running", unix.SignalName(sig))
			}
		}
	}()
	k := hookKnobs(l, log)
	if crashed {
		log.printf("fatal: s6-svscan crashed: stopping the container")
	} else if _, err := os.Stat(l.stopLock()); err != nil {
		log.printf("stop: s6-svscan stopped without the stop hook (s6-svscanctl -t?): finishing the stop")
	}

	contFinish(l, log, reap, k)

	killAll(log, reap, k.KillGrace)
	if k.SyncDisks {
		unix.Sync()
	}
	code, ok, warn := readExitcode(l.exitcodeFile())
	if warn != "" {
		log.printf("stop: warning: %s", warn)
	}
	if !ok {
		code = codeOK
		if crashed {
			code = codeSystem
		}
	}
	log.printf("stop: done in %d ms: exit code %d", time.Since(start).Milliseconds(), code)
	return code
}

// contFinish runs /etc/cont-finish.d/* in order, each for at most S6_KILL_FINISH_MAXTIME.
func contFinish(l layout, log *logger, reap *reaper, k knobs) {
	scripts, skipped, err := listScripts(l.ContFinish)
	if err != nil {
		log.printf("cont-finish: cannot list %s: %v", l.ContFinish, err)
		return
	}
	for _, name := range skipped {
		log.printf("cont-finish: warning: %s is not executable: skipped", filepath.Join(l.ContFinish, name))
	}
	if len(scripts) == 0 {
		return
	}
	log.printf("stop: running %d scripts from %s", len(scripts), l.ContFinish)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		devnull = os.Stdin
	} else {
		defer devnull.Close()
	}
	for _, name := range scripts {
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if k.FinishMaxTime > 0 {
			ctx, cancel = context.WithTimeout(ctx, k.FinishMaxTime)
		}
		begin := time.Now()
		ws, timedOut, err := reap.run(ctx, procSpec{
			Argv: []string{filepath.Join(l.ContFinish, name)}, Env: scriptEnv(l, log), Dir: "/",
			Files: []*os.File{devnull, os.Stdout, os.Stderr},
		})
		cancel()
		switch {
		case err != nil:
			log.printf("cont-finish: %s: %v", name, err)
		case timedOut:
			log.printf("cont-finish: %s killed after %d ms (S6_KILL_FINISH_MAXTIME)", name, k.FinishMaxTime.Milliseconds())
		default:
			log.printf("cont-finish: %s exited %d (%d ms)", name, statusCode(ws), time.Since(begin).Milliseconds())
		}
	}
}

// killAll ends every other process of the container: TERM (and CONT), then a wait that ends
// as soon as none is left, KILL after grace. As PID 1 "every process" is kill(-1); when /init
// is not PID 1 it is every descendant of this process (a sub-reaper inherits all of them),
// so nothing outside the container's tree is touched.
func killAll(log *logger, reap *reaper, grace time.Duration) {
	self := os.Getpid()
	pid1 := self == 1
	left := func() []int {
		reap.reapAll()
		procs, err := listProcs("/proc")
		if err != nil {
			if pid1 && syscall.Kill(-1, 0) == syscall.ESRCH {
				return nil
			}
			return []int{-1} // unknown: assume something is left
		}
		var alive []int
		candidates := map[int]bool{}
		if pid1 {
			for _, p := range procs {
				candidates[p.PID] = p.PID != self
			}
		} else {
			for _, pid := range descendants(procs, self) {
				candidates[pid] = true
			}
		}
		for _, p := range procs {
			if candidates[p.PID] && p.State != 'Z' && p.State != 'X' {
				alive = append(alive, p.PID)
			}
		}
		return alive
	}
	signalAll := func(sig syscall.Signal) {
		if pid1 {
			_ = syscall.Kill(-1, sig)
			return
		}
		for _, pid := range left() {
			if pid > 0 {
				_ = syscall.Kill(pid, sig)
			}
		}
	}
	waitEmpty := func(d time.Duration) []int {
		deadline := time.Now().Add(d)
		for {
			rest := left()
			if len(rest) == 0 {
				return nil
			}
			wait := time.Until(deadline)
			if wait <= 0 {
				return rest
			}
			// Woken at once when a child of ours dies; other processes are rechecked every 20 ms.
			reap.waitChanged(min(wait, 20*time.Millisecond))
		}
	}

	rest := left()
	if len(rest) == 0 {
		log.printf("stop: no process left")
		return
	}
	start := time.Now()
	log.printf("stop: sending TERM to %d remaining processes (S6_KILL_GRACETIME=%d ms)", len(rest), grace.Milliseconds())
	signalAll(syscall.SIGTERM)
	signalAll(syscall.SIGCONT)
	rest = waitEmpty(grace)
	if len(rest) == 0 {
		log.printf("stop: all processes exited in %d ms", time.Since(start).Milliseconds())
		return
	}
	log.printf("stop: %d processes still alive after %d ms: sending KILL", len(rest), grace.Milliseconds())
	signalAll(syscall.SIGKILL)
	if rest = waitEmpty(killAfterKillWait); len(rest) > 0 {
		log.printf("stop: warning: %d processes survived SIGKILL: %v", len(rest), rest)
	}
}
