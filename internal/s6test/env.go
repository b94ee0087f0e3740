package s6test

import (
	"bytes"
	"context"
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

// Env is a complete host installation for integration tests: a data root, the gateways' scan
// directory with a real s6-svscan on it (once Start is called), a command directory with the
// real s6 tools and this repository's with-contenv, and the repository's binaries.
//
// Made by NewEnv while the tests run as root, it is the image's layout: the service user is
// "nobody", it owns the data root and the scan directory, and Start runs a root s6-svscan on
// a root scan directory (RootScanDir) whose one service is the user tree: `s6-setuidgid nobody
// s6-svscan ScanDir`, so every gateway's s6-supervise runs as nobody. The binaries, started as
// root by Run, become nobody themselves. Otherwise (NewEnvAsCaller, or tests run by a normal
// user) the service user is the caller and one s6-svscan runs on ScanDir: the layout that
// in-process tests need, since they act with the test process's own rights.
type Env struct {
	t           testing.TB
	Base        string
	Home        string
	ScanDir     string // the gateways' scan directory
	RootScanDir string // the root tree's scan directory when UserTree, else ""
	UserTree    bool
	CommandDir  string
	ServiceUser string
	UID, GID    int
	Bin         map[string]string
	Scan        *Scan
	Extra       []string // more KEY=VALUE for every command and for s6-svscan
	// ContainerEnv, when not nil, is the container environment the supervision tree sees:
	// Start and StartScanOn run s6-svscan (as root) in a private mount namespace whose
	// /run/s6/container_environment holds these variables, one file each, as /init dumps
	// them, so the real with-contenv loads them. The host's /run is left alone.
	ContainerEnv map[string]string
}

// NewEnv lays out an Env in the image's layout (see Env). extraTools go into the command
// directory (see CommandDir).
func NewEnv(t testing.TB, extraTools map[string]string) *Env {
	t.Helper()
	return newEnv(t, extraTools, os.Geteuid() == 0)
}

// NewEnvAsCaller lays out an Env whose service user is the caller, with a single s6-svscan:
// for tests that call the packages in-process.
func NewEnvAsCaller(t testing.TB, extraTools map[string]string) *Env {
	t.Helper()
	return newEnv(t, extraTools, false)
}

func newEnv(t testing.TB, extraTools map[string]string, userTree bool) *Env {
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
	e := &Env{t: t, Base: base, Home: filepath.Join(base, "data"), ScanDir: filepath.Join(base, "scan"), Bin: bins, UserTree: userTree}
	e.ServiceUser, e.UID, e.GID = currentUser(t)
	if userTree {
		e.RootScanDir = filepath.Join(base, "rootscan")
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

// Start runs the supervision tree with the Env's environment: a real s6-svscan on the scan
// directory, under a root s6-svscan as the service user's tree when UserTree. It returns once
// the gateways' s6-svscan accepts commands.
func (e *Env) Start() *Scan {
	e.t.Helper()
	if !e.UserTree {
		e.Scan = startScanIn(e.t, e.ScanDir, e.Environ(), e.containerEnvDir())
		return e.Scan
	}
	svc := filepath.Join(e.RootScanDir, "usertree")
	if err := os.MkdirAll(svc, 0o755); err != nil {
		e.t.Fatal(err)
	}
	run := "#!/bin/sh\nexec 2>&1\nexec " + filepath.Join(ToolsDir, "s6-setuidgid") + " " + e.ServiceUser + " " +
		filepath.Join(ToolsDir, "s6-svscan") + " -d3 " + e.ScanDir + "\n"
	for name, content := range map[string]string{"run": run, "notification-fd": "3\n"} {
		if err := os.WriteFile(filepath.Join(svc, name), []byte(content), 0o755); err != nil {
			e.t.Fatal(err)
		}
	}
	e.Scan = startScanIn(e.t, e.RootScanDir, e.Environ(), e.containerEnvDir())
	waitFor(e.t, 10*time.Second, "the user tree's s6-svscan on "+e.ScanDir, func() bool {
		return exec.Command(filepath.Join(ToolsDir, "s6-svscanctl"), "-a", e.ScanDir).Run() == nil
	})
	return e.Scan
}

// StartScanOn runs a plain s6-svscan, as the test process, on another scan directory dir with
// the Env's environment: for slots that must run under a root supervisor.
func (e *Env) StartScanOn(dir string) *Scan {
	e.t.Helper()
	return startScanIn(e.t, dir, e.Environ(), e.containerEnvDir())
}

// containerEnvDir writes ContainerEnv into a directory of its own and returns it ("" when
// ContainerEnv is nil).
func (e *Env) containerEnvDir() string {
	e.t.Helper()
	if e.ContainerEnv == nil {
		return ""
	}
	RequireRoot(e.t)
	dir, err := os.MkdirTemp(e.Base, "container_environment-")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	for k, v := range e.ContainerEnv {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	return dir
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

// RunAs runs a binary as uid:gid, with no supplementary groups.
func (e *Env) RunAs(uid, gid int, prog string, args ...string) Result {
	e.t.Helper()
	return e.run(&syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, prog, args...)
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
