package s6rc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc is a process to run to completion. Nil files are /dev/null.
type Proc struct {
	Argv   []string
	Env    []string
	Dir    string
	Stdout *os.File
	Stderr *os.File
}

// Runner runs p and returns its exit code (128+signal when killed). When ctx ends first the
// process must be killed and Runner still waits for it.
type Runner func(ctx context.Context, p Proc) (int, error)

// System is how the engine reaches the outside world: the s6 tools, execlineb, where the
// scripts' output goes and where messages go.
type System struct {
	Run       Runner
	ToolDirs  []string // searched in order for the s6 tools and execlineb
	Stdout    *os.File // oneshot scripts' stdout and stderr
	Stderr    *os.File
	Logf      func(format string, args ...any)
	Verbosity int // 1: warnings and errors; 2: every transition; 3: debug
}

// DefaultToolDirs are /command (s6-overlay's) then Debian's locations.
var DefaultToolDirs = []string{"/command", "/usr/bin", "/usr/lib/execline/bin", "/bin"}

// NewSystem returns a System that runs processes with os/exec, finds tools in
// DefaultToolDirs and writes messages to stderr.
func NewSystem() *System {
	return &System{
		Run:       ExecRunner,
		ToolDirs:  DefaultToolDirs,
		Stdout:    os.Stdout,
		Stderr:    os.Stderr,
		Logf:      func(format string, args ...any) { fmt.Fprintf(os.Stderr, "s6-rc: "+format+"\n", args...) },
		Verbosity: 1,
	}
}

// ExecRunner is a Runner on os/exec: a process outliving its context gets SIGTERM, then
// SIGKILL a second later.
func ExecRunner(ctx context.Context, p Proc) (int, error) {
	cmd := exec.CommandContext(ctx, p.Argv[0], p.Argv[1:]...)
	cmd.Env, cmd.Dir = p.Env, p.Dir
	if p.Stdout != nil {
		cmd.Stdout = p.Stdout
	}
	if p.Stderr != nil {
		cmd.Stderr = p.Stderr
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

func (sys *System) logf(level int, format string, args ...any) {
	if sys.Logf != nil && sys.Verbosity >= level {
		sys.Logf(format, args...)
	}
}

// path returns where the program name is, or name itself when it is nowhere in ToolDirs.
func (sys *System) path(name string) string {
	for _, d := range sys.ToolDirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return name
}

func (sys *System) execlineb() string { return sys.path("execlineb") }

// ToolError is an s6 tool that exited non-zero.
type ToolError struct {
	Name string
	Code int
}

func (e *ToolError) Error() string { return e.Name + " exited " + strconv.Itoa(e.Code) }

// tool runs an s6 program; its stderr is the system's.
func (sys *System) tool(ctx context.Context, name string, args ...string) error {
	code, err := sys.Run(ctx, Proc{Argv: append([]string{sys.path(name)}, args...), Env: os.Environ(), Dir: "/", Stderr: sys.Stderr})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if code != 0 {
		return &ToolError{Name: name, Code: code}
	}
	return nil
}

// supervised reports whether an s6-supervise runs on dir.
func (sys *System) supervised(ctx context.Context, dir string) bool {
	code, err := sys.Run(ctx, Proc{Argv: []string{sys.path("s6-svok"), dir}, Env: os.Environ(), Dir: "/"})
	return err == nil && code == 0
}

// output runs an s6 program and returns its stdout.
func (sys *System) output(ctx context.Context, name string, args ...string) (string, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return "", err
	}
	done := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(r)
		r.Close()
		done <- b
	}()
	code, err := sys.Run(ctx, Proc{Argv: append([]string{sys.path(name)}, args...), Env: os.Environ(), Dir: "/", Stdout: w})
	w.Close()
	out := <-done
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if code != 0 {
		return "", &ToolError{Name: name, Code: code}
	}
	return string(out), nil
}

// svstat returns s6's view of the service in dir: whether it is up, whether s6-supervise
// wants it up, and whether it is ready.
func (sys *System) svstat(ctx context.Context, dir string) (up, wantedUp, ready bool, err error) {
	out, err := sys.output(ctx, "s6-svstat", "-o", "up,wantedup,ready", dir)
	if err != nil {
		return false, false, false, err
	}
	f := strings.Fields(out)
	if len(f) != 3 {
		return false, false, false, fmt.Errorf("s6-svstat %s: unexpected output %q", dir, out)
	}
	return f[0] == "true", f[1] == "true", f[2] == "true", nil
}
