package operator

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"time"

	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/profileuid"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/safedir"
	"github.com/s6gate/s6gate/pkg/slot"
	"github.com/s6gate/s6gate/pkg/state"
)

// UpdateOptions are update's changes to profile.json; none means "apply the file as it is".
type UpdateOptions struct {
	Env      map[string]string // variables to set (the others stay)
	UnsetEnv []string          // variables to remove
	Command  []string          // the new command, when not empty
}

func (u UpdateOptions) empty() bool {
	return len(u.Env) == 0 && len(u.UnsetEnv) == 0 && len(u.Command) == 0
}

// UpdateResult is the outcome of an update for one profile.
type UpdateResult struct {
	Result
	Changes   []profile.Change // what the slot changed, field by field (none: it already ran this)
	Restarted bool             // the gateway was up and was restarted into the new slot
	Unknown   bool             // the slot did not record what it was rendered from
}

// pending is what a profile's slot was rendered from and what profile.json says now.
type pending struct {
	Recorded, Current profile.Config
	Known             bool      // the slot records its configuration (slots rendered before did not)
	Changed           bool      // they differ
	Written           time.Time // when the slot's run was written (slot.RecordedRun)
}

// runsOlderSlot reports whether the gateway is up in a process s6 started before the slot's
// run was last written: an update killed after it rewrote the slot (run, with the record,
// last) and before it restarted the gateway. The record then says "applied" while the process
// still runs the run it replaced; status must not call that applied, and update finishes it
// with the restart. s6's stamp is taken when it spawns run, the file's modification time when
// it was written (on a clock that lags by up to a tick, never leads): a gateway (re)started
// after the rewrite is never taken for an older one.
func runsOlderSlot(p pending, st s6.Status) bool {
	return st.Up && !st.Since.IsZero() && p.Written.After(st.Since)
}

// pendingOf compares the slot's record (slot.Recorded) with the home's profile.json. A
// profile.json that cannot be read or parsed is an error: an edit must never be silently
// ignored, and `update` refuses to apply a broken file.
func pendingOf(scan, home *safedir.Dir, name string) (pending, error) {
	var p pending
	rec, ok, written, err := slot.RecordedRun(scan, name)
	if err != nil {
		return p, fmt.Errorf("slot of '%s': %w", name, err)
	}
	p.Written = written
	p.Known = ok
	if ok {
		if p.Recorded, err = profile.ParseConfig([]byte(rec)); err != nil {
			return p, fmt.Errorf("the record in the slot of '%s': %w", name, err)
		}
	}
	if p.Current, err = profile.ReadConfig(home); err != nil {
		return p, err
	}
	p.Changed = !ok || rec != p.Current.Canonical()
	return p, nil
}

// Update applies the profile's configuration to its slot, as `systemctl daemon-reload` plus a
// restart would: first the changes in opt are written to profile.json (one atomic write), then
// the slot is rendered anew from it (slot.Rewrite), then a gateway that is up is restarted into
// it exactly as Restart does, waiting for a new, settled process; one that is down stays down
// and runs the new slot at its next start. Changes lists what differs from what the slot ran.
// An update with nothing to apply changes nothing and restarts nothing.
//
// It holds the verb lock throughout. If the slot cannot be rewritten, profile.json is put back
// as it was; an update killed half-way leaves profile.json old or new, and a slot whose record
// (written last) still says old, so status reports the edit as not applied until an update or
// the next boot applies it.
func (o *Operator) Update(ctx context.Context, name string, opt UpdateOptions) (UpdateResult, error) {
	// A variable set must be one a profile may set (the reserved ones refused, as register
	// refuses them); one unset need only be a valid name.
	for _, k := range slices.Sorted(maps.Keys(opt.Env)) {
		if err := profile.ValidateProfileEnvName(k); err != nil {
			return UpdateResult{}, err
		}
	}
	for _, k := range opt.UnsetEnv {
		if err := profile.ValidateEnvName(k); err != nil {
			return UpdateResult{}, err
		}
	}
	ctx, release, err := o.begin(ctx, name, true)
	if err != nil {
		return UpdateResult{}, err
	}
	defer release()
	return o.update(ctx, name, opt)
}

