package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/s6/s6test"
)

func TestMain(m *testing.M) {
	code := m.Run()
	s6test.RemoveBinaries()
	os.Exit(code)
}

func TestRenderPublishRemove(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	dir := filepath.Join(e.Base, "rendered")
	r := e.Run("gw-render", "render", "-p", "coder", "--down", "--env", "A=b c", dir, "--", "sh", "-c", "sleep 1")
	require.Equal(t, 0, r.Code, r.Stderr)
	run, err := os.ReadFile(filepath.Join(dir, "run"))
	require.NoError(t, err)
	assert.Contains(t, string(run), "export A='b c'")
	assert.Contains(t, string(run), "--replace -- 'sh' '-c' 'sleep 1'")
	assert.FileExists(t, filepath.Join(dir, "down"))
	assert.FileExists(t, filepath.Join(dir, "log", "supervise", "control"))

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
