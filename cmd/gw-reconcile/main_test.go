package main_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/marker"
	"github.com/s6gate/s6gate/pkg/pidlock"
	"github.com/s6gate/s6gate/pkg/s6"
)

func TestMain(m *testing.M) { s6test.Main(m) }

var lineRE = regexp.MustCompile(`^(\S+) profile=(\S+) prior_state=(\S+) action=(\S+)( reason=".*")?$`)

type line struct{ at, profile, prior, action string }

func parseLines(t *testing.T, out string) map[string]line {
	t.Helper()
	m := map[string]line{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		g := lineRE.FindStringSubmatch(l)
		require.NotNil(t, g, "boot log line %q", l)
		_, err := time.Parse(time.RFC3339, g[1])
		require.NoError(t, err)
		m[g[2]] = line{g[1], g[2], g[3], g[4]}
	}
	return m
}

func TestReconcileOverEveryProfileState(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.SeedEveryState()

	r := e.Run("gw-reconcile")
	require.Equal(t, 0, r.Code, r.Stderr)
	got := parseLines(t, r.Stdout)
	want := map[string][2]string{ // profile → prior_state, action
		"default": {"running", "started"},
		"run1":    {"running", "started"},
		"stop1":   {"stopped", "registered"},
		"drain1":  {"draining", "started"},
		"nofile":  {"none", "registered"},
		"empty":   {"none", "registered"},
		"badjson": {"none", "registered"},
		"intent":  {"stopped", "registered"},
		"revived": {"running", "started"},
		"badcfg":  {"running", "skipped"},
	}
	require.Len(t, got, len(want), r.Stdout)
	for p, w := range want {
		assert.Equal(t, w[0], got[p].prior, "%s prior_state", p)
		assert.Equal(t, w[1], got[p].action, "%s action", p)
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	assert.Contains(t, lines[0], "profile=default ", "the default profile comes first")
	var order []string
	for _, l := range lines[1:] {
		order = append(order, lineRE.FindStringSubmatch(l)[2])
	}
	assert.True(t, sort.StringsAreSorted(order), "then sorted: %v", order)

	for p, w := range want {
		switch w[1] {
		case "started":
			assert.DirExists(t, e.Slot(p))
			assert.NoFileExists(t, filepath.Join(e.Slot(p), "down"), p)
		case "registered":
			assert.FileExists(t, filepath.Join(e.Slot(p), "down"), p)
		case "skipped":
			assert.NoDirExists(t, e.Slot(p), p)
		}
	}
	for _, p := range []string{"Invalid_Name", "linked", "gone"} {
		assert.NoDirExists(t, e.Slot(p), p)
	}
	assert.NoFileExists(t, filepath.Join(e.Slot("run1"), "stale-junk"), "the previous boot's slot was replaced")
	assert.Contains(t, r.Stderr, "Invalid_Name")
	assert.Contains(t, r.Stderr, "linked")
	assert.Contains(t, r.Stderr, "badcfg")

	// Swept: the dead gateway's identity and the stale marker.
	assert.NoFileExists(t, filepath.Join(e.ProfileHome("run1"), pidlock.PIDFile))
	assert.NoFileExists(t, filepath.Join(e.ProfileHome("run1"), marker.FileName))
	b, err := os.ReadFile(filepath.Join(e.ProfileHome("run1"), pidlock.LockFile))
	require.NoError(t, err)
	assert.Empty(t, b)

	// The same lines went to the boot log.
	bootLog, err := os.ReadFile(filepath.Join(e.Home, "logs", "container-boot.log"))
	require.NoError(t, err)
	assert.Equal(t, r.Stdout, string(bootLog))

	// s6 now starts exactly the gateways that autostart; each records running itself.
	e.Start()
	tools := s6.Tools{Dir: e.CommandDir}
	for p, w := range want {
		if w[1] != "started" {
			continue
		}
		s6test.Eventually(t, 15*time.Second, p+" up and running", func() bool {
			st, err := tools.ReadStatus(context.Background(), e.Slot(p))
			return err == nil && st.Up && st.Ready && e.State(p)["pid"] == float64(st.PID)
		})
	}
	for p, w := range want {
		if w[1] != "registered" {
			continue
		}
		st, err := tools.ReadStatus(context.Background(), e.Slot(p))
		require.NoError(t, err, p)
		assert.False(t, st.Up, "%s stays down", p)
	}
	assert.Equal(t, "kept", e.State("run1")["custom"], "unknown keys survive the gateway's writes")

	// Idempotent: a second run while everything is live changes nothing.
	pids := map[string]float64{}
	for p := range want {
		pids[p], _ = e.State(p)["pid"].(float64)
	}
	r2 := e.Run("gw-reconcile")
	require.Equal(t, 0, r2.Code, r2.Stderr)
	for p, l := range parseLines(t, r2.Stdout) {
		if want[p][1] == "skipped" {
			assert.Equal(t, "skipped", l.action)
			continue
		}
		assert.Equal(t, "kept", l.action, p)
	}
	for p := range want {
		got, _ := e.State(p)["pid"].(float64)
		assert.Equal(t, pids[p], got, "%s not disturbed", p)
	}
}

// What a container restart does, on the host: s6 tears the tree down (every gateway gets an
// unmarked SIGTERM), /init empties the scan directory, the reconciler rebuilds it, s6 starts
// again. Running gateways come back; the one an operator stopped stays down.
func TestRestartCycleKeepsRunIntent(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	scan := e.Start()
	e.MustRun("gateway", "register", "alpha", "--start")
	e.MustRun("gateway", "register", "beta", "--start")
	e.MustRun("gateway", "register", "gamma")
	e.MustRun("gateway", "stop", "-p", "beta")
	oldAlpha := e.State("alpha")["pid"]

	scan.Stop(t) // s6-svscanctl -t: supervisors bring every service down with SIGTERM
	assert.Equal(t, "running", e.State("alpha")["gateway_state"], "a container stop is not an operator stop")
	assert.Equal(t, "stopped", e.State("beta")["gateway_state"])
	require.NoError(t, os.RemoveAll(e.ScanDir))
	require.NoError(t, os.Mkdir(e.ScanDir, 0o755))
	require.NoError(t, os.Chown(e.ScanDir, e.UID, e.GID))

	r := e.MustRun("gw-reconcile")
	got := parseLines(t, r.Stdout)
	assert.Equal(t, line{got["alpha"].at, "alpha", "running", "started"}, got["alpha"])
	assert.Equal(t, line{got["beta"].at, "beta", "stopped", "registered"}, got["beta"])
	assert.Equal(t, line{got["gamma"].at, "gamma", "stopped", "registered"}, got["gamma"])
	assert.Equal(t, "registered", got["default"].action, "the default profile is always registered")

	e.Start()
	tools := s6.Tools{Dir: e.CommandDir}
	s6test.Eventually(t, 15*time.Second, "alpha back up", func() bool {
		st, err := tools.ReadStatus(context.Background(), e.Slot("alpha"))
		return err == nil && st.Up && st.Ready && e.State("alpha")["pid"] == float64(st.PID)
	})
	assert.NotEqual(t, oldAlpha, e.State("alpha")["pid"])
	st, err := tools.ReadStatus(context.Background(), e.Slot("beta"))
	require.NoError(t, err)
	assert.False(t, st.Up, "the operator's stop survives the restart")
	assert.FileExists(t, filepath.Join(e.Slot("beta"), "down"))
}

func TestDryRunChangesNothing(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.SeedEveryState()
	before := s6test.Snapshot(t, e.Home, e.ScanDir)
	r := e.Run("gw-reconcile", "--dry-run")
	require.Equal(t, 0, r.Code, r.Stderr)
	assert.Contains(t, r.Stdout, "profile=run1 prior_state=running action=started dry_run=true")
	assert.Equal(t, before, s6test.Snapshot(t, e.Home, e.ScanDir))
}

func TestBadInputAndUnusableScanDir(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	before := s6test.Snapshot(t, e.Home, e.ScanDir)
	for _, args := range [][]string{{"--bogus"}, {"extra-arg"}} {
		r := e.Run("gw-reconcile", args...)
		assert.Equal(t, 2, r.Code, args)
		assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line: %q", r.Stderr)
	}
	e.Extra = []string{"GATEWAY_HOME=" + filepath.Join(e.Base, "nope")}
	r := e.Run("gw-reconcile")
	assert.Equal(t, 2, r.Code)
	assert.Contains(t, r.Stderr, "nope")
	assert.Equal(t, 1, strings.Count(r.Stderr, "\n"))
	assert.NoDirExists(t, filepath.Join(e.Base, "nope"))

	e.Extra = []string{"GATEWAY_SCANDIR=" + filepath.Join(e.Base, "noscan")}
	r = e.Run("gw-reconcile")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "scan directory")
	assert.Equal(t, before, s6test.Snapshot(t, e.Home, e.ScanDir))
}

