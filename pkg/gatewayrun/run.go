package gatewayrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
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
	"github.com/s6gate/s6gate/pkg/proc"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/safedir"
	"github.com/s6gate/s6gate/pkg/state"
)

// DefaultHeartbeat is how often the built-in idle gateway logs that it is alive.
const DefaultHeartbeat = 60 * time.Second

// Options configure one gateway process.
type Options struct {
	Settings  config.Settings
	Profile   string
	Replace   bool
	Command   []string // from the command line; nil means "profile.json, else idle"
	NotifyFD  int      // s6 readiness descriptor; <= 0 means none
	Heartbeat time.Duration
	Logger    *slog.Logger
	// Exec: exec supervision (GATEWAY_SUPERVISION=exec, set by the slot): a command is exec'd
	// in place of the gateway (exec.go) instead of run as its child. A profile with a
	// readiness check is supervised by the wrapper all the same: the wrapper runs the check.
	Exec bool

	spawn func(*exec.Cmd) error // starts the command; (*exec.Cmd).Start, or a fault in tests
}

// signalsHandled are caught for the gateway's whole life; everything not classified below is
// forwarded to the child.
var signalsHandled = []os.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR1,
	syscall.SIGHUP, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGALRM,
}

type gateway struct {
	o      Options
	log    *slog.Logger
	home   *safedir.Dir
	pid    int
	start  *uint64
	policy profile.Policy
	notify func() // tells s6 the gateway is ready (once; a no-op without a descriptor)

	child      *exec.Cmd
	exited     chan error // receives the child's Wait result once
	childStart time.Time
	readyR     *os.File // read end of the command's readiness pipe (ready.notify_fd)
	failures   int      // consecutive failures recorded when this gateway started
	// Set by Finish (execEnd: the end of an exec-supervised command), where no resident
	// gateway did while the command ran what its timers do: the command had run for
	// stable_after (its failure count is cleared first), or had settled (the run of failures
	// that down_since dates ended; one that had not was still starting).
	execEnd, stableRun, settled bool
	execNext                    bool // exec supervision: the command is exec'd once the back-off is over

	// Isolation (package isolate): the profile's own uid, when this gateway runs under an
	// isolated supervisor (real uid the profile's), and the process limit its command gets.
	uid      int
	isolated bool
	limit    int
}

