package slot

import (
	"context"
	"fmt"
	"time"

	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/safedir"
)

// Register publishes a slot and asks s6-svscan to pick it up (s6-svscanctl -a; s6-svscan does
// not rescan by itself). If the rescan fails, the slot is removed again and the error
// returned, so a failed registration leaves nothing behind for the next attempt to trip on.
func Register(ctx context.Context, tools s6.Tools, scandir string, s Spec) (string, error) {
	dir, err := Publish(scandir, s)
	if err != nil {
		return "", err
	}
	if err := tools.Run(ctx, scandir, "rescan", "s6-svscanctl", "-a", scandir); err != nil {
		if derr := Unpublish(scandir, s.Profile); derr != nil {
			return "", fmt.Errorf("%w (and removing the slot again failed: %v)", err, derr)
		}
		return "", fmt.Errorf("%w (slot removed again)", err)
	}
	return dir, nil
}

// Remove takes a profile's slot out of the scan directory: it renames it to a dot entry,
// has s6-svscan drop its supervisors (s6-svscanctl -an), waits (bounded) for the service's and
// the logger's s6-supervise to exit, then deletes the directory. A supervisor that still runs
// its service gets it brought down by s6 on the way out. A missing slot is not an error. A
// failing rescan is returned after the slot is removed (s6-svscan may simply not be running).
func Remove(ctx context.Context, tools s6.Tools, scandir, profileName string) error {
	scan, err := safedir.Open(scandir, "")
	if err != nil {
		return err
	}
	defer scan.Close()
	detached, err := detach(scan, profileName)
	if err != nil || detached == "" {
		return err
	}
	scanErr := tools.Run(ctx, scandir, "rescan", "s6-svscanctl", "-an", scandir)
	dir := scan.Join(detached)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		a, _ := s6.Supervised(dir)
		b, _ := s6.Supervised(dir + "/log")
		if !a && !b {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := purge(scan, detached); err != nil {
		return err
	}
	return scanErr
}
