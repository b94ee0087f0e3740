package main_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/svscan"
)

func TestMain(m *testing.M) { s6test.Main(m) }

// The service user of these tests: a uid and gid no account has, owner of each test's scan
// directory (s6-supervise needs no passwd entry), and the uids isolated slots may use.
const (
	svc      = 10777
	uidRange = "30100-30199"
)

// scanTree is a scan directory owned by the service user, in a base directory every user can
// traverse (the service user's s6-svc reaches it by path).
func scanTree(t *testing.T) string {
	t.Helper()
	base, err := os.MkdirTemp("", "gw-svscan-test-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(base) })
	require.NoError(t, os.Chmod(base, 0o755))
	dir := filepath.Join(base, "scan")
	require.NoError(t, os.Mkdir(dir, 0o755))
	if os.Geteuid() == 0 {
		require.NoError(t, os.Chown(dir, svc, svc))
	}
	return dir
}

// service writes a service directory name with run script run (and log/run when logRun is
// not ""), everything the service user's, as the service user would.
func service(t *testing.T, scan, name, run, logRun string) string {
	t.Helper()
	dir := filepath.Join(scan, name)
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "run"), []byte(run), 0o755))
	if logRun != "" {
		require.NoError(t, os.Mkdir(filepath.Join(dir, "log"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "log", "run"), []byte(logRun), 0o755))
	}
	chownTree(t, dir)
	return dir
}

func chownTree(t *testing.T, dir string) {
	t.Helper()
	require.NoError(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, svc, svc)
	}))
}

// writeAsSvc writes a file the service user's.
func writeAsSvc(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	require.NoError(t, os.Lchown(path, svc, svc))
}

// isolatedRun is an isolated slot's run script: it reports the credentials it was started
// with, then drops the command to its real uid and gid (as `gateway run` does) and sleeps.
const isolatedRun = "#!/bin/sh -p\n" +
	"echo \"run-creds $(grep -E '^(Uid|Gid):' /proc/self/status | tr -s '\\t\\n' '  ')\"\n" +
	"echo \"run-env TMPDIR=${TMPDIR-unset} KEEP=${S6GATE_KEEPENV_TMPDIR-unset}\"\n" +
	"set -- $(grep '^Uid:' /proc/self/status) $(grep '^Gid:' /proc/self/status)\n" +
	"exec setpriv --reuid=\"$2\" --regid=\"$7\" --keep-groups sleep 1000\n"

const sleepRun = "#!/bin/sh\nexec sleep 1000\n"

// scanner is a gw-svscan the test started, as root, on its own scan directory.
type scanner struct {
	t     *testing.T
	dir   string
	cmd   *exec.Cmd
	log   string   // its stdout and stderr
	ready *os.File // the read end of its -d 3
	done  chan error
	left  map[int]string // its descendants when it was stopped (pid → start time)
}

