package operator

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/marker"
	"github.com/s6gate/s6gate/pkg/proc"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/profileuid"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/safedir"
	"github.com/s6gate/s6gate/pkg/slot"
	"github.com/s6gate/s6gate/pkg/state"
)

// RegisterOptions are register's arguments beyond the name.
type RegisterOptions struct {
	Env     map[string]string // profile.json's env when non-empty (never merged with an earlier one)
	Command []string          // replaces profile.json's command when non-empty
	Start   bool              // start at once (and record desired_state=running)
}

// Register creates the profile's home if needed, records --env/command in profile.json,
// publishes the slot (with ./down unless Start) and has s6-svscan pick it up.
//
// It is all-or-nothing and never removes what another call created: it holds the profile's
// verb lock throughout, a profile that already has a slot is refused before anything is
// written, and on failure it puts back exactly what this call changed (profile.json and
// desired_state as they were, the home only if this call created it).
func (o *Operator) Register(ctx context.Context, name string, opt RegisterOptions) (Result, error) {
	for _, k := range slices.Sorted(maps.Keys(opt.Env)) {
		if err := profile.ValidateProfileEnvName(k); err != nil {
			return Result{}, err
		}
	}
	ctx, release, err := o.begin(ctx, name, false)
	if err != nil {
		return Result{}, err
	}
	defer release()
	if err := slot.Check(o.Settings.ScanDir, name); err == nil {
		return Result{}, &slot.AlreadyRegisteredError{Profile: name, Path: o.slotDir(name)}
	} else if !errors.As(err, new(*slot.NotRegisteredError)) {
		return Result{}, err
	}
	// s6-svscan never supervises a service beyond its -c: refuse the registration rather
	// than publish a slot that would stay unsupervised.
	if n, err := slot.Services(o.Settings.ScanDir); err != nil {
		return Result{}, err
	} else if max := o.Settings.MaxServices; max > 0 && n >= max {
		return Result{}, &slot.FullError{Profile: name, Services: n, Max: max}
	}

	home, created, err := safedir.MkdirAll(o.Settings.Home, profile.HomeRel(name), 0o750)
	if err != nil {
		return Result{}, fmt.Errorf("profile home: %w", err)
	}
	defer home.Close()
	// A profile unregistered earlier starts afresh: profile.json is what this call gives (no
	// earlier env, command or policy), and the state has nothing of the earlier gateway's. A
	// home prepared by hand (never unregistered) keeps its profile.json, with the variables
	// and the command given here in place of its own.
	_, uerr := home.Lstat(profile.UnregisteredFile)
	fresh := uerr == nil
	var cfg profile.Config
	if !fresh {
		if cfg, err = profile.ReadConfig(home); err != nil {
			o.undoHome(home, created)
			return Result{}, err
		}
	}
	if len(opt.Env) > 0 {
		cfg.Env = maps.Clone(opt.Env)
	}
	if len(opt.Command) > 0 {
		cfg.Command = slices.Clone(opt.Command)
	}
	desired := state.Stopped
	if opt.Start {
		desired = state.Running
	}
	// Intent first: profile.json and desired_state are on disk before the slot exists, so a
	// crash in between leaves a profile the next boot registers as asked. A failure undoes both.
	undo, err := o.recordRegistration(home, cfg, fresh || len(opt.Env) > 0 || len(opt.Command) > 0, desired, fresh)
	if err != nil {
		o.undoHome(home, created)
		return Result{}, err
	}
	fail := func(err error) (Result, error) {
		undo()
		o.undoHome(home, created)
		return Result{}, err
	}
	if err := o.ensureLogDir(); err != nil {
		return fail(err)
	}
	spec := slot.NewSpec(o.Settings, name, cfg, !opt.Start)
	if spec.UID, err = profileuid.Allocate(o.Settings, name); err != nil {
		return fail(fmt.Errorf("the profile's own uid: %w", err))
	}
	dir, err := slot.Register(ctx, o.Tools, o.Settings.ScanDir, spec)
	if err != nil {
		return fail(err)
	}
	if !o.waitSupervised(ctx, dir) {
		o.Log.Warn("s6-svscan has not picked up the slot yet", "slot", dir)
		return Result{Profile: name, Note: "registered (not yet supervised)"}, nil
	}
	if opt.Start {
		st, err := o.waitUp(ctx, name, s6.Status{}, false)
		return Result{Profile: name, PID: st.PID, Note: "registered and started"}, err
	}
	return Result{Profile: name, Note: "registered (down)"}, nil
}

