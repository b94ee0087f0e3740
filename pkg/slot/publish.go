package slot

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/s6gate/s6gate/pkg/safedir"
)

// NotRegisteredError reports a profile without a slot. Verbs return it before any s6 tool
// runs, so a typo gets a clear message instead of an s6 error, and never creates anything.
type NotRegisteredError struct {
	Profile string // the name as the caller gave it
	Service string // the slot name looked for
	ScanDir string
}

func (e *NotRegisteredError) Error() string {
	return fmt.Sprintf("no such gateway '%s' (no slot %s in %s); register it with: gateway register %s",
		e.Profile, e.Service, e.ScanDir, e.Profile)
}

// AlreadyRegisteredError reports a registration of a profile that has a slot.
type AlreadyRegisteredError struct {
	Profile string
	Path    string
}

func (e *AlreadyRegisteredError) Error() string {
	return fmt.Sprintf("gateway '%s' is already registered (%s)", e.Profile, e.Path)
}

// Path is the slot directory of a profile in scandir.
func Path(scandir, profileName string) string { return filepath.Join(scandir, Name(profileName)) }

// Check returns nil if profile has a slot in scandir, a *NotRegisteredError if it has none,
// and another error if the scan directory cannot be read.
func Check(scandir, profileName string) error {
	st, err := os.Lstat(Path(scandir, profileName))
	switch {
	case err == nil && st.IsDir():
		return nil
	case err == nil, errors.Is(err, fs.ErrNotExist):
		return &NotRegisteredError{Profile: profileName, Service: Name(profileName), ScanDir: scandir}
	default:
		return err
	}
}

