package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/marker"
	"github.com/s6gate/s6gate/pkg/proc"
	"github.com/s6gate/s6gate/pkg/s6"
)

// Exec supervision (GATEWAY_SUPERVISION=exec, profile.json "supervision"): `gateway run`
// execs the command, a transient watcher settles it, the slot's finish classifies its end.

// execEnv is an Env whose image default is exec supervision.
func execEnv(t *testing.T) *s6test.Env {
	t.Helper()
	e := s6test.NewEnv(t, nil)
	e.Extra = append(e.Extra, "GATEWAY_SUPERVISION=exec")
	e.Start()
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("supervision tree output:\n" + e.Scan.Output())
		}
	})
	return e
}

// procStat is (comm, ppid) of pid from /proc/PID/stat.
func procStat(t *testing.T, pid int) (string, int) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	require.NoError(t, err)
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[end+2:]))
	ppid, _ := strconv.Atoi(f[1])
	return string(b[open+1 : end]), ppid
}

// children lists the children of pid (every thread's).
func children(pid int) []string {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	var out []string
	for _, p := range tasks {
		b, _ := os.ReadFile(p)
		out = append(out, strings.Fields(string(b))...)
	}
	return out
}

// watchers lists the PIDs of `gateway watch` processes for profile name below this test
// process.
func watchers(name string) []int {
	var out []int
	for _, p := range s6test.OwnProcesses() {
		if args := p.Argv; len(args) > 2 && args[1] == "watch" && strings.Contains(args[2], `"profile":"`+name+`"`) {
			out = append(out, p.PID)
		}
	}
	return out
}

func s6Status(t *testing.T, e *s6test.Env, name string) s6.Status {
	t.Helper()
	var st s6.Status
	var err error
	// The s6-supervise that a register just started may not have written its status yet (on
	// a busy machine it may not have run at all): that reading is "not yet", not a failure.
	s6test.Eventually(t, 10*time.Second, "s6-supervise of "+name+" to write its status", func() bool {
		st, err = s6.Tools{Dir: e.CommandDir}.ReadStatus(t.Context(), e.Slot(name))
		return !errors.Is(err, s6.ErrNoStatus)
	})
	require.NoError(t, err)
	return st
}