// recordRegistration writes profile.json (when the registration changed it), removes the
// unregistered record and writes desired_state (fresh: a state of its own, nothing of an
// earlier gateway's) — the state last, whose durable write also makes the removal durable.
// It returns a function that puts all three back as they were, byte for byte.
func (o *Operator) recordRegistration(home *safedir.Dir, cfg profile.Config, writeConfig bool, desired string, fresh bool) (undo func(), err error) {
	oldCfg, cfgErr := home.ReadFile(profile.ConfigFile, profile.MaxConfigSize)
	oldState, stateErr := home.ReadFile(state.FileName, state.MaxSize)
	oldMark, markErr := home.ReadFile(profile.UnregisteredFile, 4096)
	putBack := func(name string, b []byte, err error, mode os.FileMode) {
		if err == nil {
			_ = home.WriteFile(name, b, mode)
		} else {
			_ = home.Remove(name)
		}
	}
	undo = func() {
		if writeConfig {
			putBack(profile.ConfigFile, oldCfg, cfgErr, 0o600)
		}
		putBack(state.FileName, oldState, stateErr, state.Mode)
		if markErr == nil {
			putBack(profile.UnregisteredFile, oldMark, nil, 0o640)
		}
	}
	if writeConfig {
		b, err := cfg.Marshal()
		if err == nil {
			err = home.WriteFile(profile.ConfigFile, b, 0o600)
		}
		if err != nil {
			return nil, fmt.Errorf("save %s: %w", home.Join(profile.ConfigFile), err)
		}
	}
	if err := home.Remove(profile.UnregisteredFile); err != nil {
		undo()
		return nil, err
	}
	warn, err := state.Update(home, time.Now(), func(s *state.State) {
		if fresh {
			*s = state.State{}
		}
		setIntent(s, desired)
	})
	if warn != nil {
		o.Log.Warn("replaced an unusable state file", "path", home.Join(state.FileName), "err", warn)
	}
	if err != nil {
		undo()
		return nil, err
	}
	return undo, nil
}

// undoHome removes a profile home that a failed registration created (with what it wrote).
func (o *Operator) undoHome(home *safedir.Dir, created bool) {
	if !created {
		return
	}
	for _, f := range []string{profile.ConfigFile, state.FileName} {
		_ = home.Remove(f)
	}
	_ = os.Remove(home.Path())
}

// ensureLogDir makes <root>/logs/gateways for the slots' loggers, which create their own
// directory in it.
func (o *Operator) ensureLogDir() error {
	d, _, err := safedir.MkdirAll(o.Settings.Home, "logs/gateways", 0o755)
	if err != nil {
		return err
	}
	return d.Close()
}

// UnregisterOptions are unregister's arguments beyond the name.
type UnregisterOptions struct {
	// Purge also deletes the profile's data for good: its home, its logs, its uid's claim
	// (see purge). Refused while the gateway runs.
	Purge bool
}

// Unregister stops the gateway as an operator stop would, records in its home that it is
// unregistered (profile.UnregisteredFile: the next boot leaves it out), removes its slot and
// has s6-svscan forget it. The home and data stay unless opt.Purge; a later register of the
// name starts afresh. The default profile is always registered (SPEC §9) and cannot be
// unregistered. An absent slot is not an error (with Purge, a profile unregistered earlier is
// purged).
//
// Each step is one atomic change, in an order that a kill at any point leaves either the old
// state or the new one as far as the next boot can tell: the intent (stopped), then the
// unregistered record (durable: from here on the profile is gone for the next boot), then
// the slot. Running it again finishes what a killed one began.
func (o *Operator) Unregister(ctx context.Context, name string, opt UnregisterOptions) (Result, error) {
	if name == profile.Default {
		return Result{}, exitcode.Usagef("the default profile is always registered (its home is the data root); stop it with: gateway stop -p default")
	}
	ctx, release, err := o.begin(ctx, name, !opt.Purge)
	if errors.As(err, new(*slot.NotRegisteredError)) {
		return Result{Profile: name, Note: "not registered; nothing to do"}, nil
	}
	if err != nil {
		return Result{}, err
	}
	defer release()
	registered := slot.Check(o.Settings.ScanDir, name) == nil
	_, herr := o.openHomeStat(name)
	hadHome := herr == nil
	if opt.Purge {
		if err := o.checkNotRunning(ctx, name, registered); err != nil {
			return Result{Profile: name}, err
		}
	}
	if registered {
		if ok, _ := s6.Supervised(o.slotDir(name)); ok {
			if _, err := o.stop(ctx, name); err != nil {
				return Result{Profile: name}, err
			}
		} else if err := o.setIntent(name, state.Stopped); err != nil {
			return Result{Profile: name}, err
		}
	}
	if err := o.markUnregistered(name); err != nil {
		return Result{Profile: name}, err
	}
	if registered {
		if err := slot.Remove(ctx, o.Tools, o.Settings.ScanDir, name); err != nil {
			var ce *s6.CommandError
			if !errors.As(err, &ce) {
				return Result{Profile: name}, err
			}
			o.Log.Warn("rescan after unregister failed; the slot is removed anyway", "err", err)
		}
	}
	if !opt.Purge {
		return Result{Profile: name, Note: "unregistered (its data stays in " + profile.Home(o.Settings.Home, name) + "; delete it with: gateway unregister " + name + " --purge)"}, nil
	}
	note, uid, err := o.purge(name)
	if err == nil && !registered && !hadHome && uid == 0 {
		note = "not registered and no data; nothing to do"
	}
	return Result{Profile: name, Note: note}, err
}

