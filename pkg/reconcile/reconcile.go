// Package reconcile is the boot reconciler (SPEC §9), run from /etc/cont-init.d before any
// service starts: it turns what the data volume remembers into s6 slots, so that gateways
// that were running come back after a restart, recreate, upgrade or crash, and gateways an
// operator stopped stay stopped.
//
// It is level-triggered and idempotent, like a Kubernetes controller: it looks only at what
// is on disk now (profiles, their state files, the scan directory), never at what happened
// before, and running it twice gives the same slots. Per profile it:
//
//  1. sweeps a dead gateway's identity (gateway.pid, the lock file's content) and planned-stop
//     markers that can no longer match (stale, malformed, or their target is gone);
//  2. reads the run intent: desired_state if present, else gateway_state, where draining,
//     degraded (and starting) count as running — autostart iff the intent is running;
//  3. rebuilds the slot from scratch: a new slot, with ./down unless it autostarts, replaces
//     any slot left from the previous boot (a slot that an s6-supervise still runs on is left
//     alone, so a re-run at runtime never disturbs a live gateway);
//  4. logs one line, to stdout and to <root>/logs/container-boot.log (rotated to .1 at
//     256 KiB): "<RFC 3339 time> profile=<p> prior_state=<state|none> action=<started|registered>".
//
// The default profile comes first and is always registered; then every valid directory under
// profiles/, sorted. Slots of profiles that no longer exist are removed. One rescan at the end
// (best effort: s6-svscan may not be up yet). A broken profile is logged and skipped; only an
// unusable scan directory (or a missing data root) fails the run.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/lifecycle"
	"github.com/s6gate/s6gate/pkg/marker"
	"github.com/s6gate/s6gate/pkg/owner"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/safedir"
	"github.com/s6gate/s6gate/pkg/slot"
	"github.com/s6gate/s6gate/pkg/state"
)

// Actions logged per profile.
const (
	Started    = "started"    // slot published without ./down: s6 starts it
	Registered = "registered" // slot published with ./down
	Kept       = "kept"       // a live slot (s6-supervise running on it) was left alone
	Skipped    = "skipped"    // the profile is broken; see the reason
)

// BootLog is the audit log under the data root, and the size at which it is rotated.
const (
	BootLog        = "logs/container-boot.log"
	BootLogMaxSize = 256 << 10
)

