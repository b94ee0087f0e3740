package gatewayrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/marker"
	"github.com/s6gate/s6gate/pkg/pidlock"
	"github.com/s6gate/s6gate/pkg/proc"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/safedir"
	"github.com/s6gate/s6gate/pkg/state"
)

// Exec supervision (profile.json "supervision": "exec"; docs/operations.md): `gateway run`
// does everything up to the command's start as usual, then starts a transient watcher and
// execs the command, which so keeps the gateway's PID, start time and profile lock and is
// s6-supervise's own child. The watcher settles the command and checks its readiness, records
// running and tells s6 it is ready, then exits. When the command ends, the slot's finish
// (Finish) classifies the end as the wrapper would have.

// WatchVerb is the hidden verb of the gateway binary that runs the watcher.
const WatchVerb = "watch"

// watchSpec is what `gateway run` hands its watcher (one JSON argument).
type watchSpec struct {
	Profile      string        `json:"profile"`
	PID          int           `json:"pid"`
	StartTime    *uint64       `json:"start_time"`
	CommandStart time.Time     `json:"command_start"`
	Settle       time.Duration `json:"settle"`
	Ready        profile.Ready `json:"ready"`
	NotifyFD     int           `json:"notify_fd,omitempty"` // s6's readiness descriptor in the watcher (3), 0: none
	ReadyFD      int           `json:"ready_fd,omitempty"`  // read end of the command's ready.notify_fd pipe (4), 0: none
	ExecFD       int           `json:"exec_fd,omitempty"`   // read end of a pipe whose write end the exec closes (5)
	Failures     int           `json:"failures,omitempty"`  // consecutive failures before this start
	StableAfter  time.Duration `json:"stable_after,omitempty"`
}

// Descriptors of the watcher (after stdin, stdout, stderr).
const (
	watcherNotifyFD = 3
	watcherReadyFD  = 4
	watcherExecFD   = 5
)

// execCommand execs the command (argv, env) in place of this process. It returns only when
// it did not: done with the exit code when the gateway must exit (the failure is recorded),
// or not done when exec supervision is impossible for this start and the caller should
// supervise the command as a wrapper instead.
func (g *gateway) execCommand(argv, env []string, sigs chan os.Signal, lock *pidlock.Lock) (code int, done bool) {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return g.finish(FatalConfig, fmt.Sprintf("start %q: %v", argv[0], err), nil), true
	}
	s6fd := -1
	if g.o.NotifyFD > 2 {
		if _, err := unix.FcntlInt(uintptr(g.o.NotifyFD), unix.F_GETFD, 0); err == nil {
			s6fd = g.o.NotifyFD
		}
	}
	// The command's own readiness pipe (ready.notify_fd = N): its write end is put at N now,
	// close-on-exec until the exec, so nothing has to be moved onto a descriptor the Go
	// runtime may be using at the last moment.
	readyR := -1
	if n := g.policy.Ready.NotifyFD; n != 0 {
		_, ferr := unix.FcntlInt(uintptr(n), unix.F_GETFD, 0)
		switch {
		case ferr != nil: // free
		case g.o.Reserved&(1<<n) != 0: // reserved for this at the start: /dev/null, replaced below
		case n == s6fd: // s6's descriptor: the watcher gets a copy of it elsewhere
			moved, err := unix.FcntlInt(uintptr(n), unix.F_DUPFD_CLOEXEC, 3)
			if err != nil {
				g.log.Warn("exec supervision impossible for this start; supervising the command as a wrapper", "err", err)
				return 0, false
			}
			s6fd = moved
		default:
			g.log.Warn("exec supervision impossible for this start (ready.notify_fd is in use by the gateway); supervising the command as a wrapper", "notify_fd", n)
			return 0, false
		}
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			return g.startFailedOrFatal(fmt.Errorf("readiness pipe: %w", err)), true
		}
		if p[1] != n {
			if err := unix.Dup3(p[1], n, unix.O_CLOEXEC); err != nil {
				unix.Close(p[0])
				unix.Close(p[1])
				return g.startFailedOrFatal(fmt.Errorf("readiness pipe: %w", err)), true
			}
			unix.Close(p[1])
		}
		readyR = p[0]
	}
	if g.childStart.IsZero() { // a back-off came between: recordStart did not record it
		g.childStart = time.Now()
		g.write(func(s *state.State) {
			s.CommandStartedAt, s.BackoffUntil = g.childStart.UTC().Format(state.TimeFormat), ""
		})
	}
	// The exec closes this pipe's write end (close-on-exec): the watcher's sign that the
	// command runs. Until then the process is `gateway run`, and during the exec /proc may
	// not show it at all.
	var execP [2]int
	if err := unix.Pipe2(execP[:], unix.O_CLOEXEC); err != nil {
		return g.startFailedOrFatal(fmt.Errorf("exec pipe: %w", err)), true
	}
	watcher, err := g.startSettle(s6fd, readyR, execP[0])
	unix.Close(execP[0])
	if readyR >= 0 {
		unix.Close(readyR)
	}
	if err != nil {
		unix.Close(execP[1])
		g.log.Warn("cannot start the watcher; supervising the command as a wrapper", "err", err)
		if n := g.policy.Ready.NotifyFD; n != 0 {
			if n == g.o.NotifyFD && s6fd != n {
				_ = unix.Dup3(s6fd, n, unix.O_CLOEXEC) // s6's descriptor back where the wrapper writes to it
				unix.Close(s6fd)
			} else {
				unix.Close(n)
			}
		}
		return 0, false
	}
	undo := func() { _ = syscall.Kill(watcher, syscall.SIGKILL); unix.Close(execP[1]) }

	// From here a signal takes its default action: it ends this process as it would end the
	// command, and the slot's finish classifies that. One caught before is handled here.
	signal.Reset()
	for pending := true; pending; {
		select {
		case sig := <-sigs:
			if r, why, stop := g.classify(sig); stop {
				undo()
				return g.shutdown(r, why), true
			}
			g.log.Info("signal received while the command was being started; not forwarded", "signal", sig.String())
		default:
			pending = false
		}
	}
	if _, err := lock.KeepAcrossExec(); err != nil {
		undo()
		return g.startFailedOrFatal(err), true
	}
	if n := g.policy.Ready.NotifyFD; n != 0 {
		if _, err := unix.FcntlInt(uintptr(n), unix.F_SETFD, 0); err != nil {
			undo()
			return g.startFailedOrFatal(err), true
		}
	}
	err = syscall.Exec(path, argv, env)
	// Still here: the exec failed, and nothing of the command ran.
	undo()
	return g.startFailedOrFatal(fmt.Errorf("start %q: %w", argv[0], err)), true
}