// markUnregistered writes profile.UnregisteredFile into the profile's home (atomic and
// durable). A profile without a home has nothing for the boot to find: nothing to record.
func (o *Operator) markUnregistered(name string) error {
	home, err := o.openHome(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("record the unregistration of '%s': %w", name, err)
	}
	defer home.Close()
	b := fmt.Appendf(nil, "{\"unregistered_at\": %q}\n", time.Now().UTC().Format(time.RFC3339))
	if err := home.WriteFile(profile.UnregisteredFile, b, 0o640); err != nil {
		return fmt.Errorf("record the unregistration of '%s': %w", name, err)
	}
	return nil
}

// Start records desired_state=running, removes ./down and brings the gateway up, waiting until
// it is up and ready. A gateway that is already up is left as it is.
func (o *Operator) Start(ctx context.Context, name string) (Result, error) {
	return o.up(ctx, name, "start", false)
}

// Restart records desired_state=running and restarts the gateway (s6-svc -t, an unmarked
// SIGTERM, so the gateway persists running and s6 starts it again), or starts it if it is
// down; it waits for a new, ready process.
func (o *Operator) Restart(ctx context.Context, name string) (Result, error) {
	return o.up(ctx, name, "restart", true)
}

// up is start and restart: intent, ./down removed, one s6-svc call, wait until up and ready.
func (o *Operator) up(ctx context.Context, name, action string, restart bool) (Result, error) {
	ctx, release, err := o.begin(ctx, name, true)
	if err != nil {
		return Result{}, err
	}
	defer release()
	return o.upLocked(ctx, name, action, restart)
}

// upLocked is up under the verb lock.
func (o *Operator) upLocked(ctx context.Context, name, action string, restart bool) (Result, error) {
	if err := o.setIntent(name, state.Running); err != nil {
		return Result{Profile: name}, err
	}
	if err := o.setDown(name, false); err != nil {
		return Result{Profile: name}, err
	}
	dir := o.slotDir(name)
	o.ensureSupervised(ctx, dir)
	// The status before the command is what "s6 gave up" is told from, so it must be
	// s6-supervise's own: a supervisor that has only just started has not written it yet
	// (s6.ErrNoStatus), and we wait for its first write. A ./finish still running may yet
	// tell s6 not to restart (exit 125, a gateway just marked failed) and would undo our -u:
	// wait for it to end first.
	var before s6.Status
	poll(ctx, func() bool {
		st, err := o.Tools.ReadStatus(ctx, dir)
		before = st
		return err == nil && !st.Finishing
	})
	args := []string{"-u", dir}
	if restart && before.Up {
		// A SIGTERM that the restart marker says is a restart (under exec supervision the
		// slot's finish must not take the command's exit for a failure; a wrapper treats it
		// as unmarked), then "want up" in case it was on its way down.
		o.mark(name, before.PID, true)
		args = []string{"-t", "-u", dir}
	}
	// A gateway waiting out a crash-loop back-off needs no signal: it sees the failure count
	// that setIntent cleared and starts its command at once.
	if err := o.Tools.Run(ctx, slot.Name(name), action, "s6-svc", args...); err != nil {
		return Result{Profile: name}, err
	}
	st, err := o.waitUp(ctx, name, before, restart && before.Up)
	note := "restarted"
	if !restart {
		note = "started"
		if before.Up {
			note = "already running"
		}
	}
	return Result{Profile: name, PID: st.PID, Note: note}, err
}

