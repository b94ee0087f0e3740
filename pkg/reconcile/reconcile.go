// Package reconcile is the boot reconciler (SPEC §9), run from /etc/cont-init.d before any
// service starts: it turns what the data volume remembers into s6 slots, so that gateways
// that were running come back after a restart, recreate, upgrade or crash, and gateways an
// operator stopped stay stopped.
//
// It is level-triggered and idempotent, like a Kubernetes controller: it looks only at what
// is on disk now (profiles, their state files, the scan directory), never at what happened
// before, and running it twice gives the same slots. Per profile it:
//
//  1. sweeps a dead gateway's identity (gateway.pid, the lock file's content), temp files of
//     interrupted atomic writes, and planned-stop markers that can no longer match (stale,
//     malformed, claimed by a consumer that died, or their target is gone);
//  2. reads the run intent: desired_state if present, else gateway_state, where draining,
//     degraded (and starting) count as running — autostart iff the intent is running;
//  3. rebuilds the slot from scratch: a new slot, with ./down unless it autostarts, replaces
//     any slot left from the previous boot (a slot that an s6-supervise still runs on is left
//     alone, so a re-run at runtime never disturbs a live gateway);
//  4. logs one line, to stdout and to <root>/logs/container-boot.log (rotated to .1 at
//     256 KiB): "<RFC 3339 time> profile=<p> prior_state=<state|none> action=<started|registered>".
//
// The default profile comes first and is always registered; then every valid directory under
// profiles/, sorted, except those an operator unregistered (profile.UnregisteredFile). Slots of profiles that no longer exist are removed. Each profile is
// handled under its verb lock (package verblock), so a run at runtime never interleaves with
// an operator verb. One rescan at the end (best effort: s6-svscan may not be up yet). A broken
// profile is logged and skipped; only an unusable scan directory (or a missing data root)
// fails the run.
//
// Run acts with the caller's rights; gw-reconcile runs it as the service user. PrepareBoot is
// the one root step of a boot, done before that: a fresh scan directory for the gateways'
// s6-svscan, owned by the service user.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/aside"
	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/marker"
	"github.com/s6gate/s6gate/pkg/pidlock"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/profileuid"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/safedir"
	"github.com/s6gate/s6gate/pkg/slot"
	"github.com/s6gate/s6gate/pkg/state"
	"github.com/s6gate/s6gate/pkg/verblock"
)

// Actions logged per profile.
const (
	Started    = "started"    // slot published without ./down: s6 starts it
	Registered = "registered" // slot published with ./down
	Kept       = "kept"       // a live slot (s6-supervise running on it) was left alone
	Skipped    = "skipped"    // the profile is broken; see the reason
	// Unregistered: an operator unregistered the profile (profile.UnregisteredFile); it gets
	// no slot, and a slot left of it that no s6-supervise runs on is removed.
	Unregistered = "unregistered"
)

// BootLog is the audit log under the data root, and the size at which it is rotated.
const (
	BootLog        = "logs/container-boot.log"
	BootLogMaxSize = 256 << 10
)

// LockWait bounds how long a run waits for a verb that holds a profile's lock (only a run at
// runtime can meet one: at boot the verbs wait for the boot).
const LockWait = 10 * time.Second

// Options configure a run.
type Options struct {
	Settings config.Settings
	DryRun   bool // report what would be done; change nothing
	Out      io.Writer
	Log      *slog.Logger
	Now      func() time.Time
	Workers  int // profiles reconciled in parallel; 0 = 2 × GOMAXPROCS
	// Boot: the run follows PrepareBoot, before the gateways' s6-svscan starts; the
	// profiles' verb locks are not taken (no verb can run until that s6-svscan answers).
	Boot bool
}

// Entry is the outcome for one profile.
type Entry struct {
	Profile    string
	PriorState string // "none" when nothing was recorded
	Action     string
	Reason     string // why a profile was skipped or kept
}

// Line is the entry's boot-log line.
func (e Entry) Line(at time.Time) string {
	l := fmt.Sprintf("%s profile=%s prior_state=%s action=%s", at.UTC().Format(time.RFC3339), e.Profile, e.PriorState, e.Action)
	if e.Reason != "" {
		l += " reason=" + strconv.Quote(e.Reason)
	}
	return l
}

// ScanDirError means the scan directory cannot hold slots; the only failure of a run.
type ScanDirError struct {
	Path string
	Err  error
}