func (o *Operator) update(ctx context.Context, name string, opt UpdateOptions) (UpdateResult, error) {
	res := UpdateResult{Result: Result{Profile: name}}
	home, err := o.openHome(name)
	if errors.Is(err, fs.ErrNotExist) {
		return res, fmt.Errorf("profile home of '%s' is gone (%s); nothing to update from", name, profile.Home(o.Settings.Home, name))
	}
	if err != nil {
		return res, err
	}
	defer home.Close()
	scan, err := safedir.Open(o.Settings.ScanDir, "")
	if err != nil {
		return res, err
	}
	defer scan.Close()
	p, err := pendingOf(scan, home, name)
	if err != nil {
		return res, err
	}
	// What an update killed half-way left in the home: the temp file of a profile.json write
	// (only the verbs write it, under the verb lock this holds) or of a state write (under the
	// home's lock: state.SweepTemps). The slot's are Rewrite's to sweep.
	if entries, err := home.ReadDir(); err == nil {
		for _, e := range entries {
			if e.Type().IsRegular() && safedir.IsTempName(e.Name(), profile.ConfigFile) {
				_ = home.Remove(e.Name())
			}
		}
	}
	if err := state.SweepTemps(home); err != nil {
		o.Log.Warn("cannot sweep the temp files of the state", "profile", name, "err", err)
	}
	cfg := p.Current
	restore := func() {}
	if !opt.empty() {
		cfg = edit(cfg, opt)
		if cfg.Canonical() != p.Current.Canonical() {
			old, rerr := home.ReadFile(profile.ConfigFile, profile.MaxConfigSize)
			b, err := cfg.Marshal()
			if err == nil {
				err = home.WriteFile(profile.ConfigFile, b, 0o600)
			}
			if err != nil {
				return res, fmt.Errorf("save %s: %w", home.Join(profile.ConfigFile), err)
			}
			restore = func() {
				if rerr == nil {
					_ = home.WriteFile(profile.ConfigFile, old, 0o600)
				} else {
					_ = home.Remove(profile.ConfigFile)
				}
			}
		}
	}
	res.Unknown = !p.Known
	dir := o.slotDir(name)
	if p.Known && p.Recorded.Canonical() == cfg.Canonical() {
		// The slot is applied; the process may not be (an update killed before its restart).
		if st, err := o.Tools.ReadStatus(ctx, dir); err != nil || !runsOlderSlot(p, st) {
			res.Note = "unchanged"
			return res, nil
		}
	} else {
		res.Changes = profile.Diff(p.Recorded, cfg)
		spec := slot.NewSpec(o.Settings, name, cfg, false)
		if spec.UID, err = profileuid.Allocate(o.Settings, name); err != nil {
			restore()
			return res, fmt.Errorf("the profile's own uid: %w", err)
		}
		if err := slot.Rewrite(o.Settings.ScanDir, spec); err != nil {
			restore()
			return res, err
		}
	}
	st, err := o.Tools.ReadStatus(ctx, dir)
	if err != nil || !st.Up {
		if err != nil && !errors.Is(err, s6.ErrNotSupervised) && !errors.Is(err, s6.ErrNoStatus) {
			o.Log.Warn("cannot tell whether the gateway is up; left as it is", "profile", name, "err", err)
		}
		res.Note = "updated; not running, so it stays down and its next start runs the new configuration"
		return res, nil
	}
	r, err := o.upLocked(ctx, name, "restart", true)
	res.PID, res.Restarted = r.PID, true
	res.Note = "updated and restarted"
	return res, err
}

// edit applies an update's flags to a configuration: variables set and removed, the command
// replaced; the policy and any other key stay.
func edit(c profile.Config, opt UpdateOptions) profile.Config {
	env := make(map[string]string, len(c.Env)+len(opt.Env))
	maps.Copy(env, c.Env)
	maps.Copy(env, opt.Env)
	for _, k := range opt.UnsetEnv {
		delete(env, k)
	}
	c.Env = env
	if len(opt.Command) > 0 {
		c.Command = slices.Clone(opt.Command)
	}
	return c
}

// UpdateAll applies profile.json to every registered gateway whose slot was rendered from
// something else (`gateway update --all`); the others are not touched and not listed.
func (o *Operator) UpdateAll(ctx context.Context) ([]UpdateResult, error) {
	names, err := o.List(ctx)
	if err != nil {
		return nil, err
	}
	var edited []string
	for _, n := range names {
		if o.changed(n) {
			edited = append(edited, n)
		}
	}
	return forNames(ctx, edited, func(ctx context.Context, n string) UpdateResult {
		r, err := o.Update(ctx, n, UpdateOptions{})
		r.Profile, r.Err = n, err
		return r
	}), nil
}

// changed reports whether a profile has an edit its slot does not run (or cannot be read:
// update then says why).
func (o *Operator) changed(name string) bool {
	home, err := o.openHome(name)
	if err != nil {
		return true
	}
	defer home.Close()
	scan, err := safedir.Open(o.Settings.ScanDir, "")
	if err != nil {
		return true
	}
	defer scan.Close()
	p, err := pendingOf(scan, home, name)
	if err != nil || p.Changed {
		return true
	}
	st, err := o.Tools.ReadStatus(context.Background(), o.slotDir(name))
	return err == nil && runsOlderSlot(p, st)
}
