package main

// A sandbox is a throw-away container made of namespaces, so the real /init binary can be
// tested as PID 1 with Debian's real s6-svscan, at its production paths, on this host:
//
//   - a new PID namespace and a new mount namespace (CLONE_NEWPID|CLONE_NEWNS);
//   - a root directory in t.TempDir() holding /init, /etc/cont-init.d & co, /run, /var and
//     /command exactly as an image would, with the host's /usr (minus /usr/local), /bin, /lib…
//     and /dev bind-mounted read-only into it, and a fresh /proc;
//   - chroot into it, then exec /init (mode "pid1"), or start /init under a tiny Go init that
//     forwards SIGTERM and reaps, the way `docker run --init` does (mode "child").
//
// The test binary plays the namespace's first process (TestMain sees sandboxEnv); the root
// directory is plain host storage, so the test reads what /init wrote with ordinary file
// reads, and the bind mounts vanish with the namespace.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/internal/s6test"
)

const (
	sandboxEnv     = "S6GATE_TEST_SANDBOX" // JSON sandboxSpec; set only in the re-exec'd child
	modePID1       = "pid1"
	modeChild      = "child"
	svscanPath     = "/usr/bin/s6-svscan"
	sandboxTimeout = 30 * time.Second
)

type sandboxSpec struct {
	Root string
	Mode string
	Args []string // /init's arguments: the CMD
	Env  []string // /init's environment
}

// requireSandbox skips (or, with CI=true, fails) when the sandbox cannot run here.
func requireSandbox(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (namespaces and mounts)")
	}
	for _, p := range []string{svscanPath, "/usr/bin/s6-svc", "/usr/lib/execline/bin/execlineb", "/bin/sh", "/usr/bin/nsenter"} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: the /init black-box tests need %s", strings.Join(missing, ", "))
	}
	t.Skipf("needs %s (this is a failure when CI=true)", strings.Join(missing, ", "))
}

// binDir holds the binaries built for this test run (set by TestMain, removed after it).
var binDir string

// buildOnce builds init, with-contenv and printcontenv once per test run, statically (with
// S6GATE_TEST_MULTICALL=1 the multi-call binary s6gate instead).
var buildOnce = sync.OnceValues(func() (string, error) {
	dir := binDir
	cmds := []string{"init", "with-contenv", "printcontenv"}
	if s6test.Multicall() {
		cmds = []string{"s6gate"}
	}
	for _, c := range cmds {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, c), "../"+c)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v: %s", c, err, out)
		}
	}
	return dir, nil
})

type sandbox struct {
	t       *testing.T
	root    string
	spec    sandboxSpec
	cmd     *exec.Cmd
	out     *s6test.Buffer
	done    chan struct{}
	code    int
	started time.Time
	ended   time.Time
}

// newSandbox prepares a root directory: binaries in place, empty /etc/*.d directories.
func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	requireSandbox(t)
	bin, err := buildOnce()
	require.NoError(t, err)
	root := t.TempDir()
	s := &sandbox{t: t, root: root, out: &s6test.Buffer{}, done: make(chan struct{})}
	for _, d := range []string{"etc/cont-init.d", "etc/services.d", "etc/cont-finish.d", "usr/local/bin", "var", "run", "out", "tmp"} {
		require.NoError(t, os.MkdirAll(s.path(d), 0o755))
	}
	if s6test.Multicall() {
		// The image's layout: one binary, /init and the commands links to it.
		copyFile(t, filepath.Join(bin, "s6gate"), s.path("usr/local/bin/s6gate"))
		require.NoError(t, os.Symlink("usr/local/bin/s6gate", s.path("init")))
		require.NoError(t, os.Symlink("s6gate", s.path("usr/local/bin/with-contenv")))
		require.NoError(t, os.Symlink("s6gate", s.path("usr/local/bin/printcontenv")))
	} else {
		copyFile(t, filepath.Join(bin, "init"), s.path("init"))
		copyFile(t, filepath.Join(bin, "with-contenv"), s.path("usr/local/bin/with-contenv"))
		copyFile(t, filepath.Join(bin, "printcontenv"), s.path("usr/local/bin/printcontenv"))
	}
	for _, f := range []string{"passwd", "group"} {
		copyFile(t, "/etc/"+f, s.path("etc/"+f))
	}
	return s
}

// again is a new sandbox on the same root directory: docker restart, which keeps the
// container's writable layer.
func (s *sandbox) again() *sandbox {
	return &sandbox{t: s.t, root: s.root, out: &s6test.Buffer{}, done: make(chan struct{})}
}

