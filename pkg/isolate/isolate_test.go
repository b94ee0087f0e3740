//go:build linux

package isolate_test

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
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

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/isolate"
	"github.com/s6gate/s6gate/pkg/profile"
)

// The test binary doubles as an isolated gateway: ISOLATE_TEST_ROLE says what it does, run
// by setpriv with the profile's uid as its real uid and 10000 as its effective one.
func TestMain(m *testing.M) {
	switch os.Getenv("ISOLATE_TEST_ROLE") {
	case "":
		os.Exit(m.Run())
	case "become":
		uid, ok := isolate.Current(config.UIDRange{First: 1000, Last: 1 << 30})
		if !ok {
			fmt.Println("not isolated")
			os.Exit(3)
		}
		if err := isolate.Become(uid, 40); err != nil {
			fmt.Println(err)
			os.Exit(3)
		}
		err := syscall.Exec("/bin/sh", []string{"sh", "-c", probe}, os.Environ())
		fmt.Println(err)
		os.Exit(3)
	case "home":
		uid, _ := isolate.Current(config.UIDRange{First: 1000, Last: 1 << 30})
		dir, err := isolate.PrepareHome(os.Getenv("ISOLATE_TEST_ROOT"), "coder", uid)
		if err != nil {
			fmt.Println(err)
			os.Exit(3)
		}
		fmt.Println(dir)
		os.Exit(0)
	case "start":
		uid, _ := isolate.Current(config.UIDRange{First: 1000, Last: 1 << 30})
		cmd := exec.Command("/bin/sh", "-c", probe)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := isolate.Start(cmd, uid, 50); err != nil {
			fmt.Println("start:", err)
			os.Exit(3)
		}
		if err := cmd.Wait(); err != nil {
			fmt.Println("wait:", err)
			os.Exit(3)
		}
		b, _ := os.ReadFile("/proc/self/limits")
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Max processes") {
				fmt.Println("wrapper", strings.Join(strings.Fields(l)[2:4], " "))
			}
		}
		os.Exit(0)
	}
	os.Exit(2)
}

// probe prints the shell's real, effective and saved uids and gids and its process limit.
const probe = `grep -E '^(Uid|Gid):' /proc/self/status | tr -s '\t' ' '; grep 'Max processes' /proc/self/limits | tr -s ' '`

// testUID is a uid of this test run's own (no other run or test uses it), from a range
// clear of real accounts.
func testUID(t *testing.T) int {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return 100000 + int(binary.LittleEndian.Uint32(b[:])%800000)
}

// asIsolated runs the test binary in role with real uid/gid uid and effective ones 10000.
func asIsolated(t *testing.T, uid int, role string, env ...string) string {
	t.Helper()
	s6test.RequireRoot(t)
	self, err := os.Executable()
	require.NoError(t, err)
	// The binary must be readable by uid 10000: run a copy from a world-readable place.
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.Chmod(strings.TrimSuffix(dir, "/"+lastElem(dir)), 0o755))
	bin := dir + "/isolate.test"
	b, err := os.ReadFile(self)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, b, 0o755))
	u := strconv.Itoa(uid)
	cmd := exec.Command("setpriv", "--ruid", u, "--euid", "10000", "--rgid", u, "--egid", "10000", "--clear-groups", bin)
	cmd.Env = append(append(os.Environ(), "ISOLATE_TEST_ROLE="+role), env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return string(out)
}

func lastElem(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

// Exec supervision: the gateway becomes the profile's uid, all three ids, with the limit.
func TestBecome(t *testing.T) {
	uid := testUID(t)
	out := asIsolated(t, uid, "become")
	u := strconv.Itoa(uid)
	assert.Contains(t, out, fmt.Sprintf("Uid: %s %s %s %s", u, u, u, u))
	assert.Contains(t, out, fmt.Sprintf("Gid: %s %s %s %s", u, u, u, u))
	assert.Contains(t, out, "Max processes 40 40 processes")
}

// The wrapper: its command runs as the profile's uid, all three ids, with the limit as soft
// and hard limit from its first instruction; the wrapper keeps no limit of its own.
func TestStart(t *testing.T) {
	uid := testUID(t)
	out := asIsolated(t, uid, "start")
	u := strconv.Itoa(uid)
	assert.Contains(t, out, fmt.Sprintf("Uid: %s %s %s %s", u, u, u, u))
	assert.Contains(t, out, fmt.Sprintf("Gid: %s %s %s %s", u, u, u, u))
	assert.Contains(t, out, "Max processes 50 50 processes")
	assert.NotContains(t, out, "wrapper 50", "the wrapper's own limit stays as it was")
}

// A fork bomb of the profile's uid, at its limit, is ended whole; a process of another uid,
// and one whose effective uid is the service user's (the profile's supervisor or gateway),
// are left alone.
func TestKillAllEndsAForkBomb(t *testing.T) {
	s6test.RequireRoot(t)
	uid, other := testUID(t), testUID(t)+1
	u := strconv.Itoa(uid)
	// Whatever happens, nothing of the bomb outlives the test (root may signal every uid).
	t.Cleanup(func() { _, _ = isolate.KillAll(uid) })
	start := func(args ...string) *exec.Cmd {
		cmd := exec.Command(args[0], args[1:]...)
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	// Every process forks for ever, survives a failed fork, and now and then exits: the
	// tree churns at its limit, so a single pass of kills would miss the newest children.
	bomb := "import os, random, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.001)\n        continue\n    if random.random() < 0.02:\n        os._exit(0)\n"
	start("prlimit", "--nproc=120:120", "setpriv", "--reuid", u, "--regid", u, "--clear-groups", "/usr/bin/python3", "-c", bomb)
	neighbour := start("setpriv", "--reuid", strconv.Itoa(other), "--regid", strconv.Itoa(other), "--clear-groups", "sleep", "60")
	supervisor := start("setpriv", "--ruid", u, "--euid", "10000", "--rgid", u, "--egid", "10000", "--clear-groups", "sleep", "60")
	require.Eventually(t, func() bool {
		p, err := isolate.Processes(uid)
		return err == nil && len(p) >= 100
	}, 20*time.Second, 10*time.Millisecond, "the bomb reaches its limit")

	t0 := time.Now()
	n, err := isolate.KillAll(uid)
	t.Logf("KillAll: %d in %v", n, time.Since(t0))
	require.NoError(t, err)
	assert.Positive(t, n)
	left, err := isolate.Processes(uid)
	require.NoError(t, err)
	for _, p := range left {
		assert.Equal(t, byte('Z'), p.State, "pid %d survived", p.PID)
	}
	for _, c := range []*exec.Cmd{neighbour, supervisor} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.Process.Pid))
		require.NoError(t, err)
		st := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))[0]
		assert.Equal(t, "S", st, "%v is left alone (not stopped, not killed)", c.Args)
	}
}

