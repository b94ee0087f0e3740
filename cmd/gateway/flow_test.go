package main_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/marker"
	"github.com/s6gate/s6gate/pkg/proc"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/safedir"
)

type statusJSON struct {
	Profile      string  `json:"profile"`
	Up           bool    `json:"up"`
	PID          *int    `json:"pid"`
	Ready        bool    `json:"ready"`
	GatewayState *string `json:"gateway_state"`
	DesiredState *string `json:"desired_state"`
}

func status(t *testing.T, e *s6test.Env, run func(string, ...string) s6test.Result, name string) statusJSON {
	t.Helper()
	r := run("gateway", "status", "-p", name, "--json")
	require.Equal(t, 0, r.Code, r.Stderr)
	var out []statusJSON
	require.NoError(t, json.Unmarshal([]byte(r.Stdout), &out), r.Stdout)
	require.Len(t, out, 1)
	return out[0]
}

func stateFile(t *testing.T, e *s6test.Env, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.ProfileHome(name), "gateway_state.json"))
	if err != nil {
		return nil
	}
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// writeMarker writes m into home as the stop verb would, owned by the service user so that
// the gateway can read it.
func writeMarkerAs(t *testing.T, e *s6test.Env, home *safedir.Dir, m marker.Marker) {
	t.Helper()
	require.NoError(t, marker.Write(home, m))
	require.NoError(t, os.Chown(home.Join(marker.FileName), e.UID, e.GID))
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// The core promise end to end, with Debian's s6 and the real gateway binary in the slot:
// register (down) → start → the gateway itself records running → a bare SIGTERM (what a
// container stop sends) persists running and s6 brings it back → an operator stop persists
// stopped and consumes the marker → unregister.
func TestFlowRegisterStartKillStopUnregister(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()

	r := e.MustRun("gateway", "register", "coder", "--env", "GREETING=hello world")
	assert.Contains(t, r.Stdout, "registered gateway 'coder'")
	assert.FileExists(t, filepath.Join(e.Slot("coder"), "down"))
	st := status(t, e, e.Run, "coder")
	assert.False(t, st.Up, "registered down")
	assert.Equal(t, "stopped", str(st.DesiredState))

	r = e.MustRun("gateway", "start", "-p", "coder")
	assert.Contains(t, r.Stdout, "started gateway 'coder'")
	st = status(t, e, e.Run, "coder")
	require.True(t, st.Up)
	require.NotNil(t, st.PID)
	pid := *st.PID
	assert.True(t, st.Ready)
	assert.NoFileExists(t, filepath.Join(e.Slot("coder"), "down"))
	sf := stateFile(t, e, "coder")
	assert.Equal(t, "running", sf["gateway_state"], "written by the gateway itself")
	assert.Equal(t, float64(pid), sf["pid"], "by the process s6 supervises")
	assert.Equal(t, "running", sf["desired_state"])

	// A bare kill: unplanned. The gateway persists running and s6 restarts it.
	killAndWaitBack := func(pid int) int {
		t.Helper()
		require.NoError(t, syscall.Kill(pid, syscall.SIGTERM))
		var newPID int
		s6test.Eventually(t, 15*time.Second, "s6 to restart the gateway with a new pid that recorded running", func() bool {
			s, err := s6.Tools{Dir: e.CommandDir}.ReadStatus(context.Background(), e.Slot("coder"))
			if err != nil || !s.Up || s.PID == pid || !s.Ready {
				return false
			}
			newPID = s.PID
			m := stateFile(t, e, "coder")
			return m["gateway_state"] == "running" && m["pid"] == float64(s.PID)
		})
		return newPID
	}
	newPID := killAndWaitBack(pid)
	assert.NotEqual(t, pid, newPID)
	assert.Contains(t, e.Scan.Output(), "SIGTERM: no planned-stop marker", "the gateway logged why it counted the stop as unplanned")

	// Markers that must not turn a SIGTERM into a planned stop: the right PID with another
	// start time (a PID reused across boots), and the right process but older than 60 s.
	home, err := safedir.Open(e.ProfileHome("coder"), "")
	require.NoError(t, err)
	defer home.Close()
	start, err := proc.StartTime(newPID)
	require.NoError(t, err)
	other := start + 1
	writeMarkerAs(t, e, home, marker.Marker{TargetPID: newPID, TargetStartTime: &other, StopperPID: 1, WrittenAt: time.Now().UTC().Format(time.RFC3339Nano)})
	third := killAndWaitBack(newPID)
	assert.Contains(t, e.Scan.Output(), "started at tick", "logged: the marker named another process")
	assert.NoFileExists(t, filepath.Join(e.ProfileHome("coder"), marker.FileName), "evaluated, so removed")

	start, err = proc.StartTime(third)
	require.NoError(t, err)
	writeMarkerAs(t, e, home, marker.Marker{TargetPID: third, TargetStartTime: &start, StopperPID: 1, WrittenAt: time.Now().Add(-61 * time.Second).UTC().Format(time.RFC3339Nano)})
	killAndWaitBack(third)
	assert.Contains(t, e.Scan.Output(), "TTL 1m0s", "logged: the marker was too old")
	assert.Equal(t, "running", stateFile(t, e, "coder")["gateway_state"])

	// An operator stop: planned.
	r = e.MustRun("gateway", "stop", "-p", "coder")
	assert.Contains(t, r.Stdout, "stopped gateway 'coder'")
	st = status(t, e, e.Run, "coder")
	assert.False(t, st.Up)
	sf = stateFile(t, e, "coder")
	assert.Equal(t, "stopped", sf["gateway_state"])
	assert.Equal(t, "stopped", sf["desired_state"])
	assert.Contains(t, sf["exit_reason"], "planned stop")
	assert.NoFileExists(t, filepath.Join(e.ProfileHome("coder"), marker.FileName), "marker consumed")

	// The gateway's output reached the logger's file copy and stdout (docker logs).
	logFile := filepath.Join(e.Home, "logs", "gateways", "coder", "current")
	s6test.Eventually(t, 5*time.Second, "s6-log to write "+logFile, func() bool {
		b, _ := os.ReadFile(logFile)
		return strings.Contains(string(b), "gateway started")
	})
	assert.Contains(t, e.Scan.Output(), "gateway started", "s6-log's `1` copies lines to stdout")

	e.MustRun("gateway", "start", "-p", "coder")
	r = e.MustRun("gateway", "unregister", "coder")
	assert.Contains(t, r.Stdout, "unregistered")
	assert.NoDirExists(t, e.Slot("coder"))
	assert.Empty(t, supervisorsOf(e.Scan, "gateway-coder"), "s6-svscan was told to drop the supervisors (-an), none lingers")
	// Unregistering a running gateway is an operator stop, and it sticks: the next boot
	// leaves the profile out.
	r = e.MustRun("gw-reconcile", "--dry-run")
	assert.Contains(t, r.Stdout, "profile=coder prior_state=stopped action=unregistered")
	entries, err := os.ReadDir(e.ScanDir)
	require.NoError(t, err)
	for _, en := range entries {
		assert.Contains(t, []string{".s6-svscan", ".s6gate-locks"}, en.Name(), "nothing but s6-svscan's directory and the verb locks is left")
	}
	r = e.Run("gateway", "status", "-p", "coder")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "no such gateway 'coder'")
	assert.DirExists(t, e.ProfileHome("coder"), "unregister keeps the profile's data")
}

