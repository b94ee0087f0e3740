package main_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/internal/strace"
	"github.com/s6gate/s6gate/pkg/proc"
	"github.com/s6gate/s6gate/pkg/state"
)

// TestGatewayRecordsStartingBeforeRunning pins SPEC §7 "writes gateway_state=starting, then
// running": the first document the gateway puts in place is `starting` with its own pid and
// start time, and `running` comes after it. `starting` is short-lived and every write is an
// atomic rename, so polling the file could miss it; instead the real gateway runs under
// strace and the documents renamed onto gateway_state.json are reconstructed from its
// write and rename calls, all of them, in order.
func TestGatewayRecordsStartingBeforeRunning(t *testing.T) {
	// The kernel reports resolved paths; so must the test.
	root, err := filepath.EvalSymlinks(newRoot(t))
	require.NoError(t, err)
	tr := strace.Command(t, []string{"write", "pwrite64", "openat", "rename", "renameat", "renameat2"},
		s6test.Binaries(t)["gateway"], "run", "-p", "default")
	g := launch(t, tr.Cmd, root, "default", nil)
	pid := g.cmd.Process.Pid // strace -D: the traced gateway is our direct child
	g.waitState("running")
	start, err := proc.StartTime(pid)
	require.NoError(t, err)
	g.signal(syscall.SIGTERM)
	assert.Equal(t, 1, g.wait(), g.out.String())

	calls := tr.Calls(t, 10*time.Second)
	docs := calls.Replacements(filepath.Join(root, state.FileName))
	var states []string
	var parsed []map[string]any
	for _, doc := range docs {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(doc), &m), "every document renamed into place is JSON: %q", doc)
		parsed = append(parsed, m)
		states = append(states, m["gateway_state"].(string))
	}
	inRoot := calls.Filter(func(c strace.Call) bool { return strings.Contains(c.String(), root) })
	require.Equal(t, []string{state.Starting, state.Running, state.Draining, state.Running}, states,
		"the documents renamed onto %s, in order\n%s", state.FileName, inRoot)
	assert.Equal(t, float64(pid), parsed[0]["pid"], "starting names the gateway's pid")
	assert.Equal(t, float64(start), parsed[0]["start_time"], "starting names the gateway's start time")
	assert.Equal(t, float64(pid), parsed[1]["pid"], "running keeps the pid")
	assert.NotContains(t, parsed[3], "pid", "the last document leaves no pid behind")
}
