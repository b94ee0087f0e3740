package operator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/safedir"
	"github.com/s6gate/s6gate/pkg/slot"
	"github.com/s6gate/s6gate/pkg/state"
)

// GatewayStatus is one line of `gateway status`: s6's view of the slot and the profile's
// recorded state, side by side.
type GatewayStatus struct {
	Profile      string     `json:"profile"`
	Slot         string     `json:"slot"`
	Supervised   bool       `json:"supervised"`
	Up           bool       `json:"up"`
	PID          *int       `json:"pid"`
	Ready        bool       `json:"ready"`
	WantUp       bool       `json:"want_up"`
	NormallyUp   bool       `json:"normally_up"`
	Since        *time.Time `json:"since,omitempty"`
	ExitCode     *int       `json:"last_exit_code,omitempty"`
	Signal       *int       `json:"last_signal,omitempty"`
	GatewayState *string    `json:"gateway_state"`
	DesiredState *string    `json:"desired_state"`
	ExitReason   string     `json:"exit_reason,omitempty"`
	StateUpdated string     `json:"state_updated_at,omitempty"`
	Problem      string     `json:"problem,omitempty"`

	// The crash-loop record of this boot (docs/operations.md, "Status fields").
	Uptime              *float64    `json:"uptime_seconds"`       // how long the command has run; null when not serving
	Restarts            int         `json:"restarts"`             // starts after the first, this boot
	ConsecutiveFailures int         `json:"consecutive_failures"` // exits on their own in a row
	LastExit            *state.Exit `json:"last_exit"`            // how the command last ended, or null
	BackoffUntil        *time.Time  `json:"backoff_until"`        // the next start waits until then, or null
	SettleUntil         *time.Time  `json:"settle_until"`         // exec supervision: the command settles (counts as started) then; null once it has
	Failed              bool        `json:"failed"`               // crash loop or fatal configuration: s6 no longer restarts it (gateway start does)
	FailedReason        string      `json:"failed_reason,omitempty"`
	// Healthy: a gateway meant to run is serving (up and ready), or has been down less than
	// GATEWAY_HEALTH_GRACE and is not failed. A gateway not meant to run is always healthy.
	Healthy bool `json:"healthy"`
	// DownSince is when a gateway meant to run stopped serving, when it is not serving.
	DownSince *time.Time `json:"down_since"`
	// ProfileChanged: profile.json says something else than what the slot was rendered from
	// (an edit not applied yet: `gateway update` applies it, and so does the next boot).
	ProfileChanged bool `json:"profile_changed,omitempty"`

	waiting bool // no supervisor yet, or one that has not written its status: read again (awaitSupervisors)
}

// MeantToRun reports the intent: desired_state running, or no recorded desire and s6 wanting
// it up.
func (g GatewayStatus) MeantToRun() bool {
	if g.DesiredState != nil {
		return *g.DesiredState == state.Running
	}
	return g.WantUp
}

// Serving reports whether the gateway is up and ready (its command settled).
func (g GatewayStatus) Serving() bool { return g.Up && g.Ready && g.BackoffUntil == nil }

// Status reports the named profiles, or every registered one when names is empty. Each costs
// a few small file reads (s6's status file, the lock, the state file) and no process spawn.
// During the boot it first waits (bounded by the time-out) for the boot to finish, and then,
// while the gateways' scanner is in its first scan, for every slot's supervisor.
func (o *Operator) Status(ctx context.Context, names []string) ([]GatewayStatus, error) {
	for _, n := range names {
		if err := profile.Validate(n); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout) // the boot and the first scan, together
	defer cancel()
	if err := o.readyToRead(ctx); err != nil {
		return nil, err
	}
	if len(names) == 0 {
		all, err := slot.List(o.Settings.ScanDir)
		if err != nil {
			return nil, err
		}
		names = all
	} else {
		for _, n := range names {
			if err := slot.Check(o.Settings.ScanDir, n); err != nil {
				return nil, err
			}
		}
	}
	// What every profile needs is read once: the boot's identity, and profiles/ opened (each
	// home is then one openat, never through a symlink). The profiles are read by a few
	// workers; the order stays the caller's.
	r := statusRun{bootID: state.CurrentBoot(o.Settings.ScanDir)}
	r.profiles, r.perr = safedir.Open(o.Settings.Home, "profiles")
	if r.profiles != nil {
		defer r.profiles.Close()
	}
	if scan, err := safedir.Open(o.Settings.ScanDir, ""); err == nil {
		r.scan = scan
		defer scan.Close()
	}
	out := make([]GatewayStatus, len(names))
	workers := min(len(names)/statusBatch+1, statusWorkers)
	var wg sync.WaitGroup
	var next atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(names) {
					return
				}
				out[i] = o.status(ctx, &r, names[i])
			}
		}()
	}
	wg.Wait()
	o.awaitSupervisors(ctx, &r, names, out)
	return out, nil
}