// reservedFDs are the descriptors an exec-supervised gateway keeps free for the command's
// ready.notify_fd (a profile.json setting read only later), by opening /dev/null on every free
// one first thing: the gateway's own files (its home, the profile lock) and the Go runtime's
// (epoll) then get higher numbers, and the readiness pipe can take the number asked for.
const reservedFDs = 16

// ReserveFDs opens /dev/null (close-on-exec) on every free descriptor from 3 to reservedFDs-1
// and returns them as a bit set (Options.Reserved). It must run before anything opens a file:
// the first one the Go runtime opens also makes its epoll and eventfd descriptors.
func ReserveFDs() (set uint64) {
	for fd := 3; fd < reservedFDs; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			continue
		}
		nul, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		if nul != fd {
			// A lower descriptor was free after all (closed meanwhile): keep both reserved.
			set |= 1 << nul
			if err := unix.Dup3(nul, fd, unix.O_CLOEXEC); err != nil {
				continue
			}
		}
		set |= 1 << fd
	}
	return set
}

// startFailedOrFatal records a command that could not be started: a failure to retry when a
// resource was short, else a fatal configuration.
func (g *gateway) startFailedOrFatal(err error) int {
	if transientStartError(err) {
		return g.startFailed(err)
	}
	return g.finish(FatalConfig, err.Error(), nil)
}

// startWatcher starts the watcher as a sibling of this process (CLONE_PARENT: s6-supervise
// is its parent and reaps it), never as a child of the command, which would not reap it.
// s6fd (s6's readiness descriptor) and readyR (the command's readiness pipe) are handed
// over; -1 means none.
func (g *gateway) startWatcher(s6fd, readyR, execR int) (int, error) {
	files := []uintptr{0, 1, 2, ^uintptr(0), ^uintptr(0), uintptr(execR)}
	if s6fd >= 0 {
		files[watcherNotifyFD] = uintptr(s6fd)
	}
	if readyR >= 0 {
		files[watcherReadyFD] = uintptr(readyR)
	}
	self, argv, err := g.watcherArgv(s6fd >= 0, readyR >= 0, true)
	if err != nil {
		return 0, err
	}
	return syscall.ForkExec(self, argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: files,
		Sys:   &syscall.SysProcAttr{Cloneflags: unix.CLONE_PARENT},
	})
}

// watcherArgv is the watcher's program and argv: s6's descriptor at watcherNotifyFD, the
// readiness pipe at watcherReadyFD and the exec pipe at watcherExecFD when they are handed over.
func (g *gateway) watcherArgv(notify, ready, execPipe bool) (string, []string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	spec := watchSpec{
		Profile: g.o.Profile, PID: g.pid, StartTime: g.start, CommandStart: g.childStart,
		Settle: g.policy.SettleTime(), Ready: g.policy.Ready,
		Failures: g.failures, StableAfter: g.policy.StableTime(),
	}
	if notify {
		spec.NotifyFD = watcherNotifyFD
	}
	if ready {
		spec.ReadyFD = watcherReadyFD
	}
	if execPipe {
		spec.ExecFD = watcherExecFD
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return "", nil, err
	}
	return self, []string{"gateway", WatchVerb, string(b)}, nil
}

