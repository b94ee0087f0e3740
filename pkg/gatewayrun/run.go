package gatewayrun

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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
}

// signalsHandled are caught for the gateway's whole life; everything not classified below is
// forwarded to the child.
var signalsHandled = []os.Signal{
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR1,
	syscall.SIGHUP, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGALRM,
}

type gateway struct {
	o     Options
	log   *slog.Logger
	home  *safedir.Dir
	pid   int
	start *uint64
	child *exec.Cmd
}

// Run runs the gateway until it is stopped and returns its exit code.
func Run(ctx context.Context, o Options) int {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
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
	signal.Ignore(syscall.SIGPIPE)

	notify := notifier(o.NotifyFD)

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

	g.write(func(s *state.State) {
		s.GatewayState, s.PID, s.StartTime, s.ExitReason = state.Starting, g.pid, g.start, ""
	})

	argv, env, err := g.command()
	if err == nil && len(argv) > 0 {
		err = g.startChild(argv, env)
	}
	if err != nil {
		return g.finish(FatalConfig, err.Error(), 0)
	}

	g.write(func(s *state.State) { s.GatewayState = state.Running })
	notify()
	if g.child == nil {
		g.log.Info("gateway started: built-in idle gateway (no command configured)", "pid", g.pid, "heartbeat", o.Heartbeat)
	} else {
		g.log.Info("gateway started", "pid", g.pid, "child_pid", g.child.Process.Pid, "command", argv)
	}
	return g.loop(ctx, sigs)
}

// command resolves the child command: the command line wins, then profile.json; an empty
// result runs the idle gateway. profile.json's env is added to the child's environment.
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
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %q: %w", argv[0], err)
	}
	g.child = cmd
	return nil
}

func (g *gateway) loop(ctx context.Context, sigs <-chan os.Signal) int {
	exited := make(chan error, 1)
	if g.child != nil {
		go func() { exited <- g.child.Wait() }()
	}
	beat := time.NewTicker(g.o.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return g.shutdown(Unplanned, "context cancelled", exited)
		case err := <-exited:
			g.child = nil
			code, why := exitStatus(err)
			if code == exitcode.FatalConfig {
				return g.finish(FatalConfig, "command reported a fatal configuration ("+why+")", 0)
			}
			return g.finish(ChildExited, "command "+why, code)
		case <-beat.C:
			if g.child == nil {
				g.log.Info("heartbeat", "pid", g.pid)
			}
		case sig := <-sigs:
			switch sig {
			case syscall.SIGTERM:
				planned, reason, err := marker.Consume(g.home, g.pid, g.start, time.Now())
				if err != nil {
					g.log.Warn("could not remove the planned-stop marker", "err", err)
				}
				if planned {
					return g.shutdown(Planned, "SIGTERM: "+reason, exited)
				}
				return g.shutdown(Unplanned, "SIGTERM: "+reason, exited)
			case syscall.SIGINT:
				return g.shutdown(Planned, "SIGINT", exited)
			case syscall.SIGQUIT:
				return g.shutdown(Unplanned, "SIGQUIT", exited)
			case syscall.SIGUSR1:
				return g.shutdown(Restart, "SIGUSR1", exited)
			default:
				g.forward(sig)
			}
		}
	}
}

func (g *gateway) forward(sig os.Signal) {
	if g.child == nil {
		g.log.Info("signal ignored by the idle gateway", "signal", sig.String())
		return
	}
	_ = syscall.Kill(-g.child.Process.Pid, sig.(syscall.Signal))
}

// shutdown drains the child within GATEWAY_DRAIN_TIMEOUT, then persists the decision.
func (g *gateway) shutdown(r Reason, why string, exited <-chan error) int {
	g.log.Info("stopping", "reason", r.String(), "cause", why)
	g.write(func(s *state.State) { s.GatewayState = state.Draining })
	code := 0
	if g.child != nil {
		pgid := g.child.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		_ = syscall.Kill(-pgid, syscall.SIGCONT)
		select {
		case err := <-exited:
			code, _ = exitStatus(err)
		case <-time.After(g.o.Settings.DrainTimeout):
			g.log.Warn("command did not stop within the drain timeout; killing it", "timeout", g.o.Settings.DrainTimeout)
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			code, _ = exitStatus(<-exited)
		}
		g.child = nil
	}
	return g.finish(r, why, code)
}

// finish persists the decision for r and returns the exit code.
func (g *gateway) finish(r Reason, why string, childCode int) int {
	d := Decide(r)
	g.write(func(s *state.State) {
		if d.State != "" {
			s.GatewayState = d.State
		}
		s.ExitReason = r.String() + ": " + why
		s.PID, s.StartTime = 0, nil
	})
	code := d.ExitCode
	if code < 0 {
		code = childCode
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
