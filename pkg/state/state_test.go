package state_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/safedir"
	"github.com/s6gate/s6gate/pkg/state"
)

func home(t *testing.T) (*safedir.Dir, string) {
	t.Helper()
	dir := t.TempDir()
	d, err := safedir.Open(dir, "")
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d, dir
}

var now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func TestReadTolerates(t *testing.T) {
	tests := []struct {
		name    string
		content *string
		want    state.State
		corrupt bool
	}{
		{name: "missing file", content: nil},
		{name: "empty file", content: ptr(""), corrupt: true},
		{name: "whitespace", content: ptr("  \n"), corrupt: true},
		{name: "invalid json", content: ptr(`{"gateway_state": "runn`), corrupt: true},
		{name: "non-object", content: ptr(`["running"]`), corrupt: true},
		{name: "null", content: ptr(`null`), corrupt: true},
		{name: "bom", content: ptr("\xef\xbb\xbf{\"gateway_state\":\"running\"}"), want: state.State{GatewayState: "running"}},
		{name: "mistyped field keeps the rest", content: ptr(`{"gateway_state":"stopped","pid":"x"}`), want: state.State{GatewayState: "stopped"}},
		{name: "full", content: ptr(`{"gateway_state":"running","desired_state":"running","pid":42,"start_time":99,"exit_reason":"x","updated_at":"t"}`),
			want: state.State{GatewayState: "running", DesiredState: "running", PID: 42, StartTime: u64(99), ExitReason: "x", UpdatedAt: "t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, dir := home(t)
			if tt.content != nil {
				require.NoError(t, os.WriteFile(filepath.Join(dir, state.FileName), []byte(*tt.content), 0o600))
			}
			got, err := state.Read(d)
			assert.Equal(t, tt.want, got)
			if tt.corrupt {
				require.Error(t, err)
				assert.ErrorIs(t, err, state.ErrCorrupt)
				assert.Contains(t, err.Error(), filepath.Join(dir, state.FileName), "warning names the path")
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

func TestReadRefusesSymlink(t *testing.T) {
	d, dir := home(t)
	target := filepath.Join(t.TempDir(), "other.json")
	require.NoError(t, os.WriteFile(target, []byte(`{"gateway_state":"running"}`), 0o600))
	require.NoError(t, os.Symlink(target, filepath.Join(dir, state.FileName)))
	got, err := state.Read(d)
	assert.ErrorIs(t, err, state.ErrCorrupt)
	assert.Equal(t, state.State{}, got)
}

func TestUpdatePreservesUnknownKeysAndStamps(t *testing.T) {
	d, dir := home(t)
	p := filepath.Join(dir, state.FileName)
	require.NoError(t, os.WriteFile(p, []byte(`{"gateway_state":"running","custom":{"a":[1,2]},"note":"hi"}`), 0o600))

	warn, err := state.Update(d, now, func(s *state.State) { s.DesiredState = state.Stopped })
	require.NoError(t, err)
	assert.NoError(t, warn)

	var m map[string]any
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Equal(t, "running", m["gateway_state"], "fields not changed are kept")
	assert.Equal(t, "stopped", m["desired_state"])
	assert.Equal(t, "hi", m["note"])
	assert.Equal(t, map[string]any{"a": []any{1.0, 2.0}}, m["custom"])
	assert.Equal(t, "2026-11-22T10:00:00Z", m["updated_at"])
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, state.Mode, st.Mode().Perm())
}

func TestUpdateClearsEmptiedFields(t *testing.T) {
	d, dir := home(t)
	_, err := state.Update(d, now, func(s *state.State) { s.PID = 7; s.ExitReason = "boom" })
	require.NoError(t, err)
	_, err = state.Update(d, now, func(s *state.State) { s.PID = 0; s.ExitReason = "" })
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(dir, state.FileName))
	require.NoError(t, err)
	assert.NotContains(t, string(b), "pid")
	assert.NotContains(t, string(b), "exit_reason")
}

func TestUpdateReplacesCorruptFileWithWarning(t *testing.T) {
	d, dir := home(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, state.FileName), []byte("{garbage"), 0o600))
	warn, err := state.Update(d, now, func(s *state.State) { s.GatewayState = state.Starting })
	require.NoError(t, err)
	assert.ErrorIs(t, warn, state.ErrCorrupt)
	got, err := state.Read(d)
	require.NoError(t, err)
	assert.Equal(t, state.Starting, got.GatewayState)
}

func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	_, dir := home(t)
	var wg sync.WaitGroup
	const n = 20
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := safedir.Open(dir, "")
			if !assert.NoError(t, err) {
				return
			}
			defer d.Close()
			_, err = state.Update(d, now, func(s *state.State) {
				if i%2 == 0 {
					s.PID++
				} else {
					s.ExitReason += "x"
				}
			})
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	dd, err := safedir.Open(dir, "")
	require.NoError(t, err)
	defer dd.Close()
	got, err := state.Read(dd)
	require.NoError(t, err)
	assert.Equal(t, n/2, got.PID, "every increment survived")
	assert.Len(t, got.ExitReason, n/2)
}