// duringFirstScan polls done (every 10 ms) while the gateways' scanner is younger than
// FirstScan and ctx lasts, and reports whether done held. The scanner answers on its control
// FIFO — which is all waitBoot waits for — before its first scan has started the supervisor of
// every slot the boot registered: for about a second after a boot, a registered slot has no
// supervisor yet. A scanner whose age cannot be told is taken as young (the wait is bounded by
// ctx); an older one has scanned, so done is checked once.
func (o *Operator) duringFirstScan(ctx context.Context, done func() bool) bool {
	return poll(ctx, func() bool {
		if done() {
			return true
		}
		age, ok := s6.ScannerAge(o.Settings.ScanDir)
		return ok && age >= o.FirstScan
	}) && done()
}

// notSupervised is the Problem of a row whose slot has no supervisor, until awaitSupervisors
// words the cause.
const notSupervised = "no supervisor"

// awaitSupervisors reads again the rows of slots that had no supervisor (or one that had not
// written its status yet), until each has one, while the gateways' scanner is in its first
// scan (duringFirstScan): right after a boot, every row would otherwise read "not supervised"
// for about a second. The rows still without one then say why, in the operator's terms.
func (o *Operator) awaitSupervisors(ctx context.Context, r *statusRun, names []string, out []GatewayStatus) {
	var pending []int
	for i := range out {
		if out[i].waiting {
			pending = append(pending, i)
		}
	}
	if len(pending) == 0 {
		return
	}
	begin := time.Now()
	o.duringFirstScan(ctx, func() bool {
		still := pending[:0]
		for _, i := range pending {
			if out[i] = o.status(ctx, r, names[i]); out[i].waiting {
				still = append(still, i)
			}
		}
		pending = still
		return len(pending) == 0
	})
	if len(pending) == 0 {
		return
	}
	var why string
	if age, ok := s6.ScannerAge(o.Settings.ScanDir); ok && age >= o.FirstScan {
		why = fmt.Sprintf("no supervisor: the gateways' s6-svscan on %s has run for %s without starting one for this slot: "+
			"it was published without a rescan (gateway start or stop rescans), or the scanner refused it (see docker logs)",
			o.Settings.ScanDir, age.Round(time.Second))
	} else {
		why = fmt.Sprintf("no supervisor yet: the gateways' s6-svscan on %s is still starting the slots' supervisors (waited %s; retry, or raise --timeout)",
			o.Settings.ScanDir, time.Since(begin).Round(time.Millisecond))
	}
	for _, i := range pending {
		out[i].Problem = strings.Replace(out[i].Problem, notSupervised, why, 1)
	}
}

// Status reads profiles with up to statusWorkers goroutines, one per statusBatch profiles.
const (
	statusWorkers = 4
	statusBatch   = 32
)

// statusRun is what a Status call reads once for all its profiles.
type statusRun struct {
	bootID   string
	scan     *safedir.Dir // the scan directory; nil when it cannot be opened (each slot is then read by its path)
	profiles *safedir.Dir // <root>/profiles; nil when it cannot be opened (perr says why)
	perr     error
}

// openHome is Operator.openHome through the open profiles/ directory.
func (r *statusRun) openHome(o *Operator, name string) (*safedir.Dir, error) {
	if profile.HomeRel(name) == "" {
		return o.openHome(name)
	}
	if r.profiles == nil {
		return nil, r.perr
	}
	return r.profiles.OpenDir(name)
}

// errNoHome marks readState's failure to open the profile's home.
var errNoHome = errors.New("profile home")

// readState is state.Read of the profile's home: for a named profile first in one openat2
// from profiles/ (state.ReadBeneath), else — the default profile, a missing file, a refused
// name, no openat2 — by opening the home, which also tells why. An unopenable home is
// errNoHome, wrapped.
func (r *statusRun) readState(o *Operator, name string) (state.State, error) {
	if r.profiles != nil && profile.HomeRel(name) != "" {
		if s, ok, err := state.ReadBeneath(r.profiles, name); ok {
			return s, err
		}
	}
	home, err := r.openHome(o, name)
	if err != nil {
		return state.State{}, fmt.Errorf("%w: %w", errNoHome, err)
	}
	defer home.Close()
	return state.Read(home)
}