// Options configure a run.
type Options struct {
	Settings config.Settings
	Owner    *owner.Owner
	DryRun   bool // report what would be done; change nothing
	Out      io.Writer
	Log      *slog.Logger
	Now      func() time.Time
	Workers  int // profiles reconciled in parallel; 0 = 2 × GOMAXPROCS
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
	if !o.DryRun {
		if d, _, err := safedir.MkdirAll(s.Home, "logs/gateways", 0o755, o.Owner); err != nil {
			o.Log.Warn("cannot create the log directory", "err", err)
		} else {
			d.Close()
		}
	}
	removeOrphans(o, names)

	entries := make([]Entry, len(names))
	var wg sync.WaitGroup
	work := make(chan int)
	for range min(o.Workers, len(names)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				entries[i] = reconcileOne(o, names[i])
			}
		}()
	}
	for i := range names {
		work <- i
	}
	close(work)
	wg.Wait()

	if !o.DryRun {
		tools := s6.Tools{Dir: s.CommandDir}
		if err := tools.Run(ctx, s.ScanDir, "rescan", "s6-svscanctl", "-a", s.ScanDir); err != nil {
			o.Log.Info("rescan not possible yet (s6-svscan will scan at start)", "err", err)
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
func removeOrphans(o Options, names []string) {
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
		if live, _ := s6.Supervised(dir); live {
			o.Log.Warn("slot of a deleted profile is still supervised; left alone", "slot", dir)
			continue
		}
		if o.DryRun {
			o.Log.Info("would remove the slot of a deleted profile", "slot", dir)
			continue
		}
		detached, err := slot.Detach(o.Settings.ScanDir, p)
		if err == nil {
			err = slot.Purge(detached)
		}
		if err != nil {
			o.Log.Warn("cannot remove the slot of a deleted profile", "slot", dir, "err", err)
		} else {
			o.Log.Info("removed the slot of a deleted profile", "slot", dir)
		}
	}
}

func reconcileOne(o Options, name string) Entry {
	e := Entry{Profile: name, PriorState: "none"}
	skip := func(err error) Entry {
		e.Action, e.Reason = Skipped, err.Error()
		o.Log.Warn("profile skipped", "profile", name, "err", err)
		return e
	}
	home, err := safedir.Open(o.Settings.Home, profile.HomeRel(name))
	if err != nil {
		return skip(err)
	}
	defer home.Close()

	if !o.DryRun {
		if cleared, err := lifecycle.SweepStale(home); err != nil {
			o.Log.Warn("cannot sweep a stale gateway identity", "profile", name, "err", err)
		} else if len(cleared) > 0 {
			o.Log.Info("swept a stale gateway identity", "profile", name, "files", strings.Join(cleared, ","))
		}
		if removed, why, err := marker.Sweep(home, o.Now()); err != nil {
			o.Log.Warn("cannot sweep the planned-stop marker", "profile", name, "err", err)
		} else if removed {
			o.Log.Info("swept a planned-stop marker", "profile", name, "why", why)
		}
	}

	st, err := state.Read(home)
	if err != nil {
		o.Log.Warn("no usable prior state", "profile", name, "err", err)
	}
	source, autostart := st.Intent()
	if source != "" {
		e.PriorState = source
	}
	e.Action = Registered
	if autostart {
		e.Action = Started
	}

	cfg, err := profile.ReadConfig(home)
	if err != nil {
		return skip(err)
	}
	dir := slot.Path(o.Settings.ScanDir, name)
	if live, _ := s6.Supervised(dir); live {
		e.Action, e.Reason = Kept, "an s6-supervise runs on the slot; a live gateway is never disturbed"
		return e
	}
	if o.DryRun {
		return e
	}
	staged, err := slot.Stage(o.Settings.ScanDir, slot.NewSpec(o.Settings, name, cfg, !autostart), o.Owner)
	if err != nil {
		return skip(err)
	}
	old, err := slot.Detach(o.Settings.ScanDir, name)
	if err != nil {
		_ = os.RemoveAll(staged)
		return skip(err)
	}
	if _, err := slot.Commit(o.Settings.ScanDir, name, staged); err != nil {
		if old != "" {
			_ = os.Rename(old, dir) // put the previous slot back rather than lose it
		}
		return skip(err)
	}
	if err := slot.Purge(old); err != nil {
		o.Log.Warn("cannot remove the previous slot", "profile", name, "err", err)
	}
	return e
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
	if err := appendBootLog(o.Settings.Home, b.String(), o.Owner); err != nil {
		o.Log.Warn("cannot append to the boot log", "err", err)
	}
}

// appendBootLog appends text to <root>/logs/container-boot.log, first rotating it to .1 when
// it has reached BootLogMaxSize. Symlinks are never followed.
func appendBootLog(root, text string, own *owner.Owner) error {
	logs, _, err := safedir.MkdirAll(root, "logs", 0o755, own)
	if err != nil {
		return err
	}
	defer logs.Close()
	const name = "container-boot.log"
	if st, err := logs.Lstat(name); err == nil && st.Size >= BootLogMaxSize {
		if err := unix.Renameat(logs.Fd(), name, logs.Fd(), name+".1"); err != nil {
			return &os.LinkError{Op: "rotate", Old: logs.Join(name), New: logs.Join(name + ".1"), Err: err}
		}
	}
	// O_NONBLOCK and the type check: a FIFO planted in the (user-owned) logs directory must not
	// hang the boot.
	fd, err := unix.Openat(logs.Fd(), name, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o640)
	if err != nil {
		return &os.PathError{Op: "open", Path: logs.Join(name), Err: err}
	}
	f := os.NewFile(uintptr(fd), logs.Join(name))
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return &os.PathError{Op: "open", Path: logs.Join(name), Err: safedir.ErrNotRegular}
	}
	if st.Uid == uint32(os.Geteuid()) {
		_ = own.Fchown(fd)
	}
	if _, err := f.WriteString(text); err != nil {
		return err
	}
	return f.Sync()
}
