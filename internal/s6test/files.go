package s6test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Snapshot lists every path under roots with its mode, size and modification time, so a test
// can prove that a call changed nothing on disk.
func Snapshot(t testing.TB, roots ...string) string {
	t.Helper()
	var b strings.Builder
	for _, r := range roots {
		_ = filepath.Walk(r, func(p string, info os.FileInfo, err error) error {
			if err == nil {
				b.WriteString(p + " " + info.Mode().String() + " " + itoa(int(info.Size())) + " " + info.ModTime().String() + "\n")
			}
			return nil
		})
	}
	return b.String()
}

// WriteFile writes content to p (making its directory) as the test process.
func WriteFile(t testing.TB, p, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}

// GiveToServiceUser gives everything the test made under the data root and the scan
// directory to the service user, as if the service user had written it.
func (e *Env) GiveToServiceUser() {
	e.t.Helper()
	for _, root := range []string{e.Home, e.ScanDir} {
		// A running gateway may write its state meanwhile: an atomic write's temporary file
		// seen by the walk can be renamed away before it is reached. What vanished is not
		// an error; what remains is given to the service user.
		require.NoError(e.t, filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
			if err == nil {
				err = os.Lchown(p, e.UID, e.GID)
			}
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}))
	}
}

// State reads a profile's gateway_state.json as a map (nil when it is missing or invalid).
func (e *Env) State(profile string) map[string]any {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.ProfileHome(profile), "gateway_state.json"))
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

// SeedEveryState fills the data root with profiles in every state a boot can meet, plus the
// leftovers of an earlier boot, all owned by the service user:
//
//	default running; run1 running (with a custom key, a dead gateway's pid and lock content
//	and an old marker); stop1 stopped; drain1 draining; nofile (no state file); empty (empty
//	state file); badjson; intent (running, but desired stopped); revived (stopped, desired
//	running); badcfg (running, invalid profile.json); profiles/Invalid_Name and
//	profiles/default (not profiles); profiles/linked (a symlink); and in the scan directory a
//	stale slot of run1 and the slot of a deleted profile "gone".
func (e *Env) SeedEveryState() {
	e.t.Helper()
	home := e.ProfileHome
	for p, st := range map[string]string{
		"default": `{"gateway_state":"running"}`, "run1": `{"gateway_state":"running","custom":"kept"}`,
		"stop1": `{"gateway_state":"stopped"}`, "drain1": `{"gateway_state":"draining"}`, "empty": ``,
		"badjson": `{"gateway_state": "runn`, "intent": `{"gateway_state":"running","desired_state":"stopped"}`,
		"revived": `{"gateway_state":"stopped","desired_state":"running"}`, "badcfg": `{"gateway_state":"running"}`,
	} {
		WriteFile(e.t, filepath.Join(home(p), "gateway_state.json"), st)
	}
	require.NoError(e.t, os.MkdirAll(home("nofile"), 0o755))
	WriteFile(e.t, filepath.Join(home("badcfg"), "profile.json"), `{"command": "not an array"}`)
	require.NoError(e.t, os.MkdirAll(filepath.Join(e.Home, "profiles", "Invalid_Name"), 0o755))
	require.NoError(e.t, os.MkdirAll(filepath.Join(e.Home, "profiles", "default"), 0o755))
	outside := e.t.TempDir()
	WriteFile(e.t, filepath.Join(outside, "gateway_state.json"), `{"gateway_state":"running"}`)
	require.NoError(e.t, os.Symlink(outside, filepath.Join(e.Home, "profiles", "linked")))
	WriteFile(e.t, filepath.Join(home("run1"), "gateway.pid"), `{"pid":1,"start_time":5}`)
	WriteFile(e.t, filepath.Join(home("run1"), "gateway.lock"), "1\n")
	WriteFile(e.t, filepath.Join(home("run1"), ".gateway-planned-stop.json"), `{"target_pid":1,"target_start_time":5,"stopper_pid":9,"written_at":"2026-01-01T00:00:00Z"}`)
	WriteFile(e.t, filepath.Join(e.Slot("run1"), "stale-junk"), "from the previous boot")
	WriteFile(e.t, filepath.Join(e.Slot("gone"), "run"), "#!/bin/sh\nexec sleep 1000\n")
	e.GiveToServiceUser()
}
