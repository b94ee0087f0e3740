package config_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnvDefaults(t *testing.T) {
	s, err := config.FromEnv(env(nil))
	require.NoError(t, err)
	assert.Equal(t, config.Settings{
		Home: "/opt/data", ScanDir: "/run/service", CommandDir: "/command",
		User: "gateway", Bin: "/usr/local/bin/gateway", DrainTimeout: 2 * time.Second,
		HealthGrace: 30 * time.Second, MaxServices: 4096, Supervision: "wrapper",
		UIDs: config.UIDRange{First: 20000, Last: 59999},
	}, s)
}

func TestFromEnvOverridesAndErrors(t *testing.T) {
	s, err := config.FromEnv(env(map[string]string{
		"GATEWAY_HOME": "/data/", "GATEWAY_SCANDIR": "/tmp/scan", "S6_COMMAND_DIR": "/usr/bin",
		"GATEWAY_USER": "nobody", "GATEWAY_BIN": "/x/gateway", "GATEWAY_DRAIN_TIMEOUT": "1500ms",
		"GATEWAY_HEALTH_GRACE": "5", "GATEWAY_MAX_SERVICES": "2500", "GATEWAY_SUPERVISION": "exec",
		"GATEWAY_UID_RANGE": "30000-30099", "GATEWAY_MAX_PROCS": "64",
	}))
	require.NoError(t, err)
	assert.Equal(t, "exec", s.Supervision)
	assert.Equal(t, "/data", s.Home)
	assert.Equal(t, 1500*time.Millisecond, s.DrainTimeout)
	assert.Equal(t, 5*time.Second, s.HealthGrace)
	assert.Equal(t, 2500, s.MaxServices)
	assert.Equal(t, config.UIDRange{First: 30000, Last: 30099}, s.UIDs)
	assert.Equal(t, 100, s.UIDs.Size())
	assert.True(t, s.UIDs.Contains(30099))
	assert.False(t, s.UIDs.Contains(30100))
	assert.Equal(t, 64, s.MaxProcs)
	s, err = config.FromEnv(env(map[string]string{"GATEWAY_UID_RANGE": "off"}))
	require.NoError(t, err)
	assert.True(t, s.UIDs.Off())
	assert.False(t, s.UIDs.Contains(0))
	assert.Equal(t, "off", s.UIDs.String())

	bad := []map[string]string{
		{"GATEWAY_HOME": "relative/path"},
		{"GATEWAY_SCANDIR": "run/service"},
		{"S6_COMMAND_DIR": "/has space/bin"},
		{"GATEWAY_BIN": "gateway"},
		{"GATEWAY_HEALTH_GRACE": "-3s"},
		{"GATEWAY_USER": "a:b"},
		{"GATEWAY_DRAIN_TIMEOUT": "soon"},
		{"GATEWAY_DRAIN_TIMEOUT": "-1s"},
		{"GATEWAY_MAX_SERVICES": "1"},
		{"GATEWAY_MAX_SERVICES": "90001"},
		{"GATEWAY_MAX_SERVICES": "lots"},
		{"GATEWAY_SUPERVISION": "fork"},
		{"GATEWAY_UID_RANGE": "0-100"},
		{"GATEWAY_UID_RANGE": "999-2000"},
		{"GATEWAY_UID_RANGE": "30000"},
		{"GATEWAY_UID_RANGE": "3000-2000"},
		{"GATEWAY_UID_RANGE": "20000-4294967295"},
		{"GATEWAY_MAX_PROCS": "-1"},
		{"GATEWAY_MAX_PROCS": "many"},
	}
	for _, m := range bad {
		_, err := config.FromEnv(env(m))
		require.Error(t, err, m)
		assert.Equal(t, exitcode.Usage, exitcode.Of(err), m)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"": 7 * time.Second, "2s": 2 * time.Second, "250ms": 250 * time.Millisecond,
		"3": 3 * time.Second, "0.5": 500 * time.Millisecond, "0": 0,
	} {
		got, err := config.ParseDuration(in, 7*time.Second)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
}

func TestCheckHome(t *testing.T) {
	dir := t.TempDir()
	assert.NoError(t, config.Settings{Home: dir}.CheckHome())
	err := config.Settings{Home: filepath.Join(dir, "missing")}.CheckHome()
	require.Error(t, err)
	assert.Equal(t, exitcode.Usage, exitcode.Of(err))
	assert.Contains(t, err.Error(), "missing")
	f := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(f, nil, 0o600))
	assert.Equal(t, exitcode.Usage, exitcode.Of(config.Settings{Home: f}.CheckHome()))
}
