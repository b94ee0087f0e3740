package operator_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
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
	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/marker"
	"github.com/s6gate/s6gate/pkg/operator"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/slot"
)

func TestMain(m *testing.M) { s6test.Main(m) }

// newOperator builds an Operator over env's directories with the given command directory.
func newOperator(t testing.TB, e *s6test.Env, cmdDir string) *operator.Operator {
	t.Helper()
	s := config.Settings{Home: e.Home, ScanDir: e.ScanDir, CommandDir: cmdDir, User: e.ServiceUser, Bin: e.Bin["gateway"], DrainTimeout: time.Second}
	op := operator.New(s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	op.Timeout = 10 * time.Second
	return op
}

// recorder is a command directory whose every s6 tool only records that it ran.
func recorder(t *testing.T) (dir, log string) {
	t.Helper()
	log = filepath.Join(t.TempDir(), "calls")
	script := filepath.Join(t.TempDir(), "record")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\necho \"$(basename \"$0\") $*\" >> "+log+"\n"), 0o755))
	dir = filepath.Join(t.TempDir(), "command")
	require.NoError(t, os.Mkdir(dir, 0o755))
	for _, tool := range []string{"s6-svc", "s6-svscanctl", "s6-svstat", "s6-svwait", "s6-svok"} {
		require.NoError(t, os.Symlink(script, filepath.Join(dir, tool)))
	}
	return dir, log
}

func TestVerbsReportNotRegisteredBeforeAnyToolRuns(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	e.Start() // the verbs wait for the boot: a live s6-svscan on the scan directory
	cmdDir, calls := recorder(t)
	op := newOperator(t, e, cmdDir)
	before := s6test.Snapshot(t, e.Home, e.ScanDir)
	ctx := context.Background()
	for name, verb := range map[string]func(context.Context, string) (operator.Result, error){
		"start": op.Start, "stop": op.Stop, "restart": op.Restart,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := verb(ctx, "typo")
			var nre *slot.NotRegisteredError
			require.ErrorAs(t, err, &nre)
			assert.Equal(t, "typo", nre.Profile)
			assert.Equal(t, "gateway-typo", nre.Service)
			assert.Contains(t, err.Error(), "no such gateway 'typo'")
			assert.Contains(t, err.Error(), "gateway register typo", "the message says how to register it")
			assert.Equal(t, exitcode.Failed, exitcode.Of(err))
		})
	}
	_, err := op.Status(ctx, []string{"typo"})
	require.ErrorAs(t, err, new(*slot.NotRegisteredError))
	assert.NoFileExists(t, calls, "no s6 tool ran")
	assert.Equal(t, before, s6test.Snapshot(t, e.Home, e.ScanDir), "a typo creates nothing")
}

func TestBadInputIsAUsageErrorAndChangesNothing(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	cmdDir, calls := recorder(t)
	op := newOperator(t, e, cmdDir)
	before := s6test.Snapshot(t, e.Home, e.ScanDir)
	ctx := context.Background()
	for _, bad := range []string{"", "Bad", "../escape", "a/b", "-x", ".hidden", "name with space", strings.Repeat("a", profile.MaxNameLen+1)} {
		_, err := op.Register(ctx, bad, operator.RegisterOptions{})
		assert.Equal(t, exitcode.Usage, exitcode.Of(err), "register %q", bad)
		_, err = op.Start(ctx, bad)
		assert.Equal(t, exitcode.Usage, exitcode.Of(err), "start %q", bad)
		_, err = op.Unregister(ctx, bad, operator.UnregisterOptions{})
		assert.Equal(t, exitcode.Usage, exitcode.Of(err), "unregister %q", bad)
	}
	_, err := op.Register(ctx, "ok", operator.RegisterOptions{Env: map[string]string{"BAD-NAME": "x"}})
	assert.Equal(t, exitcode.Usage, exitcode.Of(err))
	_, err = profile.ParseEnv([]string{"NOEQUALS"})
	assert.Equal(t, exitcode.Usage, exitcode.Of(err))

	op.Settings.Home = filepath.Join(e.Base, "missing-root")
	_, err = op.Register(ctx, "coder", operator.RegisterOptions{})
	assert.Equal(t, exitcode.Usage, exitcode.Of(err))
	assert.Contains(t, err.Error(), "missing-root")

	assert.NoFileExists(t, calls)
	assert.Equal(t, before, s6test.Snapshot(t, e.Home, e.ScanDir))
	assert.NoDirExists(t, filepath.Join(e.Base, "missing-root"))
}