func (e *ScanDirError) Error() string {
	return fmt.Sprintf("scan directory %s unusable: %v", e.Path, e.Err)
}
func (e *ScanDirError) Unwrap() error { return e.Err }

// PrepareBoot makes the gateways' scan directory anew for a boot, empty and owned by uid:gid
// (the service user), and gives the data root itself (not its content) to that user when it
// belongs to root, as a fresh bind mount does. What the last boot left in the scan directory
// is set aside in one rename (package aside) and never read, so neither the boot's time nor
// its success depends on it; RemoveOld removes it later. Ownership changes only when the
// caller is root and uid >= 0; otherwise everything is the caller's. With the boot record
// (package bootrecord), it is the only thing gw-reconcile does as root, run from
// /etc/cont-init.d before the gateways' s6-svscan starts.
//
// It refuses to touch a scan directory an s6-svscan listens on: run at any other time (or
// pointed at the root supervision tree's /run/service) it would tear live slots away.
func PrepareBoot(s config.Settings, uid, gid int) error {
	if err := CheckBootScanDir(s); err != nil {
		return err
	}
	chown := os.Geteuid() == 0 && uid >= 0
	if chown {
		home, err := safedir.Open(s.Home, "")
		if err != nil {
			return fmt.Errorf("data root: %w", err)
		}
		var st unix.Stat_t
		err = unix.Fstat(home.Fd(), &st)
		if err == nil && st.Uid == 0 && uid != 0 {
			err = unix.Fchown(home.Fd(), uid, gid)
		}
		home.Close()
		if err != nil {
			return fmt.Errorf("data root %s: %w", s.Home, err)
		}
	}
	// The old tree is set aside in one rename, whatever it holds (SPEC §14): this boot never
	// reads it, and RemoveOld removes it once the gateways are up.
	old, err := aside.SetAside(s.ScanDir)
	if err != nil {
		return &ScanDirError{Path: s.ScanDir, Err: err}
	}
	if err := os.MkdirAll(filepath.Dir(s.ScanDir), 0o755); err != nil {
		return &ScanDirError{Path: s.ScanDir, Err: err}
	}
	// A scan directory that is a mount point stays: its entries were moved into a dot
	// directory inside it (s6-svscan ignores it).
	if err := os.Mkdir(s.ScanDir, 0o700); err != nil && (!errors.Is(err, fs.ErrExist) || filepath.Dir(old) != s.ScanDir) {
		return &ScanDirError{Path: s.ScanDir, Err: err}
	}
	d, err := safedir.Open(s.ScanDir, "")
	if err != nil {
		return &ScanDirError{Path: s.ScanDir, Err: err}
	}
	defer d.Close()
	if chown {
		if err := unix.Fchown(d.Fd(), uid, gid); err != nil {
			return &ScanDirError{Path: s.ScanDir, Err: err}
		}
	}
	if err := d.Chmod(0o755); err != nil {
		return &ScanDirError{Path: s.ScanDir, Err: err}
	}
	// A token for this boot: the gateways' per-boot records (state.CurrentBoot) compare it.
	tok, err := state.NewBootToken()
	if err == nil {
		err = d.Create(state.BootFile, []byte(tok+"\n"), 0o644)
	}
	if err != nil {
		return &ScanDirError{Path: s.ScanDir, Err: fmt.Errorf("boot token: %w", err)}
	}
	return nil
}

// CheckBootScanDir is PrepareBoot's guard, for a caller that must know before anything else
// is written: a *ScanDirError when the scan directory is one that PrepareBoot must never make
// anew (bootScanDirAllowed), or one an s6-svscan listens on (a boot step run at runtime).
func CheckBootScanDir(s config.Settings) error {
	if err := bootScanDirAllowed(s); err != nil {
		return &ScanDirError{Path: s.ScanDir, Err: err}
	}
	// Whatever the service user left in the old tree (a symlink as .s6-svscan, a directory as
	// its control FIFO) is never followed, and counts as "no s6-svscan here".
	if up, err := s6.ScannerUp(s.ScanDir); err != nil || up {
		if err == nil {
			err = errors.New("an s6-svscan is running on it (the gateways need a scan directory of their own, and --boot only prepares it at boot)")
		}
		return &ScanDirError{Path: s.ScanDir, Err: err}
	}
	return nil
}

// rootTree is the root supervision tree of the image (s6-overlay's scan directory and its
// state), which the gateways' scan directory must never be or hold.
var rootTree = []string{"/run/service", "/run/s6"}

