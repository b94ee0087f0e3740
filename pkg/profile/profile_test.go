package profile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/profile"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"coder", true},
		{"my-profile", true},
		{"assistant_v2", true},
		{"a", true},
		{"0", true},
		{"0abc", true},
		{"default", true},
		{strings.Repeat("a", profile.MaxNameLen), true},
		{strings.Repeat("a", 243), true},
		{"", false},
		{"Coder", false},
		{"foo/bar", false},
		{"../escape", false},
		{"..", false},
		{"-leading-dash", false},
		{"_leading_underscore", false},
		{"name with spaces", false},
		{"name.with.dots", false},
		{"tab\tname", false},
		{"new\nline", false},
		{"ünicode", false},
		{strings.Repeat("a", profile.MaxNameLen+1), false},
		{strings.Repeat("a", 244), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := profile.Validate(tt.name)
			if tt.ok {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			var ne *profile.NameError
			require.ErrorAs(t, err, &ne)
			assert.Equal(t, tt.name, ne.Name)
			assert.Equal(t, exitcode.Usage, exitcode.Of(err))
			assert.NotContains(t, err.Error(), "\n", "one-line message")
		})
	}
}

func TestHomeRel(t *testing.T) {
	assert.Equal(t, "", profile.HomeRel("default"))
	assert.Equal(t, "profiles/coder", profile.HomeRel("coder"))
	assert.Equal(t, "logs/gateways/coder", profile.LogRel("coder"))
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		cmd     []string
		env     map[string]string
		wantErr string
	}{
		{name: "empty", in: ""},
		{name: "whitespace", in: " \n"},
		{name: "bom", in: "\xef\xbb\xbf{\"command\":[\"x\"]}", cmd: []string{"x"}},
		{name: "full", in: `{"command":["sh","-c","echo hi"],"env":{"A":"1","B_2":"two words"}}`,
			cmd: []string{"sh", "-c", "echo hi"}, env: map[string]string{"A": "1", "B_2": "two words"}},
		{name: "invalid json", in: `{"command":`, wantErr: "profile.json"},
		{name: "not an object", in: `[1,2]`, wantErr: "profile.json"},
		{name: "null", in: `null`, wantErr: "not a JSON object"},
		{name: "command not strings", in: `{"command":"sh -c x"}`, wantErr: `"command"`},
		{name: "env not strings", in: `{"env":{"A":1}}`, wantErr: `"env"`},
		{name: "bad env name", in: `{"env":{"A-B":"x"}}`, wantErr: `"A-B"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := profile.ParseConfig([]byte(tt.in))
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.cmd, c.Command)
			assert.Equal(t, tt.env, c.Env)
		})
	}
}

func TestConfigRoundTripKeepsUnknownKeys(t *testing.T) {
	c, err := profile.ParseConfig([]byte(`{"command":["a"],"note":"keep me","nested":{"x":[1,2]}}`))
	require.NoError(t, err)
	c.Env = map[string]string{"K": "v"}
	c.Command = []string{"b", "c"}
	b, err := c.Marshal()
	require.NoError(t, err)
	back, err := profile.ParseConfig(b)
	require.NoError(t, err)
	assert.Equal(t, []string{"b", "c"}, back.Command)
	assert.Equal(t, map[string]string{"K": "v"}, back.Env)
	assert.Contains(t, string(b), `"note": "keep me"`)
	assert.Contains(t, string(b), `"nested"`)
}

func TestValidateEnvName(t *testing.T) {
	for _, ok := range []string{"A", "_x", "PATH", "a1_B"} {
		assert.NoError(t, profile.ValidateEnvName(ok), ok)
	}
	for _, bad := range []string{"", "1A", "A-B", "A B", "A=B", "A;rm", "$(x)"} {
		err := profile.ValidateEnvName(bad)
		require.Error(t, err, bad)
		assert.Equal(t, exitcode.Usage, exitcode.Of(err))
	}
}

// A profile may not set what the slot sets for the gateway, nor s6gate's own S6GATE_* names:
// register --env and gw-render --env refuse them (exit 2) instead of letting them be silently
// overridden. They stay valid names for gateway run --setenv, which sets them.
func TestReservedEnvNames(t *testing.T) {
	for _, ok := range []string{"HOME", "PATH", "GATEWAY_HEARTBEAT", "S6GATE", "MY_S6GATE_X", "GATEWAY_HOMES"} {
		assert.NoError(t, profile.ValidateProfileEnvName(ok), ok)
	}
	for _, name := range []string{"GATEWAY_HOME", "GATEWAY_NOTIFY_FD", "GATEWAY_SUPERVISION", "S6GATE_CONTENV",
		"S6GATE_SETENV_X", "S6GATE_KEEPENV_LD_PRELOAD", "S6GATE_GOMAXPROCS"} {
		assert.NoError(t, profile.ValidateEnvName(name), name)
		err := profile.ValidateProfileEnvName(name)
		var re *profile.ReservedEnvError
		require.ErrorAs(t, err, &re, name)
		assert.Equal(t, exitcode.Usage, exitcode.Of(err))
		_, err = profile.ParseEnv([]string{"A=1", name + "=v"})
		require.ErrorAs(t, err, &re, name)
		assert.Contains(t, err.Error(), `"`+name+`" is reserved`)
	}
}

func TestDiscover(t *testing.T) {
	root := t.TempDir()
	names, skipped, err := profile.Discover(root)
	require.NoError(t, err)
	assert.Equal(t, []string{"default"}, names, "no profiles/ dir: just the default profile")
	assert.Empty(t, skipped)

	p := filepath.Join(root, "profiles")
	for _, d := range []string{"zeta", "alpha", "mid-1", "Bad", "default", ".hidden"} {
		require.NoError(t, os.MkdirAll(filepath.Join(p, d), 0o755))
	}
	require.NoError(t, os.WriteFile(filepath.Join(p, "file"), nil, 0o644))
	require.NoError(t, os.Symlink(t.TempDir(), filepath.Join(p, "linked")))

	names, skipped, err = profile.Discover(root)
	require.NoError(t, err)
	assert.Equal(t, []string{"default", "alpha", "mid-1", "zeta"}, names)
	var entries []string
	for _, s := range skipped {
		entries = append(entries, s.Entry)
	}
	assert.ElementsMatch(t, []string{"Bad", "default", "file", "linked"}, entries)
}

// "supervision" is "wrapper" or "exec"; anything else is a usage error naming the key, and
// it survives a round trip.
func TestSupervisionPolicy(t *testing.T) {
	c, err := profile.ParseConfig([]byte(`{"command": ["x"], "supervision": "exec"}`))
	require.NoError(t, err)
	assert.Equal(t, profile.SupervisionExec, c.Policy.Supervision)
	b, err := c.Marshal()
	require.NoError(t, err)
	assert.Contains(t, string(b), `"supervision": "exec"`)
	for _, bad := range []string{`"fork"`, `1`, `""`} {
		_, err := profile.ParseConfig([]byte(`{"supervision": ` + bad + `}`))
		require.Error(t, err, bad)
		assert.Equal(t, exitcode.Usage, exitcode.Of(err))
		assert.Contains(t, err.Error(), `"supervision"`)
	}
}

func TestMaxProcessesPolicy(t *testing.T) {
	c, err := profile.ParseConfig([]byte(`{"command": ["x"], "max_processes": 64}`))
	require.NoError(t, err)
	assert.Equal(t, 64, c.Policy.MaxProcs)
	b, err := c.Marshal()
	require.NoError(t, err)
	assert.Contains(t, string(b), `"max_processes": 64`)
	for _, bad := range []string{`0`, `-1`, `"10"`, `1.5`, `4194305`} {
		_, err := profile.ParseConfig([]byte(`{"max_processes": ` + bad + `}`))
		require.Error(t, err, bad)
		assert.Equal(t, exitcode.Usage, exitcode.Of(err))
		assert.Contains(t, err.Error(), `"max_processes"`)
	}
}

// The back-off schedule is exactly 1, 2, 4 … s after 1, 2, 3 … consecutive failures, capped
// at backoff_max (60 s by default); none before the first failure.
func TestBackoffSchedule(t *testing.T) {
	s := time.Second
	for _, tt := range []struct {
		name string
		max  time.Duration
		want []time.Duration // for n = 0, 1, 2, …
	}{
		{"default cap", 0, []time.Duration{0, 1 * s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, 60 * s, 60 * s, 60 * s}},
		{"backoff_max 5s", 5 * s, []time.Duration{0, 1 * s, 2 * s, 4 * s, 5 * s, 5 * s}},
		{"backoff_max below the first delay", 500 * time.Millisecond, []time.Duration{0, 500 * time.Millisecond, 500 * time.Millisecond}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := profile.Policy{BackoffMax: tt.max}
			for n, want := range tt.want {
				assert.Equal(t, want, p.Backoff(n), "after %d failures", n)
			}
			assert.Equal(t, time.Duration(0), p.Backoff(-1))
		})
	}
}
