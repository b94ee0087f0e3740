package operator

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/bootrecord"
	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/gwlog"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/safedir"
	"github.com/s6gate/s6gate/pkg/slot"
	"github.com/s6gate/s6gate/pkg/state"
	"github.com/s6gate/s6gate/pkg/verblock"
)

// DefaultTimeout bounds how long a verb waits, for one profile: for the container to finish
// booting, for another verb on the same profile, and for the gateway to come up or go down.
const DefaultTimeout = 10 * time.Second

// DefaultFirstScan is how long after its start the gateways' scanner is taken to be still
// starting the supervisors of the slots the boot registered: as long as gw-svscan gives them
// before it notifies its readiness anyway.
const DefaultFirstScan = 10 * time.Second

// Operator runs the verbs against one data root and scan directory. It acts with the rights of
// the process that calls it; the gateway binary becomes the service user first (svcuser).
type Operator struct {
	Settings config.Settings
	Tools    s6.Tools
	Log      *slog.Logger
	Timeout  time.Duration
	// Settle, when set, is how long start, restart and register --start want the command to
	// have stayed up before they succeed (the --settle flag); otherwise the profile's settle
	// time, which the gateway waits before it reports ready, is enough.
	Settle time.Duration
	// FirstScan: a registered slot without a supervisor is waited for (within Timeout) while
	// the scanner is younger than this; an older scanner has scanned, and that is reported.
	FirstScan time.Duration
}

// New returns an Operator for s.
func New(s config.Settings, log *slog.Logger) *Operator {
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return &Operator{Settings: s, Tools: s6.Tools{Dir: s.CommandDir}, Log: log, Timeout: DefaultTimeout, FirstScan: DefaultFirstScan}
}

// BootingError means the gateways' s6-svscan did not answer within the verb's time-out. In an
// s6 container (s6.Detect) that is a container still booting: the boot reconciler has not
// finished, so the slots are not all there yet. Anywhere else nothing may ever answer, and the
// message says so instead.
type BootingError struct {
	ScanDir string
	Waited  time.Duration
	S6      bool // s6 supervises this container (PID 1 is s6-svscan, /run/s6/basedir exists)
}

func (e *BootingError) Error() string {
	waited := e.Waited.Round(time.Millisecond)
	if e.S6 {
		return fmt.Sprintf("container is still booting: no s6-svscan answers on %s yet (waited %s; retry, or raise --timeout)", e.ScanDir, waited)
	}
	return fmt.Sprintf("no s6-svscan answers on %s (waited %s), and s6 does not supervise this system (PID 1 is not s6-svscan, or %s is missing): start one on it, or set GATEWAY_SCANDIR", e.ScanDir, waited, s6.DefaultBasedir)
}

// waitBoot waits until an s6-svscan listens on the scan directory. In the image that
// s6-svscan is started only once /etc/cont-init.d (and with it the boot reconciler) is done,
// so it is the signal that the boot is over and the slots are what the data root says. An
// error on the way (the scan directory is still root's for a moment while the boot makes it)
// is retried; it is reported only if it is still there at the deadline. A boot that failed
// (its record says so: package bootrecord) starts no s6-svscan at all: that is reported at
// once, as a *bootrecord.FailedError naming the step, the reason and the fix.
func (o *Operator) waitBoot(ctx context.Context) error {
	begin := time.Now()
	var lastErr, failed error
	if poll(ctx, func() bool {
		up, err := s6.ScannerUp(o.Settings.ScanDir)
		lastErr = err
		if up {
			return true
		}
		if r, ok, _ := bootrecord.Read(o.Settings.ScanDir); ok && r.State == bootrecord.Failed {
			failed = r.Err()
			return true
		}
		return false
	}) {
		return failed
	}
	if lastErr != nil {
		return fmt.Errorf("gateway supervision tree on %s: %w", o.Settings.ScanDir, lastErr)
	}
	return &BootingError{ScanDir: o.Settings.ScanDir, Waited: time.Since(begin), S6: s6.Detect(s6.DefaultProcRoot, s6.DefaultBasedir)}
}