// start runs gw-svscan -d 3 [args] dir with env added to a minimal environment.
func start(t *testing.T, dir string, env []string, args ...string) *scanner {
	t.Helper()
	s6test.Require(t)
	s6test.RequireRoot(t)
	bin := s6test.Binaries(t)["gw-svscan"]
	r, w, err := os.Pipe()
	require.NoError(t, err)
	// A file, not a pipe: a service left running by a failed test must not keep Wait waiting.
	log := filepath.Join(t.TempDir(), "gw-svscan.log")
	out, err := os.Create(log)
	require.NoError(t, err)
	defer out.Close()
	cmd := exec.Command(bin, append(append([]string{"-d", "3"}, args...), dir)...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin", "GATEWAY_UID_RANGE=" + uidRange}, env...)
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = "/"
	// A group of its own, which its supervisors share: what a broken gw-svscan leaves behind
	// is ended with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	w.Close()
	s := &scanner{t: t, dir: dir, cmd: cmd, log: log, ready: r, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		// What a broken gw-svscan would leave behind: its supervisors share its process
		// group; their services (each in a session of its own) are ended by pid, if they are
		// still the processes seen here.
		s.stop()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		for pid, start := range s.left {
			if startTime(pid) == start {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		r.Close()
		if t.Failed() {
			t.Logf("gw-svscan output:\n%s", s.output())
		}
	})
	return s
}

// output is what gw-svscan (and the services without a logger) wrote so far.
func (s *scanner) output() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// stop sends SIGTERM and waits (bounded) for gw-svscan to exit; it returns the exit status.
func (s *scanner) stop() error {
	s.t.Helper()
	if s.cmd.ProcessState != nil || s.left != nil {
		return nil
	}
	s.left = descendants(s.cmd.Process.Pid)
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		return err
	case <-time.After(15 * time.Second):
		s.killTree()
		<-s.done
		s.t.Errorf("gw-svscan did not exit within 15 s of SIGTERM")
		return errors.New("timed out")
	}
}

// killTree SIGKILLs gw-svscan's descendants and gw-svscan (the test's own tree only).
func (s *scanner) killTree() {
	var walk func(int)
	walk = func(pid int) {
		for _, c := range children(pid) {
			walk(c)
			_ = syscall.Kill(c, syscall.SIGKILL)
		}
	}
	walk(s.cmd.Process.Pid)
	_ = s.cmd.Process.Kill()
}

// waitReady waits for gw-svscan's readiness newline.
func (s *scanner) waitReady() {
	s.t.Helper()
	require.NoError(s.t, s.ready.SetReadDeadline(time.Now().Add(20*time.Second)))
	b := make([]byte, 8)
	n, err := s.ready.Read(b)
	require.NoError(s.t, err, "readiness notification")
	require.Equal(s.t, "\n", string(b[:n]))
}

// children lists the children of pid: the processes whose parent is one of pid's threads.
func children(pid int) []int {
	var out []int
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, w := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(w); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// descendants maps every descendant of pid to its start time.
func descendants(pid int) map[int]string {
	m := map[int]string{}
	var walk func(int)
	walk = func(p int) {
		for _, c := range children(p) {
			m[c] = startTime(c)
			walk(c)
		}
	}
	walk(pid)
	return m
}

// startTime is field 22 of /proc/PID/stat ("" when the process is gone).
func startTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	_, rest, ok := strings.Cut(string(b), ") ")
	if f := strings.Fields(rest); ok && len(f) > 19 {
		return f[19]
	}
	return ""
}

type proc struct {
	pid    int
	argv   []string
	uid    [4]int // real, effective, saved, filesystem
	gid    [4]int
	groups string
	state  string
}

func readProc(pid int) (proc, bool) {
	p := proc{pid: pid}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return p, false
	}
	p.argv = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return p, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(v)
		switch k {
		case "Uid", "Gid":
			var ids [4]int
			for i := range ids {
				ids[i], _ = strconv.Atoi(fields[i])
			}
			if k == "Uid" {
				p.uid = ids
			} else {
				p.gid = ids
			}
		case "Groups":
			p.groups = strings.Join(fields, " ")
		case "State":
			p.state = fields[0]
		}
	}
	return p, true
}

// supervisor is the s6-supervise gw-svscan runs on dir (NAME or NAME/log), if any.
func (s *scanner) supervisor(dir string) (proc, bool) {
	for _, c := range children(s.cmd.Process.Pid) {
		p, ok := readProc(c)
		if ok && p.state != "Z" && len(p.argv) == 2 && filepath.Base(p.argv[0]) == "s6-supervise" && p.argv[1] == dir {
			return p, true
		}
	}
	return proc{}, false
}

// waitSupervisor waits until a supervisor runs on dir and its child (the service) exists.
func (s *scanner) waitSupervisor(dir string) (sup, svc proc) {
	s.t.Helper()
	s6test.Eventually(s.t, 15*time.Second, "a supervisor and its service on "+dir, func() bool {
		var ok bool
		if sup, ok = s.supervisor(dir); !ok {
			return false
		}
		for _, c := range children(sup.pid) {
			if p, ok := readProc(c); ok && p.state != "Z" && len(p.argv) > 0 && p.argv[0] == "sleep" {
				svc = p
				return true
			}
		}
		return false
	})
	return sup, svc
}

// asSvc runs an s6 tool as the service user, with no supplementary group.
func asSvc(t *testing.T, tool string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(s6test.ToolsDir, tool), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: svc, Gid: svc}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func alive(pid int) bool {
	p, ok := readProc(pid)
	return ok && p.state != "Z"
}

