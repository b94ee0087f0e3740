// Package marker implements the planned-stop marker (SPEC §4): the note an operator's stop
// leaves for the gateway so that its SIGTERM handler can tell "the operator stopped me"
// (persist stopped) from "the container or supervisor is tearing down" (persist running).
//
// A marker names its target by PID and start time and is valid for TTL. It is single use:
// Consume removes it whatever the verdict. Container PIDs repeat from boot to boot, so a
// marker left over from an earlier boot must never match a later, unrelated process: the
// start-time binding, the TTL and the boot Sweep each rule that out on their own.
//
// Failing to write a marker is never fatal for a stop: the gateway then treats the SIGTERM
// as unplanned, the safe side (it comes back after a restart).
package marker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/s6gate/s6gate/pkg/proc"
	"github.com/s6gate/s6gate/pkg/safedir"
)

// FileName is the marker in a profile home.
const FileName = ".gateway-planned-stop.json"

// claimPrefix starts the private name Consume renames a marker to: the consumer's PID and a
// time stamp follow.
const claimPrefix = FileName + ".claimed-"

// TTL is how long a marker stays valid after it is written.
const TTL = 60 * time.Second

// maxSkew tolerates a written_at slightly in the future (clock steps between processes).
const maxSkew = 5 * time.Second

// Mode of the marker file.
const Mode os.FileMode = 0o640

// Marker is the content of the marker file.
type Marker struct {
	TargetPID       int     `json:"target_pid"`
	TargetStartTime *uint64 `json:"target_start_time"`
	StopperPID      int     `json:"stopper_pid"`
	WrittenAt       string  `json:"written_at"`
	// Restart: the operator restarts the gateway (gateway restart): not a stop to persist,
	// and, under exec supervision, not a failure of the command either. A wrapper treats a
	// matching restart marker as it treats no marker (unplanned: it comes back).
	Restart bool `json:"restart,omitempty"`
}

// For builds the marker for target, looking up its start time (nil when it cannot be read,
// for example when /proc hides other users' processes).
func For(target int, now time.Time) Marker {
	m := Marker{TargetPID: target, StopperPID: os.Getpid(), WrittenAt: now.UTC().Format(time.RFC3339Nano)}
	if st, err := proc.StartTime(target); err == nil {
		m.TargetStartTime = &st
	}
	return m
}

// Write stores m in home atomically.
func Write(home *safedir.Dir, m Marker) error {
	if m.TargetPID <= 0 {
		return fmt.Errorf("planned-stop marker: invalid target pid %d", m.TargetPID)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := home.WriteFile(FileName, append(b, '\n'), Mode); err != nil {
		return fmt.Errorf("planned-stop marker: %w", err)
	}
	return nil
}

// Parse decodes a marker document.
func Parse(b []byte) (Marker, error) {
	var m Marker
	if err := json.Unmarshal(b, &m); err != nil {
		return Marker{}, fmt.Errorf("malformed marker: %w", err)
	}
	if m.TargetPID <= 0 {
		return Marker{}, errors.New("malformed marker: no target_pid")
	}
	if _, err := time.Parse(time.RFC3339Nano, m.WrittenAt); err != nil {
		return Marker{}, fmt.Errorf("malformed marker: written_at: %w", err)
	}
	return m, nil
}

// Match decides whether m marks the process (pid, startTime) as stopped on purpose at time
// now. It matches only if the PIDs are equal, the start times are equal (or either is
// unknown), and the marker is at most TTL old. The reason says why, for the log.
func (m Marker) Match(pid int, startTime *uint64, now time.Time) (bool, string) {
	if m.TargetPID != pid {
		return false, fmt.Sprintf("marker is for pid %d, not %d", m.TargetPID, pid)
	}
	if m.TargetStartTime != nil && startTime != nil && *m.TargetStartTime != *startTime {
		return false, fmt.Sprintf("marker is for pid %d started at tick %d, this one started at %d", pid, *m.TargetStartTime, *startTime)
	}
	if stale, why := m.stale(now); stale {
		return false, why
	}
	return true, fmt.Sprintf("marker written by pid %d matches pid %d", m.StopperPID, pid)
}

func (m Marker) stale(now time.Time) (bool, string) {
	at, err := time.Parse(time.RFC3339Nano, m.WrittenAt)
	if err != nil {
		return true, "marker has no valid written_at"
	}
	age := now.Sub(at)
	if age > TTL {
		return true, fmt.Sprintf("marker is %s old (TTL %s)", age.Round(time.Second), TTL)
	}
	if age < -maxSkew {
		return true, fmt.Sprintf("marker is dated %s in the future", (-age).Round(time.Second))
	}
	return false, ""
}

// Consume claims the marker in home, removes it, and evaluates it for (pid, startTime). No
// marker means not planned. Claiming is a rename to a name of this process's own, so a marker
// that a concurrent stop writes a moment later is never deleted unread, and two consumers
// never both see one marker. The marker is removed whatever the verdict (single use); a
// removal failure is returned as err alongside the verdict.
func Consume(home *safedir.Dir, pid int, startTime *uint64, now time.Time) (planned bool, reason string, err error) {
	m, matched, reason, err := Claim(home, pid, startTime, now)
	if matched && m.Restart {
		return false, "restart requested: " + reason, err
	}
	return matched, reason, err
}

// Claim is Consume that also returns the marker it evaluated (the zero Marker when there was
// none or it was unusable) and whether it matched (pid, startTime): a matching marker with
// Restart set is an operator's restart, not a planned stop.
func Claim(home *safedir.Dir, pid int, startTime *uint64, now time.Time) (m Marker, matched bool, reason string, err error) {
	claimed := fmt.Sprintf("%s%d-%d", claimPrefix, os.Getpid(), now.UnixNano())
	if err := home.Rename(FileName, claimed, false); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Marker{}, false, "no planned-stop marker", nil
		}
		return Marker{}, false, "marker cannot be claimed: " + err.Error(), err
	}
	b, rerr := home.ReadFile(claimed, 4096)
	err = home.Remove(claimed)
	if rerr != nil {
		return Marker{}, false, "unreadable marker: " + rerr.Error(), err
	}
	m, perr := Parse(b)
	if perr != nil {
		return Marker{}, false, perr.Error(), err
	}
	matched, reason = m.Match(pid, startTime, now)
	return m, matched, reason, err
}