func TestFlowRestartAndAll(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	for _, p := range []string{"a", "b", "c"} {
		e.MustRun("gateway", "register", p, "--start")
	}
	before := map[string]int{}
	for _, p := range []string{"a", "b", "c"} {
		st := status(t, e, e.Run, p)
		require.True(t, st.Up, p)
		before[p] = *st.PID
	}
	r := e.MustRun("gateway", "restart", "-p", "b")
	assert.Contains(t, r.Stdout, "restarted gateway 'b'")
	st := status(t, e, e.Run, "b")
	assert.True(t, st.Up)
	assert.NotEqual(t, before["b"], *st.PID, "a new process")
	assert.Equal(t, "running", stateFile(t, e, "b")["gateway_state"])

	r = e.MustRun("gateway", "stop", "--all")
	for _, p := range []string{"a", "b", "c"} {
		assert.Contains(t, r.Stdout, "stopped gateway '"+p+"'")
		assert.Equal(t, "stopped", stateFile(t, e, p)["gateway_state"], p)
	}
	// restart --all acts on the gateways meant to run: none is, after stop --all.
	r = e.MustRun("gateway", "restart", "--all")
	for _, p := range []string{"a", "b", "c"} {
		assert.False(t, status(t, e, e.Run, p).Up, p)
		assert.Equal(t, "stopped", stateFile(t, e, p)["desired_state"], p)
	}
	e.MustRun("gateway", "start", "--all")
	r = e.MustRun("gateway", "restart", "--all")
	for _, p := range []string{"a", "b", "c"} {
		assert.Contains(t, r.Stdout, "restarted gateway '"+p+"'")
		assert.True(t, status(t, e, e.Run, p).Up, p)
		assert.Equal(t, "running", stateFile(t, e, p)["desired_state"], p)
	}
	r = e.MustRun("gateway", "list")
	assert.Equal(t, "a\nb\nc\n", r.Stdout)
	r = e.MustRun("gateway", "status")
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	require.Len(t, lines, 4, r.Stdout)
	assert.Regexp(t, `^PROFILE\s+S6\s+PID`, lines[0])
	assert.Regexp(t, `^a\s+up\s+\d+`, lines[1])
	r = e.MustRun("gateway", "status", "--check")
	e.MustRun("gateway", "stop", "-p", "a")
	e.MustRun("gateway", "status", "--check") // stopped on purpose is healthy

	// Down against its recorded intent (a raw s6-svc bypasses the verbs): unhealthy, named.
	out, err := exec.Command(filepath.Join(e.CommandDir, "s6-svc"), "-d", e.Slot("b")).CombinedOutput()
	require.NoError(t, err, string(out))
	s6test.Eventually(t, 10*time.Second, "b down", func() bool { return !status(t, e, e.Run, "b").Up })
	r = e.Run("gateway", "status", "--check")
	assert.Equal(t, 0, r.Code, "down for less than GATEWAY_HEALTH_GRACE (30s) is still healthy: %s", r.Stderr)
	e.Extra = append(e.Extra, "GATEWAY_HEALTH_GRACE=0")
	r = e.Run("gateway", "status", "--check")
	assert.Equal(t, 1, r.Code, "status --check must fail while a gateway meant to run is down past the grace")
	assert.Contains(t, r.Stderr, "'b'")
	r = e.Run("gateway", "status", "--check", "-p", "c")
	assert.Equal(t, 0, r.Code, "c itself is fine: %s", r.Stderr)
}

