package profile

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/s6gate/s6gate/pkg/safedir"
)

// Skipped is a directory entry under profiles/ that is not a profile, and why.
type Skipped struct {
	Entry  string
	Reason string
}

func (s Skipped) String() string { return fmt.Sprintf("profiles/%s: %s", s.Entry, s.Reason) }

// Discover lists the profiles of the data root: Default first, then every directory under
// profiles/ with a valid name, sorted. Entries that are not profiles (invalid names, symlinks,
// plain files, a "default" directory that would shadow the root profile) are returned in
// skipped so the caller can warn about them; they never abort the listing. A data root without
// a profiles/ directory has just the default profile.
func Discover(root string) (names []string, skipped []Skipped, err error) {
	names = []string{Default}
	d, err := safedir.Open(root, ProfilesDir)
	if errors.Is(err, fs.ErrNotExist) {
		return names, nil, nil
	}
	if err != nil {
		return names, nil, fmt.Errorf("list profiles: %w", err)
	}
	defer d.Close()
	entries, err := d.ReadDir()
	if err != nil {
		return names, nil, fmt.Errorf("list profiles: %w", err)
	}
	for _, e := range entries {
		n := e.Name()
		switch {
		case n[0] == '.':
			continue // hidden entries (editors, rsync temp dirs) are not profiles
		case e.Type()&fs.ModeSymlink != 0:
			skipped = append(skipped, Skipped{n, "symbolic link (not followed)"})
		case !e.IsDir():
			skipped = append(skipped, Skipped{n, "not a directory"})
		case n == Default:
			skipped = append(skipped, Skipped{n, `"default" is the data root's own profile; this directory is ignored`})
		case Validate(n) != nil:
			skipped = append(skipped, Skipped{n, Validate(n).Error()})
		default:
			names = append(names, n)
		}
	}
	slices.Sort(names[1:])
	return names, skipped, nil
}