func (s *sandbox) path(p string) string { return filepath.Join(s.root, p) }

// write creates a file under the root (mode 0755 for scripts).
func (s *sandbox) write(p, content string, mode os.FileMode) {
	s.t.Helper()
	require.NoError(s.t, os.MkdirAll(filepath.Dir(s.path(p)), 0o755))
	require.NoError(s.t, os.WriteFile(s.path(p), []byte(content), mode))
	require.NoError(s.t, os.Chmod(s.path(p), mode))
}

// read returns the content of a file under the root, "" if it does not exist.
func (s *sandbox) read(p string) string {
	b, _ := os.ReadFile(s.path(p))
	return string(b)
}

// start runs /init with the CMD args and the environment env (added to a Docker-like base).
func (s *sandbox) start(mode string, env []string, args ...string) {
	s.t.Helper()
	s.spec = sandboxSpec{
		Root: s.root, Mode: mode, Args: args,
		Env: append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=sandbox", "HOME=/root"}, env...),
	}
	spec, err := json.Marshal(s.spec)
	require.NoError(s.t, err)
	s.cmd = exec.Command("/proc/self/exe", "-test.run=^$")
	s.cmd.Env = []string{sandboxEnv + "=" + string(spec)}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	s.started = time.Now()
	require.NoError(s.t, s.cmd.Start())
	go func() {
		err := s.cmd.Wait()
		s.ended = time.Now()
		s.code = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			s.code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				s.code = 128 + int(ws.Signal())
			}
		} else if err != nil {
			s.code = -1
		}
		close(s.done)
	}()
	s.t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill() // the namespace dies with its first process
			<-s.done
		}
		if s.t.Failed() {
			s.t.Logf("sandbox output:\n%s", s.out.String())
		}
	})
}

// wait waits for the sandbox to exit and returns its exit code.
func (s *sandbox) wait() int {
	s.t.Helper()
	return s.waitFor(sandboxTimeout)
}

// waitFor is wait with a limit of its own, for a sandbox whose exit waits on idle-priority
// work: on a machine whose CPUs are saturated at normal priority (make test-stress) that work
// gets only the crumbs the scheduler leaves SCHED_IDLE, so it ends, but late.
func (s *sandbox) waitFor(limit time.Duration) int {
	s.t.Helper()
	select {
	case <-s.done:
		return s.code
	case <-time.After(limit):
		s.t.Fatalf("sandbox did not exit within %s", limit)
		return -1
	}
}

// signal sends sig to the namespace's PID 1, as docker stop / docker kill do.
func (s *sandbox) signal(sig syscall.Signal) time.Time {
	s.t.Helper()
	require.NoError(s.t, s.cmd.Process.Signal(sig))
	return time.Now()
}

func (s *sandbox) hostPid() int { return s.cmd.Process.Pid }

