package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Exec supervision in the image (GATEWAY_SUPERVISION=exec, docs/operations.md): the command
// is the supervised process; a docker stop leaves the running ones running (nothing written,
// no Go process per gateway) and the stopped one stopped; after the restart they come back
// as they were.
func TestExecSupervisionAcrossDockerStopAndStart(t *testing.T) {
	b := start(t, map[string]string{"GATEWAY_SUPERVISION": "exec"})
	profiles := []string{"e1", "e2", "e3"}
	for _, p := range profiles {
		b.gw("register", p, "--start", "--", "sleep", "100000")
	}
	b.gw("register", "down", "--start", "--", "sleep", "100000")
	for _, p := range append(profiles, "down") {
		st := b.waitUp(p)
		// Up is seen before the exec of the command: wait for it (under the wrapper the
		// supervised process would stay `gateway`).
		var comm string
		eventually(t, 10*time.Second, p+": the command is the supervised process", func() bool {
			_, comm = b.exec("", "cat", "/proc/"+strconv.Itoa(*st.PID)+"/comm")
			return strings.TrimSpace(comm) == "sleep"
		})
		assert.Equal(t, "running", b.state(p)["gateway_state"], p)
	}
	b.gw("stop", "-p", "down")
	assert.Equal(t, "stopped", b.state("down")["gateway_state"])

	timeout := 30
	begin := time.Now()
	_, err := b.cli.ContainerStop(b.ctx, b.id(), client.ContainerStopOptions{Timeout: &timeout})
	require.NoError(t, err)
	took := time.Since(begin)
	assert.Less(t, took, 4*time.Second)
	for _, p := range profiles {
		out := volumeFile(t, b.vol, "/opt/data/profiles/"+p+"/gateway_state.json")
		assert.Contains(t, out, `"gateway_state": "running"`, p)
	}
	assert.Contains(t, volumeFile(t, b.vol, "/opt/data/profiles/down/gateway_state.json"), `"gateway_state": "stopped"`)

	require.NoError(t, b.c.Start(b.ctx))
	b.waitBoot(2)
	lines := b.bootLines(2)
	for _, p := range profiles {
		assert.Contains(t, lines[p], "prior_state=running action=started", p)
		b.waitUp(p)
	}
	assert.Contains(t, lines["down"], "prior_state=stopped action=registered")
	assert.False(t, b.status("down").Up)
	t.Logf("docker stop with %d exec-supervised gateways took %s", len(profiles)+1, took)
}