// Run runs the gateway until it is stopped and returns its exit code.
func Run(ctx context.Context, o Options) int {
	if o.Logger == nil {
		o.Logger = NewLogger(os.Stderr)
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.spawn == nil {
		o.spawn = (*exec.Cmd).Start
	}
	g := &gateway{o: o, log: o.Logger.With("profile", o.Profile), pid: os.Getpid()}
	if err := profile.Validate(o.Profile); err != nil {
		g.log.Error("cannot run", "err", err)
		return exitcode.Usage
	}
	// Catch signals before anything else, so a stop that arrives during start-up is seen.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, signalsHandled...)
	defer signal.Stop(sigs)
	// SIGPIPE is caught, not ignored: a write to a closed log pipe then fails with EPIPE
	// instead of ending the gateway, and the command (started or exec'd) gets SIGPIPE's
	// default action back, as it would get from s6 itself; an ignored one it would inherit.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)

	g.notify = notifier(o.NotifyFD)

	if st, err := proc.StartTime(g.pid); err == nil {
		g.start = &st
	}
	home, err := safedir.Open(o.Settings.Home, profile.HomeRel(o.Profile))
	if err != nil {
		g.log.Error("fatal configuration: profile home unusable", "err", err)
		return exitcode.FatalConfig
	}
	defer home.Close()
	g.home = home

	lock, err := pidlock.Acquire(home, o.Replace, o.Settings.DrainTimeout+3*time.Second, g.log.Info)
	if err != nil {
		g.log.Error("cannot take the profile lock", "err", err)
		return 1
	}
	defer lock.Release()
	if err := lock.Record(g.pid, g.start); err != nil {
		g.log.Warn("cannot record the gateway pid", "err", err)
	}

	argv, env, cfgErr := g.command()
	if cfgErr == nil && len(argv) > 0 {
		cfgErr = g.confine()
	}
	execPath := ""
	if o.Exec && cfgErr == nil && len(argv) > 0 {
		if g.policy.Ready != (profile.Ready{}) {
			g.log.Info("the profile has a readiness check: supervised by the wrapper, which runs it (a rule of exec supervision)", "ready", g.policy.Ready.String())
		} else if execPath, cfgErr = exec.LookPath(argv[0]); cfgErr != nil {
			cfgErr = fmt.Errorf("start %q: %w", argv[0], cfgErr)
		}
	}
	g.execNext = execPath != ""
	until := g.recordStart(time.Now(), g.execNext)
	if cfgErr != nil {
		return g.finish(FatalConfig, cfgErr.Error(), nil)
	}
	if !until.IsZero() {
		if code, stopped := g.backoff(ctx, sigs, until); stopped {
			return code
		}
	}
	if execPath != "" {
		return g.execCommand(execPath, argv, env, sigs, lock)
	}
	if len(argv) > 0 {
		if err := g.startChild(argv, env); err != nil {
			if transientStartError(err) {
				return g.startFailed(err)
			}
			return g.finish(FatalConfig, err.Error(), nil)
		}
		if code, stopped := g.settle(ctx, sigs); stopped {
			return code
		}
	}

	g.write(func(s *state.State) { s.GatewayState, s.DownSince = state.Running, "" })
	g.notify()
	if g.child == nil {
		g.log.Info("gateway started: built-in idle gateway (no command configured)", "pid", g.pid, "heartbeat", o.Heartbeat)
	} else {
		g.log.Info("gateway started", "pid", g.pid, "child_pid", g.child.Process.Pid, "command", argv,
			"settled", g.policy.SettleTime(), "ready", g.policy.Ready.String())
	}
	return g.loop(ctx, sigs)
}

// recordStart writes gateway_state=starting with this process's identity and the crash-loop
// record for this start: a record from another boot is started afresh; in this boot the start
// counts as a restart. It returns when the back-off after consecutive failures ends (zero:
// start now). execNext: the command is exec'd next (exec supervision); without a back-off this
// one write is the command's record already (running, command_started_at, settle_until:
// recordExec), so the exec follows one durable write, not two.
func (g *gateway) recordStart(now time.Time, execNext bool) (until time.Time) {
	boot := state.CurrentBoot(g.o.Settings.ScanDir)
	g.write(func(s *state.State) {
		s.GatewayState, s.PID, s.StartTime, s.ExitReason = state.Starting, g.pid, g.start, ""
		s.FailedReason, s.BackoffUntil, s.CommandStartedAt, s.SettleUntil = "", "", "", ""
		// An unknown boot ("") never starts the record afresh: that would switch the back-off
		// and the failure limit off wherever /proc/1 is hidden.
		if boot != "" && s.BootID != boot {
			s.BootID, s.Restarts, s.ConsecutiveFailures, s.DownSince = boot, 0, 0, ""
		} else {
			s.Restarts++
		}
		g.failures = s.ConsecutiveFailures
		if d := g.policy.Backoff(s.ConsecutiveFailures); d > 0 && s.LastExit != nil {
			if t := state.ParseTime(s.LastExit.At).Add(d); t.After(now) {
				until = t
				s.BackoffUntil = t.UTC().Format(state.TimeFormat)
			}
		}
		if execNext && until.IsZero() {
			g.childStart = now
			g.recordExec(s)
		}
	})
	return until
}

// backoffPoll is how often a backing-off gateway looks whether an operator cleared its
// failure count (gateway start), which ends the wait.
const backoffPoll = 250 * time.Millisecond

// backoff waits until the back-off ends, a stop signal arrives (stopped: the exit code is
// returned), an operator's start clears the failure count (the state file says so; no signal,
// so nothing can reach the command by mistake), or SIGALRM cuts it short.
func (g *gateway) backoff(ctx context.Context, sigs <-chan os.Signal, until time.Time) (int, bool) {
	// WARN: a back-off follows failures of the command (docs/operations.md, "Logs").
	g.log.Warn("backing off before starting the command again", "consecutive_failures", g.failures, "until", until.UTC().Format(time.RFC3339))
	t := time.NewTimer(time.Until(until))
	defer t.Stop()
	poll := time.NewTicker(backoffPoll)
	defer poll.Stop()
	for {
		select {
		case <-t.C:
			return 0, false
		case <-poll.C:
			if s, err := state.Read(g.home); err == nil && s.ConsecutiveFailures < g.failures {
				g.log.Info("back-off cut short: an operator started the gateway")
				g.failures = s.ConsecutiveFailures
				return 0, false
			}
		case <-ctx.Done():
			return g.shutdown(Unplanned, "context cancelled"), true
		case sig := <-sigs:
			if sig == syscall.SIGALRM {
				g.log.Info("back-off cut short (SIGALRM)")
				return 0, false
			}
			if r, why, stop := g.classify(sig); stop {
				if g.execNext {
					return g.stopBeforeExec(sig, r, why), true
				}
				return g.shutdown(r, why), true
			}
		}
	}
}

// settle waits until the command has stayed up for the settle time and its readiness check
// (if any) has passed. A command that exits first is a failure (stopped, with the exit code).
func (g *gateway) settle(ctx context.Context, sigs <-chan os.Signal) (int, bool) {
	checkCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := g.readiness(checkCtx)
	timer := time.NewTimer(g.policy.SettleTime())
	defer timer.Stop()
	settled := false
	for !settled || ready != nil {
		select {
		case <-timer.C:
			settled = true
		case <-ready:
			ready = nil
		case err := <-g.exited:
			return g.childExited(err), true
		case <-ctx.Done():
			return g.shutdown(Unplanned, "context cancelled"), true
		case sig := <-sigs:
			if r, why, stop := g.classify(sig); stop {
				return g.shutdown(r, why), true
			}
			g.forward(sig)
		}
	}
	return 0, false
}

// readyFileSlack is how much older than the command's start a ready file may look: file
// times come from a coarse kernel clock.
const readyFileSlack = 50 * time.Millisecond

// readiness returns a channel closed once the profile's readiness check passes (nil when the
// profile has none: settling is enough). The checks poll; they stop with ctx.
func (g *gateway) readiness(ctx context.Context) <-chan struct{} {
	r := g.policy.Ready
	if r == (profile.Ready{}) {
		return nil
	}
	done := make(chan struct{})
	check := func() bool {
		switch {
		case r.File != "":
			// A file left by an earlier run does not count: only one made (or touched) since
			// this command started (a little slack for coarse file-system clocks).
			fi, err := os.Stat(r.File)
			return err == nil && !fi.ModTime().Before(g.childStart.Add(-readyFileSlack))
		case r.TCP != "":
			c, err := net.DialTimeout("tcp", r.TCP, time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil
		}
		return false
	}
	if r.NotifyFD != 0 {
		pipe := g.readyR
		g.readyR = nil
		go func() {
			defer pipe.Close()
			buf := make([]byte, 512)
			for {
				n, err := pipe.Read(buf)
				if bytes.IndexByte(buf[:n], '\n') >= 0 {
					close(done)
					return
				}
				if err != nil {
					return // closed without a newline: never ready, as with s6
				}
			}
		}()
		go func() { <-ctx.Done(); pipe.SetReadDeadline(time.Now()) }()
		return done
	}
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for !check() {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		close(done)
	}()
	return done
}

// command resolves the child command: the command line wins, then profile.json; an empty
// result runs the idle gateway. profile.json's env is added to the child's environment and
// its start and restart policy is kept in g.policy.
func (g *gateway) command() (argv, env []string, err error) {
	b, rerr := g.home.ReadFile(profile.ConfigFile, profile.MaxConfigSize)
	var cfg profile.Config
	switch {
	case errors.Is(rerr, fs.ErrNotExist):
	case rerr != nil:
		return nil, nil, fmt.Errorf("read %s: %w", g.home.Join(profile.ConfigFile), rerr)
	default:
		if cfg, err = profile.ParseConfig(b); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", g.home.Path(), err)
		}
	}
	g.policy = cfg.Policy
	argv = g.o.Command
	if argv == nil {
		argv = cfg.Command
	}
	env = os.Environ()
	for k, v := range cfg.Env {
		if os.Getenv(k) == "" {
			env = append(env, k+"="+v)
		}
	}
	// The child is not the supervised process and must not see s6's descriptor number.
	return argv, append(env, "GATEWAY_NOTIFY_FD="), nil
}

func (g *gateway) startChild(argv, env []string) error {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	// Own process group, so a drain reaches the child's children too; and if the gateway
	// itself is SIGKILLed, the child gets SIGTERM instead of living on next to the gateway
	// s6 starts in its place.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	var readyW *os.File
	if fd := g.policy.Ready.NotifyFD; fd != 0 {
		r, w, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("readiness pipe: %w", err)
		}
		// ExtraFiles[i] becomes descriptor 3+i; the ones before ours are closed in the child.
		cmd.ExtraFiles = make([]*os.File, fd-2)
		cmd.ExtraFiles[fd-3] = w
		g.readyR, readyW = r, w
	}
	spawn := g.o.spawn
	if g.isolated {
		spawn = func(c *exec.Cmd) error { return isolate.Start(c, g.uid, g.limit) }
	}
	err := spawn(cmd)
	if readyW != nil {
		readyW.Close() // the child has its copy; EOF then means the child closed it
	}
	if err != nil {
		if g.readyR != nil {
			g.readyR.Close()
			g.readyR = nil
		}
		return fmt.Errorf("start %q: %w", argv[0], err)
	}
	g.child, g.childStart = cmd, time.Now()
	g.exited = make(chan error, 1)
	go func() { g.exited <- cmd.Wait() }()
	g.write(func(s *state.State) {
		s.CommandStartedAt, s.BackoffUntil = g.childStart.UTC().Format(state.TimeFormat), ""
	})
	return nil
}