func TestBootLogRotates(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	old := strings.Repeat("x", 256<<10)
	s6test.WriteFile(t, filepath.Join(e.Home, "logs", "container-boot.log"), old)
	e.GiveToServiceUser()
	e.MustRun("gw-reconcile")
	b, err := os.ReadFile(filepath.Join(e.Home, "logs", "container-boot.log.1"))
	require.NoError(t, err)
	assert.Equal(t, old, string(b))
	b, err = os.ReadFile(filepath.Join(e.Home, "logs", "container-boot.log"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "profile=default prior_state=none action=registered")
	assert.Less(t, len(b), 1024)
}

// A FIFO planted where the boot log goes (the logs directory belongs to the service user)
// must not hang the boot: the reconciler warns and finishes.
func TestFIFOAtTheBootLogDoesNotHangTheBoot(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	require.NoError(t, os.MkdirAll(filepath.Join(e.Home, "logs"), 0o755))
	require.NoError(t, syscall.Mkfifo(filepath.Join(e.Home, "logs", "container-boot.log"), 0o666))
	e.GiveToServiceUser()
	r := e.Run("gw-reconcile")
	require.Equal(t, 0, r.Code, r.Stderr)
	assert.Contains(t, r.Stdout, "profile=default")
	assert.Contains(t, r.Stderr, "cannot append to the boot log")
}

// A container run as the service user (docker run --user 10000): --boot has no root step, it
// makes the scan directory anew as that user, and everything else runs as it.
func TestBootAsTheServiceUser(t *testing.T) {
	s6test.RequireRoot(t)
	e := s6test.NewEnv(t, nil)
	run := filepath.Join(e.Base, "run") // the user's /run
	require.NoError(t, os.Mkdir(run, 0o755))
	require.NoError(t, os.Chown(run, e.UID, e.GID))
	e.ScanDir = filepath.Join(run, "gateways")
	s6test.WriteFile(t, filepath.Join(e.ScanDir, "gateway-old/run"), "#!/bin/sh\n")
	e.GiveToServiceUser()
	require.NoError(t, os.Chown(filepath.Join(e.ScanDir, "gateway-old/run"), e.UID, e.GID))

	r := e.RunAsService("gw-reconcile", "--boot")
	require.Equal(t, 0, r.Code, r.Stderr)
	assert.Contains(t, parseLines(t, r.Stdout), "default")
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(e.ScanDir, &st))
	assert.Equal(t, uint32(e.UID), st.Uid)
	assert.NoDirExists(t, filepath.Join(e.ScanDir, "gateway-old"), "made anew")
	assert.DirExists(t, filepath.Join(e.ScanDir, "gateway-default"))
}

