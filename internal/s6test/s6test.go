// Package s6test runs Debian's real s6 for tests, the way net/http/httptest runs a real
// server: a private s6-svscan on a temporary scan directory, a command directory that holds
// the real s6 tools (plus this repository's binaries, or a deliberately failing tool for fault
// injection), and the repository's binaries built once per test process.
//
// s6-svscan and s6-supervise run fine unprivileged, so none of this needs root. A missing s6
// installation skips the test on a developer machine and fails it under CI=true, where a
// skipped test must never pass for a green one.
package s6test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ToolsDir is where Debian installs the s6 tools.
const ToolsDir = "/usr/bin"

// InCI reports whether the tests run under CI (CI=true), where missing prerequisites fail.
func InCI() bool { return os.Getenv("CI") == "true" }

// Require stops the test unless Debian's s6 tools are installed: a skip locally, a failure in CI.
func Require(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"s6-svscan", "s6-supervise", "s6-svc", "s6-svscanctl", "s6-svstat", "s6-log", "s6-setuidgid"} {
		if _, err := os.Stat(filepath.Join(ToolsDir, tool)); err != nil {
			Missing(t, "s6 is not installed (apt-get install -y s6 execline): "+err.Error())
		}
	}
}

// RequireRoot stops the test unless it runs as root: a skip locally, a failure in CI.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root")
	}
}

// Missing reports a missing prerequisite: t.Skip outside CI, t.Fatal in CI.
func Missing(t testing.TB, why string) {
	t.Helper()
	if InCI() {
		t.Fatal("CI=true and a test prerequisite is missing: " + why)
	}
	t.Skip(why)
}

// CommandDir makes a command directory (what S6_COMMAND_DIR points at) holding symlinks to
// the real s6 tools and to the given extra binaries (name → path). An extra whose name matches
// a tool replaces it, which is how a test injects a failing s6-svscanctl.
func CommandDir(t testing.TB, extra map[string]string) string {
	t.Helper()
	return commandDirIn(t, t.TempDir(), extra)
}

