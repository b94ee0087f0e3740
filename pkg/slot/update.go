package slot

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/s6gate/s6gate/pkg/safedir"
)

// maxRunSize caps the read of a slot's run script: it holds the profile's environment, which
// profile.json (at most profile.MaxConfigSize) gives, quoted.
const maxRunSize = 4 << 20

// Recorded returns the profile.json a published slot was rendered from, as its run script
// records it (RecordPrefix, profile.Config.Canonical); ok is false for a slot rendered
// before slots recorded it. scan is the open scan directory; the slot and its run are
// opened without following symlinks.
func Recorded(scan *safedir.Dir, profileName string) (config string, ok bool, err error) {
	config, ok, _, err = RecordedRun(scan, profileName)
	return config, ok, err
}

// RecordedRun is Recorded that also returns when the slot's run was written (its
// modification time, from the descriptor it read). Rewrite replaces run last, and a gateway
// that s6 started before then still runs the run it replaced: see Rewrite.
func RecordedRun(scan *safedir.Dir, profileName string) (config string, ok bool, written time.Time, err error) {
	d, err := scan.OpenDir(Name(profileName))
	if err != nil {
		return "", false, time.Time{}, err
	}
	defer d.Close()
	b, st, err := d.ReadFileStat("run", maxRunSize)
	if err != nil {
		return "", false, time.Time{}, err
	}
	config, ok = recordOf(b)
	return config, ok, time.Unix(st.Mtim.Unix()), nil
}

// recordOf finds the record line in a run script.
func recordOf(run []byte) (string, bool) {
	sc := bufio.NewScanner(bytes.NewReader(run))
	sc.Buffer(nil, maxRunSize)
	for sc.Scan() {
		line := sc.Text()
		if c, ok := strings.CutPrefix(line, RecordPrefix); ok {
			return c, true
		}
		if !strings.HasPrefix(line, "#") {
			return "", false // the record is among the first comment lines
		}
	}
	return "", false
}

// Rewrite renders spec into the profile's published slot in place, for `gateway update`: the
// slot keeps its directory, and with it its s6-supervise, which reads these files afresh at
// every start of the service (run, notification-fd) and every end (finish, timeout-kill). The
// files that may change — finish, timeout-kill, the uid file, then run — are each replaced
// in one rename (never written through: a file may be a link to a boot template's), run last,
// because run carries the record of the configuration (RecordPrefix): a slot whose run is
// new is wholly new, and one killed half-way still records the old configuration, so status
// reports the edit as not applied and the next update finishes it. One killed after run and
// before its restart leaves a gateway up in a process older than run (RecordedRun's time):
// status reports that as not applied too, and the next update restarts it. Leftover temp
// files of a killed Rewrite (safedir.IsTempName) are removed first: nothing but Rewrite, under
// the profile's verb lock, writes these files in place. ./down is left as it is:
// it follows the intent, which an update does not change.
func Rewrite(scandir string, s Spec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	d, err := safedir.Open(scandir, Name(s.Profile))
	if err != nil {
		return err
	}
	defer d.Close()
	files := []struct {
		name, content string
		mode          os.FileMode
	}{
		{"finish", finishScript(s), 0o755},
		{"timeout-kill", fmt.Sprintf("%d\n", killTimeout(s)), 0o644},
	}
	if s.UID > 0 {
		files = append(files, struct {
			name, content string
			mode          os.FileMode
		}{UIDFile, strconv.Itoa(s.UID) + "\n", 0o644})
	}
	files = append(files, struct {
		name, content string
		mode          os.FileMode
	}{"run", runScript(s), runMode})
	// A Rewrite killed between a temp file's creation and its rename left it here.
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.name
	}
	if entries, err := d.ReadDir(); err == nil {
		for _, e := range entries {
			if e.Type().IsRegular() && safedir.IsTempName(e.Name(), append(names, UIDFile)...) {
				_ = d.Remove(e.Name())
			}
		}
	}
	for _, f := range files {
		if old, err := d.ReadFile(f.name, maxRunSize); err == nil && string(old) == f.content {
			continue // unchanged: no rename, no new inode
		}
		if err := d.WriteFileAtomic(f.name, []byte(f.content), f.mode); err != nil {
			return fmt.Errorf("update slot %s: %w", Name(s.Profile), err)
		}
	}
	return nil
}