// watchPoll is how often the watcher looks whether the command is alive where no pidfd can
// tell it at once.
const watchPoll = 100 * time.Millisecond

// Watch is the watcher of an exec-supervised command (the hidden `gateway watch`): it waits
// until the command has stayed up for its settle time and passed its readiness check, then
// records running (only if the state still names this command as starting) and tells s6 it
// is ready. A command that ends first ends the watcher, which writes nothing. When the
// command had failed before, the watcher stays until it has been up for stable_after and
// clears the failure count, as the wrapper does. It returns the exit code.
func Watch(settings config.Settings, arg string, logger *slog.Logger) int {
	var w watchSpec
	if err := json.Unmarshal([]byte(arg), &w); err != nil || w.PID <= 0 {
		logger.Error("watch: bad argument", "err", err)
		return exitcode.Usage
	}
	log := logger.With("profile", w.Profile)
	home, err := safedir.Open(settings.Home, profile.HomeRel(w.Profile))
	if err != nil {
		log.Error("watch: profile home unusable", "err", err)
		return 1
	}
	defer home.Close()
	if w.ExecFD > 0 {
		// Until the exec, the process is `gateway run`: wait for it to become the command.
		buf := make([]byte, 1)
		for {
			if _, err := unix.Read(w.ExecFD, buf); !errors.Is(err, unix.EINTR) {
				break
			}
		}
		unix.Close(w.ExecFD)
	}
	dead := watchPID(w.PID, w.StartTime)
	g := &gateway{log: log, home: home, childStart: w.CommandStart, policy: profile.Policy{Ready: w.Ready}}
	if w.ReadyFD > 0 {
		g.readyR = os.NewFile(uintptr(w.ReadyFD), "ready-pipe")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := g.readiness(ctx)
	settle := time.NewTimer(time.Until(w.CommandStart.Add(w.Settle)))
	defer settle.Stop()
	for settled := false; !settled || ready != nil; {
		select {
		case <-settle.C:
			settled = true
		case <-ready:
			ready = nil
		case <-dead:
			log.Info("watch: the command ended before it was ready", "pid", w.PID)
			return 0 // the slot's finish records how it ended
		}
	}
	wrote := false
	_, err = state.Update(home, time.Now(), func(s *state.State) {
		if s.PID == w.PID && s.GatewayState == state.Starting && sameStart(s.StartTime, w.StartTime) && proc.Alive(w.PID, w.StartTime) {
			s.GatewayState, s.DownSince = state.Running, ""
			wrote = true
		}
	})
	if err != nil {
		log.Error("cannot write state", "err", err)
	}
	if !wrote {
		log.Info("watch: the state no longer names this command as starting; not recording running", "pid", w.PID)
		return 0
	}
	if w.NotifyFD > 0 {
		_, _ = unix.Write(w.NotifyFD, []byte("\n"))
		_ = unix.Close(w.NotifyFD)
	}
	log.Info("gateway started", startedAttrs(w.PID, w.Settle, w.Ready)...)
	if w.Failures == 0 {
		return 0
	}
	stable := time.NewTimer(time.Until(w.CommandStart.Add(w.StableAfter)))
	defer stable.Stop()
	select {
	case <-dead:
	case <-stable.C:
		_, _ = state.Update(home, time.Now(), func(s *state.State) {
			if s.PID == w.PID && sameStart(s.StartTime, w.StartTime) {
				s.ConsecutiveFailures = 0
			}
		})
		log.Info("command is stable; failure count cleared", "uptime", time.Since(w.CommandStart).Round(time.Second))
	}
	return 0
}

// startedAttrs are the attributes of the watcher's "gateway started" line.
func startedAttrs(pid int, settle time.Duration, ready profile.Ready) []any {
	return []any{"pid", pid, "supervision", profile.SupervisionExec, "settled", settle, "ready", ready.String()}
}

func sameStart(a, b *uint64) bool { return a == nil || b == nil || *a == *b }

// watchPID returns a channel closed once the process (pid, start) has ended: a pidfd tells at
// once; without one (old kernels) /proc is polled. A pidfd opened before the exec can report
// the exec itself (done by another thread than the leader, as Go's may be: the old leader
// exits), so every report is checked against /proc, and the pidfd opened again.
func watchPID(pid int, start *uint64) <-chan struct{} {
	dead := make(chan struct{})
	go func() {
		defer close(dead)
		for proc.Alive(pid, start) {
			pfd, err := unix.PidfdOpen(pid, 0)
			if err != nil {
				time.Sleep(watchPoll)
				continue
			}
			fds := []unix.PollFd{{Fd: int32(pfd), Events: unix.POLLIN}}
			for {
				_, err := unix.Poll(fds, -1)
				if err == nil {
					break
				}
				if !errors.Is(err, unix.EINTR) {
					time.Sleep(watchPoll)
					break
				}
			}
			unix.Close(pfd)
		}
	}()
	return dead
}

// FinishOptions are the arguments of the slot's finish under exec supervision (the hidden
// `gateway finish`).
type FinishOptions struct {
	Settings config.Settings
	Profile  string
	Args     []string // s6-supervise's: the exit code (256: killed by a signal), the signal
	Dir      string   // the slot (s6-supervise runs finish in it): its supervise/status
	Logger   *slog.Logger
}

// Finish classifies how an exec-supervised command ended and persists what the wrapper
// would have persisted; it returns finish's exit code (125: s6 keeps the slot down).
//
//	situation                                                  persisted            finish
//	`gateway run` ended by itself (it recorded its decision)   (unchanged)          125 for 78 and 125
//	marker matches the command (operator stop)                 stopped              0
//	restart marker matches (gateway restart)                   running              0
//	killed by SIGTERM or SIGINT, or s6 wants it down           running              0
//	exited or was killed otherwise                             failure record       0; 125 once failed
//	exited 78 (fatal configuration)                            startup_failed       125
func Finish(o FinishOptions) int {
	log := o.Logger.With("profile", o.Profile)
	code, _ := strconv.Atoi(argOr(o.Args, 0))
	sig, _ := strconv.Atoi(argOr(o.Args, 1))
	byItself := func() int {
		if code == exitcode.FatalConfig || code == exitcode.GaveUp {
			return exitcode.GaveUp
		}
		return 0
	}
	if profile.Validate(o.Profile) != nil {
		return byItself()
	}
	home, err := safedir.Open(o.Settings.Home, profile.HomeRel(o.Profile))
	if err != nil {
		log.Error("finish: profile home unusable", "err", err)
		return byItself()
	}
	defer home.Close()
	s, _ := state.Read(home)
	if s.CommandStartedAt == "" || s.PID <= 0 {
		return byItself()
	}
	now := time.Now()
	g := &gateway{o: Options{Settings: o.Settings, Profile: o.Profile}, log: log, home: home,
		pid: s.PID, start: s.StartTime, childStart: state.ParseTime(s.CommandStartedAt)}
	if _, _, err := g.command(); err != nil {
		log.Warn("finish: profile.json unusable; default policy", "err", err)
	}
	signaled := code == 256
	exit := &state.Exit{At: now.UTC().Format(state.TimeFormat), Uptime: now.Sub(g.childStart).Seconds()}
	why := "exited with status " + strconv.Itoa(code)
	if signaled {
		exit.Signal = signalName(syscall.Signal(sig))
		why = "killed by " + syscall.Signal(sig).String()
	} else {
		exit.Code = &code
	}
	m, matched, reason, err := marker.Claim(home, s.PID, s.StartTime, now)
	if err != nil {
		log.Warn("could not remove the planned-stop marker", "err", err)
	}
	wantUp := true
	if b, err := os.ReadFile(o.Dir + "/supervise/status"); err == nil {
		if st, err := s6.ParseStatusFile(b); err == nil {
			wantUp = st.WantUp
		}
	}
	switch {
	case matched && !m.Restart:
		g.finish(Planned, "command "+why+": "+reason, exit)
		return 0
	case matched:
		g.finish(Unplanned, "command "+why+": restart requested: "+reason, exit)
		return 0
	case signaled && (sig == int(syscall.SIGTERM) || sig == int(syscall.SIGINT)) || !wantUp:
		g.finish(Unplanned, "command "+why+": "+reason, exit)
		return 0
	}
	exit.Failure = true
	if code == exitcode.FatalConfig && !signaled {
		// The decision's own exit code is the wrapper's (78), which its finish maps to 125;
		// here this is the finish, so it answers s6 directly: keep the slot down.
		g.finish(FatalConfig, "command reported a fatal configuration ("+why+")", exit)
		return exitcode.GaveUp
	}
	// A long run clears the count before this failure, as the wrapper's timer would have (the
	// watcher does it too, unless it was killed).
	g.stableRun = now.Sub(g.childStart) >= g.policy.StableTime()
	if g.failure(exit, "command "+why, 1) == exitcode.GaveUp {
		return exitcode.GaveUp
	}
	return 0
}

func argOr(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}