// Stop records desired_state=stopped, creates ./down, writes the planned-stop marker for the
// supervised PID and brings the gateway down, waiting until it is down.
func (o *Operator) Stop(ctx context.Context, name string) (Result, error) {
	ctx, release, err := o.begin(ctx, name, true)
	if err != nil {
		return Result{}, err
	}
	defer release()
	return o.stop(ctx, name)
}

// stop is Stop under the verb lock.
func (o *Operator) stop(ctx context.Context, name string) (Result, error) {
	if err := o.setIntent(name, state.Stopped); err != nil {
		return Result{Profile: name}, err
	}
	if err := o.setDown(name, true); err != nil {
		return Result{Profile: name}, err
	}
	dir := o.slotDir(name)
	o.ensureSupervised(ctx, dir) // a slot registered a moment ago, or never scanned
	// Which PID to mark is read from s6-supervise's status; one that has only just started
	// has not written it yet, and may still start the gateway (it read ./down before we
	// made it): wait for its first write.
	var st s6.Status
	var err error
	poll(ctx, func() bool {
		st, err = o.Tools.ReadStatus(ctx, dir)
		return !errors.Is(err, s6.ErrNoStatus)
	})
	if err == nil && st.Up {
		o.mark(name, st.PID, false)
	}
	if err := o.Tools.Run(ctx, slot.Name(name), "stop", "s6-svc", "-d", dir); err != nil {
		return Result{Profile: name}, err
	}
	if !poll(ctx, func() bool {
		s, err := o.Tools.ReadStatus(ctx, dir)
		return err == nil && !s.Up && !s.Finishing
	}) {
		return Result{Profile: name}, &TimeoutError{Profile: name, Wanted: "down", After: o.Timeout}
	}
	return Result{Profile: name, PID: st.PID, Note: "stopped"}, nil
}

// mark writes the planned-stop marker for pid (a restart marker when restart is set). Failure
// is logged, never returned: the gateway then treats the stop as unplanned, which is the safe
// side (under exec supervision a restart's exit may then count as a failure of the command).
func (o *Operator) mark(name string, pid int, restart bool) {
	home, err := o.openHome(name)
	if err == nil {
		m := marker.For(pid, time.Now())
		m.Restart = restart
		err = marker.Write(home, m)
		home.Close()
	}
	if err != nil {
		o.Log.Warn("planned-stop marker not written; the gateway will treat this stop as unplanned", "profile", name, "pid", pid, "restart", restart, "err", err)
	}
}

// waitUp waits until the gateway is up and ready — as a process other than before's when
// newProcess is set (restart) — and, with o.Settle, until its command has been up that long.
// Ready means settled: the gateway reports ready only once its command has stayed up for the
// profile's settle time and passed its readiness check (under exec supervision s6 hears
// "ready" at the exec, and the record's settle_until says when the command has settled). It fails fast when the command ends
// first (the crash-loop count, which the verb cleared, is no longer zero) and when s6 has
// given up on it (finish exited 125): down, not wanted up, and s6 has acted since before —
// the last part tells "gave up" from "has not processed our command yet" (see actedSince).
// before is the reading taken before the command was sent; its zero value means there was
// none (a slot published without ./down: whatever s6-supervise writes comes after).
func (o *Operator) waitUp(ctx context.Context, name string, before s6.Status, newProcess bool) (s6.Status, error) {
	dir := o.slotDir(name)
	sent := time.Now() // the s6 command was just sent: log lines about its outcome come later
	// Readiness exists only for services that notify (s6 2.11 never sets the flag otherwise).
	_, nerr := os.Stat(filepath.Join(dir, "notification-fd"))
	needReady := nerr == nil
	var last s6.Status
	var rec state.State
	var gaveUp, died, sawWantUp bool
	ok := poll(ctx, func() bool {
		st, err := o.Tools.ReadStatus(ctx, dir)
		if err != nil {
			return false
		}
		last, rec = st, o.stateOf(name)
		if rec.ConsecutiveFailures > 0 && rec.LastExit != nil && rec.LastExit.Failure {
			died = true
			return true
		}
		sawWantUp = sawWantUp || st.WantUp
		if !st.WantUp && !st.Up && (sawWantUp || actedSince(before, st)) {
			gaveUp = true
			return true
		}
		if !st.Up || (needReady && !st.Ready) || (newProcess && st.PID == before.PID) || settling(rec, st.PID, time.Now()) {
			return false
		}
		if rec.SettleUntil != "" && !proc.Alive(rec.PID, rec.StartTime) {
			// Settled by the clock, but s6-supervise has not seen the command's death yet
			// (a zombie it has not reaped is no live command): the slot's finish will record
			// it, and the next look tells the failure.
			return false
		}
		return o.Settle <= 0 || o.settledFor(rec, st.PID, o.Settle)
	})
	switch {
	case died || (gaveUp && rec.LastExit != nil && rec.GatewayState == state.Failed):
		e := &StartFailedError{Profile: name, Retrying: !gaveUp, Log: o.logTail(ctx, name, sent, startFailureLogLines)}
		e.Reason = fmt.Sprintf("command %s after %.1fs", rec.LastExit, rec.LastExit.Uptime)
		if rec.FailedReason != "" {
			e.Reason += "; marked failed: " + rec.FailedReason
		}
		if !gaveUp && rec.GatewayState == state.Failed {
			e.Retrying = false
		}
		return last, e
	case gaveUp:
		return last, &StartFailedError{Profile: name, Reason: orDefault(rec.ExitReason, "see the gateway log"), Log: o.logTail(ctx, name, sent, startFailureLogLines)}
	case !ok:
		return last, &TimeoutError{Profile: name, Wanted: "up and ready", After: o.Timeout, Detail: orDefault(o.stateOf(name).ExitReason, "")}
	}
	return last, nil
}

