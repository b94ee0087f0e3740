package reconcile_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/aside"
	"github.com/s6gate/s6gate/pkg/bootrecord"
	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/reconcile"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/state"
	"github.com/s6gate/s6gate/pkg/svcuser"
)

func TestMain(m *testing.M) { s6test.Main(m) }

func settingsOf(e *s6test.Env) config.Settings {
	return config.Settings{Home: e.Home, ScanDir: e.ScanDir, CommandDir: e.CommandDir, User: e.ServiceUser, Bin: e.Bin["gateway"], DrainTimeout: time.Second}
}

func runInProcess(t *testing.T, e *s6test.Env, dryRun bool) ([]reconcile.Entry, string, string) {
	t.Helper()
	var out, logs bytes.Buffer
	entries, err := reconcile.Run(context.Background(), reconcile.Options{
		Settings: settingsOf(e), DryRun: dryRun, Out: &out,
		Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Now: func() time.Time { return time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC) },
	})
	require.NoError(t, err)
	return entries, out.String(), logs.String()
}

// The reconciler called in-process (so coverage counts) over every kind of profile: the
// same outcomes as the binary, and the leftovers of interrupted writes are swept.
func TestRunInProcess(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	e.SeedEveryState()
	run1 := e.ProfileHome("run1")
	leftovers := []string{".gateway_state.json4242", ".profile.json1", ".gateway.pid77",
		"..gateway-planned-stop.json9", ".gateway-planned-stop.json.claimed-999999999-1"}
	// A gateway the container's stop killed: its identity is still there.
	s6test.WriteFile(t, filepath.Join(run1, "gateway.pid"), `{"pid":999999}`)
	for _, f := range leftovers {
		s6test.WriteFile(t, filepath.Join(run1, f), "half")
	}
	live := fmt.Sprintf(".gateway-planned-stop.json.claimed-%d-1", os.Getpid())
	for _, f := range []string{".keep", ".gateway_state.json", ".gateway_state.jsonX1", live} {
		s6test.WriteFile(t, filepath.Join(run1, f), "not ours to sweep")
	}

	entries, out, logs := runInProcess(t, e, false)
	got := map[string]reconcile.Entry{}
	for _, en := range entries {
		got[en.Profile] = en
	}
	assert.Equal(t, reconcile.Started, got["run1"].Action)
	assert.Equal(t, "running", got["run1"].PriorState)
	assert.Equal(t, reconcile.Registered, got["stop1"].Action)
	assert.Equal(t, reconcile.Skipped, got["badcfg"].Action)
	assert.Contains(t, got["badcfg"].Reason, "profile.json")
	assert.Equal(t, "default", entries[0].Profile)
	assert.Contains(t, out, "2026-11-30T12:00:00Z profile=run1 prior_state=running action=started\n")
	assert.NoFileExists(t, filepath.Join(run1, "gateway.pid"), "a dead gateway's identity is swept")
	for _, f := range leftovers {
		assert.NoFileExists(t, filepath.Join(run1, f), "swept")
	}
	for _, f := range []string{".keep", ".gateway_state.json", ".gateway_state.jsonX1", live} {
		assert.FileExists(t, filepath.Join(run1, f), "%s is not a leftover (or its consumer is alive)", f)
	}
	assert.Contains(t, logs, "swept leftovers of an interrupted write")
	assert.Contains(t, logs, "swept the identity of dead gateways", "one line for them all")
	assert.Equal(t, 1, strings.Count(logs, "swept the identity"))
	assert.NoDirExists(t, e.Slot("gone"), "the slot of a deleted profile is removed")
	scanEntries, err := os.ReadDir(e.ScanDir)
	require.NoError(t, err)
	for _, ent := range scanEntries {
		assert.False(t, strings.HasPrefix(ent.Name(), ".s6gate-template"), "the slot template is removed: %s", ent.Name())
	}
	assert.FileExists(t, filepath.Join(e.Home, "logs", "container-boot.log"))

	// Again, with the gateways running: every live slot is kept, nothing is swept.
	e.Start()
	s6test.Eventually(t, 15*time.Second, "run1 supervised", func() bool {
		ok, _ := s6.Supervised(e.Slot("run1"))
		return ok
	})
	s6test.WriteFile(t, filepath.Join(run1, ".gateway_state.json5"), "a write under way")
	entries, _, _ = runInProcess(t, e, false)
	for _, en := range entries {
		if en.Profile == "run1" {
			assert.Equal(t, reconcile.Kept, en.Action)
		}
	}
	assert.FileExists(t, filepath.Join(run1, ".gateway_state.json5"), "a live gateway's home is not swept")
}

// A dry run reports and changes nothing, even where a real run would sweep.
func TestDryRunInProcess(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	e.SeedEveryState()
	s6test.WriteFile(t, filepath.Join(e.ProfileHome("run1"), ".gateway_state.json1"), "half")
	before := s6test.Snapshot(t, e.Home, e.ScanDir)
	_, out, _ := runInProcess(t, e, true)
	assert.Contains(t, out, "dry_run=true")
	assert.Equal(t, before, s6test.Snapshot(t, e.Home, e.ScanDir))
}

