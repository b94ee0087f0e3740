package reconcile

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/s6gate/s6gate/pkg/aside"
	"github.com/s6gate/s6gate/pkg/bootrecord"
	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/safedir"
	"github.com/s6gate/s6gate/pkg/slot"
)

// RemoveOldWait bounds how long RemoveOld waits for the gateways before it removes anyway.
const RemoveOldWait = 60 * time.Second

// RemoveOld removes the scan directories that earlier boots set aside (PrepareBoot), off the
// boot's critical path: it claims them first (another remover then finds nothing to do and
// returns at once), waits until the gateways are up — the gateways' s6-svscan answers and every
// slot meant to run (no ./down) is up — or the boot failed, or wait has passed, and then
// removes them. It returns how many trees it removed. The caller decides the priority
// (`gw-reconcile --remove-old` makes itself idle first); a stop just ends it, and whatever it
// did not remove is removed after the next boot.
//
// Run as root it reads only through descriptors, never following anything the service user
// planted in the scan directory.
//
// It also removes what purged profiles left in the data root (removePurged): their homes and
// log directories, renamed to profile.PurgedPrefix names by `gateway unregister --purge`,
// which the service user could not remove wholly.
func RemoveOld(ctx context.Context, s config.Settings, wait time.Duration, log *slog.Logger) (int, error) {
	n, err := removeOld(ctx, s, wait, log)
	removePurged(s, log)
	return n, err
}

// removePurged removes <root>/profiles/.s6gate-purged-* and <root>/logs/gateways/.s6gate-purged-*.
// Run as root it reaches them through descriptors only (the data root is the service user's:
// a symlink planted as profiles/ or in a tree is never followed). Failures are logged; the
// next boot tries again.
func removePurged(s config.Settings, log *slog.Logger) {
	for _, parent := range []string{profile.ProfilesDir, "logs/gateways"} {
		dir, err := safedir.Open(s.Home, parent)
		if err != nil {
			continue
		}
		entries, err := dir.ReadDir()
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), profile.PurgedPrefix) {
				continue
			}
			t, err := aside.ClaimIn(dir.Fd(), dir.Path(), e.Name())
			if errors.Is(err, aside.ErrBusy) {
				continue
			}
			var n int64
			if err == nil {
				n, err = t.Remove()
			}
			if err != nil {
				log.Warn("cannot remove what a purged profile left; the next boot tries again", "dir", dir.Join(e.Name()), "err", err)
				continue
			}
			log.Info("removed what a purged profile left", "dir", dir.Join(e.Name()), "entries", n)
		}
		if err != nil {
			log.Warn("cannot list purged profiles' leftovers", "dir", dir.Path(), "err", err)
		}
		dir.Close()
	}
}

func removeOld(ctx context.Context, s config.Settings, wait time.Duration, log *slog.Logger) (int, error) {
	old, err := aside.Leftovers(s.ScanDir)
	if err != nil {
		return 0, err
	}
	var trees []*aside.Tree
	for _, p := range old {
		t, err := aside.Claim(p)
		if errors.Is(err, aside.ErrBusy) {
			continue
		}
		if err != nil {
			log.Warn("cannot remove a scan directory an earlier boot set aside; the next boot tries again", "dir", p, "err", err)
			continue
		}
		trees = append(trees, t)
	}
	if len(trees) == 0 {
		return 0, nil
	}
	begin := time.Now()
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	gatewaysUp(waitCtx, s.ScanDir)
	cancel()
	waited := time.Since(begin)
	var removed int64
	var done []string
	var errs []error
	for _, t := range trees {
		n, err := t.Remove()
		removed += n
		if err != nil {
			errs = append(errs, err)
			log.Warn("cannot remove a scan directory an earlier boot set aside; the next boot tries again", "dir", t.Path(), "err", err)
			continue
		}
		done = append(done, t.Path())
	}
	if len(done) > 0 {
		log.Info("removed the scan directories earlier boots set aside", "dirs", strings.Join(done, " "), "entries", removed,
			"waited_for_gateways", waited.Round(time.Millisecond).String(), "took", (time.Since(begin) - waited).Round(time.Millisecond).String())
	}
	return len(done), errors.Join(errs...)
}

// gatewaysUp waits until the gateways' s6-svscan answers on scanDir and every slot without
// ./down reports up, or the boot record says the boot failed, or ctx ends.
func gatewaysUp(ctx context.Context, scanDir string) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if r, ok, _ := bootrecord.Read(scanDir); ok && r.State == bootrecord.Failed {
			return
		}
		if up, _ := s6.ScannerUp(scanDir); up && slotsUp(scanDir) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// slotsUp reports whether every slot meant to run is up, reading s6's status files through
// descriptors only (the scan directory is the service user's).
func slotsUp(scanDir string) bool {
	scan, err := safedir.Open(scanDir, "")
	if err != nil {
		return false
	}
	defer scan.Close()
	names, err := slot.List(scanDir)
	if err != nil {
		return false
	}
	for _, name := range names {
		d, err := scan.OpenDir(slot.Name(name))
		if err != nil {
			continue // gone meanwhile (an unregister)
		}
		ok := slotUp(d)
		d.Close()
		if !ok {
			return false
		}
	}
	return true
}

// slotUp reports whether the slot d is up, or not meant to run (./down).
func slotUp(d *safedir.Dir) bool {
	if _, err := d.Lstat("down"); err == nil {
		return true
	}
	sup, err := d.OpenDir("supervise")
	if err != nil {
		return false
	}
	defer sup.Close()
	b, err := sup.ReadFile("status", 64)
	if err != nil {
		return false
	}
	st, err := s6.ParseStatusFile(b)
	return err == nil && st.Up
}