// classify maps a signal to the stop it asks for; stop is false for the signals the gateway
// forwards to its command.
func (g *gateway) classify(sig os.Signal) (r Reason, why string, stop bool) {
	switch sig {
	case syscall.SIGTERM:
		planned, reason, err := marker.Consume(g.home, g.pid, g.start, time.Now())
		if err != nil {
			g.log.Warn("could not remove the planned-stop marker", "err", err)
		}
		if planned {
			return Planned, "SIGTERM: " + reason, true
		}
		return Unplanned, "SIGTERM: " + reason, true
	case syscall.SIGINT:
		return Planned, "SIGINT", true
	case syscall.SIGQUIT:
		return Unplanned, "SIGQUIT", true
	case syscall.SIGUSR1:
		return Restart, "SIGUSR1", true
	}
	return 0, "", false
}

func (g *gateway) loop(ctx context.Context, sigs <-chan os.Signal) int {
	beat := time.NewTicker(g.o.Heartbeat)
	defer beat.Stop()
	// A command that stays up long enough clears its failure count, so its next failure
	// backs off from the start again.
	var stable <-chan time.Time
	if g.child != nil && g.failures > 0 {
		t := time.NewTimer(time.Until(g.childStart.Add(g.policy.StableTime())))
		defer t.Stop()
		stable = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return g.shutdown(Unplanned, "context cancelled")
		case err := <-g.exited:
			return g.childExited(err)
		case <-stable:
			g.log.Info("command is stable; failure count cleared", "uptime", time.Since(g.childStart).Round(time.Second))
			g.write(func(s *state.State) { s.ConsecutiveFailures = 0 })
		case <-beat.C:
			if g.child == nil {
				g.log.Info("heartbeat", "pid", g.pid)
			}
		case sig := <-sigs:
			if r, why, stop := g.classify(sig); stop {
				return g.shutdown(r, why)
			}
			g.forward(sig)
		}
	}
}