// PrepareBoot makes the scan directory anew, owned by the service user; it never touches a
// directory an s6-svscan runs on.
func TestPrepareBoot(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	s := settingsOf(e)
	s.ScanDir = filepath.Join(e.Base, "run", "gateways")
	s6test.WriteFile(t, filepath.Join(s.ScanDir, "gateway-old", "run"), "from the last boot")
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		nobody, err := svcuser.Lookup("nobody")
		require.NoError(t, err)
		uid, gid = nobody.UID, nobody.GID
		require.NoError(t, os.Chown(e.Home, 0, 0)) // a fresh bind mount arrives root-owned
	}
	require.NoError(t, reconcile.PrepareBoot(s, uid, gid))
	entries, err := os.ReadDir(s.ScanDir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "nothing from the last boot survives")
	assert.Equal(t, state.BootFile, entries[0].Name(), "only this boot's token")
	st, err := os.Stat(s.ScanDir)
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|0o755, st.Mode())
	if uid >= 0 {
		assert.Equal(t, uint32(uid), st.Sys().(*syscall.Stat_t).Uid, "the scan directory is the service user's")
		home, err := os.Stat(e.Home)
		require.NoError(t, err)
		assert.Equal(t, uint32(uid), home.Sys().(*syscall.Stat_t).Uid, "the root-owned data root is handed over")
	}

	// With an s6-svscan on it (the root tree's /run/service, or a run at runtime): refused.
	s6test.StartScan(t, s.ScanDir)
	s6test.WriteFile(t, filepath.Join(s.ScanDir, "keep", "file"), "live")
	err = reconcile.PrepareBoot(s, uid, gid)
	var sde *reconcile.ScanDirError
	require.ErrorAs(t, err, &sde)
	assert.Contains(t, err.Error(), "s6-svscan is running on it")
	assert.FileExists(t, filepath.Join(s.ScanDir, "keep", "file"))
}

// What the service user leaves in its old tree cannot make the root boot step refuse (and the
// container stay without gateways): a symlink planted as .s6-svscan pointing at a live
// scanner's directory, or a directory as its control FIFO, is never followed and counts as
// "no s6-svscan here".
func TestPrepareBootIgnoresWhatTheOldTreeHolds(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	live := filepath.Join(e.Base, "root-tree")
	s6test.StartScan(t, live) // stands for the root tree's /run/service and its live s6-svscan
	s := settingsOf(e)
	s.ScanDir = filepath.Join(e.Base, "run", "gateways")

	require.NoError(t, os.MkdirAll(s.ScanDir, 0o755))
	require.NoError(t, os.Symlink(filepath.Join(live, ".s6-svscan"), filepath.Join(s.ScanDir, ".s6-svscan")))
	require.NoError(t, reconcile.PrepareBoot(s, -1, -1), "a symlink to a live scanner is not a scanner here")
	entries, err := os.ReadDir(s.ScanDir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "a fresh scan directory holds only the boot token")
	assert.Equal(t, state.BootFile, entries[0].Name())
	assert.FileExists(t, filepath.Join(live, ".s6-svscan", "control"), "the live tree was not touched")
	boot := state.CurrentBoot(s.ScanDir)
	assert.Regexp(t, `^boot-[0-9a-f]{32}$`, boot)
	require.NoError(t, os.RemoveAll(s.ScanDir))
	require.NoError(t, os.MkdirAll(s.ScanDir, 0o755))
	require.NoError(t, reconcile.PrepareBoot(s, -1, -1))
	assert.NotEqual(t, boot, state.CurrentBoot(s.ScanDir), "every boot has a token of its own")

	require.NoError(t, os.MkdirAll(filepath.Join(s.ScanDir, ".s6-svscan", "control"), 0o755))
	require.NoError(t, reconcile.PrepareBoot(s, -1, -1), "a directory as the control FIFO is not a scanner")
}

// PrepareBoot deletes its scan directory, so a mistyped GATEWAY_SCANDIR must never name
// something that matters.
func TestPrepareBootRefusesDangerousScanDirs(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	s := settingsOf(e)
	for _, dir := range []string{"/", "/run", "/tmp", e.Home, filepath.Dir(e.Home), filepath.Join(e.Home, "profiles"),
		"/run/service", "/run/s6", "/run/s6/gateways", "/run/service/x"} {
		s.ScanDir = dir
		err := reconcile.PrepareBoot(s, -1, -1)
		var sde *reconcile.ScanDirError
		require.ErrorAs(t, err, &sde, dir)
		assert.Contains(t, err.Error(), "GATEWAY_SCANDIR="+filepath.Clean(dir), dir)
	}
	assert.DirExists(t, e.Home, "the data root survived")
}

