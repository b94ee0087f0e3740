//go:build linux

package isolate_test

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
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
func asIsolated(t *testing.T, uid int, role string) string {
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
	cmd.Env = append(os.Environ(), "ISOLATE_TEST_ROLE="+role)
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