// childExited records a command that ended on its own: one more consecutive failure, and at
// the policy's limit the gateway is marked failed and exits GaveUp, which its slot's finish
// turns into "do not restart". Otherwise s6 starts the gateway again, which backs off first.
func (g *gateway) childExited(err error) int {
	code, why := exitStatus(err)
	exit := g.exitRecord(err, true)
	g.child = nil
	if code == exitcode.FatalConfig {
		return g.finish(FatalConfig, "command reported a fatal configuration ("+why+")", exit)
	}
	if code == exitcode.GaveUp {
		code = 1 // only the gateway's own decision may stop s6 restarting it
	}
	return g.failure(exit, "command "+why, code)
}

// startFailed records a command that could not be started for want of a resource (too many
// open files or processes, no memory): a failure like an exit, retried after a back-off, not
// a fatal configuration — the same command starts once the container has room again.
func (g *gateway) startFailed(err error) int {
	g.childStart = time.Now()
	code := 126
	exit := &state.Exit{Code: &code, At: g.childStart.UTC().Format(state.TimeFormat), Failure: true}
	return g.failure(exit, "could not be started: "+err.Error(), 1)
}

// failure counts one more consecutive failure, and at the policy's limit marks the gateway
// failed and exits GaveUp, which its slot's finish turns into "do not restart". Otherwise s6
// starts the gateway again, which backs off first; the gateway exits code.
func (g *gateway) failure(exit *state.Exit, why string, code int) int {
	g.endTree()
	limit := g.policy.FailureLimit()
	var n int
	g.write(func(s *state.State) {
		g.clearSettledRun(s)
		s.ConsecutiveFailures++
		n = s.ConsecutiveFailures
		s.LastExit, s.CommandStartedAt, s.SettleUntil, s.PID, s.StartTime = exit, "", "", 0, nil
		if s.DownSince == "" {
			s.DownSince = exit.At
		}
		s.ExitReason = ChildExited.String() + ": " + why
		if g.execEnd && !g.settled {
			s.GatewayState = state.Starting // a failed start, as the wrapper leaves it
		}
		if n >= limit {
			s.GatewayState = state.Failed
			s.FailedReason = fmt.Sprintf("%d consecutive failures (limit %d); last: %s", n, limit, why)
		}
	})
	if n >= limit {
		g.log.Error("gateway failed: s6 will not restart it until an operator starts it (gateway start)",
			"consecutive_failures", n, "limit", limit, "last", why)
		return exitcode.GaveUp
	}
	// WARN, as every incident: a command that ended on its own is a crash to whoever reads
	// the log, even when s6 starts it again.
	g.log.Warn("command exited; s6 starts the gateway again after a back-off", "status", why,
		"consecutive_failures", n, "limit", limit, "next_delay", g.policy.Backoff(n))
	return code
}