// List returns the profiles that have a slot in scandir, sorted: directories named gateway-<valid
// profile>, never dot entries, symlinks or other services. A missing scandir lists nothing.
func List(scandir string) ([]string, error) {
	entries, err := os.ReadDir(scandir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() || e.Name()[0] == '.' {
			continue
		}
		if p, ok := profileOf(e.Name()); ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Services counts what s6-svscan counts against its -c limit in scandir: every directory
// whose name does not start with a dot (slots and anything else; a slot's log/ belongs to its
// slot's entry). Symlinks to directories count too, as s6-svscan follows them.
func Services(scandir string) (int, error) {
	entries, err := os.ReadDir(scandir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if e.Name()[0] == '.' {
			continue
		}
		if e.IsDir() {
			n++
		} else if e.Type()&fs.ModeSymlink != 0 {
			if st, err := os.Stat(filepath.Join(scandir, e.Name())); err == nil && st.IsDir() {
				n++
			}
		}
	}
	return n, nil
}

// FullError means the gateways' s6-svscan supervises as many services as it may (its -c,
// GATEWAY_MAX_SERVICES): a new slot would never be picked up, so none is published.
type FullError struct {
	Profile  string
	Services int // service directories in the scan directory now
	Max      int
}

func (e *FullError) Error() string {
	return fmt.Sprintf("cannot register '%s': the gateways' s6-svscan supervises at most %d services (GATEWAY_MAX_SERVICES) and the scan directory holds %d; unregister a gateway, or raise GATEWAY_MAX_SERVICES (up to 90000) and restart the container",
		e.Profile, e.Max, e.Services)
}

// Names of the private directories a slot passes through on its way in and out of the scan
// directory. They start with a dot (s6-svscan ignores dot entries) and have a fixed length
// whatever the profile's name, so every valid name fits in NAME_MAX.
const (
	stagePrefix = ".s6gate-new-"
	trashPrefix = ".s6gate-old-"
)

func privateName(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// stage renders spec into a fresh private directory of scan and returns its name. s6-svscan
// ignores it until commit renames it. It is created 0700 so nobody can look inside while it is
// rendered, and opened to 0755 once complete.
func stage(scan *safedir.Dir, s Spec, t *Template) (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	name := privateName(stagePrefix)
	d, err := scan.Mkdir(name, 0o700)
	if err != nil {
		return "", fmt.Errorf("stage slot %s: %w", Name(s.Profile), err)
	}
	err = render(d, s, t)
	if err == nil {
		err = d.Chmod(0o755)
	}
	d.Close()
	if err != nil {
		_ = os.RemoveAll(scan.Join(name))
		return "", fmt.Errorf("stage slot %s: %w", Name(s.Profile), err)
	}
	return name, nil
}

// commit renames a staged slot into place. It never replaces an existing slot: that is an
// *AlreadyRegisteredError (and the staged directory is removed).
func commit(scan *safedir.Dir, profileName, staged string) (string, error) {
	dst := Name(profileName)
	if err := scan.Rename(staged, dst, true); err != nil {
		_ = os.RemoveAll(scan.Join(staged))
		if errors.Is(err, fs.ErrExist) {
			return "", &AlreadyRegisteredError{Profile: profileName, Path: scan.Join(dst)}
		}
		return "", fmt.Errorf("publish slot: %w", err)
	}
	return scan.Join(dst), nil
}

// detach renames a profile's slot to a private dot name, taking it out of s6-svscan's view in
// one step, and returns that name for purge. A missing slot returns "" and no error.
func detach(scan *safedir.Dir, profileName string) (string, error) {
	trash := privateName(trashPrefix)
	if err := scan.Rename(Name(profileName), trash, false); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return "", fmt.Errorf("detach slot: %w", err)
	}
	return trash, nil
}

// purge removes a detached slot. It retries briefly because a supervisor that is still
// exiting may write its status file while the tree is being removed.
func purge(scan *safedir.Dir, detached string) error {
	if detached == "" {
		return nil
	}
	var err error
	for range 50 {
		if err = os.RemoveAll(scan.Join(detached)); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("remove slot %s: %w", scan.Join(detached), err)
}

// Publish renders and publishes a slot: the whole slot appears at once or not at all, and an
// existing slot is never replaced (*AlreadyRegisteredError).
func Publish(scandir string, s Spec) (string, error) {
	scan, err := safedir.Open(scandir, "")
	if err != nil {
		return "", err
	}
	defer scan.Close()
	staged, err := stage(scan, s, nil)
	if err != nil {
		return "", err
	}
	return commit(scan, s.Profile, staged)
}

// Replace publishes a slot for spec in place of the profile's current one, if any: the new
// slot is rendered first, the old one renamed away, the new one renamed in, then the old one
// deleted. If the new one cannot be put in place, the old one is put back.
func Replace(scandir string, s Spec) error {
	scan, err := safedir.Open(scandir, "")
	if err != nil {
		return err
	}
	defer scan.Close()
	return ReplaceIn(scan, s, nil)
}

// ReplaceIn is Replace in the open scan directory scan, for a caller that replaces many slots
// (the boot reconciler). It may be called from several goroutines at once. With a template
// (NewTemplate), the files every slot has alike are links to the template's.
func ReplaceIn(scan *safedir.Dir, s Spec, t *Template) error {
	staged, err := stage(scan, s, t)
	if err != nil {
		return err
	}
	old, err := detach(scan, s.Profile)
	if err != nil {
		_ = os.RemoveAll(scan.Join(staged))
		return err
	}
	if _, err := commit(scan, s.Profile, staged); err != nil {
		if old != "" {
			_ = scan.Rename(old, Name(s.Profile), true) // put the previous slot back rather than lose it
		}
		return err
	}
	return purge(scan, old)
}

// Unpublish takes a profile's slot out of the scan directory without asking s6 anything:
// for slots no s6-supervise runs on. A missing slot is not an error.
func Unpublish(scandir, profileName string) error {
	scan, err := safedir.Open(scandir, "")
	if err != nil {
		return err
	}
	defer scan.Close()
	old, err := detach(scan, profileName)
	if err != nil {
		return err
	}
	return purge(scan, old)
}
