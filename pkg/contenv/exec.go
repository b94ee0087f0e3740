//go:build unix

package contenv

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// Exit codes of a chain loader whose exec failed, the convention of shells, tini and s6.
const (
	CodeNotExecutable = 126
	CodeNotFound      = 127
)

// ErrNotFound means no executable of that name is on the search path.
var ErrNotFound = errors.New("not found")

// ExecError is a failure to run a program: Code is 127 when it was not found and 126 when it
// was found but could not be executed.
type ExecError struct {
	Name string
	Err  error
	Code int
}

func (e *ExecError) Error() string { return "exec " + e.Name + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *ExecError) Unwrap() error { return e.Err }

// ExitCode is 126 or 127 (it satisfies the interface s6gate's exit-code table uses).
func (e *ExecError) ExitCode() int { return e.Code }

// LookPath finds file the way execvp does: a name containing '/' is used as is; otherwise
// each element of path is tried in order (an empty element is the current directory) and
// the first regular file that is executable wins. If only non-executable candidates exist
// the error says so (126); if nothing exists it is ErrNotFound (127).
func LookPath(file, path string) (string, error) {
	if file == "" {
		return "", &ExecError{Name: file, Err: ErrNotFound, Code: CodeNotFound}
	}
	if strings.Contains(file, "/") {
		return file, nil
	}
	var denied error
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		candidate := dir + "/" + file
		st, err := os.Stat(candidate)
		if err != nil {
			continue
		}
		if !st.Mode().IsRegular() || syscall.Access(candidate, 1 /* X_OK */) != nil {
			if denied == nil {
				denied = &ExecError{Name: candidate, Err: fs.ErrPermission, Code: CodeNotExecutable}
			}
			continue
		}
		return candidate, nil
	}
	if denied != nil {
		return "", denied
	}
	return "", &ExecError{Name: file, Err: ErrNotFound, Code: CodeNotFound}
}

// ExecCode maps the error of a failed execve to 127 (ENOENT: the file or its interpreter
// does not exist) or 126 (anything else).
func ExecCode(err error) int {
	var ee *ExecError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, fs.ErrNotExist) {
		return CodeNotFound
	}
	return CodeNotExecutable
}

// Exec replaces the current process with argv[0], looked up in the PATH of environ (or
// DefaultPath when environ has none), with environ as its environment. It returns only on
// failure, with an *ExecError.
func Exec(argv, environ []string) error {
	if len(argv) == 0 {
		return &ExecError{Name: "", Err: ErrNotFound, Code: CodeNotFound}
	}
	path, ok := Getenv(environ, "PATH")
	if !ok {
		path = DefaultPath
	}
	prog, err := LookPath(argv[0], path)
	if err != nil {
		return err
	}
	err = syscall.Exec(prog, argv, environ)
	return &ExecError{Name: argv[0], Err: err, Code: ExecCode(err)}
}