// The command is s6-supervise's own child under the gateway's PID, recorded running by the
// watcher, which is gone afterwards and left no zombie; the profile lock is the command's. An
// unmarked SIGTERM leaves it running and s6 brings it back, no failure counted; `restart` of
// a command that exits 0 on SIGTERM is no failure either; an operator stop persists stopped.
func TestExecSupervisionStartKillRestartStop(t *testing.T) {
	e := execEnv(t)
	// Exits 0 on SIGTERM (after ending its sleep), as many servers do.
	script := `trap 'kill $!; exit 0' TERM; sleep 1000 & wait`
	r := e.Run("gateway", "register", "x", "--start", "--", "/bin/sh", "-c", script)
	require.Equal(t, 0, r.Code, r.Stderr)
	r = e.Run("gateway", "register", "plain", "--start", "--", "/bin/sleep", "1000")
	require.Equal(t, 0, r.Code, r.Stderr)
	finish, err := os.ReadFile(filepath.Join(e.Slot("x"), "finish"))
	require.NoError(t, err)
	require.Contains(t, string(finish), "exec supervision")

	st := s6Status(t, e, "x")
	require.True(t, st.Up && st.Ready)
	pid := st.PID
	s6test.WaitExec(t, pid, "sh")
	comm, ppid := procStat(t, pid)
	assert.Equal(t, "sh", comm, "the command itself is the supervised process")
	pcomm, _ := procStat(t, ppid)
	assert.Equal(t, "s6-supervise", pcomm, "and s6-supervise's direct child")
	sf := stateFile(t, e, "x")
	assert.Equal(t, "running", sf["gateway_state"])
	assert.Equal(t, float64(pid), sf["pid"])
	start, err := proc.StartTime(pid)
	require.NoError(t, err)
	assert.Equal(t, float64(start), sf["start_time"], "the gateway's start time is the command's")
	s6test.Eventually(t, 5*time.Second, "the watcher to exit", func() bool { return len(watchers("x")) == 0 })
	for _, c := range children(pid) {
		ccomm, _ := procStat(t, atoi(t, c))
		assert.Equal(t, "sleep", ccomm, "the command's only child is its own sleep: no watcher, no zombie")
	}
	lock, err := os.ReadFile(filepath.Join(e.ProfileHome("x"), "gateway.lock"))
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(pid), strings.TrimSpace(string(lock)))
	assert.Contains(t, locksHeldBy(t, pid), "FLOCK", "the command holds the profile lock")

	// sleep never reaps a child it did not start: a watcher left as its child would stay
	// there as a zombie.
	plain := s6Status(t, e, "plain").PID
	s6test.Eventually(t, 5*time.Second, "plain's watcher to exit", func() bool { return len(watchers("plain")) == 0 })
	assert.Empty(t, children(plain), "no watcher, no zombie under the command")
	_, ppid = procStat(t, plain)
	pcomm, _ = procStat(t, ppid)
	assert.Equal(t, "s6-supervise", pcomm)

	// A bare SIGTERM (container stop, s6-svc -t) that kills the command: unplanned, no
	// failure, back with a new pid.
	require.NoError(t, syscall.Kill(plain, syscall.SIGTERM))
	s6test.Eventually(t, 15*time.Second, "s6 to restart the command, recorded running", func() bool {
		st := s6Status(t, e, "plain")
		m := stateFile(t, e, "plain")
		return st.Up && st.Ready && st.PID != plain && m["gateway_state"] == "running" && m["pid"] == float64(st.PID)
	})
	fs := fullStatusOf(t, e, "plain")
	assert.Zero(t, fs.ConsecutiveFailures, "a stop is not a failure")
	assert.Nil(t, fs.LastExit, "nothing was written for it")
	pid2 := pid

	// gateway restart: the command exits 0 on SIGTERM, which the restart marker explains.
	r = e.Run("gateway", "restart", "-p", "x")
	require.Equal(t, 0, r.Code, r.Stderr)
	st = s6Status(t, e, "x")
	assert.NotEqual(t, pid2, st.PID)
	fs = fullStatusOf(t, e, "x")
	assert.Zero(t, fs.ConsecutiveFailures, "a restart is not a failure")
	require.NotNil(t, fs.LastExit)
	assert.False(t, fs.LastExit.Failure)
	assert.NoFileExists(t, filepath.Join(e.ProfileHome("x"), marker.FileName), "marker consumed")

	// Operator stop: planned, persisted, stays down.
	r = e.Run("gateway", "stop", "-p", "x")
	require.Equal(t, 0, r.Code, r.Stderr)
	sf = stateFile(t, e, "x")
	assert.Equal(t, "stopped", sf["gateway_state"])
	assert.Equal(t, "stopped", sf["desired_state"])
	assert.Contains(t, sf["exit_reason"], "planned stop")
	st = s6Status(t, e, "x")
	assert.False(t, st.Up || st.WantUp, "s6 keeps it down")
	assert.NoFileExists(t, filepath.Join(e.ProfileHome("x"), marker.FileName), "marker consumed")

	// The same for a command that SIGTERM kills: the marker makes it a planned stop.
	r = e.Run("gateway", "stop", "-p", "plain")
	require.Equal(t, 0, r.Code, r.Stderr)
	assert.Equal(t, "stopped", stateFile(t, e, "plain")["gateway_state"])
	assert.False(t, s6Status(t, e, "plain").WantUp)
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	require.NoError(t, err)
	return n
}

// locksHeldBy is the lines of /proc/locks held by pid.
func locksHeldBy(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/locks")
	require.NoError(t, err)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == strconv.Itoa(pid) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Honest start under exec supervision: /bin/false makes register --start exit 1 with its
// status and log tail; a missing command is a fatal configuration s6 does not retry.
func TestExecSupervisionFailingStarts(t *testing.T) {
	e := execEnv(t)
	r := e.Run("gateway", "register", "broken", "--start", "--", "/bin/false")
	assert.Equal(t, 1, r.Code, r.Stdout)
	assert.Contains(t, r.Stderr, "gateway 'broken' did not start: command exited with status 1")
	st := fullStatusOf(t, e, "broken")
	require.NotNil(t, st.LastExit)
	assert.Equal(t, 1, *st.LastExit.Code)
	assert.True(t, st.LastExit.Failure)
	assert.GreaterOrEqual(t, st.ConsecutiveFailures, 1)

	r = e.Run("gateway", "register", "missing", "--start", "--", "/nonexistent/cmd")
	assert.Equal(t, 1, r.Code, r.Stdout)
	s6test.Eventually(t, 10*time.Second, "missing marked failed, s6 no longer restarting it", func() bool {
		st := fullStatusOf(t, e, "missing")
		return st.Failed && !st.WantUp
	})
	assert.Equal(t, "startup_failed", stateFile(t, e, "missing")["gateway_state"])
}

// A command that exits 78 (fatal configuration) under exec supervision is startup_failed and
// stays down: the slot's finish exits 125, as the wrapper's does for a 78, so s6 does not run
// it again.
func TestExecSupervisionFatalConfigStaysDown(t *testing.T) {
	e := execEnv(t)
	home := e.ProfileHome("fatal")
	registerWith(t, e, "fatal", `{"command": ["/bin/sh", "-c", "echo x >> '`+home+`/starts'; exit 78"], "settle": "200ms"}`)
	r := e.Run("gateway", "start", "-p", "fatal")
	assert.Equal(t, 1, r.Code, r.Stdout)
	s6test.Eventually(t, 10*time.Second, "fatal recorded startup_failed and s6 told not to restart it", func() bool {
		return !s6Status(t, e, "fatal").WantUp && stateFile(t, e, "fatal")["gateway_state"] == "startup_failed"
	})
	// With s6's want-up cleared nothing restarts it; a finish exiting anything but 125 would
	// have left it wanted up, and s6 would have run it again.
	b, err := os.ReadFile(filepath.Join(home, "starts"))
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(b), "x"), "one start")
	assert.Equal(t, "startup_failed", stateFile(t, e, "fatal")["gateway_state"])
}