// An isolated slot's supervisor has real uid and gid P and effective and saved ones the service
// user's, no supplementary group; its command, dropped to (P, P, P) as `gateway run` does,
// is brought down and up again by the service user's s6-svc. Its logger is entirely the
// service user's and gets the service's output through gw-svscan's pipe. The container
// environment reaches the slot, TMPDIR through its carrier.
func TestIsolatedSlot(t *testing.T) {
	scan := scanTree(t)
	dir := service(t, scan, "gateway-a", isolatedRun, "#!/bin/sh\nexec cat > received\n")
	writeAsSvc(t, filepath.Join(dir, svscan.UIDFile), "30101\n")
	s := start(t, scan, []string{"TMPDIR=/scratch"})
	s.waitReady()

	sup, cmd := s.waitSupervisor("gateway-a")
	assert.Equal(t, [4]int{30101, svc, svc, svc}, sup.uid, "supervisor uids: real P, effective, saved and fs the service user's")
	assert.Equal(t, [4]int{30101, svc, svc, svc}, sup.gid, "supervisor gids")
	assert.Empty(t, sup.groups, "no supplementary group")
	assert.Equal(t, [4]int{30101, 30101, 30101, 30101}, cmd.uid, "the command runs as P")

	logSup, ok := s.supervisor("gateway-a/log")
	require.True(t, ok, "the logger's supervisor runs")
	assert.Equal(t, [4]int{svc, svc, svc, svc}, logSup.uid)
	assert.Equal(t, [4]int{svc, svc, svc, svc}, logSup.gid)
	assert.Empty(t, logSup.groups)

	received := filepath.Join(dir, "log", "received")
	s6test.Eventually(t, 10*time.Second, "the logger to receive the run script's lines", func() bool {
		b, _ := os.ReadFile(received)
		return strings.Contains(string(b), "run-env")
	})
	b, _ := os.ReadFile(received)
	assert.Contains(t, string(b), "run-creds Uid: 30101 10777 10777 10777 Gid: 30101 10777 10777 10777", "the run script starts with the supervisor's credentials")
	assert.Contains(t, string(b), "run-env TMPDIR=unset KEEP=/scratch", "AT_SECURE dropped TMPDIR; its carrier came through")

	began := time.Now()
	out, err := asSvc(t, "s6-svc", "-wD", "-T", "10000", "-d", dir)
	require.NoError(t, err, "the service user's s6-svc -d: %s", out)
	t.Logf("s6-svc -wD took %s", time.Since(began))
	assert.Eventually(t, func() bool { return !alive(cmd.pid) }, 10*time.Second, 10*time.Millisecond, "the command (uid P) is gone")
	out, err = asSvc(t, "s6-svc", "-u", dir)
	require.NoError(t, err, "s6-svc -u: %s", out)
	_, again := s.waitSupervisor("gateway-a")
	assert.NotEqual(t, cmd.pid, again.pid)
	assert.Equal(t, [4]int{30101, 30101, 30101, 30101}, again.uid)
	st, err := os.Stat(filepath.Join(dir, "supervise", "status"))
	require.NoError(t, err)
	assert.Equal(t, uint32(svc), st.Sys().(*syscall.Stat_t).Uid, "supervise/ is written as the service user")
}