// bootScanDirAllowed refuses a scan directory that PrepareBoot must not delete: the file
// system root or a top-level directory, the data root or anything that holds it or lies in
// it, and the root supervision tree. It is the guard against a mistyped GATEWAY_SCANDIR
// (for example /opt/data, or the old default /run/service) turning into a recursive delete.
func bootScanDirAllowed(s config.Settings) error {
	dir := filepath.Clean(s.ScanDir)
	within := func(a, b string) bool { // a is b or lies below it
		rel, err := filepath.Rel(b, a)
		return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
	}
	if strings.Count(dir, "/") < 2 {
		return fmt.Errorf("GATEWAY_SCANDIR=%s is the file system root or a top-level directory; the gateways need a directory of their own (default /run/gateways)", dir)
	}
	home := filepath.Clean(s.Home)
	if within(dir, home) || within(home, dir) {
		return fmt.Errorf("GATEWAY_SCANDIR=%s overlaps the data root %s; the gateways need a directory of their own (default /run/gateways)", dir, home)
	}
	for _, r := range rootTree {
		if within(dir, r) || within(r, dir) {
			return fmt.Errorf("GATEWAY_SCANDIR=%s overlaps the root supervision tree %s; the gateways need a directory of their own (default /run/gateways)", dir, r)
		}
	}
	return nil
}

// Run reconciles every profile of the data root into the scan directory.
func Run(ctx context.Context, o Options) ([]Entry, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Workers <= 0 {
		o.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	s := o.Settings
	if err := s.CheckHome(); err != nil {
		return nil, err
	}
	if err := checkScanDir(s.ScanDir, o.DryRun); err != nil {
		return nil, err
	}
	names, skipped, err := profile.Discover(s.Home)
	if err != nil {
		o.Log.Warn("cannot list profiles; reconciling the default profile only", "err", err)
	}
	for _, sk := range skipped {
		o.Log.Warn("not a profile; ignored", "entry", sk.String())
	}
	if m := s.MaxServices; m > 0 && len(names) > m {
		o.Log.Warn("more profiles than the gateways' s6-svscan supervises: the ones beyond stay unsupervised; raise GATEWAY_MAX_SERVICES",
			"profiles", len(names), "GATEWAY_MAX_SERVICES", m)
	}
	if !o.DryRun {
		if d, _, err := safedir.MkdirAll(s.Home, "logs/gateways", 0o755); err != nil {
			o.Log.Warn("cannot create the log directory", "err", err)
		} else {
			d.Close()
		}
	}
	removeOrphans(ctx, o, names)

	// The directories every profile needs are opened once, not once per profile: the scan
	// directory, its verb-lock directory, and profiles/ (each home is then one openat).
	dirs, err := openDirs(s, o.DryRun)
	if err != nil {
		return nil, err
	}
	defer dirs.close()

	// Workers take the next profile from a counter: no channel hand-off (and no scheduler
	// wake-up) per profile.
	entries := make([]Entry, len(names))
	var wg sync.WaitGroup
	var next atomic.Int64
	for range min(o.Workers, len(names)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(names) {
					return
				}
				entries[i] = reconcileOne(ctx, o, dirs, names[i])
			}
		}()
	}
	wg.Wait()
	// The uids claimed for new profiles are made durable before any supervisor can start
	// with them (the rescan below; at boot, the gateways' scanner starts after this run).
	if dirs.uids != nil {
		if err := dirs.uids.Sync(); err != nil {
			o.Log.Error("cannot make the profiles' new uids durable", "err", err)
		}
	}
	if n := dirs.identities.Load(); n > 0 {
		o.Log.Info("swept the identity of dead gateways (gateway.pid, the lock file's content)", "profiles", n)
	}

	if !o.DryRun {
		// At boot the gateways' scanner starts after this run and scans when it starts: no
		// rescan to ask for, and nothing worth a line (it read like an error at every boot).
		// A scanner that answers but refuses the rescan is worth a warning.
		if up, _ := s6.ScannerUp(s.ScanDir); up {
			tools := s6.Tools{Dir: s.CommandDir}
			if err := tools.Run(ctx, s.ScanDir, "rescan", "s6-svscanctl", "-a", s.ScanDir); err != nil {
				o.Log.Warn("rescan failed; the slots are supervised at the scanner's next scan", "err", err)
			}
		} else {
			o.Log.Debug("no s6-svscan on the scan directory yet; it scans when it starts", "scandir", s.ScanDir)
		}
	}
	writeLines(o, entries)
	return entries, nil
}