func TestRegisterRollsBackWhenRescanFails(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	e.Start()
	beforePaths := map[string]bool{}
	for _, p := range pathsUnder(t, e.Home, e.ScanDir) {
		beforePaths[p] = true
	}
	cmdDir := e.CommandDirWith(map[string]string{
		"s6-svscanctl": s6test.FailingTool(t, 1, "s6-svscanctl: fatal: rescan failed"),
	})
	op := newOperator(t, e, cmdDir)
	_, err := op.Register(context.Background(), "coder", operator.RegisterOptions{Env: map[string]string{"A": "1"}})
	require.Error(t, err)
	var ce *s6.CommandError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "s6-svscanctl", ce.Tool)
	assert.Equal(t, 1, ce.ExitCode)
	assert.Contains(t, err.Error(), "s6-svscanctl failed")
	assert.Contains(t, err.Error(), "rescan failed")
	assert.NoDirExists(t, e.Slot("coder"), "the published slot is removed again")
	entries, _ := os.ReadDir(e.ScanDir)
	for _, en := range entries {
		assert.Contains(t, []string{".s6-svscan", ".s6gate-locks"}, en.Name(), "no staging or detached directory left")
	}
	assert.NoDirExists(t, e.ProfileHome("coder"), "the home this call created is removed again")
	for _, p := range pathsUnder(t, e.Home, e.ScanDir) {
		if !beforePaths[p] {
			assert.Regexp(t, `/(\.s6gate-locks(/coder)?|profiles|logs|logs/gateways)$`, p, "only infrastructure directories and the verb lock are new")
		}
	}

	// The next attempt, with a working s6, is not blocked by leftovers.
	_, err = newOperator(t, e, e.CommandDir).Register(context.Background(), "coder", operator.RegisterOptions{})
	require.NoError(t, err)
	assert.DirExists(t, e.Slot("coder"))
}

// pathsUnder lists every path under roots.
func pathsUnder(t *testing.T, roots ...string) []string {
	t.Helper()
	var out []string
	for _, r := range roots {
		require.NoError(t, filepath.Walk(r, func(p string, _ os.FileInfo, err error) error {
			out = append(out, p)
			return err
		}))
	}
	return out
}

func TestRegisterDuplicateAndUnregisterAbsent(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	e.Start()
	op := newOperator(t, e, e.CommandDir)
	ctx := context.Background()
	_, err := op.Register(ctx, "coder", operator.RegisterOptions{})
	require.NoError(t, err)
	_, err = op.Register(ctx, "coder", operator.RegisterOptions{})
	var are *slot.AlreadyRegisteredError
	require.ErrorAs(t, err, &are)
	assert.Contains(t, err.Error(), "already registered")

	r, err := op.Unregister(ctx, "ghost", operator.UnregisterOptions{})
	require.NoError(t, err, "unregistering an absent slot is a no-op")
	assert.Contains(t, r.Note, "not registered")
	assert.NoDirExists(t, e.ProfileHome("ghost"))
}

// A scan directory that holds GATEWAY_MAX_SERVICES services refuses one more registration
// with one line that names the limit, and writes nothing: s6-svscan would never supervise it.
func TestRegisterRefusedWhenS6SvscanIsFull(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	e.Start()
	op := newOperator(t, e, e.CommandDir)
	ctx := context.Background()
	n, err := slot.Services(e.ScanDir)
	require.NoError(t, err)
	op.Settings.MaxServices = n + 1
	_, err = op.Register(ctx, "first", operator.RegisterOptions{})
	require.NoError(t, err)
	// The first gateway's logger makes its log directory as it starts: wait until it has
	// (s6-log opens current last), so that the snapshot is not taken half-way through that.
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(e.Home, "logs", "gateways", "first", "current"))
		return err == nil
	}, 30*time.Second, 10*time.Millisecond, "the first gateway's logger started")
	before := s6test.Snapshot(t, e.Home)
	_, err = op.Register(ctx, "second", operator.RegisterOptions{})
	var fe *slot.FullError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, n+1, fe.Services)
	assert.Contains(t, err.Error(), "GATEWAY_MAX_SERVICES")
	assert.Equal(t, exitcode.Failed, exitcode.Of(err))
	assert.Equal(t, before, s6test.Snapshot(t, e.Home), "a refused registration writes nothing in the data root")
	assert.NoDirExists(t, slot.Path(e.ScanDir, "second"), "nor a slot (its verb lock stays, as every verb's does)")

	_, err = op.Unregister(ctx, "first", operator.UnregisterOptions{})
	require.NoError(t, err)
	_, err = op.Register(ctx, "second", operator.RegisterOptions{})
	require.NoError(t, err, "room again once a gateway is unregistered")
}

