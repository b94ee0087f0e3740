package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
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
	"github.com/s6gate/s6gate/pkg/marker"
	"github.com/s6gate/s6gate/pkg/proc"
	"github.com/s6gate/s6gate/pkg/s6"
)

// Exec supervision (GATEWAY_SUPERVISION=exec, profile.json "supervision"): `gateway run`
// records the command running with the time it settles (settle_until), tells s6 "ready" and
// execs it; nothing of s6gate stays beside it. The readers (status, status --check, start and
// restart) take it for starting until it has settled; the slot's finish classifies its end.

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

// The command is s6-supervise's own child under the gateway's PID, recorded running, with no
// process of s6gate beside it; the profile lock is the command's. An unmarked SIGTERM leaves
// it running and s6 brings it back, no failure counted; `restart` of a command that exits 0 on
// SIGTERM is no failure either; an operator stop persists stopped.
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
	comm := awaitExec(t, pid, "sh")
	assert.Equal(t, "sh", comm, "the command itself is the supervised process")
	_, ppid := procStat(t, pid)
	pcomm, _ := procStat(t, ppid)
	assert.Equal(t, "s6-supervise", pcomm, "and s6-supervise's direct child")
	assert.Equal(t, []string{strconv.Itoa(pid)}, children(ppid), "s6-supervise's only child: nothing settles beside the command")
	sf := stateFile(t, e, "x")
	assert.Equal(t, "running", sf["gateway_state"])
	assert.Equal(t, float64(pid), sf["pid"])
	start, err := proc.StartTime(pid)
	require.NoError(t, err)
	assert.Equal(t, float64(start), sf["start_time"], "the gateway's start time is the command's")
	for _, c := range children(pid) {
		ccomm, _ := procStat(t, atoi(t, c))
		assert.Equal(t, "sleep", ccomm, "the command's only child is its own sleep")
	}
	lock, err := os.ReadFile(filepath.Join(e.ProfileHome("x"), "gateway.lock"))
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(pid), strings.TrimSpace(string(lock)))
	assert.Contains(t, locksHeldBy(t, pid), "FLOCK", "the command holds the profile lock")

	// sleep never reaps a child it did not start: anything left as its child would stay
	// there as a zombie.
	plain := s6Status(t, e, "plain").PID
	awaitExec(t, plain, "sleep")
	assert.Empty(t, children(plain), "nothing under the command")
	_, ppid = procStat(t, plain)
	pcomm, _ = procStat(t, ppid)
	assert.Equal(t, "s6-supervise", pcomm)
	assert.Equal(t, []string{strconv.Itoa(plain)}, children(ppid))

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