// clearSettledRun does what a resident gateway does while its command runs, for an
// exec-supervised command that ended (Finish): one that ran for stable_after clears the failure
// count; one that settled ended the run of failures down_since dates.
func (g *gateway) clearSettledRun(s *state.State) {
	if g.stableRun {
		s.ConsecutiveFailures = 0
	}
	if g.execEnd && g.settled {
		s.DownSince = ""
	}
}

// transientStartError reports a start that failed for want of a resource, not because of the
// command itself.
func transientStartError(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.EAGAIN, syscall.ENOMEM, syscall.ETXTBSY} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// exitRecord describes how the child ended, for last_exit.
func (g *gateway) exitRecord(err error, failure bool) *state.Exit {
	now := time.Now()
	e := &state.Exit{At: now.UTC().Format(state.TimeFormat), Uptime: now.Sub(g.childStart).Seconds(), Failure: failure}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			e.Signal = signalName(ws.Signal())
			return e
		}
	}
	code, _ := exitStatus(err)
	e.Code = &code
	return e
}

// signalName is the conventional name of sig ("SIGKILL"), or "signal N".
func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return "signal " + strconv.Itoa(int(sig))
}

func (g *gateway) forward(sig os.Signal) {
	if g.child == nil {
		g.log.Info("signal ignored by the idle gateway", "signal", sig.String())
		return
	}
	_ = syscall.Kill(-g.child.Process.Pid, sig.(syscall.Signal))
}

// shutdown drains the child within GATEWAY_DRAIN_TIMEOUT, then persists the decision.
func (g *gateway) shutdown(r Reason, why string) int {
	g.log.Info("stopping", "reason", r.String(), "cause", why)
	g.write(func(s *state.State) { s.GatewayState = state.Draining })
	var exit *state.Exit
	if g.child != nil {
		pgid := g.child.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		_ = syscall.Kill(-pgid, syscall.SIGCONT)
		var err error
		select {
		case err = <-g.exited:
		case <-time.After(g.o.Settings.DrainTimeout):
			g.log.Warn("command did not stop within the drain timeout; killing it", "timeout", g.o.Settings.DrainTimeout)
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			err = <-g.exited
		}
		exit = g.exitRecord(err, false)
		g.child = nil
	}
	return g.finish(r, why, exit)
}