func TestCommandErrorCarriesExitCodeAndStderr(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	e.Start()
	op := newOperator(t, e, e.CommandDir)
	ctx := context.Background()
	_, err := op.Register(ctx, "coder", operator.RegisterOptions{})
	require.NoError(t, err)

	failing := e.CommandDirWith(map[string]string{
		"s6-svc": s6test.FailingTool(t, 111, "s6-svc: fatal: unable to control supervise/control: Permission denied"),
	})
	_, err = newOperator(t, e, failing).Start(ctx, "coder")
	var ce *s6.CommandError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "gateway-coder", ce.Object)
	assert.Equal(t, "start", ce.Action)
	assert.Equal(t, 111, ce.ExitCode)
	assert.Contains(t, ce.Stderr, "Permission denied")
	assert.Contains(t, err.Error(), "rc=111")
}

// A slot whose service is a plain sleep: it does not consume the marker, so the test can read
// what stop wrote.
func registerSleeper(t *testing.T, e *s6test.Env, op *operator.Operator, name string) {
	t.Helper()
	_, err := op.Register(context.Background(), name, operator.RegisterOptions{})
	require.NoError(t, err)
	run := filepath.Join(e.Slot(name), "run")
	require.NoError(t, os.WriteFile(run, []byte("#!/bin/sh\nexec sleep 1000\n"), 0o755))
	require.NoError(t, os.Remove(filepath.Join(e.Slot(name), "notification-fd")))
}

func TestStopWritesMarkerForTheSupervisedPID(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	e.Start()
	op := newOperator(t, e, e.CommandDir)
	ctx := context.Background()
	registerSleeper(t, e, op, "coder")
	r, err := op.Start(ctx, "coder")
	require.NoError(t, err)
	supervised := r.PID
	require.Positive(t, supervised)
	st, err := s6.Tools{Dir: e.CommandDir}.ReadStatus(ctx, e.Slot("coder"))
	require.NoError(t, err)
	require.Equal(t, st.PID, supervised)

	_, err = op.Stop(ctx, "coder")
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(e.ProfileHome("coder"), marker.FileName))
	require.NoError(t, err, "stop left a marker (this service does not consume it)")
	var m marker.Marker
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Equal(t, supervised, m.TargetPID, "the marker names the PID s6 supervised")
	require.NotNil(t, m.TargetStartTime)
	assert.Positive(t, m.StopperPID)
	_, err = time.Parse(time.RFC3339Nano, m.WrittenAt)
	assert.NoError(t, err)

	st, err = s6.Tools{Dir: e.CommandDir}.ReadStatus(ctx, e.Slot("coder"))
	require.NoError(t, err)
	assert.False(t, st.Up)
	assert.FileExists(t, filepath.Join(e.Slot("coder"), "down"), "the slot keeps a stopped gateway down")
}

func TestMarkerWriteFailureDoesNotBlockStop(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	e.Start()
	op := newOperator(t, e, e.CommandDir)
	ctx := context.Background()
	registerSleeper(t, e, op, "coder")
	_, err := op.Start(ctx, "coder")
	require.NoError(t, err)
	// A directory where the marker file should go: the atomic rename cannot replace it.
	require.NoError(t, os.Mkdir(filepath.Join(e.ProfileHome("coder"), marker.FileName), 0o755))

	_, err = op.Stop(ctx, "coder")
	require.NoError(t, err, "a marker that cannot be written never blocks the stop")
	st, err := s6.Tools{Dir: e.CommandDir}.ReadStatus(ctx, e.Slot("coder"))
	require.NoError(t, err)
	assert.False(t, st.Up)
}

