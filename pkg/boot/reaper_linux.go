package boot

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// reaper collects every terminated child of this process with wait4(-1), which is what a
// PID 1 (or a child sub-reaper) must do so that orphans do not stay zombies, and hands the
// statuses of the children it started itself to whoever waits for them. Within one process
// all children must be started through it: os/exec's Wait would race with wait4(-1).
type reaper struct {
	mu      sync.Mutex
	waiting map[int]chan syscall.WaitStatus // children we started, not reaped yet
	orphans int                             // unknown processes reaped so far
	sigc    chan os.Signal
	changed chan struct{} // poked (non-blocking) after every reap
	done    chan struct{}
}

func newReaper() *reaper {
	r := &reaper{
		waiting: map[int]chan syscall.WaitStatus{},
		sigc:    make(chan os.Signal, 1),
		changed: make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	signal.Notify(r.sigc, syscall.SIGCHLD)
	go r.loop()
	r.reapAll() // children that died before the handler was installed
	return r
}

func (r *reaper) loop() {
	for {
		select {
		case <-r.done:
			return
		case <-r.sigc:
			r.reapAll()
		}
	}
}

// stop ends the reaping goroutine (children are then left to whoever comes next, e.g. the
// s6-svscan that this process is about to become).
func (r *reaper) stop() {
	signal.Stop(r.sigc)
	close(r.done)
}

// reapAll collects every child that has terminated, without blocking.
func (r *reaper) reapAll() {
	reaped := false
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			break
		}
		reaped = true
		r.mu.Lock()
		if ch, ok := r.waiting[pid]; ok {
			delete(r.waiting, pid)
			ch <- ws
		} else {
			r.orphans++
		}
		r.mu.Unlock()
	}
	if reaped {
		select {
		case r.changed <- struct{}{}:
		default:
		}
	}
}

// procSpec describes a process to start.
type procSpec struct {
	Argv  []string
	Path  string // resolved executable; Argv[0] when empty
	Env   []string
	Dir   string
	Files []*os.File // stdin, stdout, stderr[, extra]
	Sys   *syscall.SysProcAttr
}

// spawn starts spec and returns its pid and a channel that receives its wait status once.
// The lock is held across the start so the reap loop cannot collect the child before it is
// registered.
func (r *reaper) spawn(spec procSpec) (int, <-chan syscall.WaitStatus, error) {
	path := spec.Path
	if path == "" {
		path = spec.Argv[0]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p, err := os.StartProcess(path, spec.Argv, &os.ProcAttr{Dir: spec.Dir, Env: spec.Env, Files: spec.Files, Sys: spec.Sys})
	if err != nil {
		return 0, nil, err
	}
	pid := p.Pid
	_ = p.Release() // the status is ours to collect, not os.Process's
	ch := make(chan syscall.WaitStatus, 1)
	r.waiting[pid] = ch
	// A SIGCHLD that arrived while we held the lock is still pending in sigc: nothing is lost.
	return pid, ch, nil
}

// run starts spec and waits for it. When ctx ends first the process gets SIGKILL and run
// still waits for its status; timedOut then tells the caller why it ended.
func (r *reaper) run(ctx context.Context, spec procSpec) (ws syscall.WaitStatus, timedOut bool, err error) {
	pid, ch, err := r.spawn(spec)
	if err != nil {
		return 0, false, err
	}
	select {
	case ws = <-ch:
		return ws, false, nil
	case <-ctx.Done():
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return <-ch, true, nil
	}
}

// waitChanged blocks until something was reaped or d elapsed.
func (r *reaper) waitChanged(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.changed:
	case <-t.C:
	}
}

// orphanCount returns how many processes that this process did not start were reaped.
func (r *reaper) orphanCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.orphans
}