// finish persists the decision for r (and how the command ended, when there was one) and
// returns the exit code.
func (g *gateway) finish(r Reason, why string, exit *state.Exit) int {
	// What the command left running ends before the record, unless the container or the
	// supervisor is tearing down (the state stays running, the tree goes down with it, and a
	// thousand gateways stopping at once do not each walk /proc): the next start ends it too.
	if r != Unplanned {
		g.endTree()
	}
	d := Decide(r)
	g.write(func(s *state.State) {
		if d.State != "" {
			s.GatewayState = d.State
		}
		s.ExitReason = r.String() + ": " + why
		s.PID, s.StartTime, s.CommandStartedAt, s.SettleUntil, s.BackoffUntil = 0, nil, "", "", ""
		g.clearSettledRun(s)
		if exit != nil {
			s.LastExit = exit
		}
	})
	code := d.ExitCode
	if code < 0 {
		code = 0
		if exit != nil && exit.Code != nil {
			code = *exit.Code
		}
	}
	g.log.Info("gateway exiting", "reason", r.String(), "persisted", orUnchanged(d.State), "exit_code", code)
	if r == FatalConfig {
		g.log.Error("fatal configuration: s6 will not restart this gateway until it is fixed and started again", "cause", why)
	}
	return code
}

func orUnchanged(s string) string {
	if s == "" {
		return "(unchanged)"
	}
	return s
}

func (g *gateway) write(change func(*state.State)) {
	warn, err := state.Update(g.home, time.Now(), change)
	if warn != nil {
		g.log.Warn("replaced an unusable state file", "err", warn)
	}
	if err != nil {
		g.log.Error("cannot write state", "err", err)
	}
}

// exitStatus turns a Wait error into a shell-style status: the exit code, or 128+signal.
func exitStatus(err error) (int, string) {
	if err == nil {
		return 0, "exited with status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), "killed by " + ws.Signal().String()
		}
		return ee.ExitCode(), "exited with status " + strconv.Itoa(ee.ExitCode())
	}
	return 1, err.Error()
}

// notifier prepares s6's readiness protocol: the descriptor named by notification-fd gets one
// newline once the gateway is up, then is closed. It is made close-on-exec at once so that the
// child never inherits it (s6 would otherwise never see it close).
func notifier(fd int) func() {
	if fd <= 2 {
		return func() {}
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		return func() {}
	}
	unix.CloseOnExec(fd)
	return func() {
		_, _ = unix.Write(fd, []byte("\n"))
		_ = unix.Close(fd)
	}
}

// confine prepares the profile's command to run as the profile's own (SPEC §13): under an
// isolated supervisor (isolate.Current) the home is made ready for its uid and what an earlier
// run of the profile left running is ended; the command's own directory is made when the slot
// made it the command's HOME. An error is a fatal configuration: the command never runs as
// anything but what the slot asked for.
func (g *gateway) confine() error {
	g.uid, g.isolated = isolate.Current(g.o.Settings.UIDs)
	root := g.o.Settings.Home
	if g.isolated || os.Getenv("HOME") == profile.CommandHome(root, g.o.Profile) {
		uid := 0
		if g.isolated {
			uid = g.uid
		}
		if _, err := isolate.PrepareHome(root, g.o.Profile, uid); err != nil {
			return fmt.Errorf("the home of the profile's uid %d: %w", uid, err)
		}
	}
	if !g.isolated {
		return nil
	}
	g.limit = isolate.Limit(g.o.Settings, g.policy, isolate.PidsMax())
	g.endTree()
	return nil
}

// endTree ends every process of the profile's uid (the command's whole tree, whatever it
// forked or daemonised) before the gateway records how it ended: a stop is never recorded
// while any of it runs.
func (g *gateway) endTree() {
	if !g.isolated {
		return
	}
	n, err := isolate.KillAll(g.uid)
	if err != nil {
		g.log.Error("cannot end every process of the profile", "uid", g.uid, "err", err)
	} else if n > 0 {
		g.log.Warn("ended processes of the profile that outlived its command", "uid", g.uid, "processes", n)
	}
}