// Another uid than the service user's acts as itself, and one line says when it cannot
// write the data root (docker run --user 1000 with the image's volume).
func TestBootAsAnotherUIDThatCannotWriteTheDataRoot(t *testing.T) {
	s6test.RequireRoot(t)
	e := s6test.NewEnv(t, nil)
	const other = 4242
	run := filepath.Join(e.Base, "run")
	require.NoError(t, os.Mkdir(run, 0o755))
	require.NoError(t, os.Chown(run, other, other))
	e.ScanDir = filepath.Join(run, "gateways")

	r := e.RunAs(other, other, "gw-reconcile", "--boot")
	assert.Equal(t, 1, r.Code, r.Stderr)
	assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line: %s", r.Stderr)
	assert.Contains(t, r.Stderr, `level=ERROR msg="the boot failed: no gateway starts until this is fixed and the container restarted" prog=gw-reconcile step="check the data root" `+
		`err="data root `+e.Home+` is not writable by uid 4242: permission denied" fix="run the container as the service user nobody (uid `+
		strconv.Itoa(e.UID)+`), or give uid 4242 a data root it can write"`)
	assert.DirExists(t, e.ScanDir)
	r = e.RunAs(other, other, "gw-reconcile", "--check-boot")
	assert.Equal(t, 1, r.Code, "the gateways' s6-svscan does not start on it")
	assert.Contains(t, r.Stderr, "is not writable by uid 4242")
}