// A slot whose s6gate-uid fails a check is not started at all — never run unisolated — and
// gw-svscan says which slot and why, once per scan; a good slot beside it runs. (The range
// here holds the service user's uid, so that its own check is reached.)
func TestBadUIDFilesKeepTheSlotDown(t *testing.T) {
	scan := scanTree(t)
	service(t, scan, "gateway-good", sleepRun, "")
	writeAsSvc(t, filepath.Join(scan, "gateway-good", svscan.UIDFile), "30150\n")
	bad := map[string]string{} // slot → what its line says
	plant := func(name, reason string, write func(path string)) {
		dir := service(t, scan, name, sleepRun, "")
		write(filepath.Join(dir, svscan.UIDFile))
		bad[name] = reason
	}
	content := func(s string) func(string) { return func(p string) { writeAsSvc(t, p, s) } }
	plant("gateway-symlink", "reason=\"s6gate-uid: is a symbolic link\"", func(p string) {
		target := filepath.Join(filepath.Dir(scan), "uid-target")
		require.NoError(t, os.WriteFile(target, []byte("30102\n"), 0o644))
		require.NoError(t, os.Symlink(target, p))
	})
	plant("gateway-fifo", "reason=\"s6gate-uid: is not a regular file\"", func(p string) {
		require.NoError(t, unix.Mkfifo(p, 0o644))
		require.NoError(t, os.Lchown(p, svc, svc))
	})
	plant("gateway-big", "reason=\"s6gate-uid: is larger than 32 bytes\"", content("30103\n"+strings.Repeat(" ", 40)))
	plant("gateway-outside", "reason=\"s6gate-uid: uid 30200 is outside GATEWAY_UID_RANGE 10700-30199\"", content("30200\n"))
	plant("gateway-zero", "reason=\"s6gate-uid: uid 0\"", content("0\n"))
	plant("gateway-svcuid", "reason=\"s6gate-uid: uid 10777 is the service user's\"", content("10777\n"))
	plant("gateway-words", "reason=\"s6gate-uid: \\\"root\\\" is not a decimal number\"", content("root\n"))
	plant("gateway-nonl", "reason=\"s6gate-uid: not one number and a newline\"", content("30104"))
	plant("gateway-Bad", "reason=\"s6gate-uid in a directory that is not a gateway slot (gateway-<profile name>)\"", content("30105\n"))
	plant("plain", "reason=\"s6gate-uid in a directory that is not a gateway slot (gateway-<profile name>)\"", content("30106\n"))

	s := start(t, scan, []string{"GATEWAY_UID_RANGE=10700-30199"})
	s.waitReady()
	s.waitSupervisor("gateway-good")
	// A slot asking for a uid a live slot has is refused too (created after gateway-good
	// started, so that it is the later one whatever the directory's order).
	dup := service(t, scan, "gateway-dup", sleepRun, "")
	writeAsSvc(t, filepath.Join(dup, svscan.UIDFile), "30150\n")
	bad["gateway-dup"] = "reason=\"s6gate-uid: uid 30150 is already used by gateway-good\""
	// A second scan: each bad slot is refused again, with one line each time.
	out, err := asSvc(t, "s6-svscanctl", "-a", scan)
	require.NoError(t, err, out)
	s6test.Eventually(t, 10*time.Second, "the second scan's refusals", func() bool {
		return strings.Count(s.output(), "slot=gateway-dup ") == 1
	})
	for name, reason := range bad {
		_, running := s.supervisor(name)
		assert.False(t, running, "%s must not be supervised", name)
		var lines []string
		for _, l := range strings.Split(s.output(), "\n") {
			if strings.Contains(l, "slot="+name+" ") {
				lines = append(lines, l)
			}
		}
		want := 2
		if name == "gateway-dup" {
			want = 1
		}
		if assert.Len(t, lines, want, "%s: one line per scan", name) {
			assert.Contains(t, lines[0], "level=ERROR", name)
			assert.Contains(t, lines[0], reason, name)
		}
	}
	_, running := s.supervisor("gateway-good")
	assert.True(t, running)
}

// Only real directories without a leading dot are services: a symlink to a service directory,
// a dot directory and a file are not supervised, and a symlinked log/ gets no logger.
func TestOnlyRealDirectoriesAreServices(t *testing.T) {
	scan := scanTree(t)
	outside := service(t, filepath.Dir(scan), "outside", sleepRun, "")
	require.NoError(t, os.Symlink(outside, filepath.Join(scan, "linked")))
	service(t, scan, ".hidden", sleepRun, "")
	writeAsSvc(t, filepath.Join(scan, "file"), "x\n")
	dir := service(t, scan, "linkedlog", sleepRun, "")
	logDir := service(t, filepath.Dir(scan), "logdir", "#!/bin/sh\nexec cat\n", "")
	require.NoError(t, os.Symlink(logDir, filepath.Join(dir, "log")))
	service(t, scan, "real", sleepRun, "")

	s := start(t, scan, nil)
	s.waitReady()
	s.waitSupervisor("real")
	s.waitSupervisor("linkedlog")
	for _, d := range []string{"linked", ".hidden", "file", "linkedlog/log"} {
		_, ok := s.supervisor(d)
		assert.False(t, ok, "%s is not supervised", d)
	}
	assert.NoDirExists(t, filepath.Join(outside, "supervise"))
	assert.NoDirExists(t, filepath.Join(logDir, "supervise"))
	assert.NotContains(t, s.output(), "entry=linked ", "skipped without a word, not tried and refused")
}

