package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
)

// commandOf returns the argv of the gateway's command: the process below the gateway that s6
// supervises (wrapper supervision), found in the test's own tree only.
func commandOf(t *testing.T, e *s6test.Env, gatewayPID int) []string {
	t.Helper()
	for _, p := range s6test.Descendants(gatewayPID) {
		if p.Comm == "sleep" {
			return p.Argv
		}
	}
	return nil
}

// editProfile rewrites profile.json by hand, as an operator with an editor would.
func editProfile(t *testing.T, e *s6test.Env, name, content string) {
	t.Helper()
	p := filepath.Join(e.ProfileHome(name), "profile.json")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	require.NoError(t, os.Chown(p, e.UID, e.GID))
}

type changedJSON struct {
	Profile        string `json:"profile"`
	Up             bool   `json:"up"`
	PID            *int   `json:"pid"`
	ProfileChanged bool   `json:"profile_changed"`
}

func changedStatus(t *testing.T, e *s6test.Env, name string) changedJSON {
	t.Helper()
	r := e.MustRun("gateway", "status", "-p", name, "--json")
	var out []changedJSON
	require.NoError(t, json.Unmarshal([]byte(r.Stdout), &out), r.Stdout)
	require.Len(t, out, 1)
	return out[0]
}

// An edited profile.json is never silently ignored: status says so until `update` applies
// it; update restarts a running gateway into the new command (a new process, running it) and
// prints what changed; a stopped one stays stopped and its next start runs the new command.
func TestUpdateAppliesAnEditedProfile(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	e.MustRun("gateway", "register", "web", "--start", "--env", "SECRET=old", "--", "/bin/sleep", "1001")
	e.MustRun("gateway", "register", "idle", "--", "/bin/sleep", "2001")
	before := changedStatus(t, e, "web")
	require.True(t, before.Up)
	assert.Equal(t, []string{"/bin/sleep", "1001"}, commandOf(t, e, *before.PID))
	assert.False(t, before.ProfileChanged)

	editProfile(t, e, "web", `{"command": ["/bin/sleep", "1002"], "env": {"SECRET": "new", "ADDED": "x"}}`)
	editProfile(t, e, "idle", `{"command": ["/bin/sleep", "2002"]}`)
	assert.True(t, changedStatus(t, e, "web").ProfileChanged, "an edit not applied yet shows in status --json")
	r := e.MustRun("gateway", "status")
	assert.Regexp(t, `(?m)^web\s.*profile\.json changed .*gateway update web`, r.Stdout)

	r = e.MustRun("gateway", "update", "web")
	assert.Contains(t, r.Stdout, "updated gateway 'web' and restarted it (pid ")
	assert.Contains(t, r.Stdout, `command: ["/bin/sleep","1001"] → ["/bin/sleep","1002"]`)
	assert.Contains(t, r.Stdout, "env ADDED: (none) → (set)")
	assert.Contains(t, r.Stdout, "env SECRET: (set) → (changed)")
	assert.NotContains(t, r.Stdout, "new", "environment values are never printed")
	after := changedStatus(t, e, "web")
	require.True(t, after.Up)
	assert.NotEqual(t, *before.PID, *after.PID, "a new process")
	assert.Equal(t, []string{"/bin/sleep", "1002"}, commandOf(t, e, *after.PID), "the restarted gateway runs the new command")
	assert.False(t, after.ProfileChanged)
	assert.Equal(t, "running", stateFile(t, e, "web")["desired_state"])

	r = e.MustRun("gateway", "update", "web")
	assert.Contains(t, r.Stdout, "unchanged")
	assert.Equal(t, *after.PID, *changedStatus(t, e, "web").PID, "nothing to apply: no restart")

	// --all: only the edited one (idle), which stays down.
	r = e.MustRun("gateway", "update", "--all")
	assert.Contains(t, r.Stdout, "updated gateway 'idle' (not running: it stays down")
	assert.NotContains(t, r.Stdout, "'web'")
	st := changedStatus(t, e, "idle")
	assert.False(t, st.Up, "a stopped gateway stays stopped")
	assert.False(t, st.ProfileChanged)
	assert.FileExists(t, filepath.Join(e.Slot("idle"), "down"))
	assert.Equal(t, "stopped", stateFile(t, e, "idle")["desired_state"])
	e.MustRun("gateway", "start", "-p", "idle")
	st = changedStatus(t, e, "idle")
	assert.Equal(t, []string{"/bin/sleep", "2002"}, commandOf(t, e, *st.PID), "its next start runs the new command")

	// From flags: profile.json is written, then applied.
	r = e.MustRun("gateway", "update", "idle", "--unset-env", "NOPE", "--env", "K=v", "--", "/bin/sleep", "2003")
	assert.Contains(t, r.Stdout, "restarted")
	b, err := os.ReadFile(filepath.Join(e.ProfileHome("idle"), "profile.json"))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"2003"`)
	assert.Contains(t, string(b), `"K": "v"`)
	assert.Equal(t, []string{"/bin/sleep", "2003"}, commandOf(t, e, *changedStatus(t, e, "idle").PID))

	// A broken edit is refused (and said so), never half-applied.
	editProfile(t, e, "idle", `{"command": "not an array"}`)
	r = e.Run("gateway", "update", "idle")
	assert.NotEqual(t, 0, r.Code)
	assert.Contains(t, r.Stderr, "command")

	// Bad usage changes nothing.
	for _, args := range [][]string{{"update"}, {"update", "--all", "--env", "A=1"}, {"update", "web", "--all"}, {"update", "web", "--env", "1BAD=x"}} {
		r = e.Run("gateway", args...)
		assert.Equal(t, 2, r.Code, "%v: %s", args, r.Stderr)
	}
}

// The boot renders every slot from profile.json: an edit made while the container was down
// (or not applied before a restart) runs after the boot, and status agrees.
func TestBootAppliesAnEditedProfile(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	e.MustRun("gateway", "register", "web", "--", "/bin/sleep", "1001")
	editProfile(t, e, "web", `{"command": ["/bin/sleep", "1002"]}`)
	require.True(t, changedStatus(t, e, "web").ProfileChanged)
	e.MustRun("gateway", "unregister", "web")
	require.NoError(t, os.Remove(filepath.Join(e.ProfileHome("web"), "gateway.unregistered")))
	e.MustRun("gw-reconcile")
	st := changedStatus(t, e, "web")
	assert.False(t, st.ProfileChanged, "the slot the reconciler rendered records profile.json")
	b, err := os.ReadFile(filepath.Join(e.Slot("web"), "run"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "'1002'")
}

// unregister sticks: the reconciler (every boot) leaves the profile out; register of the name
// starts from what the operator gives, with nothing of the earlier profile.json or state.
func TestUnregisterSticksAndRegisterStartsAfresh(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	e.MustRun("gateway", "register", "old", "--start", "--env", "OLD=1", "--", "/bin/sleep", "1001")
	e.MustRun("gateway", "unregister", "old")
	assert.FileExists(t, filepath.Join(e.ProfileHome("old"), "gateway.unregistered"))
	r := e.MustRun("gw-reconcile")
	assert.Contains(t, r.Stdout, "profile=old prior_state=stopped action=unregistered")
	assert.NoDirExists(t, e.Slot("old"), "an unregistered profile gets no slot")
	r = e.MustRun("gateway", "list")
	assert.NotContains(t, r.Stdout, "old")

	e.MustRun("gateway", "register", "old", "--env", "NEW=2")
	b, err := os.ReadFile(filepath.Join(e.ProfileHome("old"), "profile.json"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "NEW")
	assert.NotContains(t, string(b), "OLD", "the earlier env is not merged in")
	assert.NotContains(t, string(b), "sleep", "nor the earlier command")
	assert.NoFileExists(t, filepath.Join(e.ProfileHome("old"), "gateway.unregistered"))
	r = e.MustRun("gw-reconcile", "--dry-run")
	assert.Contains(t, r.Stdout, "profile=old prior_state=stopped action=")
	assert.NotContains(t, r.Stdout, "action=unregistered")

	// A home prepared by hand (never unregistered) keeps its profile.json, with the given
	// variables in place of its own: never merged.
	require.NoError(t, os.MkdirAll(e.ProfileHome("prep"), 0o750))
	require.NoError(t, os.Chown(e.ProfileHome("prep"), e.UID, e.GID))
	editProfile(t, e, "prep", `{"env": {"HANDMADE": "1"}, "settle": "0s"}`)
	e.MustRun("gateway", "register", "prep", "--env", "GIVEN=2")
	b, err = os.ReadFile(filepath.Join(e.ProfileHome("prep"), "profile.json"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "GIVEN")
	assert.Contains(t, string(b), `"settle"`, "the policy of a prepared profile.json stays")
	assert.NotContains(t, string(b), "HANDMADE", "env from register replaces the file's: no merge")

	r = e.Run("gateway", "unregister", "default")
	assert.Equal(t, 2, r.Code, r.Stderr)
	assert.Contains(t, r.Stderr, "always registered")
}

// --purge deletes a gateway's data for good, refusing while it runs; its uid is retired, so a
// later registration of the name gets another.
func TestUnregisterPurge(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	e.MustRun("gateway", "register", "gone", "--start", "--env", "K=V", "--", "/bin/sleep", "1001")
	uidOf := func() string {
		b, _ := os.ReadFile(filepath.Join(e.Slot("gone"), "s6gate-uid"))
		return strings.TrimSpace(string(b))
	}
	uid := uidOf()
	require.NotEmpty(t, uid)
	s6test.WriteFile(t, filepath.Join(e.ProfileHome("gone"), "home", "data.txt"), "tenant data")

	r := e.Run("gateway", "unregister", "gone", "--purge")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "gateway 'gone' is running")
	assert.DirExists(t, e.Slot("gone"), "refused: nothing changed")
	assert.True(t, changedStatus(t, e, "gone").Up)

	e.MustRun("gateway", "stop", "-p", "gone")
	r = e.MustRun("gateway", "unregister", "gone", "--purge")
	assert.Contains(t, r.Stdout, "purged")
	assert.NoDirExists(t, e.ProfileHome("gone"))
	assert.NoDirExists(t, filepath.Join(e.Home, "logs", "gateways", "gone"))
	assert.NoDirExists(t, e.Slot("gone"))
	entries, err := os.ReadDir(filepath.Join(e.Home, "profiles"))
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing left, not even a set-aside tree")
	claim, err := os.Readlink(filepath.Join(e.Home, ".s6gate-uids", uid))
	require.NoError(t, err, "the claim stays (probe chains pass through it)")
	assert.NotEqual(t, "gone", claim, "but it is retired")

	e.MustRun("gateway", "register", "gone")
	assert.NotEqual(t, uid, uidOf(), "a new registration gets a new uid")
	r = e.MustRun("gateway", "unregister", "ghost", "--purge")
	assert.Contains(t, r.Stdout, "nothing to do")
}

// restart --all acts on the gateways meant to run: one never started (the default idle
// gateway) or stopped by an operator stays down, with its intent unchanged.
func TestRestartAllLeavesStoppedOnes(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	e.MustRun("gw-reconcile") // registers default, down, as every boot does
	e.MustRun("gateway", "register", "a", "--start")
	e.MustRun("gateway", "register", "b")
	r := e.MustRun("gateway", "restart", "--all")
	assert.Contains(t, r.Stdout, "restarted gateway 'a'")
	assert.Contains(t, r.Stdout, "left gateway 'b' as it is")
	assert.Contains(t, r.Stdout, "left gateway 'default' as it is")
	for _, p := range []string{"b", "default"} {
		assert.False(t, changedStatus(t, e, p).Up, p)
		assert.NotEqual(t, "running", stateFile(t, e, p)["desired_state"], p)
	}
	assert.True(t, changedStatus(t, e, "a").Up)
}
