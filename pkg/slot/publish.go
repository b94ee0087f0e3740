package slot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/owner"
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
		if p, ok := ProfileOf(e.Name()); ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Stage renders spec into a fresh dot-prefixed directory in scandir and returns its path.
// s6-svscan ignores dot entries, so a staged slot is invisible until Commit.
func Stage(scandir string, s Spec, own *owner.Owner) (string, error) {
	if err := s.Validate(); err != nil {
		return "", err
	}
	// MkdirTemp creates it 0700 and ours: nobody else can look inside while it is rendered.
	dir, err := os.MkdirTemp(scandir, "."+Name(s.Profile)+".new-")
	if err != nil {
		return "", fmt.Errorf("stage slot %s: %w", Name(s.Profile), err)
	}
	err = Render(dir, s, own)
	if err == nil {
		err = chmodStaged(dir)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", fmt.Errorf("stage slot %s: %w", Name(s.Profile), err)
	}
	return dir, nil
}

// chmodStaged opens the rendered staging directory to everyone (0755), last.
func chmodStaged(dir string) error {
	d, err := openDir(unix.AT_FDCWD, dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Chmod(0o755)
}

// Commit renames a staged slot into place. It never replaces an existing slot: that is an
// *AlreadyRegisteredError (and the staged directory is removed).
func Commit(scandir, profileName, staged string) (string, error) {
	dst := Path(scandir, profileName)
	err := unix.Renameat2(unix.AT_FDCWD, staged, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// A file system without RENAME_NOREPLACE: check, then rename (rename(2) refuses a
		// non-empty directory, and a slot is never empty).
		if _, lerr := os.Lstat(dst); lerr == nil {
			err = unix.EEXIST
		} else {
			err = unix.Rename(staged, dst)
		}
	}
	if err != nil {
		_ = os.RemoveAll(staged)
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			return "", &AlreadyRegisteredError{Profile: profileName, Path: dst}
		}
		return "", fmt.Errorf("publish slot %s: %w", dst, &os.LinkError{Op: "rename", Old: staged, New: dst, Err: err})
	}
	return dst, nil
}

// Publish stages and commits a slot: the whole slot appears at once or not at all.
func Publish(scandir string, s Spec, own *owner.Owner) (string, error) {
	staged, err := Stage(scandir, s, own)
	if err != nil {
		return "", err
	}
	return Commit(scandir, s.Profile, staged)
}

// Detach renames a profile's slot to a dot name, taking it out of s6-svscan's view in one
// step, and returns the new path for Purge. A missing slot returns "" and no error.
func Detach(scandir, profileName string) (string, error) {
	src := Path(scandir, profileName)
	dst := filepath.Join(scandir, fmt.Sprintf(".%s.old-%d", Name(profileName), time.Now().UnixNano()))
	if err := os.Rename(src, dst); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return "", fmt.Errorf("detach slot %s: %w", src, err)
	}
	return dst, nil
}

// Purge removes a detached slot. It retries briefly because a supervisor that is still
// exiting may write its status file while the tree is being removed.
func Purge(detached string) error {
	if detached == "" {
		return nil
	}
	var err error
	for i := 0; i < 50; i++ {
		if err = os.RemoveAll(detached); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("remove slot %s: %w", detached, err)
}
