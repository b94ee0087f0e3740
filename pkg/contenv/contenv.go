//go:build unix

package contenv

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const (
	// DefaultDir is where /init dumps the container environment.
	DefaultDir = "/run/s6/container_environment"
	// DefaultPath is the search path used when the environment has no PATH (s6-overlay's).
	DefaultPath = "/command:/usr/bin:/bin"
	// KeepEnvVar names the knob that turns the whole mechanism off: when it is a non-zero
	// number, the supervision tree keeps the full environment and nothing is restored.
	KeepEnvVar = "S6_KEEP_ENV"
	// MaxValueSize is the largest file Load accepts: the kernel refuses a single
	// "NAME=value" string longer than 32 pages (MAX_ARG_STRLEN) at execve time anyway.
	MaxValueSize = 128 << 10
	// maxNameLen is NAME_MAX on Linux.
	maxNameLen = 255
)

// ErrTooLarge is returned (inside an *os.PathError) for a variable file over MaxValueSize.
var ErrTooLarge = errors.New("value larger than 128 KiB")

// Var is one entry of an environment directory. Unset is true for an empty file, which
// removes the variable instead of setting it.
type Var struct {
	Name  string
	Value string
	Unset bool
}

// ValidName reports whether name can be stored in, and read back from, an environment
// directory: non-empty, at most 255 bytes, no '=', '/' or NUL, and not starting with a dot
// (s6-envdir skips dot files).
func ValidName(name string) bool {
	if name == "" || len(name) > maxNameLen || name[0] == '.' {
		return false
	}
	return !strings.ContainsAny(name, "=/\x00")
}

// Dump writes environ ("NAME=value" strings, as os.Environ returns them) into dir, one file
// per variable. dir is created with mode 0755 if needed and set to 0755; files are 0644
// whatever the umask. Entries without '=' and names that ValidName rejects are skipped; when
// a name appears twice the first occurrence wins (as getenv does). Regular files already in
// dir that do not belong to environ are removed, so dir ends up describing exactly environ.
// It returns the number of variables written.
func Dump(dir string, environ []string) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return 0, err
	}
	vars := make(map[string]string, len(environ))
	order := make([]string, 0, len(environ))
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !ValidName(name) {
			continue
		}
		if _, dup := vars[name]; dup {
			continue
		}
		vars[name] = value
		order = append(order, name)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		if _, keep := vars[e.Name()]; keep || e.IsDir() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return 0, err
		}
	}
	for _, name := range order {
		if err := writeVar(filepath.Join(dir, name), vars[name]); err != nil {
			return 0, err
		}
	}
	return len(order), nil
}

func writeVar(path, value string) error {
	// O_NOFOLLOW: a symlink planted in the directory must not redirect the write.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(value)
	cerr := f.Chmod(0o644)
	if err := f.Close(); werr == nil && cerr == nil {
		cerr = err
	}
	if werr != nil {
		return werr
	}
	return cerr
}

// Parse turns the content of one variable file into its value, following `s6-envdir -Lf`:
// an empty file means unset (set is false); otherwise one trailing newline is dropped and
// NUL bytes become newlines.
func Parse(content []byte) (value string, set bool) {
	if len(content) == 0 {
		return "", false
	}
	content = bytes.TrimSuffix(content, []byte{'\n'})
	return string(bytes.ReplaceAll(content, []byte{0}, []byte{'\n'})), true
}

// Load reads every variable of dir, sorted by name. A missing dir is an *os.PathError that
// wraps fs.ErrNotExist (callers that treat it as "no container environment here" test for
// that). Entries that are not regular files, and names that ValidName rejects, are skipped.
// A file over MaxValueSize is an error wrapping ErrTooLarge.
func Load(dir string) ([]Var, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	vars := make([]Var, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		if !ValidName(name) {
			continue
		}
		content, ok, err := readVarFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		value, set := Parse(content)
		vars = append(vars, Var{Name: name, Value: value, Unset: !set})
	}
	return vars, nil
}

// readVarFile reads path if it is a regular file (symlinks followed, like s6-envdir); ok is
// false for anything else. O_NONBLOCK keeps a FIFO planted in the directory from hanging us.
func readVarFile(path string) (content []byte, ok bool, err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil // vanished, or a dangling symlink
		}
		return nil, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	if !st.Mode().IsRegular() {
		return nil, false, nil
	}
	content, err = io.ReadAll(io.LimitReader(f, MaxValueSize+1))
	if err != nil {
		return nil, false, &os.PathError{Op: "read", Path: path, Err: err}
	}
	if len(content) > MaxValueSize {
		return nil, false, &os.PathError{Op: "read", Path: path, Err: ErrTooLarge}
	}
	return content, true, nil
}

// Apply returns a copy of environ with vars applied: set variables replace every earlier
// occurrence of their name, unset ones remove them.
func Apply(environ []string, vars []Var) []string {
	touched := make(map[string]bool, len(vars))
	for _, v := range vars {
		touched[v.Name] = true
	}
	out := make([]string, 0, len(environ)+len(vars))
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !touched[name] {
			out = append(out, kv)
		}
	}
	for _, v := range vars {
		if !v.Unset {
			out = append(out, v.Name+"="+v.Value)
		}
	}
	return out
}

// Getenv returns the first value of name in environ, like getenv(3).
func Getenv(environ []string, name string) (string, bool) {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// KeepEnv reports whether S6_KEEP_ENV is a non-zero integer in environ (s6-overlay's
// `test "0$S6_KEEP_ENV" -ne 0`); anything else, including garbage, means false.
func KeepEnv(environ []string) bool {
	v, _ := Getenv(environ, KeepEnvVar)
	n, err := strconv.Atoi(strings.TrimSpace(v))
	return err == nil && n != 0
}

// Restore computes the environment `with-contenv` gives its program (see the package
// documentation): environ itself when S6_KEEP_ENV is set or dir does not exist, else the
// caller's PATH with dir applied on top. restored tells which case happened.
func Restore(environ []string, dir string) (env []string, restored bool, err error) {
	if KeepEnv(environ) {
		return environ, false, nil
	}
	vars, err := Load(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return environ, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var base []string
	if p, ok := Getenv(environ, "PATH"); ok {
		base = []string{"PATH=" + p}
	}
	return Apply(base, vars), true, nil
}

// Lookup returns the value `printcontenv name` prints: the one in dir, or the one in environ
// when S6_KEEP_ENV is set or dir does not exist. ok is false when the variable is not set
// (no file, an empty file, or not in environ). name must satisfy ValidName.
func Lookup(environ []string, dir, name string) (value string, ok bool, err error) {
	if !ValidName(name) {
		return "", false, &os.PathError{Op: "lookup", Path: name, Err: fs.ErrInvalid}
	}
	if KeepEnv(environ) {
		value, ok = Getenv(environ, name)
		return value, ok, nil
	}
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		value, ok = Getenv(environ, name)
		return value, ok, nil
	}
	content, isFile, err := readVarFile(filepath.Join(dir, name))
	if err != nil || !isFile {
		return "", false, err
	}
	value, ok = Parse(content)
	return value, ok, nil
}