// awaitExec waits until pid runs the program named comm (the exec has happened: until then
// pid is `gateway run`, which tells s6 "ready" just before it execs) and returns its comm.
func awaitExec(t *testing.T, pid int, comm string) string {
	t.Helper()
	var got string
	s6test.Eventually(t, 10*time.Second, "pid "+strconv.Itoa(pid)+" to exec "+comm, func() bool {
		got, _ = procStat(t, pid)
		return got == comm
	})
	return got
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

// The honest start with no process beside the command: while the command settles, s6 says up
// and ready (told at the exec), and the readers say what a resident gateway would — starting,
// not ready, no uptime, settle_until set, "settling" in the table — and start waits; once it
// has settled, running, ready, with its uptime. The slot's s6-supervise has no child but the
// command all the while: nothing that a kill could take away and leave the gateway starting.
func TestExecSupervisionSettlesInTheReaders(t *testing.T) {
	e := execEnv(t)
	registerWith(t, e, "x", `{"command": ["/bin/sleep", "1000"], "settle": "3s"}`)
	wait := startAsync(e, "x")
	var st fullStatus
	s6test.Eventually(t, 10*time.Second, "the command exec'd and settling", func() bool {
		st = fullStatusOf(t, e, "x")
		if !st.Up || st.PID == nil {
			return false
		}
		comm, _ := procStat(t, *st.PID)
		return comm == "sleep" && st.SettleUntil != nil
	})
	sv := s6Status(t, e, "x")
	assert.True(t, sv.Up && sv.Ready, "s6 was told ready at the exec")
	assert.Equal(t, "running", stateFile(t, e, "x")["gateway_state"], "the one record written before the exec")
	assert.Equal(t, "starting", str(st.GatewayState), "the readers: still starting")
	assert.False(t, st.Ready, "not ready before the settle time")
	assert.Nil(t, st.Uptime, "not serving yet")
	assert.True(t, st.SettleUntil.After(time.Now()))
	_, ppid := procStat(t, *st.PID)
	assert.Equal(t, []string{strconv.Itoa(*st.PID)}, children(ppid), "nothing beside the command")
	r := e.Run("gateway", "status", "-p", "x")
	assert.Regexp(t, `(?m)^x\s+up \(not ready\)\s+`+strconv.Itoa(*st.PID)+`\s+-\s+0\s+-\s+starting\s+running\s+settling: counts as started in `, r.Stdout)

	r = wait(t)
	require.Equal(t, 0, r.Code, r.Stderr)
	st = fullStatusOf(t, e, "x")
	assert.Equal(t, "running", str(st.GatewayState))
	assert.True(t, st.Up && st.Ready)
	assert.Nil(t, st.SettleUntil)
	require.NotNil(t, st.Uptime)
	assert.GreaterOrEqual(t, *st.Uptime, 3.0, "start returned before the settle time")
	e.MustRun("gateway", "status", "--check")
}

// startAsync runs `gateway start -p name` in the background; wait returns its result.
func startAsync(e *s6test.Env, name string) (wait func(t *testing.T) s6test.Result) {
	done := make(chan s6test.Result, 1)
	go func() { done <- e.Run("gateway", "start", "-p", name) }()
	return func(t *testing.T) s6test.Result {
		t.Helper()
		select {
		case r := <-done:
			return r
		case <-time.After(60 * time.Second):
			t.Fatal("gateway start still waiting after 60 s")
			return s6test.Result{}
		}
	}
}

// A command killed while it settles failed to start, as under the wrapper: start reports it,
// the record says starting again (not running) with one failure, and s6 starts it anew after
// the back-off, which settles.
func TestExecSupervisionDeathWhileSettlingIsAFailedStart(t *testing.T) {
	e := execEnv(t)
	registerWith(t, e, "x", `{"command": ["/bin/sleep", "1000"], "settle": "3s"}`)
	wait := startAsync(e, "x")
	var first int
	s6test.Eventually(t, 10*time.Second, "the command exec'd and settling", func() bool {
		st := fullStatusOf(t, e, "x")
		if st.PID == nil || st.SettleUntil == nil {
			return false
		}
		comm, _ := procStat(t, *st.PID)
		first = *st.PID
		return comm == "sleep"
	})
	require.NoError(t, syscall.Kill(first, syscall.SIGKILL))
	r := wait(t)
	assert.Equal(t, 1, r.Code, r.Stdout)
	assert.Contains(t, r.Stderr, "gateway 'x' did not start: command killed by SIGKILL after ")
	sf := stateFile(t, e, "x")
	assert.NotEqual(t, float64(first), sf["pid"])
	s6test.Eventually(t, 20*time.Second, "the next start settled", func() bool {
		st := fullStatusOf(t, e, "x")
		return st.Up && st.Ready && str(st.GatewayState) == "running" && *st.PID != first
	})
	st := fullStatusOf(t, e, "x")
	assert.Equal(t, 1, st.ConsecutiveFailures)
	require.NotNil(t, st.LastExit)
	assert.Equal(t, "SIGKILL", st.LastExit.Signal)
	assert.True(t, st.LastExit.Failure)
	assert.Less(t, st.LastExit.Uptime, 3.0)
}

// Exec supervision's books, kept by the slot's finish alone: a command that stayed up for
// stable_after and then fails starts a new count (1, not the earlier failures plus one); a
// command that exits on its own once s6 was told "down" without a marker (s6-svc -d, as a
// container stop does) is no failure.
func TestExecSupervisionBooks(t *testing.T) {
	e := execEnv(t)
	t.Run("a stable run clears the failure count", func(t *testing.T) {
		home := e.ProfileHome("stable")
		starts := strconv.Quote(filepath.Join(home, "starts"))
		// Fails on its first two starts, then stays up.
		script := `echo x >> ` + starts + `; [ "$(wc -l < ` + starts + `)" -ge 3 ] || exit 3; exec sleep 1000`
		cmd, _ := json.Marshal([]string{"/bin/sh", "-c", script})
		registerWith(t, e, "stable", `{"command": `+string(cmd)+`, "settle": "200ms", "stable_after": "1500ms"}`)
		r := e.Run("gateway", "start", "-p", "stable")
		require.Equal(t, 1, r.Code, r.Stdout)
		var st fullStatus
		s6test.Eventually(t, 30*time.Second, "the third start up for stable_after", func() bool {
			st = fullStatusOf(t, e, "stable")
			return st.Up && st.Ready && st.Uptime != nil && *st.Uptime >= 1.6
		})
		require.Equal(t, 2, st.ConsecutiveFailures, "two failures before it (cleared when it ends)")
		awaitExec(t, *st.PID, "sleep")
		require.NoError(t, syscall.Kill(*st.PID, syscall.SIGKILL))
		s6test.Eventually(t, 10*time.Second, "the crash recorded", func() bool {
			st = fullStatusOf(t, e, "stable")
			return st.LastExit != nil && st.LastExit.Signal == "SIGKILL"
		})
		assert.Equal(t, 1, st.ConsecutiveFailures, "the stable run started a new count")
		assert.True(t, st.LastExit.Failure)
		assert.GreaterOrEqual(t, st.LastExit.Uptime, 1.5)
	})
	t.Run("an exit after s6 was told down is no failure", func(t *testing.T) {
		// Exits 0 on SIGTERM: only s6's "want down" tells that from a crash.
		cmd, _ := json.Marshal([]string{"/bin/sh", "-c", `trap 'kill $!; exit 0' TERM; sleep 1000 & wait`})
		registerWith(t, e, "down", `{"command": `+string(cmd)+`, "settle": "200ms"}`)
		e.MustRun("gateway", "start", "-p", "down")
		out, err := exec.Command(filepath.Join(e.CommandDir, "s6-svc"), "-d", e.Slot("down")).CombinedOutput()
		require.NoError(t, err, "%s", out)
		var st fullStatus
		s6test.Eventually(t, 10*time.Second, "the end recorded", func() bool {
			st = fullStatusOf(t, e, "down")
			return !st.Up && st.LastExit != nil
		})
		assert.False(t, st.LastExit.Failure, "s6 wanted it down")
		require.NotNil(t, st.LastExit.Code)
		assert.Equal(t, 0, *st.LastExit.Code)
		assert.Zero(t, st.ConsecutiveFailures)
		assert.Equal(t, "running", str(st.GatewayState), "unplanned: it comes back at the next boot")
		assert.Contains(t, stateFile(t, e, "down")["exit_reason"], "unplanned")
	})
}

// sigIgnored reports whether pid ignores sig (the SigIgn mask of /proc/PID/status).
func sigIgnored(t *testing.T, pid int, sig syscall.Signal) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "SigIgn:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			require.NoError(t, err)
			return mask&(1<<(uint(sig)-1)) != 0
		}
	}
	t.Fatal("no SigIgn")
	return false
}

