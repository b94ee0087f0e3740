package bootrecord

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/s6gate/s6gate/pkg/safedir"
	"github.com/s6gate/s6gate/pkg/state"
)

// The states of a boot.
const (
	Booting = "booting" // gw-reconcile --boot is at work (or was killed at it)
	OK      = "ok"      // the scan directory is complete: the gateways' tree may start
	Failed  = "failed"  // a step failed: nothing starts until the container restarts
)

// Record is one boot's outcome.
type Record struct {
	Start  string `json:"container_start"` // state.ContainerStart of the boot that wrote it
	State  string `json:"state"`
	Step   string `json:"step,omitempty"`   // the step that failed, e.g. "check the data root"
	Reason string `json:"reason,omitempty"` // what went wrong
	Fix    string `json:"fix,omitempty"`    // what to do about it
	At     string `json:"at"`               // when it was written (RFC 3339, UTC)
}

// maxSize caps a read: a record is a few hundred bytes.
const maxSize = 64 << 10

// Path is where the record of the boot of scanDir lives.
func Path(scanDir string) string { return filepath.Clean(scanDir) + ".boot" }

// Write records r (State, and for a failure Step, Reason and Fix) as the outcome of this start's
// boot of scanDir; it fills in Start and At. The file is replaced atomically, and when the
// caller is root it is root's, whoever owned the one it replaces.
func Write(scanDir string, r Record) error {
	p := Path(scanDir)
	d, err := safedir.Open(filepath.Dir(p), "")
	if err != nil {
		return fmt.Errorf("boot record: %w", err)
	}
	defer d.Close()
	r.Start = state.ContainerStart()
	r.At = time.Now().UTC().Format(time.RFC3339)
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	name := filepath.Base(p)
	// safedir keeps the owner of a file it replaces: a record someone else made is removed
	// first, so root's record is root's.
	if os.Geteuid() == 0 {
		if st, err := d.Lstat(name); err == nil && st.Uid != 0 {
			if err := d.Remove(name); err != nil {
				return fmt.Errorf("boot record: %w", err)
			}
		}
	}
	if err := d.WriteFile(name, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("boot record: %w", err)
	}
	return nil
}

// Read returns the record of this start's boot of scanDir. ok is false when there is none
// (nothing written yet this start: the file is missing or an earlier start's); err is set when
// it cannot be read or parsed (a symlink or anything but a regular file is never read).
func Read(scanDir string) (r Record, ok bool, err error) {
	p := Path(scanDir)
	d, err := safedir.Open(filepath.Dir(p), "")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Record{}, false, nil
		}
		return Record{}, false, fmt.Errorf("boot record: %w", err)
	}
	defer d.Close()
	b, err := d.ReadFile(filepath.Base(p), maxSize)
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("boot record: %w", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, false, fmt.Errorf("boot record %s: %w", p, err)
	}
	if r.Start != state.ContainerStart() {
		return Record{}, false, nil
	}
	return r, true, nil
}

// FailedError is a failed boot, as a verb reports it.
type FailedError struct{ Record }

func (e *FailedError) Error() string {
	msg := "the boot failed"
	if e.Step != "" {
		msg += " (" + e.Step + ")"
	}
	msg += ": " + e.Reason
	if e.Fix != "" {
		msg += "; fix: " + e.Fix
	}
	return msg + "; no gateway runs until then (see docker logs)"
}

// Err returns r as an error: a *FailedError for a failed boot, nil otherwise.
func (r Record) Err() error {
	if r.State != Failed {
		return nil
	}
	return &FailedError{r}
}
