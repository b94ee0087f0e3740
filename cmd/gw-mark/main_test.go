package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/marker"
)

func TestMain(m *testing.M) { s6test.Main(m) }

func TestWriteCheckClear(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	require.NoError(t, os.MkdirAll(e.ProfileHome("coder"), 0o755))
	for _, d := range []string{filepath.Dir(e.ProfileHome("coder")), e.ProfileHome("coder")} {
		require.NoError(t, os.Chown(d, e.UID, e.GID), "the service user's home, as register makes it")
	}
	target := exec.Command("sleep", "100")
	require.NoError(t, target.Start())
	defer func() { _ = target.Process.Kill(); _ = target.Wait() }()
	pid := strconv.Itoa(target.Process.Pid)
	path := filepath.Join(e.ProfileHome("coder"), marker.FileName)

	r := e.Run("gw-mark", "write", "-p", "coder", pid)
	require.Equal(t, 0, r.Code, r.Stderr)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var m marker.Marker
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Equal(t, target.Process.Pid, m.TargetPID)
	assert.NotNil(t, m.TargetStartTime)

	r = e.Run("gw-mark", "check", "-p", "coder", strconv.Itoa(target.Process.Pid+1))
	assert.Equal(t, 1, r.Code, "another pid: not planned")
	assert.Empty(t, r.Stderr, "not planned is an answer, not an error")
	assert.NoFileExists(t, path, "check consumes the marker, matched or not")

	e.MustRun("gw-mark", "write", "-p", "coder", pid)
	r = e.Run("gw-mark", "check", "-p", "coder", pid)
	assert.Equal(t, 0, r.Code, r.Stdout+r.Stderr)
	assert.Contains(t, r.Stdout, "matches")
	assert.NoFileExists(t, path)
	r = e.Run("gw-mark", "check", "-p", "coder", pid)
	assert.Equal(t, 1, r.Code, "single use")

	e.MustRun("gw-mark", "write", "-p", "coder", pid)
	e.MustRun("gw-mark", "clear", "-p", "coder")
	assert.NoFileExists(t, path)
	e.MustRun("gw-mark", "clear", "-p", "coder") // clearing nothing is fine
}

func TestWriteWithoutPIDUsesTheSupervisedOne(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	r := e.Run("gw-mark", "write", "-p", "coder")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "no such gateway 'coder'")

	e.MustRun("gateway", "register", "coder", "--start")
	st := e.MustRun("gateway", "status", "-p", "coder", "--json").Stdout
	var s []struct{ PID int }
	require.NoError(t, json.Unmarshal([]byte(st), &s))
	e.MustRun("gw-mark", "write", "-p", "coder")
	b, err := os.ReadFile(filepath.Join(e.ProfileHome("coder"), marker.FileName))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"target_pid":`+strconv.Itoa(s[0].PID))
}

func TestBadUsage(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	for _, args := range [][]string{
		{"bogus", "-p", "x"}, {"write"}, {"write", "-p", "Bad"}, {"write", "-p", "x", "abc"},
		{"write", "-p", "x", "-5"}, {"clear", "-p", "x", "1"}, {"check", "-p", "x", "1", "2"}, {"write", "--bogus"},
	} {
		r := e.Run("gw-mark", args...)
		assert.Equal(t, 2, r.Code, "%v: %s", args, r.Stderr)
		assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "%v: %q", args, r.Stderr)
	}
	entries, err := os.ReadDir(e.Home)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing written")
}