func checkScanDir(dir string, dryRun bool) error {
	st, err := os.Stat(dir)
	if err != nil {
		return &ScanDirError{Path: dir, Err: err}
	}
	if !st.IsDir() {
		return &ScanDirError{Path: dir, Err: errors.New("not a directory")}
	}
	if !dryRun {
		if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
			return &ScanDirError{Path: dir, Err: &os.PathError{Op: "access", Path: dir, Err: err}}
		}
	}
	return nil
}

// removeOrphans removes slots whose profile no longer exists (its directory was deleted while
// the container was down), unless a supervisor still runs on them.
func removeOrphans(ctx context.Context, o Options, names []string) {
	have, err := slot.List(o.Settings.ScanDir)
	if err != nil {
		o.Log.Warn("cannot list slots", "err", err)
		return
	}
	known := make(map[string]bool, len(names))
	for _, n := range names {
		known[n] = true
	}
	for _, p := range have {
		if known[p] {
			continue
		}
		dir := slot.Path(o.Settings.ScanDir, p)
		if o.DryRun {
			if live, _ := s6.Supervised(dir); !live {
				o.Log.Info("would remove the slot of a deleted profile", "slot", dir)
			}
			continue
		}
		err := withLock(ctx, o, p, func() error {
			// Again under the lock: a register may have made the profile meanwhile.
			if home, err := safedir.Open(o.Settings.Home, profile.HomeRel(p)); err == nil {
				home.Close()
				return nil
			}
			if live, _ := s6.Supervised(dir); live {
				o.Log.Warn("slot of a deleted profile is still supervised; left alone", "slot", dir)
				return nil
			}
			if err := slot.Unpublish(o.Settings.ScanDir, p); err != nil {
				return err
			}
			o.Log.Info("removed the slot of a deleted profile", "slot", dir)
			return nil
		})
		if err != nil {
			o.Log.Warn("cannot remove the slot of a deleted profile", "slot", dir, "err", err)
		}
	}
}

// withLock runs fn holding the profile's verb lock, waiting at most LockWait for it.
func withLock(ctx context.Context, o Options, name string, fn func() error) error {
	ctx, cancel := context.WithTimeout(ctx, LockWait)
	defer cancel()
	lock, err := verblock.Acquire(ctx, o.Settings.ScanDir, name)
	if err != nil {
		return err
	}
	defer lock.Release()
	return fn()
}

// runDirs are the directories a run opens once for all its profiles.
type runDirs struct {
	scan     *safedir.Dir    // the scan directory (nil in a dry run)
	locks    *verblock.Locks // its verb locks (nil in a dry run)
	home     string          // the data root, for the default profile's home
	profiles *safedir.Dir    // <root>/profiles, nil when missing or unusable
	perr     error           // why profiles is nil

	identities atomic.Int64 // homes whose dead gateway's identity was swept

	template *slot.Template // the files every slot has alike, linked (nil: each writes its own)

	uids    *profileuid.Claims // the profiles' own uids (nil: GATEWAY_UID_RANGE=off, or a dry run)
	uidsErr error              // why uids is nil when the range is on
}

func openDirs(s config.Settings, dryRun bool) (*runDirs, error) {
	d := &runDirs{home: s.Home}
	if !dryRun {
		var err error
		if d.scan, err = safedir.Open(s.ScanDir, ""); err != nil {
			return nil, &ScanDirError{Path: s.ScanDir, Err: err}
		}
		if d.locks, err = verblock.OpenLocks(s.ScanDir); err != nil {
			d.close()
			return nil, &ScanDirError{Path: s.ScanDir, Err: err}
		}
		// Without a template each slot writes its own copies: slower, not wrong.
		d.template, _ = slot.NewTemplate(d.scan)
		if !s.UIDs.Off() {
			d.uids, d.uidsErr = profileuid.Open(s.Home, s.UIDs, true)
		}
	}
	d.profiles, d.perr = safedir.Open(s.Home, "profiles")
	return d, nil
}

func (d *runDirs) close() {
	if d.template != nil {
		_ = d.template.Close()
	}
	if d.scan != nil {
		d.scan.Close()
	}
	if d.locks != nil {
		d.locks.Close()
	}
	if d.uids != nil {
		d.uids.Close()
	}
	if d.profiles != nil {
		d.profiles.Close()
	}
}

