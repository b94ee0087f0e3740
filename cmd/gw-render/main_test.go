package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/s6"
)

func TestMain(m *testing.M) { s6test.Main(m) }

func TestRenderPublishRemove(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	dir := filepath.Join(e.Home, "rendered") // gw-render acts as the service user
	r := e.Run("gw-render", "render", "-p", "coder", "--down", "--env", "A=b c", dir, "--", "sh", "-c", "sleep 1")
	require.Equal(t, 0, r.Code, r.Stderr)
	run, err := os.ReadFile(filepath.Join(dir, "run"))
	require.NoError(t, err)
	assert.Contains(t, string(run), "export S6GATE_SETENV_A='b c'\n")
	assert.Contains(t, string(run), "  --setenv 'A' \\\n")
	assert.Contains(t, string(run), "--replace -- 'sh' '-c' 'sleep 1'")
	assert.FileExists(t, filepath.Join(dir, "down"))
	assert.FileExists(t, filepath.Join(dir, "log", "run"))

	r = e.Run("gw-render", "render", "-p", "coder", dir)
	assert.Equal(t, 1, r.Code, "an existing directory is not overwritten")

	e.Start()
	r = e.Run("gw-render", "publish", "-p", "coder")
	require.Equal(t, 0, r.Code, r.Stderr)
	s6test.Eventually(t, 5*time.Second, "s6-supervise on the published slot", func() bool {
		ok, _ := s6.Supervised(e.Slot("coder"))
		return ok
	})
	r = e.Run("gw-render", "publish", "-p", "coder")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "already registered")

	r = e.Run("gw-render", "remove", "-p", "coder")
	require.Equal(t, 0, r.Code, r.Stderr)
	assert.NoDirExists(t, e.Slot("coder"))
	e.MustRun("gw-render", "remove", "-p", "coder") // absent: nothing to do
}

func TestBadUsage(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	for _, args := range [][]string{
		{"bogus"}, {"publish"}, {"publish", "-p", "Bad"}, {"publish", "-p", "x", "--env", "1A=2"},
		{"render", "-p", "x"}, {"remove", "-p", "x", "--down"}, {"publish", "-p", "x", "extra"},
	} {
		r := e.Run("gw-render", args...)
		assert.Equal(t, 2, r.Code, "%v: %s", args, r.Stderr)
		assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "%v: %q", args, r.Stderr)
	}
	entries, _ := os.ReadDir(e.ScanDir)
	assert.Empty(t, entries)
}

// remove validates the name before it touches anything: a name that walks out of the scan
// directory is a usage error, and the directory it points at survives.
func TestRemoveValidatesTheName(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	victim := filepath.Join(e.Base, "victim")
	require.NoError(t, os.MkdirAll(filepath.Join(victim, "precious"), 0o777))
	require.NoError(t, os.Chmod(victim, 0o777))
	require.NoError(t, os.Mkdir(filepath.Join(e.ScanDir, "gateway-x"), 0o777))
	require.NoError(t, os.Chmod(filepath.Join(e.ScanDir, "gateway-x"), 0o777))
	for _, bad := range []string{"x/../../victim", "../victim", "x/..", "X"} {
		r := e.Run("gw-render", "remove", "-p", bad)
		assert.Equal(t, 2, r.Code, "%q: %s", bad, r.Stderr)
		assert.Contains(t, r.Stderr, "invalid profile name", bad)
	}
	assert.DirExists(t, filepath.Join(victim, "precious"))
	assert.DirExists(t, filepath.Join(e.ScanDir, "gateway-x"))
}