// What the service user plants in .s6-svscan is never followed or adopted: gw-svscan refuses
// to start, with one line and exit code 100, and the planted target is left as it was.
func TestPlantedControlIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		plant  func(t *testing.T, scan, elsewhere string)
		reason string
	}{
		{"symlinked .s6-svscan", func(t *testing.T, scan, elsewhere string) {
			require.NoError(t, os.Symlink(elsewhere, filepath.Join(scan, ".s6-svscan")))
		}, ".s6-svscan: exists and is not a directory"},
		{"symlinked control", func(t *testing.T, scan, elsewhere string) {
			require.NoError(t, os.Mkdir(filepath.Join(scan, ".s6-svscan"), 0o700))
			require.NoError(t, unix.Mkfifo(filepath.Join(elsewhere, "fifo"), 0o600))
			require.NoError(t, os.Symlink(filepath.Join(elsewhere, "fifo"), filepath.Join(scan, ".s6-svscan", "control")))
		}, ".s6-svscan/control: is not a FIFO"},
		{"regular control", func(t *testing.T, scan, _ string) {
			require.NoError(t, os.Mkdir(filepath.Join(scan, ".s6-svscan"), 0o700))
			require.NoError(t, os.WriteFile(filepath.Join(scan, ".s6-svscan", "control"), nil, 0o600))
		}, ".s6-svscan/control: is not a FIFO"},
		{"hard-linked control", func(t *testing.T, scan, elsewhere string) {
			require.NoError(t, os.Mkdir(filepath.Join(scan, ".s6-svscan"), 0o700))
			require.NoError(t, unix.Mkfifo(filepath.Join(elsewhere, "fifo"), 0o600))
			require.NoError(t, os.Link(filepath.Join(elsewhere, "fifo"), filepath.Join(scan, ".s6-svscan", "control")))
		}, ".s6-svscan/control: has 2 links"},
		{"symlinked lock", func(t *testing.T, scan, elsewhere string) {
			require.NoError(t, os.Mkdir(filepath.Join(scan, ".s6-svscan"), 0o700))
			require.NoError(t, os.WriteFile(filepath.Join(elsewhere, "file"), nil, 0o600))
			require.NoError(t, os.Symlink(filepath.Join(elsewhere, "file"), filepath.Join(scan, ".s6-svscan", "lock")))
		}, ".s6-svscan/lock: is not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scan := scanTree(t)
			elsewhere := filepath.Join(filepath.Dir(scan), "elsewhere")
			require.NoError(t, os.Mkdir(elsewhere, 0o700)) // root's
			tc.plant(t, scan, elsewhere)
			chownTree(t, scan)
			before := s6test.Snapshot(t, elsewhere)
			s := start(t, scan, nil)
			err := s.waitExit(t)
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, 100, ee.ExitCode())
			assert.True(t, strings.HasPrefix(s.output(), "gw-svscan: "+scan+"/"+tc.reason), s.output())
			assert.Equal(t, 1, strings.Count(s.output(), "\n"), s.output())
			assert.Equal(t, before, s6test.Snapshot(t, elsewhere), "the planted target is untouched")
		})
	}
}

func (s *scanner) waitExit(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("gw-svscan did not exit")
		return nil
	}
}

// A scan directory gw-svscan would have to run root's or everybody's supervisors in is
// refused with one line and exit code 100.
func TestScanDirOwnerIsChecked(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(dir string)
		reason string
	}{
		{"root's", func(dir string) { require.NoError(t, os.Chown(dir, 0, 0)) }, "is owned by root"},
		{"group root", func(dir string) { require.NoError(t, os.Chown(dir, svc, 0)) }, "belongs to group root"},
		{"world-writable", func(dir string) { require.NoError(t, os.Chmod(dir, 0o777)) }, "is world-writable (mode 0777)"},
		{"a symlink", func(dir string) {
			require.NoError(t, os.Rename(dir, dir+".real"))
			require.NoError(t, os.Symlink(dir+".real", dir))
		}, "is a symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scan := scanTree(t)
			tc.setup(scan)
			s := start(t, scan, nil)
			var ee *exec.ExitError
			require.ErrorAs(t, s.waitExit(t), &ee)
			assert.Equal(t, 100, ee.ExitCode())
			assert.True(t, strings.HasPrefix(s.output(), "gw-svscan: "+scan+": "+tc.reason), s.output())
			assert.Equal(t, 1, strings.Count(s.output(), "\n"), s.output())
			assert.NoDirExists(t, filepath.Join(scan, ".s6-svscan"))
		})
	}
}