func TestIntent(t *testing.T) {
	tests := []struct {
		s         state.State
		source    string
		autostart bool
	}{
		{state.State{}, "", false},
		{state.State{GatewayState: "running"}, "running", true},
		{state.State{GatewayState: "draining"}, "draining", true},
		{state.State{GatewayState: "degraded"}, "degraded", true},
		{state.State{GatewayState: "starting"}, "starting", true},
		{state.State{GatewayState: "stopped"}, "stopped", false},
		{state.State{GatewayState: "startup_failed"}, "startup_failed", false},
		{state.State{GatewayState: "failed"}, "failed", true}, // a crash loop is not an operator stop
		{state.State{GatewayState: "failed", DesiredState: "stopped"}, "stopped", false},
		{state.State{GatewayState: "running", DesiredState: "stopped"}, "stopped", false},
		{state.State{GatewayState: "stopped", DesiredState: "running"}, "running", true},
		{state.State{GatewayState: "running", DesiredState: "bogus"}, "running", true},
	}
	for _, tt := range tests {
		source, auto := tt.s.Intent()
		assert.Equal(t, tt.source, source, "%+v", tt.s)
		assert.Equal(t, tt.autostart, auto, "%+v", tt.s)
	}
}

func ptr(s string) *string { return &s }
func u64(v uint64) *uint64 { return &v }

// ReadBeneath reads what Read of the opened home reads, or declines (ok false) and leaves the
// explaining to Read: never a different State, never another error.
func TestReadBeneathAgreesWithRead(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, profiles string) // makes profiles/p
		wantOK bool
	}{
		{"state file", func(t *testing.T, p string) {
			writeState(t, p, `{"gateway_state":"running","pid":7,"x":{"y":[1]}}`)
		}, true},
		{"corrupt state file", func(t *testing.T, p string) { writeState(t, p, `{"gateway_state":`) }, true},
		{"empty state file", func(t *testing.T, p string) { writeState(t, p, ``) }, true},
		{"no state file", func(t *testing.T, p string) { require.NoError(t, os.Mkdir(filepath.Join(p, "p"), 0o755)) }, false},
		{"no home", func(t *testing.T, p string) {}, false},
		{"home is a symlink", func(t *testing.T, p string) {
			other := filepath.Join(t.TempDir(), "other")
			require.NoError(t, os.Mkdir(other, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(other, state.FileName), []byte(`{"pid":1}`), 0o644))
			require.NoError(t, os.Symlink(other, filepath.Join(p, "p")))
		}, false},
		{"home is a symlink to another profile's home", func(t *testing.T, p string) {
			require.NoError(t, os.Mkdir(filepath.Join(p, "q"), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(p, "q", state.FileName), []byte(`{"pid":1}`), 0o644))
			require.NoError(t, os.Symlink("q", filepath.Join(p, "p")))
		}, false},
		{"state file is a symlink", func(t *testing.T, p string) {
			require.NoError(t, os.Mkdir(filepath.Join(p, "p"), 0o755))
			target := filepath.Join(t.TempDir(), "s.json")
			require.NoError(t, os.WriteFile(target, []byte(`{"pid":1}`), 0o644))
			require.NoError(t, os.Symlink(target, filepath.Join(p, "p", state.FileName)))
		}, false},
		{"state file is a FIFO", func(t *testing.T, p string) {
			require.NoError(t, os.Mkdir(filepath.Join(p, "p"), 0o755))
			require.NoError(t, syscall.Mkfifo(filepath.Join(p, "p", state.FileName), 0o644))
		}, false},
		{"state file too large", func(t *testing.T, p string) {
			writeState(t, p, `{"x":"`+strings.Repeat("a", state.MaxSize)+`"}`)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			profiles := filepath.Join(root, "profiles")
			require.NoError(t, os.Mkdir(profiles, 0o755))
			tc.setup(t, profiles)
			pd, err := safedir.Open(root, "profiles")
			require.NoError(t, err)
			defer pd.Close()
			got, ok, gotErr := state.ReadBeneath(pd, "p")
			require.Equal(t, tc.wantOK, ok)
			if !ok {
				assert.Equal(t, state.State{}, got)
				assert.NoError(t, gotErr)
				return
			}
			home, err := safedir.Open(root, "profiles/p")
			require.NoError(t, err)
			defer home.Close()
			want, wantErr := state.Read(home)
			assert.Equal(t, want, got)
			assert.Equal(t, fmt.Sprint(wantErr), fmt.Sprint(gotErr))
		})
	}
}

func writeState(t *testing.T, profiles, content string) {
	t.Helper()
	require.NoError(t, os.Mkdir(filepath.Join(profiles, "p"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(profiles, "p", state.FileName), []byte(content), 0o640))
}