func TestLimit(t *testing.T) {
	for _, tt := range []struct {
		name     string
		policy   int
		setting  int
		pidsMax  int
		expected int
	}{
		{"profile.json wins", 64, 500, 400, 64},
		{"GATEWAY_MAX_PROCS next", 0, 500, 400, 500},
		{"a quarter of the container's pids limit", 0, 0, 500, 125},
		{"never below the floor", 0, 0, 40, isolate.MinMaxProcs},
		{"no limit anywhere", 0, 0, 0, isolate.DefaultMaxProcs},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := isolate.Limit(config.Settings{MaxProcs: tt.setting}, profile.Policy{MaxProcs: tt.policy}, tt.pidsMax)
			assert.Equal(t, tt.expected, got)
		})
	}
}

func TestCurrentOutsideIsolation(t *testing.T) {
	_, ok := isolate.Current(config.UIDRange{First: 1000, Last: 1 << 30})
	assert.False(t, ok, "the test runs with equal real and effective uids")
	_, ok = isolate.Current(config.UIDRange{})
	assert.False(t, ok)
}

func TestProcessesParsesStatus(t *testing.T) {
	// This process itself: real and effective uid are ours.
	ps, err := isolate.Processes(os.Getuid())
	require.NoError(t, err)
	var found bool
	for _, p := range ps {
		found = found || p.PID == os.Getpid()
	}
	assert.True(t, found)
}

// The command may write its own directory and nothing else of its profile's home; no other
// profile may even enter the home; the service user keeps owning everything.
func TestPrepareHome(t *testing.T) {
	s6test.RequireRoot(t)
	uid, other := testUID(t), testUID(t)+1
	root := t.TempDir()
	require.NoError(t, os.Chmod(filepath.Dir(root), 0o755))
	require.NoError(t, os.Chmod(root, 0o755))
	home := filepath.Join(root, "profiles", "coder")
	require.NoError(t, os.MkdirAll(home, 0o750))
	require.NoError(t, os.Chmod(filepath.Join(root, "profiles"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(home, "gateway_state.json"), []byte("{}"), 0o640))
	for _, p := range []string{root, filepath.Join(root, "profiles"), home, filepath.Join(home, "gateway_state.json")} {
		require.NoError(t, os.Lchown(p, 10000, 10000))
	}
	out := asIsolated(t, uid, "home", "ISOLATE_TEST_ROOT="+root)
	assert.Equal(t, filepath.Join(home, profile.CommandDir)+"\n", out)
	stat := func(p string) (uint32, uint32, os.FileMode) {
		var st syscall.Stat_t
		require.NoError(t, syscall.Lstat(p, &st))
		fi, err := os.Lstat(p)
		require.NoError(t, err)
		return st.Uid, st.Gid, fi.Mode()
	}
	o, g, m := stat(filepath.Join(home, profile.CommandDir))
	assert.Equal(t, []any{uint32(10000), uint32(uid), os.ModeDir | os.ModeSetgid | 0o770}, []any{o, g, m})
	o, g, m = stat(home)
	assert.Equal(t, []any{uint32(10000), uint32(uid), os.ModeDir | 0o750}, []any{o, g, m})
	_, _, m = stat(filepath.Join(root, "profiles"))
	assert.Equal(t, os.ModeDir|0o751, m)

	as := func(u int, script string) error {
		return exec.Command("setpriv", "--reuid", strconv.Itoa(u), "--regid", strconv.Itoa(u), "--clear-groups", "sh", "-c", script).Run()
	}
	assert.NoError(t, as(uid, "echo x > "+filepath.Join(home, profile.CommandDir, "mine")), "the command writes its own directory")
	assert.Error(t, as(uid, "echo x > "+filepath.Join(home, "planted")), "but not its home")
	assert.Error(t, as(uid, "echo x > "+filepath.Join(home, "gateway_state.json")), "nor its state")
	assert.Error(t, as(uid, "mv "+filepath.Join(home, profile.CommandDir)+" "+filepath.Join(home, "moved")), "nor move its directory")
	assert.Error(t, as(other, "ls "+home), "another profile cannot enter it")
	assert.Error(t, as(other, "echo x > "+filepath.Join(home, profile.CommandDir, "theirs")), "nor write its directory")
	_, g, _ = stat(filepath.Join(home, profile.CommandDir, "mine"))
	assert.Equal(t, uint32(uid), g, "what the command writes keeps its group")

	// Again: nothing changes, nothing fails.
	assert.Equal(t, out, asIsolated(t, uid, "home", "ISOLATE_TEST_ROOT="+root))
}
