package s6test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Env is a complete host installation for integration tests: a data root, a scan directory
// with a real s6-svscan on it (once Start is called), a command directory with the real s6
// tools and this repository's with-contenv, and the repository's binaries.
//
// When the tests run as root, the gateways run as ServiceUser "nobody" (through s6-setuidgid,
// as in the image) and the data root and scan directory belong to it; otherwise everything
// runs as the invoking user.
type Env struct {
	t           testing.TB
	Base        string
	Home        string
	ScanDir     string
	CommandDir  string
	ServiceUser string
	UID, GID    int
	Bin         map[string]string
	Scan        *Scan
	Extra       []string // more KEY=VALUE for every command and for s6-svscan
}

// NewEnv lays out an Env. extraTools go into the command directory (see CommandDir).
func NewEnv(t testing.TB, extraTools map[string]string) *Env {
	t.Helper()
	Require(t)
	bins := Binaries(t)
	base, err := os.MkdirTemp("", "s6gate-it-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	// Readable by the service user all the way down.
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &Env{t: t, Base: base, Home: filepath.Join(base, "data"), ScanDir: filepath.Join(base, "scan"), Bin: bins}
	e.ServiceUser, e.UID, e.GID = currentUser(t)
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatal(err)
		}
		e.ServiceUser = "nobody"
		e.UID, _ = strconv.Atoi(u.Uid)
		e.GID, _ = strconv.Atoi(u.Gid)
	}
	for _, d := range []string{e.Home, e.ScanDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, e.UID, e.GID); err != nil {
			t.Fatal(err)
		}
	}
	tools := map[string]string{"with-contenv": bins["with-contenv"]}
	for k, v := range extraTools {
		tools[k] = v
	}
	e.CommandDir = commandDirIn(t, base, tools)
	return e
}

func currentUser(t testing.TB) (string, int, int) {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return u.Username, uid, gid
}

// Environ is the environment every command and s6-svscan get.
func (e *Env) Environ() []string {
	env := []string{
		"PATH=" + e.CommandDir + ":/usr/bin:/bin:/usr/sbin:/sbin",
		"GATEWAY_HOME=" + e.Home,
		"GATEWAY_SCANDIR=" + e.ScanDir,
		"S6_COMMAND_DIR=" + e.CommandDir,
		"GATEWAY_USER=" + e.ServiceUser,
		"GATEWAY_BIN=" + e.Bin["gateway"],
		"GATEWAY_DRAIN_TIMEOUT=1s",
		"LANG=C",
	}
	return append(env, e.Extra...)
}

// Start runs a real s6-svscan on the scan directory with the Env's environment.
func (e *Env) Start() *Scan {
	e.t.Helper()
	e.Scan = startScan(e.t, e.ScanDir, e.Environ())
	return e.Scan
}

// Result is a finished command.
type Result struct {
	Stdout, Stderr string
	Code           int
}

// Run runs one of the repository's binaries with the Env's environment.
func (e *Env) Run(prog string, args ...string) Result {
	e.t.Helper()
	return e.run(nil, prog, args...)
}

// RunAsService runs a binary as the service user (uid/gid of ServiceUser), as an operator
// without root would through `docker exec -u gateway`.
func (e *Env) RunAsService(prog string, args ...string) Result {
	e.t.Helper()
	return e.run(&syscall.Credential{Uid: uint32(e.UID), Gid: uint32(e.GID), NoSetGroups: true}, prog, args...)
}

func (e *Env) run(cred *syscall.Credential, prog string, args ...string) Result {
	e.t.Helper()
	path, ok := e.Bin[prog]
	if !ok {
		e.t.Fatalf("no binary %q was built", prog)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = e.Environ()
	cmd.Dir = e.Base
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run %s %s: %v", prog, strings.Join(args, " "), err)
	}
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Code: code}
}

// MustRun runs a binary and fails the test unless it exits 0.
func (e *Env) MustRun(prog string, args ...string) Result {
	e.t.Helper()
	r := e.Run(prog, args...)
	if r.Code != 0 {
		e.t.Fatalf("%s %s: exit %d\nstdout: %s\nstderr: %s", prog, strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
	return r
}

// ProfileHome is the home directory of a profile.
func (e *Env) ProfileHome(name string) string {
	if name == "default" {
		return e.Home
	}
	return filepath.Join(e.Home, "profiles", name)
}

// Slot is the slot directory of a profile.
func (e *Env) Slot(name string) string { return filepath.Join(e.ScanDir, "gateway-"+name) }

// GrantScanControl gives the service user the right to run s6-svscanctl on the scan
// directory, as the image's cont-init hook does, so unprivileged register/unregister work.
func (e *Env) GrantScanControl() {
	e.t.Helper()
	for _, p := range []string{".s6-svscan", ".s6-svscan/control", ".s6-svscan/lock"} {
		if err := os.Chown(filepath.Join(e.ScanDir, p), e.UID, e.GID); err != nil {
			e.t.Fatal(fmt.Errorf("grant scan control: %w", err))
		}
	}
}

// CommandDirWith makes another command directory like the Env's (real s6 tools and this
// repository's with-contenv), with extra tools replacing or adding to them, in a place the
// service user can reach.
func (e *Env) CommandDirWith(extra map[string]string) string {
	e.t.Helper()
	parent, err := os.MkdirTemp(e.Base, "cmd-")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.Chmod(parent, 0o755); err != nil {
		e.t.Fatal(err)
	}
	tools := map[string]string{"with-contenv": e.Bin["with-contenv"]}
	for k, v := range extra {
		tools[k] = v
	}
	return commandDirIn(e.t, parent, tools)
}
