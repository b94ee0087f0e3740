package main_test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
)

// environOf is pid's initial environment (/proc/PID/environ) as a map.
func environOf(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	require.NoError(t, err)
	out := map[string]string{}
	for _, kv := range strings.Split(string(b), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = v
		}
	}
	return out
}

// `gateway run` starts with GOMAXPROCS=1 (the slot's run script sets it), and the command gets
// the GOMAXPROCS the environment had — none here — or the profile's own.
func TestGatewayRunStartsOnOnePAndTheCommandDoesNot(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	e.MustRun("gateway", "register", "w", "--start", "--", "/bin/sleep", "1000")
	e.MustRun("gateway", "register", "p", "--start", "--env", "GOMAXPROCS=3", "--", "/bin/sleep", "1000")

	wrapper := s6Status(t, e, "w").PID
	assert.Equal(t, "1", environOf(t, wrapper)["GOMAXPROCS"], "gateway run's own")
	kids := children(wrapper)
	require.Len(t, kids, 1)
	// /proc/PID/environ is what the last exec got: the command's once it exec'd sleep.
	s6test.WaitExec(t, atoi(t, kids[0]), "sleep")
	env := environOf(t, atoi(t, kids[0]))
	assert.NotContains(t, env, "GOMAXPROCS", "the command's: the environment had none")
	assert.NotContains(t, env, "S6GATE_GOMAXPROCS")

	kids = children(s6Status(t, e, "p").PID)
	require.Len(t, kids, 1)
	s6test.WaitExec(t, atoi(t, kids[0]), "sleep")
	assert.Equal(t, "3", environOf(t, atoi(t, kids[0]))["GOMAXPROCS"], "the profile's own")

	// Under exec supervision the command is the process gateway run became.
	registerWith(t, e, "x", `{"command": ["/bin/sleep", "1000"], "supervision": "exec"}`)
	e.MustRun("gateway", "start", "-p", "x")
	pid := s6Status(t, e, "x").PID
	s6test.WaitExec(t, pid, "sleep")
	env = environOf(t, pid)
	assert.NotContains(t, env, "GOMAXPROCS", "exec: the command's")
	assert.NotContains(t, env, "S6GATE_GOMAXPROCS")
}