// supervisorsOf lists the PIDs of the s6-supervise processes of the service called name (and
// of its logger) in the test's own supervision tree, never another test's.
func supervisorsOf(scan *s6test.Scan, name string) []int { return scan.Supervisors(name) }

// An unprivileged operator (the service user, as with `docker exec -u gateway`) and root
// (the `docker exec` default) run every verb on each other's gateways; whatever root creates
// is the service user's, because the binaries become the service user before they act.
func TestFlowUnprivilegedOperator(t *testing.T) {
	s6test.RequireRoot(t)
	e := s6test.NewEnv(t, nil)
	e.Start()
	e.MustRun("gateway", "register", "seeded") // as root

	as := e.RunAsService
	mustAs := func(args ...string) s6test.Result {
		t.Helper()
		r := as("gateway", args...)
		require.Equal(t, 0, r.Code, "as %s: gateway %v: %s", e.ServiceUser, args, r.Stderr)
		return r
	}
	mustAs("start", "-p", "seeded")
	st := status(t, e, as, "seeded")
	require.True(t, st.Up)
	mustAs("stop", "-p", "seeded")
	assert.Equal(t, "stopped", stateFile(t, e, "seeded")["gateway_state"])
	mustAs("restart", "-p", "seeded")
	assert.True(t, status(t, e, as, "seeded").Up)

	mustAs("register", "mine", "--start", "--", "sh", "-c", "echo mine-started; exec sleep 1000")
	st = status(t, e, as, "mine")
	assert.True(t, st.Up)
	e.MustRun("gateway", "restart", "-p", "mine") // root acts on the service user's gateway
	owner := func(p string) uint32 {
		fi, err := os.Lstat(p)
		require.NoError(t, err)
		return fi.Sys().(*syscall.Stat_t).Uid
	}
	for _, p := range []string{
		e.ProfileHome("mine"), e.ProfileHome("seeded"),
		filepath.Join(e.ProfileHome("seeded"), "gateway_state.json"),
		filepath.Join(e.ProfileHome("mine"), "gateway_state.json"),
		e.Slot("seeded"), filepath.Join(e.Slot("seeded"), "run"), filepath.Join(e.Slot("seeded"), "supervise"),
		filepath.Join(e.ScanDir, ".s6gate-locks", "seeded"),
	} {
		assert.Equal(t, uint32(e.UID), owner(p), p)
	}
	mustAs("unregister", "mine")
	assert.NoDirExists(t, e.Slot("mine"))
	mustAs("unregister", "seeded")
	assert.NoDirExists(t, e.Slot("seeded"))
}