// Sweep removes the marker in home unless it could still match a live process: a malformed
// marker, one older than TTL, and one whose target (PID and start time) is gone are removed.
// It also removes what a writer or a consumer killed half-way left behind: WriteFile's temp
// files and claimed markers whose consumer is gone. The boot reconciler sweeps every home, so
// nothing from an earlier boot survives into this one. It reports whether it removed the
// marker, and why.
func Sweep(home *safedir.Dir, now time.Time) (removed bool, reason string, err error) {
	entries, err := home.ReadDir()
	if err != nil {
		return false, "", err
	}
	return SweepListed(home, entries, now)
}

// SweepListed is Sweep for a caller that has just listed home (entries): the boot reconciler
// lists each home once for every sweep.
func SweepListed(home *safedir.Dir, entries []fs.DirEntry, now time.Time) (removed bool, reason string, err error) {
	if err := sweepLeftovers(home, entries); err != nil {
		return false, "", err
	}
	// A marker the listing does not show is not read: one written since is fresh, and a sweep
	// a moment earlier would not have seen it either.
	if !slices.ContainsFunc(entries, func(e fs.DirEntry) bool { return e.Name() == FileName }) {
		return false, "", nil
	}
	b, rerr := home.ReadFile(FileName, 4096)
	if errors.Is(rerr, fs.ErrNotExist) {
		return false, "", nil
	}
	if rerr != nil {
		reason = "unreadable: " + rerr.Error()
	} else if m, perr := Parse(b); perr != nil {
		reason = perr.Error()
	} else if stale, why := m.stale(now); stale {
		reason = why
	} else if !proc.Alive(m.TargetPID, m.TargetStartTime) {
		reason = fmt.Sprintf("target pid %d is not running", m.TargetPID)
	} else {
		return false, "", nil
	}
	if err := home.Remove(FileName); err != nil {
		return false, reason, err
	}
	return true, reason, nil
}

// sweepLeftovers removes the marker's temp files and claimed copies whose consumer is dead.
func sweepLeftovers(home *safedir.Dir, entries []fs.DirEntry) error {
	for _, e := range entries {
		n := e.Name()
		switch {
		case safedir.IsTempName(n, FileName):
		case strings.HasPrefix(n, claimPrefix):
			pid, _, _ := strings.Cut(strings.TrimPrefix(n, claimPrefix), "-")
			if p, err := strconv.Atoi(pid); err == nil && p > 0 && proc.Alive(p, nil) {
				continue // its consumer is reading it right now
			}
		default:
			continue
		}
		if err := home.Remove(n); err != nil {
			return err
		}
	}
	return nil
}