func (o *Operator) status(ctx context.Context, r *statusRun, name string) GatewayStatus {
	g := GatewayStatus{Profile: name, Slot: o.slotDir(name)}
	var st s6.Status
	var err error
	if r.scan != nil {
		st, err = o.Tools.ReadStatusAt(ctx, r.scan, slot.Name(name))
	} else {
		st, err = o.Tools.ReadStatus(ctx, g.Slot)
	}
	switch {
	case err == nil:
		g.Supervised, g.Up, g.Ready, g.WantUp, g.NormallyUp = true, st.Up, st.Ready, st.WantUp, st.NormallyUp
		if st.Up {
			g.PID = &st.PID
		} else if st.Signal != 0 {
			g.Signal = &st.Signal
		} else if st.ExitCode >= 0 {
			g.ExitCode = &st.ExitCode
		}
		if !st.Since.IsZero() {
			since := st.Since
			g.Since = &since
		}
	case errors.Is(err, s6.ErrNotSupervised):
		g.Problem, g.waiting = notSupervised, true
	case errors.Is(err, s6.ErrNoStatus):
		g.Problem, g.waiting = err.Error(), true
	default:
		g.Problem = err.Error()
	}
	s, err := r.readState(o, name)
	if errors.Is(err, errNoHome) {
		g.Problem = join(g.Problem, err.Error())
		return g
	}
	if err != nil {
		g.Problem = join(g.Problem, err.Error())
	}
	if s.GatewayState != "" {
		g.GatewayState = &s.GatewayState
	}
	if s.DesiredState != "" {
		g.DesiredState = &s.DesiredState
	}
	g.ExitReason, g.StateUpdated = s.ExitReason, s.UpdatedAt
	o.crashLoop(&g, s, st, r.bootID, time.Now())
	if r.scan != nil {
		if home, err := r.openHome(o, name); err == nil {
			p, _ := pendingOf(r.scan, home, name)
			// Also a gateway still up in the process an interrupted update did not restart.
			g.ProfileChanged = p.Changed || runsOlderSlot(p, st)
			home.Close()
		}
	}
	return g
}

// crashLoop fills the crash-loop fields and the health verdict from the state record s and
// s6's status st. A record from another boot only contributes its last exit.
func (o *Operator) crashLoop(g *GatewayStatus, s state.State, st s6.Status, bootID string, now time.Time) {
	g.LastExit = s.LastExit
	thisBoot := s.BootID != "" && (s.BootID == bootID || bootID == "")
	current := thisBoot && g.Up && s.PID == st.PID
	var downSince time.Time
	if thisBoot {
		g.Restarts, g.ConsecutiveFailures = s.Restarts, s.ConsecutiveFailures
		switch s.GatewayState {
		case state.Failed:
			g.Failed, g.FailedReason = true, s.FailedReason
		case state.StartupFailed:
			g.Failed, g.FailedReason = true, s.ExitReason
		}
		if t := state.ParseTime(s.BackoffUntil); current && t.After(now) {
			g.BackoffUntil = &t
		}
		downSince = state.ParseTime(s.DownSince)
		// Exec supervision records running when it execs the command, with the time the
		// command counts as started (settle_until): until then it is starting and not ready,
		// as a resident gateway would report it, and s6's "ready" (told at the exec) is not.
		if t := state.ParseTime(s.SettleUntil); s.GatewayState == state.Running && t.After(now) {
			starting := state.Starting
			g.GatewayState, g.Ready, g.SettleUntil = &starting, false, &t
		}
	}
	if g.Up && g.Ready && g.BackoffUntil == nil {
		up := now.Sub(st.Since)
		if t := state.ParseTime(s.CommandStartedAt); current && !t.IsZero() {
			up = now.Sub(t)
		}
		secs := up.Round(time.Millisecond).Seconds()
		g.Uptime = &secs
	}
	g.Healthy = true
	if !g.MeantToRun() || g.Serving() {
		return
	}
	// Not serving since: the first failure of the current run of failures, which the gateway
	// records and keeps across its restarts until its command is ready again; otherwise since
	// s6 saw it go down, or, up but not ready yet (settling), since it started.
	var since time.Time
	if g.Supervised && g.Since != nil {
		since = *g.Since
	}
	if !downSince.IsZero() && (since.IsZero() || downSince.Before(since)) {
		since = downSince
	}
	if !since.IsZero() {
		g.DownSince = &since
	}
	g.Healthy = !g.Failed && !since.IsZero() && now.Sub(since) < o.Settings.HealthGrace
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// List returns the registered profiles, sorted. During the boot it first waits (bounded by
// the time-out) for the boot to finish.
func (o *Operator) List(ctx context.Context) ([]string, error) {
	if err := o.readyToRead(ctx); err != nil {
		return nil, err
	}
	return slot.List(o.Settings.ScanDir)
}

// readyToRead checks the data root and waits for the boot, for the read-only verbs.
func (o *Operator) readyToRead(ctx context.Context) error {
	if err := o.Settings.CheckHome(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	return o.waitBoot(ctx)
}

// SupervisedPID is the PID s6 supervises in the profile's slot: the gateway process a planned
// stop must name. A profile without a slot is a *slot.NotRegisteredError; a gateway that is
// not up is an error.
func (o *Operator) SupervisedPID(ctx context.Context, name string) (int, error) {
	if err := profile.Validate(name); err != nil {
		return 0, err
	}
	if err := slot.Check(o.Settings.ScanDir, name); err != nil {
		return 0, err
	}
	st, err := o.Tools.ReadStatus(ctx, o.slotDir(name))
	if err != nil {
		return 0, fmt.Errorf("the slot's status is unreadable: %w", err)
	}
	if !st.Up {
		return 0, fmt.Errorf("gateway '%s' is not up", name)
	}
	return st.PID, nil
}