// s6-svscanctl -a picks up a new slot; -an, after the slot was taken out of the scan
// directory (as pkg/slot's Remove does: renamed to a dot name), makes its supervisors exit,
// and gw-svscan reaps them; a plain -a leaves a departed slot's supervisors alone.
func TestRescanAndPrune(t *testing.T) {
	scan := scanTree(t)
	s := start(t, scan, nil)
	s.waitReady()
	_, err := os.Stat(filepath.Join(scan, ".s6-svscan", "control"))
	require.NoError(t, err)

	dir := service(t, scan, "gateway-b", isolatedRun, "#!/bin/sh\nexec cat > /dev/null\n")
	writeAsSvc(t, filepath.Join(dir, svscan.UIDFile), "30102\n")
	out, err := asSvc(t, "s6-svscanctl", "-a", scan)
	require.NoError(t, err, "the service user controls gw-svscan: %s", out)
	sup, cmd := s.waitSupervisor("gateway-b")
	logSup, ok := s.supervisor("gateway-b/log")
	require.True(t, ok)

	require.NoError(t, os.Rename(dir, filepath.Join(scan, ".gone")))
	out, err = asSvc(t, "s6-svscanctl", "-a", scan)
	require.NoError(t, err, out)
	time.Sleep(300 * time.Millisecond) // nothing to wait for: a plain rescan must not stop it
	assert.True(t, alive(sup.pid), "-a alone leaves a departed service's supervisor running")

	out, err = asSvc(t, "s6-svscanctl", "-an", scan)
	require.NoError(t, err, out)
	for _, p := range []proc{sup, logSup, cmd} {
		s6test.Eventually(t, 10*time.Second, fmt.Sprintf("%v (pid %d) to be gone and reaped", p.argv, p.pid), func() bool {
			_, err := os.Stat(fmt.Sprintf("/proc/%d", p.pid))
			return err != nil
		})
	}
	assert.Empty(t, children(s.cmd.Process.Pid), "no child left, not even a zombie")
}

// SIGHUP is a rescan (and a prune), as for s6-svscan.
func TestSIGHUPRescans(t *testing.T) {
	scan := scanTree(t)
	s := start(t, scan, nil)
	s.waitReady()
	service(t, scan, "late", sleepRun, "")
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGHUP))
	s.waitSupervisor("late")
}

// A supervisor that dies is started again, with the same credentials, at the first scan one
// second after its death (s6-svscan's throttle), not sooner.
func TestKilledSupervisorComesBack(t *testing.T) {
	scan := scanTree(t)
	dir := service(t, scan, "gateway-k", isolatedRun, "")
	writeAsSvc(t, filepath.Join(dir, svscan.UIDFile), "30103\n")
	s := start(t, scan, nil)
	s.waitReady()
	sup, cmd := s.waitSupervisor("gateway-k")
	// The service of the killed supervisor is left running (as under s6-svscan); the test
	// ends it.
	t.Cleanup(func() { _ = syscall.Kill(cmd.pid, syscall.SIGKILL) })
	killed := time.Now()
	require.NoError(t, syscall.Kill(sup.pid, syscall.SIGKILL))
	var again proc
	s6test.Eventually(t, 10*time.Second, "a new supervisor", func() bool {
		p, ok := s.supervisor("gateway-k")
		again = p
		return ok && p.pid != sup.pid
	})
	assert.GreaterOrEqual(t, time.Since(killed), 900*time.Millisecond, "restarted one second after the death")
	assert.Equal(t, sup.uid, again.uid)
	assert.Equal(t, sup.gid, again.gid)
	_, err := os.Stat(fmt.Sprintf("/proc/%d", sup.pid))
	assert.Error(t, err, "the dead supervisor was reaped")
}

// Readiness is notified only once every supervisor of the first scan listens on its control
// FIFO: here each s6-supervise starts a second late.
func TestReadinessWaitsForTheSupervisors(t *testing.T) {
	scan := scanTree(t)
	names := []string{"s1", "s2", "s3"}
	for _, n := range names {
		service(t, scan, n, sleepRun, "#!/bin/sh\nexec cat > /dev/null\n")
	}
	cmdDir := filepath.Join(filepath.Dir(scan), "command")
	require.NoError(t, os.Mkdir(cmdDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(cmdDir, "s6-supervise"),
		[]byte("#!/bin/sh\nsleep 1\nexec "+filepath.Join(s6test.ToolsDir, "s6-supervise")+" \"$@\"\n"), 0o755))
	s := start(t, scan, []string{"S6_COMMAND_DIR=" + cmdDir})
	began := time.Now()
	s.waitReady()
	assert.GreaterOrEqual(t, time.Since(began), 900*time.Millisecond)
	for _, n := range names {
		for _, d := range []string{n, n + "/log"} {
			assert.True(t, hasReader(filepath.Join(scan, d, "supervise", "control")), "%s listens when readiness is notified", d)
		}
	}
}