// begin is the common start of every verb on one profile: validate the name and the data root
// (usage errors, nothing touched), wait for the boot, take the profile's verb lock, and — when
// registered is set — check under the lock that the profile has a slot. The returned context
// carries the verb's deadline; release must be called.
func (o *Operator) begin(ctx context.Context, name string, registered bool) (context.Context, func(), error) {
	if err := profile.Validate(name); err != nil {
		return nil, nil, err
	}
	if err := o.Settings.CheckHome(); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	if err := o.waitBoot(ctx); err != nil {
		cancel()
		return nil, nil, err
	}
	if registered {
		// A typo fails here, before the lock file (or anything else) is written.
		if err := slot.Check(o.Settings.ScanDir, name); err != nil {
			cancel()
			return nil, nil, err
		}
	}
	lock, err := verblock.Acquire(ctx, o.Settings.ScanDir, name)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	release := func() { lock.Release(); cancel() }
	if registered {
		// Again under the lock: an unregister may have run while this verb waited.
		if err := slot.Check(o.Settings.ScanDir, name); err != nil {
			release()
			return nil, nil, err
		}
	}
	return ctx, release, nil
}

// TimeoutError means a gateway did not reach the wanted state in time.
type TimeoutError struct {
	Profile string
	Wanted  string
	After   time.Duration
	Detail  string
}

func (e *TimeoutError) Error() string {
	msg := fmt.Sprintf("gateway '%s' did not become %s within %s", e.Profile, e.Wanted, e.After)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// StartFailedError means a gateway did not start: its command ended before it settled (s6
// starts it again after a back-off: Retrying), or s6 gave up on it (its finish script said "do
// not restart": fatal configuration, or marked failed after a crash loop).
type StartFailedError struct {
	Profile  string
	Reason   string   // "command exited with status 1 after 0.0s", or the recorded exit reason
	Retrying bool     // s6 will start it again by itself, after a back-off
	Log      []string // the last lines of the gateway's log, oldest first
}

func (e *StartFailedError) Error() string {
	if e.Retrying {
		return fmt.Sprintf("gateway '%s' did not start: %s (s6 retries it after a back-off; see gateway status -p %s)", e.Profile, e.Reason, e.Profile)
	}
	return fmt.Sprintf("gateway '%s' failed to start and s6 will not retry it: %s", e.Profile, e.Reason)
}

func (o *Operator) slotDir(name string) string { return slot.Path(o.Settings.ScanDir, name) }

// openHome opens the profile's home without following symlinks. A missing home is
// fs.ErrNotExist (the profile directory was deleted under a registered slot).
func (o *Operator) openHome(name string) (*safedir.Dir, error) {
	return safedir.Open(o.Settings.Home, profile.HomeRel(name))
}

// setIntent records desired_state. A missing home is logged and skipped: the s6 action still
// happens, there is just no profile left to remember it.
func (o *Operator) setIntent(name, desired string) error {
	home, err := o.openHome(name)
	if errors.Is(err, fs.ErrNotExist) {
		o.Log.Warn("profile home is gone; intent not recorded", "profile", name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("record intent for '%s': %w", name, err)
	}
	defer home.Close()
	warn, err := state.Update(home, time.Now(), func(s *state.State) { setIntent(s, desired) })
	if warn != nil {
		o.Log.Warn("replaced an unusable state file", "profile", name, "err", warn)
	}
	if err != nil {
		return fmt.Errorf("record intent for '%s': %w", name, err)
	}
	return nil
}

// setIntent records desired in s. An operator's start also clears the crash-loop count and a
// failure: the operator asked for another try, so the gateway starts at once, and a count that
// is not zero afterwards means this attempt failed.
func setIntent(s *state.State, desired string) {
	s.DesiredState = desired
	if desired == state.Running {
		s.ConsecutiveFailures, s.FailedReason, s.DownSince = 0, "", ""
	}
}

// setDown makes the slot's ./down file agree with the intent, so that an s6-supervise that
// restarts for any reason keeps a stopped gateway down. A FIFO or symlink planted as ./down
// is refused, never followed or waited on.
func (o *Operator) setDown(name string, down bool) error {
	d, err := safedir.Open(o.Settings.ScanDir, slot.Name(name))
	if err != nil {
		return err
	}
	defer d.Close()
	if !down {
		return d.Remove("down")
	}
	f, err := d.OpenFile("down", unix.O_WRONLY|unix.O_CREAT, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// waitSupervised waits until s6-svscan has started s6-supervise on the slot and it accepts
// commands, or ctx ends.
func (o *Operator) waitSupervised(ctx context.Context, dir string) bool {
	return poll(ctx, func() bool { ok, _ := s6.Listening(dir); return ok })
}

// ensureSupervised is waitSupervised for a slot that should be supervised already: if no
// supervisor answers, it asks s6-svscan for a scan first. s6-svscan scans only when asked, so
// a slot whose registration was killed between its publication and its rescan would
// otherwise stay unsupervised until the next boot.
func (o *Operator) ensureSupervised(ctx context.Context, dir string) bool {
	if ok, _ := s6.Listening(dir); ok {
		return true
	}
	if err := o.Tools.Run(ctx, o.Settings.ScanDir, "rescan", "s6-svscanctl", "-a", o.Settings.ScanDir); err != nil {
		o.Log.Warn("rescan for an unsupervised slot failed", "slot", dir, "err", err)
	}
	return o.waitSupervised(ctx, dir)
}

// poll checks cond every 10 ms until it holds or ctx ends, and reports whether it held.
func poll(ctx context.Context, cond func() bool) bool {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-t.C:
		}
	}
}

// stateOf reads a profile's recorded state, for messages; errors read as empty.
func (o *Operator) stateOf(name string) state.State {
	home, err := o.openHome(name)
	if err != nil {
		return state.State{}
	}
	defer home.Close()
	s, _ := state.Read(home)
	return s
}

// Result is the outcome of a verb for one profile.
type Result struct {
	Profile string
	PID     int
	Note    string
	Err     error
	Skipped bool // an --all verb left this gateway alone (see RestartAll)
}

// forEach runs fn for every registered profile, a few at a time, and returns the results in
// profile order.
func (o *Operator) forEach(ctx context.Context, fn func(context.Context, string) Result) ([]Result, error) {
	names, err := o.List(ctx)
	if err != nil {
		return nil, err
	}
	return forNames(ctx, names, fn), nil
}

// forNames runs fn for each of names, a few at a time, and returns the results in order.
func forNames[R any](ctx context.Context, names []string, fn func(context.Context, string) R) []R {
	out := make([]R, len(names))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = fn(ctx, n)
		}()
	}
	wg.Wait()
	return out
}