func TestStartFailsFastWhenS6GivesUp(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	e.Start()
	op := newOperator(t, e, e.CommandDir)
	ctx := context.Background()
	_, err := op.Register(ctx, "broken", operator.RegisterOptions{Command: []string{"/nonexistent/binary"}})
	require.NoError(t, err)
	start := time.Now()
	_, err = op.Start(ctx, "broken")
	var sf *operator.StartFailedError
	require.ErrorAs(t, err, &sf)
	assert.Contains(t, err.Error(), "/nonexistent/binary")
	assert.Less(t, time.Since(start), op.Timeout, "fails before the time-out")
	got, err := operator.New(op.Settings, nil).Status(ctx, []string{"broken"})
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "startup_failed", *got[0].GatewayState)
	assert.False(t, got[0].Healthy)
	assert.True(t, got[0].Failed)
}

func newOperatorB(b *testing.B, e *s6test.Env) *operator.Operator {
	return newOperator(b, e, e.CommandDir)
}

// The start/stop/restart verbs drive s6 with the flags of SPEC §6: start = s6-svc -u, stop = s6-svc -d,
// restart = s6-svc -t (an unmarked SIGTERM). A wrapper records each call and execs the real tool.
func TestStartStopRestartUseTheSpecFlags(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	e.Start()
	calls := filepath.Join(t.TempDir(), "svc-calls")
	spy := filepath.Join(t.TempDir(), "s6-svc")
	require.NoError(t, os.WriteFile(spy, []byte("#!/bin/sh\necho \"$*\" >> "+calls+"\nexec /usr/bin/s6-svc \"$@\"\n"), 0o755))
	cmdDir := e.CommandDirWith(map[string]string{"s6-svc": spy})
	op := newOperator(t, e, cmdDir)
	ctx := context.Background()
	_, err := op.Register(ctx, "coder", operator.RegisterOptions{})
	require.NoError(t, err)
	slotDir := e.Slot("coder")
	for _, step := range []struct {
		verb func(context.Context, string) (operator.Result, error)
		want string
	}{{op.Start, "-u " + slotDir}, {op.Stop, "-d " + slotDir}, {op.Start, "-u " + slotDir}, {op.Restart, "-t -u " + slotDir}} {
		require.NoError(t, os.RemoveAll(calls))
		_, err := step.verb(ctx, "coder")
		require.NoError(t, err)
		b, err := os.ReadFile(calls)
		require.NoError(t, err)
		assert.Equal(t, step.want+"\n", string(b))
	}
}

