package boot

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// isExecutable reports whether path (symlinks followed) is a regular file with an execute bit.
func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// listScripts returns the entries of dir to run, in lexical (byte) order, like s6-overlay's
// `s6-ls | s6-sort`: names starting with a dot and directories are ignored, and files that
// are not executable come back in skipped so the caller can warn. A missing dir is empty.
func listScripts(dir string) (run, skipped []string, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries { // os.ReadDir sorts by name
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		st, err := os.Stat(path)
		if err == nil && st.IsDir() {
			continue
		}
		if isExecutable(path) {
			run = append(run, name)
		} else {
			skipped = append(skipped, name)
		}
	}
	return run, skipped, nil
}

// listServiceDirs returns the names of the service directories in dir (directories or
// symlinks to directories, not starting with a dot), sorted. A missing dir is empty.
func listServiceDirs(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if st, err := os.Stat(filepath.Join(dir, e.Name())); err == nil && st.IsDir() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// ensureVarRun makes varRun a symlink to run. It reports whether anything had to change.
// A directory in the way is removed (its content is runtime state of an earlier life).
func ensureVarRun(varRun, run string) (changed bool, err error) {
	if isVarRunLink(varRun, run) {
		return false, nil
	}
	if err := os.RemoveAll(varRun); err != nil {
		return true, err
	}
	if err := os.MkdirAll(filepath.Dir(varRun), 0o755); err != nil {
		return true, err
	}
	return true, os.Symlink(run, varRun)
}

// isVarRunLink reports whether varRun is a symlink to run.
func isVarRunLink(varRun, run string) bool {
	target, err := os.Readlink(varRun)
	if err != nil {
		return false
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(filepath.Dir(varRun), target)
	}
	return filepath.Clean(target) == filepath.Clean(run)
}

// linkTools creates, in l.Command, a symlink for every program that l.Tools selects and that
// has no entry there yet: entries that exist (baked into the image, or made by an earlier
// boot) are left alone. It returns how many links it created; with dryRun it creates nothing
// and returns how many are missing.
func linkTools(l layout, dryRun bool) (int, error) {
	if !dryRun {
		if err := os.MkdirAll(l.Command, 0o755); err != nil {
			return 0, err
		}
	}
	created := 0
	missing := map[string]bool{} // dryRun: a name two sources offer is one missing link
	for _, src := range l.Tools {
		entries, err := os.ReadDir(src.Dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return created, err
		}
		for _, e := range entries {
			name := e.Name()
			if !strings.HasPrefix(name, src.Prefix) || strings.HasPrefix(name, ".") || e.IsDir() {
				continue
			}
			link := filepath.Join(l.Command, name)
			if _, err := os.Lstat(link); err == nil {
				continue
			}
			if dryRun {
				if !missing[name] {
					missing[name] = true
					created++
				}
				continue
			}
			if err := os.Symlink(filepath.Join(src.Dir, name), link); err != nil {
				return created, err
			}
			created++
		}
	}
	return created, nil
}

// symlinkReplace makes path a symlink to target, replacing what was there.
func symlinkReplace(target, path string) error {
	if err := os.RemoveAll(path); err != nil {
		return err
	}
	return os.Symlink(target, path)
}