// The crash loop under exec supervision: the slot's finish counts the failures, the next
// gateway backs off 1, 2 s, the third failure marks it failed and s6 keeps it down; start
// clears it.
func TestExecSupervisionCrashLoop(t *testing.T) {
	e := execEnv(t)
	home := e.ProfileHome("loop")
	registerWith(t, e, "loop", `{"command": `+countingCommand(home)+`, "max_failures": 3, "settle": "200ms"}`)
	r := e.Run("gateway", "start", "-p", "loop")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "did not start: command exited with status 3")
	var st fullStatus
	s6test.Eventually(t, 30*time.Second, "loop marked failed, and s6 told not to restart it", func() bool {
		st = fullStatusOf(t, e, "loop")
		return st.Failed && !st.Up && !st.WantUp
	})
	starts := startTimes(t, filepath.Join(home, "starts"))
	require.Len(t, starts, 3, "one start per allowed failure")
	for i, want := range []float64{1, 2} {
		assert.GreaterOrEqual(t, starts[i+1]-starts[i], want*0.9, "back-off before start %d", i+2)
	}
	assert.Equal(t, 3, st.ConsecutiveFailures)
	assert.Contains(t, st.FailedReason, "3 consecutive failures (limit 3); last: command exited with status 3")
	assert.Equal(t, "failed", str(st.GatewayState))
	assert.Equal(t, 1, e.Run("gateway", "status", "--check").Code)

	s6test.WriteFile(t, filepath.Join(home, "ok"), "")
	e.MustRun("gateway", "start", "-p", "loop")
	st = fullStatusOf(t, e, "loop")
	assert.True(t, st.Up && st.Ready)
	assert.False(t, st.Failed)
	assert.Zero(t, st.ConsecutiveFailures)
	e.MustRun("gateway", "status", "--check")
}

// Readiness checks under exec supervision, chosen in profile.json with "supervision": "exec"
// (no image default): start returns only once the command said it was ready; the notify_fd
// descriptor may be s6's own number (3).
func TestExecSupervisionReadiness(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("supervision tree output:\n" + e.Scan.Output())
		}
	})
	for _, tt := range []struct{ name, ready, script string }{
		{"file", `{"file": %q}`, `sleep 1.5; touch %[1]q; exec sleep 1000`},
		{"notify", `{"notify_fd": 5}`, `sleep 1.5; touch %[1]q; echo >&5; exec sleep 1000`},
		{"notify3", `{"notify_fd": 3}`, `sleep 1.5; touch %[1]q; echo >&3; exec sleep 1000`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			home := e.ProfileHome(tt.name)
			flag := filepath.Join(home, "ready-flag")
			ready := strings.Replace(tt.ready, "%q", strconv.Quote(flag), 1)
			script := strings.ReplaceAll(tt.script, "%[1]q", strconv.Quote(flag))
			cmd, _ := json.Marshal([]string{"/bin/sh", "-c", script})
			registerWith(t, e, tt.name, `{"command": `+string(cmd)+`, "ready": `+ready+`, "settle": "0s", "supervision": "exec"}`)
			e.MustRun("gateway", "start", "-p", tt.name)
			assert.FileExists(t, flag, "start returned before the command said it was ready")
			st := fullStatusOf(t, e, tt.name)
			assert.True(t, st.Ready)
			// Ready is said before the script's last exec: wait for it. Under the wrapper the
			// supervised process would stay `gateway` and this would fail.
			s6test.WaitExec(t, *st.PID, "sleep")
		})
	}
}