// eventually polls cond every 10 ms until it holds or the sandbox timeout passes.
func (s *sandbox) eventually(cond func() bool, what string) {
	s.t.Helper()
	deadline := time.Now().Add(sandboxTimeout)
	for !cond() {
		select {
		case <-s.done:
			if cond() {
				return
			}
			s.t.Fatalf("sandbox exited (code %d) while waiting for %s", s.code, what)
		default:
		}
		if time.Now().After(deadline) {
			var ps []string
			for _, p := range s.procs() {
				ps = append(ps, fmt.Sprintf("%d(ns %d, ppid %d) %c %s [%s]", p.HostPid, p.NsPid, p.HostPPid, p.State, p.Comm, p.Cmdline))
			}
			s.t.Fatalf("timed out waiting for %s; processes:\n%s", what, strings.Join(ps, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFile waits until p exists; waitContent until it holds a complete last line.
func (s *sandbox) waitFile(p string) { s.eventually(func() bool { return fileExists(s.path(p)) }, p) }
func (s *sandbox) waitContent(p string) {
	s.eventually(func() bool { return strings.HasSuffix(s.read(p), "\n") }, p+" written")
}

// nsProc is a process of the sandbox, seen from the host.
type nsProc struct {
	HostPid, NsPid, HostPPid int
	State                    byte
	Comm, Cmdline            string
}

// procs lists the processes of the sandbox's PID namespace. They are all below this test
// process (what nsenter starts in it too): a walk of every process of the host would be as
// long as the host is busy (a fork bomb of another test beside it made it longer than a poll
// may take).
func (s *sandbox) procs() []nsProc {
	s.t.Helper()
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", s.hostPid()))
	if err != nil {
		return nil
	}
	var out []nsProc
	for _, d := range s6test.OwnProcesses() {
		pid := d.PID
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err != nil || l != ns {
			continue
		}
		status, err1 := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		stat, err2 := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err1 != nil || err2 != nil {
			continue
		}
		p := nsProc{HostPid: pid, Cmdline: strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[0] == "NSpid:" {
				p.NsPid, _ = strconv.Atoi(f[len(f)-1])
			}
		}
		open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || end < 0 {
			continue
		}
		p.Comm = string(stat[open+1 : end])
		f := strings.Fields(string(stat[end+1:]))
		p.State = f[0][0]
		p.HostPPid, _ = strconv.Atoi(f[1])
		out = append(out, p)
	}
	return out
}

// inside runs a command inside the sandbox (its mount and PID namespaces and its root).
func (s *sandbox) inside(args ...string) (string, error) {
	cmd := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(s.hostPid()), "-m", "-p", "-r", "-w", "--"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	st, err := os.Stat(src)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dst, b, st.Mode().Perm()))
}

// ---- inside the namespace ----

// runSandbox is the first process of the new namespaces. It never returns.
func runSandbox(specJSON string) {
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "sandbox: "+format+"\n", args...)
		os.Exit(254)
	}
	var spec sandboxSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fail("bad spec: %v", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		fail("make / private: %v", err)
	}
	root := spec.Root
	bind := func(src, dst string, rec bool) {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			fail("%v", err)
		}
		flags := uintptr(unix.MS_BIND)
		if rec {
			flags |= unix.MS_REC
		}
		if err := unix.Mount(src, dst, "", flags, ""); err != nil {
			fail("bind %s: %v", src, err)
		}
		if err := unix.Mount("", dst, "", flags|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			fail("remount %s read-only: %v", dst, err)
		}
	}
	// mirror replicates host dir entries (symlinks as symlinks, directories bound read-only).
	mirror := func(hostDir, rootDir string, names []string) {
		for _, name := range names {
			src := filepath.Join(hostDir, name)
			st, err := os.Lstat(src)
			if err != nil {
				continue
			}
			dst := filepath.Join(rootDir, name)
			switch {
			case st.Mode()&os.ModeSymlink != 0:
				target, _ := os.Readlink(src)
				if have, err := os.Readlink(dst); err == nil && have == target {
					continue // made by an earlier run on the same root
				}
				if err := os.Symlink(target, dst); err != nil {
					fail("%v", err)
				}
			case st.IsDir():
				bind(src, dst, false)
			}
		}
	}
	mirror("/", root, []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"})
	usr, err := os.ReadDir("/usr")
	if err != nil {
		fail("%v", err)
	}
	var names []string
	for _, e := range usr {
		if e.Name() != "local" {
			names = append(names, e.Name())
		}
	}
	mirror("/usr", filepath.Join(root, "usr"), names)
	devDir := filepath.Join(root, "dev")
	if err := os.MkdirAll(devDir, 0o755); err != nil {
		fail("%v", err)
	}
	if err := unix.Mount("/dev", devDir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		fail("bind /dev: %v", err)
	}
	procDir := filepath.Join(root, "proc")
	if err := os.MkdirAll(procDir, 0o555); err != nil {
		fail("%v", err)
	}
	if err := unix.Mount("proc", procDir, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		fail("mount proc: %v", err)
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		fail("%v", err)
	}
	if err := unix.Chroot(root); err != nil {
		fail("chroot: %v", err)
	}
	if err := os.Chdir("/"); err != nil {
		fail("%v", err)
	}
	argv := append([]string{"/init"}, spec.Args...)
	if spec.Mode == modePID1 {
		err := unix.Exec("/init", argv, spec.Env)
		fail("exec /init: %v", err)
	}
	// modeChild: a minimal docker-init: start /init, forward TERM/INT, reap everything, exit
	// with /init's status.
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	p, err := os.StartProcess("/init", argv, &os.ProcAttr{Env: spec.Env, Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
	if err != nil {
		fail("start /init: %v", err)
	}
	child := p.Pid
	_ = p.Release()
	for sig := range sigc {
		if sig != syscall.SIGCHLD {
			_ = syscall.Kill(child, sig.(syscall.Signal))
			continue
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
			if pid == child {
				if ws.Signaled() {
					os.Exit(128 + int(ws.Signal()))
				}
				os.Exit(ws.ExitStatus())
			}
		}
	}
}