// Every profile's slot names a uid of its own from GATEWAY_UID_RANGE, the same one at every
// boot; with the range off no slot names one; a profile whose uid cannot be known is skipped,
// never started as the service user instead.
func TestRunGivesEveryProfileItsOwnUID(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	e.SeedEveryState()
	s := settingsOf(e)
	s.UIDs = config.UIDRange{First: 30000, Last: 30999}
	run := func() map[string]reconcile.Entry {
		t.Helper()
		entries, err := reconcile.Run(context.Background(), reconcile.Options{Settings: s, Log: slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))})
		require.NoError(t, err)
		got := map[string]reconcile.Entry{}
		for _, en := range entries {
			got[en.Profile] = en
		}
		return got
	}
	uidOf := func(p string) string {
		b, err := os.ReadFile(filepath.Join(e.ScanDir, "gateway-"+p, "s6gate-uid"))
		require.NoError(t, err, p)
		return string(b)
	}
	entries := run()
	first := map[string]string{}
	seen := map[string]string{}
	for p, en := range entries {
		if en.Action == reconcile.Skipped {
			continue
		}
		u := uidOf(p)
		require.Regexp(t, `^30[0-9]{3}\n$`, u, p)
		require.NotContains(t, seen, u, "%s and %s share a uid", p, seen[u])
		seen[u], first[p] = p, u
	}
	require.NotEmpty(t, first)
	run()
	for p, u := range first {
		assert.Equal(t, u, uidOf(p), "%s keeps its uid at the next boot", p)
	}

	// A claims directory someone else could write: no profile starts.
	require.NoError(t, os.Chmod(filepath.Join(e.Home, ".s6gate-uids"), 0o777))
	for p, en := range run() {
		if _, ok := first[p]; ok {
			assert.Equal(t, reconcile.Skipped, en.Action, p)
			assert.Contains(t, en.Reason, "no uid of its own", p)
		}
	}
	require.NoError(t, os.Chmod(filepath.Join(e.Home, ".s6gate-uids"), 0o700))

	s.UIDs = config.UIDRange{}
	run()
	for p := range first {
		assert.NoFileExists(t, filepath.Join(e.ScanDir, "gateway-"+p, "s6gate-uid"), "GATEWAY_UID_RANGE=off: %s has no uid of its own", p)
	}
}

// RemoveOld removes what PrepareBoot set aside only once the gateways are up: with no s6-svscan
// on the scan directory it waits (here its whole, short, bound), unless the boot record says
// the boot failed; a second remover finds the tree claimed and does nothing.
func TestRemoveOldWaitsForTheGateways(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	s := settingsOf(e)
	s.ScanDir = filepath.Join(e.Base, "run", "gateways")
	for i := range 2 {
		s6test.WriteFile(t, filepath.Join(s.ScanDir, "gateway-old", "run"), "from the last boot")
		require.NoError(t, reconcile.PrepareBoot(s, -1, -1))
		old, err := filepath.Glob(filepath.Join(filepath.Dir(s.ScanDir), ".gateways.old-*"))
		require.NoError(t, err)
		require.Len(t, old, 1)

		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		const wait = 700 * time.Millisecond
		if i == 1 {
			require.NoError(t, bootrecord.Write(s.ScanDir, bootrecord.Record{State: bootrecord.Failed, Reason: "test"}))
		}
		begin := time.Now()
		n, err := reconcile.RemoveOld(context.Background(), s, wait, log)
		took := time.Since(begin)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		if i == 0 {
			assert.GreaterOrEqual(t, took, wait, "no s6-svscan answers: it waited")
		} else {
			assert.Less(t, took, wait, "a failed boot has no gateways to wait for")
		}
		assert.NoDirExists(t, old[0])
		assert.Contains(t, logs.String(), "removed the scan directories earlier boots set aside")
		require.NoError(t, os.RemoveAll(s.ScanDir))
	}

	s6test.WriteFile(t, filepath.Join(s.ScanDir, "gateway-old", "run"), "from the last boot")
	require.NoError(t, reconcile.PrepareBoot(s, -1, -1))
	old, err := filepath.Glob(filepath.Join(filepath.Dir(s.ScanDir), ".gateways.old-*"))
	require.NoError(t, err)
	require.Len(t, old, 1)
	tree, err := aside.Claim(old[0]) // another remover at work
	require.NoError(t, err)
	begin := time.Now()
	n, err := reconcile.RemoveOld(context.Background(), s, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Less(t, time.Since(begin), 10*time.Second, "nothing to claim: no wait")
	assert.DirExists(t, old[0])
	_, err = tree.Remove()
	require.NoError(t, err)
}

// At boot the reconciler runs before the gateways' scanner starts: its rescan is not asked for,
// and nothing is logged about it (every boot logged "rescan not possible yet … s6-svscanctl:
// fatal: … supervisor not listening", which read like an error). With a scanner up, the
// rescan is asked for, so the slots are supervised at once.
func TestRescanOnlyWhenAScannerAnswers(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	_, _, logs := runInProcess(t, e, false)
	assert.NotContains(t, logs, "rescan", "no scanner yet: nothing to say")
	assert.NotContains(t, logs, "s6-svscanctl")

	e.Start()
	_, _, logs = runInProcess(t, e, false)
	assert.NotContains(t, logs, "rescan")
	s6test.Eventually(t, 10*time.Second, "the default slot supervised after the reconciler's rescan", func() bool {
		ok, _ := s6.Listening(e.Slot("default"))
		return ok
	})
}