// The profile's environment belongs to the service user (profile.json is its file). Nothing
// from it may reach a process that runs as root: not a PATH that would make root run the
// user's own `id`, not an LD_PRELOAD for root's dynamically linked s6-setuidgid. In the image
// the gateways' s6-svscan is the service user's, so no root process ever starts a slot; this
// test puts a slot under a root s6-svscan, where its run script must drop privileges itself
// before it exports anything.
func TestProfileEnvironmentNeverReachesRoot(t *testing.T) {
	s6test.RequireRoot(t)
	e := s6test.NewEnv(t, nil)
	evil := filepath.Join(e.Base, "evil")
	require.NoError(t, os.Mkdir(evil, 0o777))
	require.NoError(t, os.Chmod(evil, 0o777))
	evidence := filepath.Join(evil, "ran")
	require.NoError(t, os.WriteFile(filepath.Join(evil, "id"), []byte("#!/bin/sh\necho \"uid=$(/usr/bin/id -u)\" >> "+evidence+"\nexec /usr/bin/id \"$@\"\n"), 0o755))
	require.NoError(t, os.MkdirAll(e.ProfileHome("evil"), 0o755))
	require.NoError(t, os.Chown(e.ProfileHome("evil"), e.UID, e.GID))
	require.NoError(t, os.Chown(filepath.Dir(e.ProfileHome("evil")), e.UID, e.GID))

	// The gateway's command shows what the gateway gave it; a static one (the multi-call
	// binary's s6-sleep), since ld.so would complain about the LD_PRELOAD, as the service
	// user, in the same output.
	sleeper := filepath.Join(e.Base, "s6-sleep")
	require.NoError(t, os.Symlink(e.Bin["s6gate"], sleeper))
	rootScan := filepath.Join(e.Base, "rootscan")
	require.NoError(t, os.Mkdir(rootScan, 0o755))
	settings := config.Settings{Home: e.Home, ScanDir: rootScan, CommandDir: e.CommandDir, User: e.ServiceUser, Bin: e.Bin["gateway"]}
	spec := slot.NewSpec(settings, "evil", profile.Config{Env: map[string]string{
		"PATH": evil + ":/usr/bin:/bin", "LD_PRELOAD": "/nonexistent/preload.so",
	}, Command: []string{sleeper, "100000"}}, false)
	dir, err := slot.Publish(rootScan, spec)
	require.NoError(t, err)
	// The slot is the service user's, as gw-render (which becomes the service user) makes it.
	require.NoError(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			err = os.Lchown(p, e.UID, e.GID)
		}
		return err
	}))
	scan := e.StartScanOn(rootScan)
	var st s6.Status
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("s6-svscan output:\n%s", scan.Output())
		}
	})
	s6test.Eventually(t, 10*time.Second, "the gateway up under the root s6-svscan", func() bool {
		st, err = s6.Tools{Dir: e.CommandDir}.ReadStatus(context.Background(), filepath.Join(rootScan, "gateway-evil"))
		return err == nil && st.Up && st.Ready
	})
	b, _ := os.ReadFile(evidence)
	assert.NotContains(t, string(b), "uid=0", "root ran the profile's id")
	assert.NotContains(t, scan.Output(), "preload.so", "root's s6-setuidgid saw the profile's LD_PRELOAD")
	// And the gateway itself did get its environment, as the service user: its command was
	// started with the profile's variables (the gateway sets them in its own environment, so
	// its /proc/PID/environ, the one it was started with, does not show them).
	pid := strconv.Itoa(st.PID)
	tasks, err := filepath.Glob("/proc/" + pid + "/task/*/children") // the thread that forked it
	require.NoError(t, err)
	var child []string
	for _, p := range tasks {
		b, _ := os.ReadFile(p)
		child = append(child, strings.Fields(string(b))...)
	}
	require.Len(t, child, 1, "the gateway's command")
	childPID, err := strconv.Atoi(child[0])
	require.NoError(t, err)
	s6test.WaitExec(t, childPID, filepath.Base(sleeper)) // environ is what its last exec got
	environ, err := os.ReadFile("/proc/" + child[0] + "/environ")
	require.NoError(t, err)
	assert.Contains(t, strings.Split(string(environ), "\x00"), "PATH="+evil+":/usr/bin:/bin")
	assert.Contains(t, strings.Split(string(environ), "\x00"), "LD_PRELOAD=/nonexistent/preload.so")
	cmdline, err := os.ReadFile("/proc/" + pid + "/cmdline")
	require.NoError(t, err)
	assert.NotContains(t, string(cmdline), "preload.so", "a profile value on the gateway's command line, readable by every user")
	for _, p := range []string{pid, child[0]} {
		procStat, err := os.Stat("/proc/" + p)
		require.NoError(t, err)
		assert.Equal(t, uint32(e.UID), procStat.Sys().(*syscall.Stat_t).Uid, "the gateway and its command run as the service user")
	}
}

// A registration killed between publishing the slot and asking s6-svscan to scan leaves a slot
// nobody supervises (s6-svscan scans only when asked). The next verb on it asks for the scan
// itself instead of timing out on "supervisor not listening".
func TestVerbsRescanForAnUnsupervisedSlot(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	e.Start()
	op := newOperator(t, e, e.CommandDir)
	_, err := slot.Publish(e.ScanDir, slot.NewSpec(op.Settings, "orphan", profile.Config{}, true))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(e.ProfileHome("orphan"), 0o750))
	ok, _ := s6.Supervised(e.Slot("orphan"))
	require.False(t, ok, "no scan yet")
	r, err := op.Start(context.Background(), "orphan")
	require.NoError(t, err)
	assert.Positive(t, r.PID)
}

// Update refuses a reserved variable as register does (the slot sets it, or s6gate carries
// its own values in it), before it writes anything; unsetting only needs a valid name.
func TestUpdateRefusesReservedEnvNames(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	e.Start()
	op := newOperator(t, e, e.CommandDir)
	ctx := context.Background()
	_, err := op.Register(ctx, "coder", operator.RegisterOptions{})
	require.NoError(t, err)
	before := s6test.Snapshot(t, e.Home)
	for _, k := range []string{"S6GATE_CONTENV", "S6GATE_SETENV_X", "GATEWAY_HOME", "GATEWAY_SUPERVISION"} {
		_, err := op.Update(ctx, "coder", operator.UpdateOptions{Env: map[string]string{k: "1"}})
		var re *profile.ReservedEnvError
		assert.ErrorAs(t, err, &re, k)
		assert.Equal(t, exitcode.Usage, exitcode.Of(err), k)
	}
	assert.Equal(t, before, s6test.Snapshot(t, e.Home), "nothing written")
}