// openHome opens a profile's home: the data root for the default profile, else
// profiles/<name>, never through a symlink (as safedir.Open(root, profile.HomeRel(name))).
func (d *runDirs) openHome(name string) (*safedir.Dir, error) {
	if profile.HomeRel(name) == "" {
		return safedir.Open(d.home, "")
	}
	if d.profiles == nil {
		return nil, d.perr
	}
	return d.profiles.OpenDir(name)
}

func reconcileOne(ctx context.Context, o Options, dirs *runDirs, name string) Entry {
	if o.DryRun {
		return plan(o, dirs, name)
	}
	if o.Boot {
		// A boot's scan directory is new and no s6-svscan listens on it (PrepareBoot checked),
		// and every verb waits for one: nothing can hold or take a profile's lock now.
		return plan(o, dirs, name)
	}
	var e Entry
	lockCtx, cancel := context.WithTimeout(ctx, LockWait)
	defer cancel()
	lock, err := dirs.locks.Acquire(lockCtx, name)
	if err == nil {
		e = plan(o, dirs, name)
		lock.Release()
	}
	if err != nil {
		e = Entry{Profile: name, PriorState: "none", Action: Skipped, Reason: err.Error()}
		o.Log.Warn("profile skipped", "profile", name, "err", err)
	}
	return e
}

// plan does the work of one profile (under its verb lock unless a dry run): sweep, read the
// intent and profile.json, and replace the slot.
func plan(o Options, dirs *runDirs, name string) Entry {
	e := Entry{Profile: name, PriorState: "none"}
	skip := func(err error) Entry {
		e.Action, e.Reason = Skipped, err.Error()
		o.Log.Warn("profile skipped", "profile", name, "err", err)
		return e
	}
	home, err := dirs.openHome(name)
	if err != nil {
		return skip(err)
	}
	defer home.Close()

	// A slot an s6-supervise runs on (a run at runtime) belongs to a live gateway: its home,
	// where a write may be under way, is not swept and its slot is not replaced.
	var live bool
	if dirs.scan != nil {
		live, _ = s6.SupervisedAt(dirs.scan, slot.Name(name))
	} else {
		live, _ = s6.Supervised(slot.Path(o.Settings.ScanDir, name))
	}
	var listing []fs.DirEntry // the home's entries, when the sweep listed them
	if !o.DryRun && !live {
		listing = sweep(o, dirs, name, home)
	}

	st, err := state.Read(home)
	if err != nil {
		o.Log.Warn("no usable prior state", "profile", name, "err", err)
	}
	source, autostart := st.Intent()
	if source != "" {
		e.PriorState = source
	}
	if name != profile.Default && unregistered(home, listing) {
		return leaveOut(o, dirs, e, live)
	}
	e.Action = Registered
	if autostart {
		e.Action = Started
	}

	// profile.json is optional: a home whose listing (taken under the profile's verb lock, which
	// every writer of it takes too) does not show it has none, and is not asked again.
	var cfg profile.Config
	if listing == nil || slices.ContainsFunc(listing, func(e fs.DirEntry) bool { return e.Name() == profile.ConfigFile }) {
		if cfg, err = profile.ReadConfig(home); err != nil {
			return skip(err)
		}
	}
	if live {
		e.Action, e.Reason = Kept, "an s6-supervise runs on the slot; a live gateway is never disturbed"
		return e
	}
	if o.DryRun {
		return e
	}
	spec := slot.NewSpec(o.Settings, name, cfg, !autostart)
	if !o.Settings.UIDs.Off() {
		// A profile whose uid cannot be known is not started as the service user instead:
		// its isolation is a promise (SPEC §13).
		if dirs.uids == nil {
			return skip(fmt.Errorf("no uid of its own: %w", dirs.uidsErr))
		}
		if spec.UID, err = dirs.uids.Allocate(name); err != nil {
			return skip(fmt.Errorf("no uid of its own: %w", err))
		}
	}
	if err := slot.ReplaceIn(dirs.scan, spec, dirs.template); err != nil {
		return skip(err)
	}
	return e
}

// unregistered reports whether an operator unregistered the profile of home: its
// profile.UnregisteredFile is there (looked up in the home's listing when the sweep took one).
func unregistered(home *safedir.Dir, listing []fs.DirEntry) bool {
	if listing != nil {
		return slices.ContainsFunc(listing, func(e fs.DirEntry) bool { return e.Name() == profile.UnregisteredFile })
	}
	_, err := home.Lstat(profile.UnregisteredFile)
	return err == nil
}