// actedSince reports whether s6-supervise has changed the state since the reading before: its
// own stamp moved. Only stamps read from its status file tell that (s6.Status.Stamped); an
// s6-svstat reading is whole seconds back from the clock, so it moves by itself, and two of
// them, or one and a stamp, tell nothing. A zero before is "no reading": any stamp is later.
func actedSince(before, st s6.Status) bool {
	if !st.Stamped || st.Since.IsZero() {
		return false
	}
	if before == (s6.Status{}) {
		return true
	}
	return before.Stamped && !st.Since.Equal(before.Since)
}

// startFailureLogLines is how many log lines a failed start shows.
const startFailureLogLines = 10

// settling reports whether the record says that the command of the gateway pid is still
// settling: exec supervision records running and tells s6 "ready" when it execs the command,
// which counts as started only once it has run until settle_until.
func settling(rec state.State, pid int, now time.Time) bool {
	return rec.PID == pid && rec.GatewayState == state.Running && state.ParseTime(rec.SettleUntil).After(now)
}

// settledFor reports whether the command of the gateway pid has been running for at least d.
func (o *Operator) settledFor(rec state.State, pid int, d time.Duration) bool {
	started := state.ParseTime(rec.CommandStartedAt)
	if rec.PID != pid || started.IsZero() {
		return rec.PID == pid && rec.GatewayState == state.Running && rec.CommandStartedAt == "" // idle gateway
	}
	return time.Since(started) >= d
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// StopAll stops every registered gateway.
func (o *Operator) StopAll(ctx context.Context) ([]Result, error) {
	return o.forEach(ctx, func(ctx context.Context, n string) Result {
		r, err := o.Stop(ctx, n)
		r.Profile, r.Err = n, err
		return r
	})
}

// RestartAll restarts every registered gateway meant to run (its recorded intent is running,
// as the boot reads it: state.State.Intent). One an operator stopped, or one never started
// (the default profile's idle gateway, registered down at every boot), is left as it is and
// its intent unchanged: restarting it would start it and record it as meant to run. Such a
// gateway's result has Skipped set.
func (o *Operator) RestartAll(ctx context.Context) ([]Result, error) {
	return o.forEach(ctx, func(ctx context.Context, n string) Result {
		if _, run := o.stateOf(n).Intent(); !run {
			return Result{Profile: n, Skipped: true, Note: "not meant to run; left as it is"}
		}
		r, err := o.Restart(ctx, n)
		r.Profile, r.Err = n, err
		return r
	})
}

// StartAll starts every registered gateway.
func (o *Operator) StartAll(ctx context.Context) ([]Result, error) {
	return o.forEach(ctx, func(ctx context.Context, n string) Result {
		r, err := o.Start(ctx, n)
		r.Profile, r.Err = n, err
		return r
	})
}
