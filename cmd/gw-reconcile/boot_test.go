package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/bootrecord"
)

// bootEnv is an Env whose scan directory lies in a root-owned directory, as /run/gateways does.
func bootEnv(t *testing.T) *s6test.Env {
	t.Helper()
	s6test.RequireRoot(t)
	e := s6test.NewEnv(t, nil)
	run := filepath.Join(e.Base, "run")
	require.NoError(t, os.Mkdir(run, 0o755))
	e.ScanDir = filepath.Join(run, "gateways")
	return e
}

// shAs runs a shell script as uid:gid in dir.
func shAs(t *testing.T, uid, gid int, dir, script string) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-ec", script)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
}

func readRecord(t *testing.T, scanDir string) bootrecord.Record {
	t.Helper()
	b, err := os.ReadFile(bootrecord.Path(scanDir))
	require.NoError(t, err)
	var r bootrecord.Record
	require.NoError(t, json.Unmarshal(b, &r), "%s", b)
	return r
}

// The boot never reads what the service user left in its old scan directory: one rename sets
// it aside, intact and sealed (root's, 0700), and the boot records its success in a root file
// beside the scan directory. --remove-old then removes the old tree once the gateways' tree is
// up, without following the symlinks planted in it.
func TestBootSetsTheOldTreeAsideAndRecordsItsOutcome(t *testing.T) {
	e := bootEnv(t)
	r := e.Run("gw-reconcile", "--boot")
	require.Equal(t, 0, r.Code, r.Stderr)
	rec := readRecord(t, e.ScanDir)
	assert.Equal(t, bootrecord.OK, rec.State)
	st, err := os.Stat(bootrecord.Path(e.ScanDir))
	require.NoError(t, err)
	assert.Zero(t, st.Sys().(*syscall.Stat_t).Uid, "root's: the service user can neither forge nor erase it")
	assert.Equal(t, os.FileMode(0o644), st.Mode())
	assert.Equal(t, 0, e.Run("gw-reconcile", "--check-boot").Code)

	// What the service user may leave: many files, directories where s6 has files, a deep tree,
	// symlinks to what must survive.
	outside := filepath.Join(e.Base, "outside")
	s6test.WriteFile(t, filepath.Join(outside, "keep"), "keep")
	shAs(t, e.UID, e.GID, e.ScanDir, `
mkdir -p junk gateway-x/supervise/lock gateway-x/supervise/control gateway-x/status gateway-default/supervise/lock
(cd junk && seq 1 3000 | xargs touch)
ln -s `+outside+` junk/link
ln -s `+outside+`/keep gateway-x/supervise/lock/keep
mkdir deep && cd deep && i=0 && while [ $i -lt 200 ]; do mkdir d && cd d && i=$((i+1)); done && touch bottom
`)
	r = e.Run("gw-reconcile", "--boot")
	require.Equal(t, 0, r.Code, r.Stderr)
	old, err := filepath.Glob(filepath.Join(filepath.Dir(e.ScanDir), ".gateways.old-*"))
	require.NoError(t, err)
	require.Len(t, old, 1, "set aside once")
	ost, err := os.Lstat(old[0])
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|0o700, ost.Mode(), "sealed")
	assert.Zero(t, ost.Sys().(*syscall.Stat_t).Uid, "root's")
	junk, err := os.ReadDir(filepath.Join(old[0], "junk"))
	require.NoError(t, err)
	assert.Len(t, junk, 3001, "nothing of it was deleted by the boot")
	entries, err := os.ReadDir(e.ScanDir)
	require.NoError(t, err)
	for _, ent := range entries {
		assert.NotEqual(t, "junk", ent.Name(), "a fresh scan directory")
	}
	assert.DirExists(t, e.Slot("default"))
	assert.NoDirExists(t, filepath.Join(e.Slot("default"), "supervise", "lock"), "the slot is this boot's")
	assert.Equal(t, bootrecord.OK, readRecord(t, e.ScanDir).State)

	e.Start()
	r = e.Run("gw-reconcile", "--remove-old")
	require.Equal(t, 0, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "removed the scan directories earlier boots set aside")
	old, err = filepath.Glob(filepath.Join(filepath.Dir(e.ScanDir), ".gateways.old-*"))
	require.NoError(t, err)
	assert.Empty(t, old)
	b, err := os.ReadFile(filepath.Join(outside, "keep"))
	require.NoError(t, err)
	assert.Equal(t, "keep", string(b), "a planted symlink's target survives")
	r = e.Run("gw-reconcile", "--remove-old")
	require.Equal(t, 0, r.Code, r.Stderr)
	assert.Empty(t, r.Stderr, "nothing left to do")
}