// leaveOut is plan's end for an unregistered profile: no slot. A slot of it that no
// s6-supervise runs on (an unregister killed before it removed the slot) is removed; a live
// one is left to the operator (`gateway unregister` again finishes the job).
func leaveOut(o Options, dirs *runDirs, e Entry, live bool) Entry {
	e.Action = Unregistered
	switch {
	case live:
		e.Reason = "unregistered, but an s6-supervise still runs on its slot; left alone (run gateway unregister again)"
	case o.DryRun || dirs.scan == nil:
	default:
		if err := slot.Unpublish(o.Settings.ScanDir, e.Profile); err != nil {
			o.Log.Warn("cannot remove the slot of an unregistered profile", "profile", e.Profile, "err", err)
		}
	}
	return e
}

// atomicFiles are the files written with safedir.WriteFile in a home (the marker's are swept
// by marker.Sweep).
var atomicFiles = []string{state.FileName, profile.ConfigFile, pidlock.PIDFile, profile.UnregisteredFile}

// sweep clears what a dead gateway, a killed writer or a stale stop left in home: the
// gateway's identity, temp files of interrupted atomic writes, planned-stop markers that can
// no longer match. A home with a live gateway keeps its identity and temp files (a write may
// be under way).
//
// It returns the home's listing, or nil when it could not list it.
func sweep(o Options, dirs *runDirs, name string, home *safedir.Dir) []fs.DirEntry {
	live, identity, err := pidlock.SweepStale(home)
	if err != nil {
		o.Log.Warn("cannot sweep a stale gateway identity", "profile", name, "err", err)
	}
	// The identity of a gateway the container's stop killed is there at every boot: counted
	// for one line at the end, not a line per profile.
	if len(identity) > 0 {
		dirs.identities.Add(1)
	}
	var cleared []string
	// One listing serves both sweeps (they look for different names).
	entries, lerr := home.ReadDir()
	if lerr != nil {
		o.Log.Warn("cannot list the profile home", "profile", name, "err", lerr)
	}
	if !live && err == nil {
		for _, ent := range entries {
			if ent.Type().IsRegular() && safedir.IsTempName(ent.Name(), atomicFiles...) {
				if err := home.Remove(ent.Name()); err != nil {
					o.Log.Warn("cannot remove a temp file", "profile", name, "err", err)
					continue
				}
				cleared = append(cleared, ent.Name())
			}
		}
	}
	if len(cleared) > 0 {
		o.Log.Info("swept leftovers of an interrupted write", "profile", name, "files", strings.Join(cleared, ","))
	}
	if lerr != nil {
		return nil
	}
	if removed, why, err := marker.SweepListed(home, entries, o.Now()); err != nil {
		o.Log.Warn("cannot sweep the planned-stop marker", "profile", name, "err", err)
	} else if removed {
		o.Log.Info("swept a planned-stop marker", "profile", name, "why", why)
	}
	return entries
}

// writeLines prints the entries and appends them to the boot log (unless a dry run).
func writeLines(o Options, entries []Entry) {
	var b strings.Builder
	now := o.Now()
	for _, e := range entries {
		b.WriteString(e.Line(now))
		if o.DryRun {
			b.WriteString(" dry_run=true")
		}
		b.WriteByte('\n')
	}
	_, _ = io.WriteString(o.Out, b.String())
	if o.DryRun {
		return
	}
	if err := appendBootLog(o.Settings.Home, b.String()); err != nil {
		o.Log.Warn("cannot append to the boot log", "err", err)
	}
}

// appendBootLog appends text to <root>/logs/container-boot.log, first rotating it to .1 when
// it has reached BootLogMaxSize. Symlinks are never followed, and a FIFO planted there cannot
// hang the boot.
func appendBootLog(root, text string) error {
	logs, _, err := safedir.MkdirAll(root, "logs", 0o755)
	if err != nil {
		return err
	}
	defer logs.Close()
	const name = "container-boot.log"
	if st, err := logs.Lstat(name); err == nil && st.Size >= BootLogMaxSize {
		if err := logs.Rename(name, name+".1", false); err != nil {
			return err
		}
	}
	f, err := logs.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		return err
	}
	return f.Sync()
}