// hasReader reports whether the FIFO fifo has a reader (the test s6-svc makes).
func hasReader(fifo string) bool {
	fd, err := unix.Open(fifo, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// SIGTERM (what root's s6-supervise sends on docker stop) brings every service down, waits
// for every supervisor, and exits 0, promptly.
func TestSIGTERMBringsEverythingDown(t *testing.T) {
	scan := scanTree(t)
	dir := service(t, scan, "gateway-t", isolatedRun, "#!/bin/sh\nexec cat > /dev/null\n")
	writeAsSvc(t, filepath.Join(dir, svscan.UIDFile), "30104\n")
	service(t, scan, "plain", sleepRun, "#!/bin/sh\nexec cat > /dev/null\n")
	s := start(t, scan, nil)
	s.waitReady()
	var procs []proc
	for _, n := range []string{"gateway-t", "plain"} {
		sup, cmd := s.waitSupervisor(n)
		logSup, ok := s.supervisor(n + "/log")
		require.True(t, ok)
		procs = append(procs, sup, cmd, logSup)
		procs = append(procs, procOf(children(logSup.pid))...)
	}
	began := time.Now()
	require.NoError(t, s.stop(), "exit status 0")
	assert.Less(t, time.Since(began), 5*time.Second)
	for _, p := range procs {
		assert.False(t, alive(p.pid), "%v (pid %d) is gone", p.argv, p.pid)
	}
}

// What a logger writes to its stdout (s6-log's `1`) reaches gw-svscan's stdout — the
// container's, docker logs — each line prefixed once with its gateway ("NAME | line", the
// profile of a gateway-NAME slot, else the service's name), also the lines a gateway writes
// while the container stops, and a last line without a newline.
func TestLoggersLinesArePrefixed(t *testing.T) {
	scan := scanTree(t)
	talk := func(who string) string {
		return "#!/bin/sh\ntrap 'echo " + who + " says bye; printf " + who + "-no-newline; exit 0' TERM\n" +
			"echo " + who + " says hello; echo " + who + " says more\nwhile :; do sleep 0.1; done\n"
	}
	// coder's logger has more to say as it exits than a pipe holds: the stop waits for it.
	service(t, scan, "gateway-coder", talk("coder"), "#!/bin/sh\ncat\necho\nseq -f coder-says-%g 30000\n")
	service(t, scan, "plain", talk("plain"), "#!/bin/sh\nexec cat\n")
	s := start(t, scan, nil)
	s.waitReady()
	s6test.Eventually(t, 10*time.Second, "both loggers' lines", func() bool {
		out := s.output()
		return strings.Contains(out, "coder says more") && strings.Contains(out, "plain says more")
	})
	require.NoError(t, s.stop())
	out := s.output()
	for _, want := range []string{
		"coder | coder says hello\n", "coder | coder says more\n", "coder | coder says bye\n", "coder | coder-no-newline\n",
		"coder | coder-says-1\n", "coder | coder-says-30000\n",
		"plain | plain says hello\n", "plain | plain says bye\n", "plain | plain-no-newline\n",
	} {
		assert.Contains(t, out, want)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " says ") || strings.Contains(l, "-says-") {
			who, _, _ := strings.Cut(l, " ")
			assert.Regexp(t, "^"+who+` \| `+who+"[ -]says[ -]", l, "one prefix, the line's own gateway")
		}
	}
}

func procOf(pids []int) []proc {
	var out []proc
	for _, pid := range pids {
		if p, ok := readProc(pid); ok {
			out = append(out, p)
		}
	}
	return out
}

// s6-svscanctl commands gw-svscan does not know are ignored with one line each.
func TestUnknownControlCommand(t *testing.T) {
	scan := scanTree(t)
	s := start(t, scan, nil)
	s.waitReady()
	fifo, err := os.OpenFile(filepath.Join(scan, ".s6-svscan", "control"), os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = fifo.WriteString("x")
	require.NoError(t, err)
	fifo.Close()
	s6test.Eventually(t, 10*time.Second, "the unknown command's line", func() bool {
		return strings.Contains(s.output(), `msg="unknown control command ignored" prog=gw-svscan command='x'`)
	})
	require.NoError(t, s.stop())
}

// Bad usage: one line, exit code 2, nothing made.
func TestBadUsage(t *testing.T) {
	s6test.RequireRoot(t)
	bin := s6test.Binaries(t)["gw-svscan"]
	scan := scanTree(t)
	// Bounded: a usage error that went unnoticed would run a scanner.
	run := func(args ...string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return exec.CommandContext(ctx, bin, args...).CombinedOutput()
	}
	for _, args := range [][]string{{}, {scan, scan}, {"-t", "-1", scan}, {"-x", scan}, {"-d", "-2", scan}, {"-c", "many", scan}} {
		out, err := run(args...)
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "%v", args)
		assert.Equal(t, 2, ee.ExitCode(), "%v: %s", args, out)
		assert.Equal(t, 1, strings.Count(string(out), "\n"), "%v: %q", args, out)
	}
	out, err := run("-d", "1", scan)
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 100, ee.ExitCode(), "%s", out)
	assert.NoDirExists(t, filepath.Join(scan, ".s6-svscan"))
}