// Joined returns the errors of results joined, or nil.
func Joined(results []Result) error {
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return errors.Join(errs...)
}

// logTail returns the last n lines of the profile's gateway log, for a failed start: nothing
// when it cannot be read. The gateway's own line about the exit is written to the log a moment
// after the state file the verb reacted to, so it waits (briefly) for that line.
func (o *Operator) logTail(ctx context.Context, name string, since time.Time, n int) []string {
	var l *gwlog.Log
	defer func() {
		if l != nil {
			l.Close()
		}
	}()
	var lines []string
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	poll(ctx, func() bool {
		if l == nil { // a logger started a moment ago may not have made its directory yet
			var err error
			if l, err = gwlog.OpenProfile(o.Settings.Home, name); err != nil {
				l = nil
				return false
			}
		}
		lines, _ = l.Tail(n)
		// The gateway's own line about this exit, not an earlier attempt's.
		return slices.ContainsFunc(lines, func(s string) bool {
			t, err := time.ParseInLocation(logTimeLayout, gwlog.Timestamp(s), time.Local)
			return err == nil && !t.Before(since.Add(-time.Millisecond)) &&
				(strings.Contains(s, `msg="command exited`) || strings.Contains(s, `msg="gateway failed`) || strings.Contains(s, "fatal configuration"))
		})
	})
	return lines
}

// logTimeLayout is s6-log's T timestamp (local time, as the logger's TZ).
const logTimeLayout = "2006-01-02 15:04:05.999999999"