// A boot step that fails starts nothing and says so everywhere: one ERROR line naming the step
// and the fix, a failed record, --check-boot (the gateways' tree service) refuses with the
// reason, and every verb — status and its health check included — reports it at once instead
// of "still booting" or "no such gateway". Fixed and booted again, all is well.
func TestFailedBootIsLoudEverywhere(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(e *s6test.Env) []string // returns a command prefix to run the boot under
		reason string
		fix    string
	}{
		{"data root of another uid", func(e *s6test.Env) []string {
			require.NoError(t, os.Chown(e.Home, 4242, 4242))
			return nil
		}, "(owner uid 4242, gid 4242, mode 0755) is not writable by the service user nobody", "give it to the service user (chown "},
		{"read-only data root", func(e *s6test.Env) []string {
			if _, err := exec.LookPath("unshare"); err != nil {
				s6test.Missing(t, "unshare (util-linux) is needed for a read-only bind mount")
			}
			return []string{"unshare", "-m", "sh", "-ec", `mount --bind "$GATEWAY_HOME" "$GATEWAY_HOME"; mount -o remount,bind,ro "$GATEWAY_HOME"; exec "$@"`, "sh"}
		}, "is on a read-only file system", "mount the data volume read-write (not :ro), then restart the container"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := bootEnv(t)
			prefix := tc.break_(e)
			argv := append(prefix, e.Bin["gw-reconcile"], "--boot")
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = e.Environ()
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "%s", stderr.String())
			assert.Equal(t, 1, ee.ExitCode())
			assert.Contains(t, stderr.String(), `level=ERROR msg="the boot failed: no gateway starts until this is fixed and the container restarted" prog=gw-reconcile step="check the data root"`)
			assert.Contains(t, stderr.String(), tc.reason)
			assert.Contains(t, stderr.String(), `fix="`+tc.fix)

			rec := readRecord(t, e.ScanDir)
			assert.Equal(t, bootrecord.Failed, rec.State)
			assert.Equal(t, "check the data root", rec.Step)
			assert.Contains(t, rec.Reason, tc.reason)
			assert.Contains(t, rec.Fix, tc.fix)

			r := e.Run("gw-reconcile", "--check-boot")
			assert.Equal(t, 1, r.Code)
			assert.Contains(t, r.Stderr, "gw-reconcile: ERROR: the gateways' tree does not start: the boot failed (check the data root): ")
			assert.Contains(t, r.Stderr, tc.reason)

			for _, verb := range [][]string{{"status"}, {"status", "--check"}, {"list"}, {"start", "-p", "default"}, {"register", "x"}} {
				begin := time.Now()
				r := e.Run("gateway", append(verb, "--timeout", "30s")...)
				assert.Equal(t, 1, r.Code, "%v: %s", verb, r.Stderr)
				assert.Contains(t, r.Stderr, "the boot failed (check the data root): ", verb)
				assert.Contains(t, r.Stderr, "see docker logs", verb)
				assert.NotContains(t, r.Stderr, "booting", verb)
				assert.Less(t, time.Since(begin), 10*time.Second, "%v: said at once, not after the time-out", verb)
			}

			// Fixed, the next boot succeeds.
			require.NoError(t, os.Chown(e.Home, e.UID, e.GID))
			r = e.Run("gw-reconcile", "--boot")
			require.Equal(t, 0, r.Code, r.Stderr)
			assert.Equal(t, bootrecord.OK, readRecord(t, e.ScanDir).State)
			assert.Equal(t, 0, e.Run("gw-reconcile", "--check-boot").Code)
		})
	}
}

// A boot killed half-way (its record still says booting) is a failed boot as soon as the
// gateways' tree service asks: it is recorded, and the verbs say it.
func TestInterruptedBootIsAFailedBoot(t *testing.T) {
	e := bootEnv(t)
	require.Equal(t, 0, e.Run("gw-reconcile", "--boot").Code)
	require.NoError(t, bootrecord.Write(e.ScanDir, bootrecord.Record{State: bootrecord.Booting}))
	r := e.Run("gw-reconcile", "--check-boot")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "gw-reconcile --boot did not finish (killed?)")
	assert.Equal(t, bootrecord.Failed, readRecord(t, e.ScanDir).State)
	r = e.Run("gateway", "list")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "the boot failed (boot): gw-reconcile --boot did not finish")

	// --boot at runtime (an s6-svscan runs on the scan directory) refuses and records nothing:
	// this start's record stays what it was.
	require.Equal(t, 0, e.Run("gw-reconcile", "--boot").Code)
	e.Start()
	r = e.Run("gw-reconcile", "--boot")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "an s6-svscan is running on it")
	assert.Equal(t, bootrecord.OK, readRecord(t, e.ScanDir).State)
}