func commandDirIn(t testing.TB, parent string, extra map[string]string) string {
	t.Helper()
	dir := filepath.Join(parent, "command")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tools, err := filepath.Glob(filepath.Join(ToolsDir, "s6-*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range tools {
		if _, ok := extra[filepath.Base(p)]; ok {
			continue
		}
		if err := os.Symlink(p, filepath.Join(dir, filepath.Base(p))); err != nil {
			t.Fatal(err)
		}
	}
	for name, p := range extra {
		if err := os.Symlink(p, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// FailingTool writes an executable that prints msg on stderr and exits rc, for fault injection.
func FailingTool(t testing.TB, rc int, msg string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "failing-tool")
	script := "#!/bin/sh\necho '" + strings.ReplaceAll(msg, "'", `'\''`) + "' >&2\nexit " + itoa(rc) + "\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// Scan is a running s6-svscan on a private scan directory.
type Scan struct {
	Dir string
	cmd *exec.Cmd
	out *Buffer
}

// StartScan starts s6-svscan on dir (created if missing). The scan is torn down with
// s6-svscanctl -t (supervisors bring their services down and exit) when the test ends.
func StartScan(t testing.TB, dir string) *Scan {
	t.Helper()
	return startScan(t, dir, os.Environ())
}

func startScan(t testing.TB, dir string, env []string) *Scan {
	t.Helper()
	return startScanIn(t, dir, env, "")
}

// startScanIn is startScan; with a contenvDir, s6-svscan runs in a private mount namespace
// (root only) where contenvDir is mounted at /run/s6/container_environment, on a tmpfs /run.
func startScanIn(t testing.TB, dir string, env []string, contenvDir string) *Scan {
	t.Helper()
	Require(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := &Buffer{}
	cmd := exec.Command(filepath.Join(ToolsDir, "s6-svscan"), dir)
	attr := &syscall.SysProcAttr{Setpgid: true}
	if contenvDir != "" {
		// Go makes the new namespace's mounts private before the shell runs.
		cmd = exec.Command("/bin/sh", "-ec", `mount -t tmpfs -o mode=0755 s6test /run
mkdir -p /run/s6/container_environment
mount --bind "$1" /run/s6/container_environment
exec "$2" "$3"`, "sh", contenvDir, filepath.Join(ToolsDir, "s6-svscan"), dir)
		privateMountNamespace(attr)
	}
	cmd.SysProcAttr = attr
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &Scan{Dir: dir, cmd: cmd, out: out}
	waitFor(t, 5*time.Second, "s6-svscan to listen on "+dir, func() bool {
		return exec.Command(filepath.Join(ToolsDir, "s6-svscanctl"), "-a", dir).Run() == nil
	})
	t.Cleanup(func() { s.Stop(t) })
	return s
}

// PID is the s6-svscan's process ID: the root of the test's own supervision tree, to which a
// test scopes every search for processes (never all of the host's).
func (s *Scan) PID() int { return s.cmd.Process.Pid }

// Output is what s6-svscan and everything below it (run scripts, s6-log's stdout copy) printed.
func (s *Scan) Output() string { return s.out.String() }

// Stop tears the supervision tree down and waits for s6-svscan to exit. It is idempotent.
func (s *Scan) Stop(t testing.TB) {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = exec.Command(filepath.Join(ToolsDir, "s6-svscanctl"), "-t", s.Dir).Run()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Errorf("s6-svscan on %s did not exit within 10 s of s6-svscanctl -t", s.Dir)
	}
}

// waitFor polls cond every 10 ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Eventually polls cond every 10 ms until it holds or timeout passes, then fails the test
// with what it was waiting for.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	waitFor(t, timeout, what, cond)
}

type builds struct {
	once sync.Once
	dir  string
	err  error
	out  []byte
}

// binaries is per test process: every test binary builds the commands once.
var binaries builds

// commands are the binaries Binaries builds (s6gate is the multi-call binary of all of them).
var commands = []string{"gateway", "gw-reconcile", "gw-render", "gw-mark", "gw-svscan", "with-contenv", "printcontenv", "s6gate"}

// MulticallEnv, set to 1, makes Binaries return links to the multi-call binary cmd/s6gate
// under each command's name instead of the single binaries, as the image installs them: the
// same tests then prove the multi-call dispatch (cmd/init's sandbox tests honour it too).
const MulticallEnv = "S6GATE_TEST_MULTICALL"

// Multicall reports whether MulticallEnv asks for the multi-call binary.
func Multicall() bool { return os.Getenv(MulticallEnv) == "1" }

// Main runs a package's tests and then deletes the binaries Binaries built for them. A test
// package that uses this package calls it from its TestMain: func TestMain(m *testing.M) {
// s6test.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	removeBinaries()
	os.Exit(code)
}

func removeBinaries() {
	if binaries.dir != "" {
		_ = os.RemoveAll(binaries.dir)
	}
}

// Binaries builds this repository's commands (cmd/*) once per test process, statically, into
// a temporary directory, and returns name → path. With S6GATE_TEST_MULTICALL=1 every name but
// s6gate is a link to s6gate (in a directory of its own, so argv[0] is the command's name).
func Binaries(t testing.TB) map[string]string {
	t.Helper()
	binaries.once.Do(func() {
		binaries.dir, binaries.err = os.MkdirTemp("", "s6gate-bin-")
		if binaries.err != nil {
			return
		}
		// The service user must be able to run them.
		if binaries.err = os.Chmod(binaries.dir, 0o755); binaries.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		args := []string{"build", "-trimpath", "-o", binaries.dir + "/"}
		for _, c := range commands {
			args = append(args, "./cmd/"+c)
		}
		cmd := exec.CommandContext(ctx, goTool(), args...)
		cmd.Dir = repoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		binaries.out, binaries.err = cmd.CombinedOutput()
		if binaries.err == nil && Multicall() {
			binaries.err = multicallLinks(binaries.dir)
		}
	})
	if binaries.err != nil {
		t.Fatalf("building cmd/...: %v\n%s", binaries.err, binaries.out)
	}
	entries, err := os.ReadDir(binaries.dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range entries {
		m[e.Name()] = filepath.Join(binaries.dir, e.Name())
	}
	return m
}

// multicallLinks replaces every single binary in dir but s6gate with a link to s6gate.
func multicallLinks(dir string) error {
	for _, c := range commands {
		if c == "s6gate" {
			continue
		}
		p := filepath.Join(dir, c)
		if err := os.Remove(p); err != nil {
			return err
		}
		if err := os.Symlink("s6gate", p); err != nil {
			return err
		}
	}
	return nil
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func itoa(i int) string { return strconv.Itoa(i) }

// Buffer collects a process's output while a test reads it (safe for concurrent use).
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