// The command gets SIGPIPE's default action in both modes, as s6 would give it: a command
// writing to a closed pipe ends as programs expect, instead of looping on EPIPE.
func TestCommandGetsDefaultSIGPIPE(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	e.MustRun("gateway", "register", "w", "--start", "--", "/bin/sleep", "1000")
	registerWith(t, e, "x", `{"command": ["/bin/sleep", "1000"], "supervision": "exec"}`)
	e.MustRun("gateway", "start", "-p", "x")

	wrapper := s6Status(t, e, "w").PID
	kids := children(wrapper)
	require.Len(t, kids, 1, "the wrapper's command")
	assert.False(t, sigIgnored(t, atoi(t, kids[0]), syscall.SIGPIPE), "wrapper: the command's SIGPIPE")
	x := s6Status(t, e, "x").PID
	awaitExec(t, x, "sleep")
	assert.False(t, sigIgnored(t, x, syscall.SIGPIPE), "exec: the command's SIGPIPE")
}

// A stop before the command runs (during its back-off) ends `gateway run` by the signal, as it
// would have ended the command: an unmarked SIGTERM (s6-svc -d, a container stop) writes
// nothing, and the slot's finish decides by /bin/sh alone; an operator stop (marked) records
// stopped.
func TestExecSupervisionStopDuringTheBackoff(t *testing.T) {
	e := execEnv(t)
	home := e.ProfileHome("loop")
	registerWith(t, e, "loop", `{"command": `+countingCommand(home)+`, "settle": "200ms", "backoff_max": "1m", "max_failures": 100}`)
	backingOff := func() fullStatus {
		t.Helper()
		var st fullStatus
		s6test.Eventually(t, 30*time.Second, "backing off for a while", func() bool {
			st = fullStatusOf(t, e, "loop")
			return st.BackoffUntil != nil && time.Until(*st.BackoffUntil) > time.Second
		})
		return st
	}
	r := e.Run("gateway", "start", "-p", "loop")
	require.Equal(t, 1, r.Code)
	before := backingOff()
	sf := stateFile(t, e, "loop")
	out, err := exec.Command(filepath.Join(e.CommandDir, "s6-svc"), "-d", e.Slot("loop")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	var sv s6.Status
	s6test.Eventually(t, 10*time.Second, "down, its finish done", func() bool {
		sv = s6Status(t, e, "loop")
		return !sv.Up && !sv.Finishing
	})
	assert.Equal(t, int(syscall.SIGTERM), sv.Signal, "gateway run ended by the SIGTERM itself")
	after := stateFile(t, e, "loop")
	assert.Equal(t, sf["updated_at"], after["updated_at"], "nothing written: %v", after)
	assert.Equal(t, "starting", after["gateway_state"])
	assert.Equal(t, before.ConsecutiveFailures, fullStatusOf(t, e, "loop").ConsecutiveFailures)

	// An operator stop during the back-off: recorded stopped.
	require.Equal(t, 1, e.Run("gateway", "start", "-p", "loop").Code, "the command still fails")
	backingOff()
	e.MustRun("gateway", "stop", "-p", "loop")
	assert.Equal(t, "stopped", stateFile(t, e, "loop")["gateway_state"])
}
