package slot

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

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
	d, err := scan.OpenDir(Name(profileName))
	if err != nil {
		return "", false, err
	}
	defer d.Close()
	b, err := d.ReadFile("run", maxRunSize)
	if err != nil {
		return "", false, err
	}
	config, ok = recordOf(b)
	return config, ok, nil
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
// reports the edit as not applied and the next update finishes it. ./down is left as it is:
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