// Not root, gw-svscan is s6-svscan: it execs $S6_COMMAND_DIR/s6-svscan (else Debian's) with
// its arguments unchanged.
func TestNonRootExecsS6Svscan(t *testing.T) {
	s6test.Require(t)
	bin := s6test.Binaries(t)["gw-svscan"]
	scan := scanTree(t)
	cmdDir := filepath.Join(filepath.Dir(scan), "command")
	require.NoError(t, os.Mkdir(cmdDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(cmdDir, "s6-svscan"), []byte("#!/bin/sh\necho \"fake $0 $*\"\n"), 0o755))
	run := func(env []string, args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		if os.Geteuid() == 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: svc, Gid: svc}}
		}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	assert.Equal(t, "fake "+filepath.Join(cmdDir, "s6-svscan")+" -d 3 -c 7 -t 100 --odd "+scan+"\n",
		run([]string{"S6_COMMAND_DIR=" + cmdDir}, "-d", "3", "-c", "7", "-t", "100", "--odd", scan))

	// Without the command directory: Debian's s6-svscan, for real, on a scan directory of the
	// caller (the service user when the test runs as root).
	cmd := exec.Command(bin, scan)
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: svc, Gid: svc}}
	}
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	s6test.Eventually(t, 10*time.Second, "s6-svscan to listen", func() bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid))
		return err == nil && string(b) == "s6-svscan\n" && hasReader(filepath.Join(scan, ".s6-svscan", "control"))
	})
}

// At most -c services are supervised; each entry beyond gets one warning per scan, as
// s6-svscan's "too many services".
func TestTooManyServices(t *testing.T) {
	scan := scanTree(t)
	for _, n := range []string{"s1", "s2", "s3"} {
		service(t, scan, n, sleepRun, "")
	}
	s := start(t, scan, nil, "-c", "2")
	s.waitReady()
	s6test.Eventually(t, 10*time.Second, "the warning", func() bool {
		return strings.Contains(s.output(), `msg="too many services: not supervised"`)
	})
	running := 0
	for _, n := range []string{"s1", "s2", "s3"} {
		if _, ok := s.supervisor(n); ok {
			running++
		}
	}
	assert.Equal(t, 2, running)
	assert.Equal(t, 1, strings.Count(s.output(), "too many services"), s.output())
}

// Two scanners never run on one directory: the second gets the lock s6-svscan takes, and
// stops with exit code 100.
func TestOneScannerPerDirectory(t *testing.T) {
	scan := scanTree(t)
	first := start(t, scan, nil)
	first.waitReady()
	second := start(t, scan, nil)
	var ee *exec.ExitError
	require.ErrorAs(t, second.waitExit(t), &ee)
	assert.Equal(t, 100, ee.ExitCode())
	assert.Equal(t, "gw-svscan: "+scan+": another instance of s6-svscan or gw-svscan is already running on it\n", second.output())
	out, err := asSvc(t, "s6-svscanctl", "-a", scan)
	assert.NoError(t, err, "the first one still answers: %s", out)
}
