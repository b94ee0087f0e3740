package gatewayrun

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/isolate"
	"github.com/s6gate/s6gate/pkg/marker"
	"github.com/s6gate/s6gate/pkg/pidlock"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/safedir"
	"github.com/s6gate/s6gate/pkg/state"
)

// Exec supervision (profile.json "supervision": "exec"; docs/operations.md): `gateway run`
// does everything up to the command's start as usual, records the command as running (with
// the time it counts as started, settle_until), tells s6 it is ready and execs the command,
// which so keeps the gateway's PID, start time and profile lock and is s6-supervise's own
// child. Nothing of s6gate stays behind: no process waits for the settle time. Whoever reads
// the record (`gateway status`, `status --check`, start and restart) takes a command that has
// not yet run until settle_until for one still starting. When the command ends, the slot's
// finish (Finish) classifies the end as the wrapper would have: a death before settle_until
// is a failed start, like any exit on its own.

// execCommand execs the command (path, argv, env) in place of this process. It returns only
// when it did not: with the exit code the gateway must exit with (the failure is recorded).
func (g *gateway) execCommand(path string, argv, env []string, sigs chan os.Signal, lock *pidlock.Lock) int {
	if g.childStart.IsZero() { // a back-off came between: recordStart did not record the start
		g.childStart = time.Now()
		g.write(func(s *state.State) { g.recordExec(s) })
	}
	// From here a signal takes its default action: it ends this process as it would end the
	// command, and the slot's finish classifies that. One caught before is handled here.
	// SIGPIPE stays caught until the exec (which gives the command its default action back):
	// a log line written once the slot's logger is gone fails instead of ending the gateway.
	signal.Reset(signalsHandled...)
	for pending := true; pending; {
		select {
		case sig := <-sigs:
			if r, why, stop := g.classify(sig); stop {
				return g.stopBeforeExec(sig, r, why)
			}
			g.log.Info("signal received while the command was being started; not forwarded", "signal", sig.String())
		default:
			pending = false
		}
	}
	if _, err := lock.KeepAcrossExec(); err != nil {
		return g.startFailedOrFatal(err)
	}
	// What the command runs as and within: the profile's own uid, all three ids, and its
	// process limit (isolate.Become), last before s6 hears "ready" and the exec. Whether that
	// uid may run the program is asked first (access(2) answers for the real uid, the
	// profile's): once the gateway has become the profile's it can no longer write its state.
	if g.isolated {
		if err := unix.Access(path, unix.X_OK); err != nil {
			return g.finish(FatalConfig, fmt.Sprintf("start %q: not executable by the profile's uid %d: %v", argv[0], g.uid, err), nil)
		}
		if err := isolate.Become(g.uid, g.limit); err != nil {
			return g.finish(FatalConfig, err.Error(), nil)
		}
	}

	// s6 hears "ready" now: whether the command has settled is the readers' to tell, from the
	// record's settle_until. The descriptor is close-on-exec (notifier): the command never
	// gets it.
	g.notify()
	err := syscall.Exec(path, argv, env)
	// Still here: the exec failed, and nothing of the command ran.
	return g.startFailedOrFatal(fmt.Errorf("start %q: %w", argv[0], err))
}

// stopBeforeExec stops an exec-supervised gateway whose command has not started yet (a stop
// during its back-off or its start): an unmarked SIGTERM, or a SIGINT, ends it by that signal,
// as it would have ended the command, so the slot's finish decides by /bin/sh alone and nothing
// is written — a container stopped while it starts hundreds of gateways pays no state write and
// no `gateway finish` per gateway. Any other stop (an operator's, marked) is recorded as the
// wrapper records it.
func (g *gateway) stopBeforeExec(sig os.Signal, r Reason, why string) int {
	if s, ok := sig.(syscall.Signal); ok && (s == syscall.SIGINT || s == syscall.SIGTERM && r == Unplanned) {
		g.log.Info("stopped before the command started: ending by the signal, as the command would", "cause", why)
		signal.Reset(s)
		_ = syscall.Kill(g.pid, s)
		time.Sleep(time.Minute) // the signal's default action ends the process first
	}
	return g.shutdown(r, why)
}

// recordExec is the record of an exec-supervised command that starts now (g.childStart):
// running, under this process's identity (the command keeps it), and the time it counts as
// started. down_since stays: the current run of failures ends only once a command has settled.
func (g *gateway) recordExec(s *state.State) {
	s.GatewayState, s.PID, s.StartTime, s.BackoffUntil = state.Running, g.pid, g.start, ""
	s.CommandStartedAt = g.childStart.UTC().Format(state.TimeFormat)
	s.SettleUntil = g.childStart.Add(g.policy.SettleTime()).UTC().Format(state.TimeFormat)
}

// startFailedOrFatal records a command that could not be started: a failure to retry when a
// resource was short, else a fatal configuration.
func (g *gateway) startFailedOrFatal(err error) int {
	if transientStartError(err) {
		return g.startFailed(err)
	}
	return g.finish(FatalConfig, err.Error(), nil)
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
	// The command is gone: so is everything it left running (isolated, every process of the
	// profile's uid), before anything is recorded and before s6 starts the slot again.
	uid, isolated := isolate.Current(o.Settings.UIDs)
	ender := &gateway{log: log, uid: uid, isolated: isolated}
	ender.endTree()
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
		pid: s.PID, start: s.StartTime, childStart: state.ParseTime(s.CommandStartedAt),
		uid: uid, isolated: isolated}
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
	// What a resident gateway's timers would have done by now: a run of stable_after clears
	// the failure count, whatever ends it; one that settled ended the run of failures.
	settleUntil := state.ParseTime(s.SettleUntil)
	if settleUntil.IsZero() {
		settleUntil = g.childStart.Add(g.policy.SettleTime())
	}
	g.execEnd, g.settled = true, !now.Before(settleUntil)
	g.stableRun = now.Sub(g.childStart) >= g.policy.StableTime()
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
	// Whether it had settled or not, an end on its own is a failure, as under the wrapper: one
	// before settle_until was a failed start (and the record says starting again).
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