// A stop and a start racing on one profile end consistently: whichever verb ran last, the
// recorded intent, the down file and s6 agree (the verbs hold a per-slot lock).
func TestConcurrentVerbsLeaveIntentAndS6InAgreement(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	e.MustRun("gateway", "register", "racy", "--start")
	for i := range 8 {
		done := make(chan s6test.Result, 2)
		go func() { done <- e.Run("gateway", "stop", "-p", "racy") }()
		go func() { done <- e.Run("gateway", "start", "-p", "racy") }()
		for range 2 {
			r := <-done
			require.Equal(t, 0, r.Code, "round %d: %s", i, r.Stderr)
		}
		st := status(t, e, e.Run, "racy")
		desired := str(st.DesiredState)
		_, err := os.Stat(filepath.Join(e.Slot("racy"), "down"))
		hasDown := err == nil
		assert.Equal(t, desired == "running", st.Up, "round %d: desired %s, up %v", i, desired, st.Up)
		assert.Equal(t, desired == "stopped", hasDown, "round %d: desired %s, down file %v", i, desired, hasDown)
	}
}

// unregister+register racing start and stop on one profile, round after round: whatever order
// the verb lock gives them, once all three have returned the gateway is never up while its
// recorded intent is stopped (SPEC §12). Before the lock survived unregister, a waiting verb
// could lock the deleted slot's inode and act next to a later register.
func TestUnregisterRegisterRacingStartStopKeepsIntentAndS6InAgreement(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	e.MustRun("gateway", "register", "racy", "--start")
	rounds := 150
	if testing.Short() {
		rounds = 20
	}
	codes := map[string]map[int]int{"start": {}, "stop": {}}
	for i := range rounds {
		var wg sync.WaitGroup
		results := make([]s6test.Result, 4)
		wg.Add(3)
		go func() {
			defer wg.Done()
			results[0] = e.Run("gateway", "unregister", "racy")
			results[1] = e.Run("gateway", "register", "racy")
		}()
		go func() { defer wg.Done(); results[2] = e.Run("gateway", "start", "-p", "racy") }()
		go func() { defer wg.Done(); results[3] = e.Run("gateway", "stop", "-p", "racy") }()
		wg.Wait()
		require.Equal(t, 0, results[0].Code, "round %d: unregister: %s", i, results[0].Stderr)
		require.Equal(t, 0, results[1].Code, "round %d: register: %s", i, results[1].Stderr)
		for j, verb := range map[int]string{2: "start", 3: "stop"} {
			r := results[j]
			codes[verb][r.Code]++
			if r.Code != 0 {
				// The only acceptable failure: the profile was unregistered at that moment.
				require.Contains(t, r.Stderr, "no such gateway 'racy'", "round %d: %s", i, verb)
			}
		}
		st := status(t, e, e.Run, "racy")
		if st.Up {
			require.Equal(t, "running", str(st.DesiredState), "round %d: up while the recorded intent is %q", i, str(st.DesiredState))
		}
		_, err := os.Stat(filepath.Join(e.Slot("racy"), "down"))
		require.Equal(t, str(st.DesiredState) == "stopped", err == nil, "round %d: the down file agrees with the intent %q", i, str(st.DesiredState))
	}
	t.Logf("exit codes over %d rounds: %v", rounds, codes)
}
