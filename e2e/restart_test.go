package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
)

const idleLoop = "echo \"gateway $0 up\"; while :; do sleep 1; done"

// The core restart scenarios are functions of the container options, so that
// TestMinimalImage (minimal_test.go) runs them on s6gate:minimal as well
// (testcontainers.WithImage); each Test function here runs one on the image under test.

// The regression at the heart of s6gate: a gateway the operator started, whose own process
// wrote "running", survives a real `docker restart` — nothing stamped by the test.
func TestRunningGatewaySurvivesDockerRestart(t *testing.T) { runningGatewaySurvivesDockerRestart(t) }

func runningGatewaySurvivesDockerRestart(t *testing.T, opts ...testcontainers.ContainerCustomizer) {
	b := start(t, nil, opts...)
	b.gw("register", "coder", "--start")
	before := b.waitUp("coder")
	beforeStart := b.state("coder")["start_time"]

	b.restart()
	b.waitBoot(2)
	line := b.bootLines(2)["coder"]
	assert.Contains(t, line, "prior_state=running action=started", line)
	after := b.waitUp("coder")
	assert.False(t, b.fileExists("/run/gateways/gateway-coder/down"))
	assert.NotEqual(t, beforeStart, b.state("coder")["start_time"], "a new process (PIDs may repeat in a new PID namespace; start times do not)")
	t.Logf("pid before %d, after %d", *before.PID, *after.PID)
}

func TestStoppedGatewayStaysDownAfterDockerRestart(t *testing.T) {
	stoppedGatewayStaysDownAfterDockerRestart(t)
}

func stoppedGatewayStaysDownAfterDockerRestart(t *testing.T, opts ...testcontainers.ContainerCustomizer) {
	b := start(t, nil, opts...)
	b.gw("register", "coder", "--start")
	b.waitUp("coder")
	b.gw("stop", "-p", "coder")
	assert.Equal(t, "stopped", b.state("coder")["gateway_state"])

	b.restart()
	b.waitBoot(2)
	assert.Contains(t, b.bootLines(2)["coder"], "prior_state=stopped action=registered")
	s := b.status("coder")
	assert.False(t, s.Up)
	assert.True(t, b.fileExists("/run/gateways/gateway-coder/down"))
	assert.Equal(t, "stopped", b.state("coder")["gateway_state"])
}

func TestKillThenStartBringsRunningGatewayBack(t *testing.T) {
	killThenStartBringsRunningGatewayBack(t)
}

func killThenStartBringsRunningGatewayBack(t *testing.T, opts ...testcontainers.ContainerCustomizer) {
	b := start(t, nil, opts...)
	b.gw("register", "coder", "--start")
	b.waitUp("coder")
	_, err := b.cli.ContainerKill(b.ctx, b.id(), client.ContainerKillOptions{Signal: "KILL"})
	require.NoError(t, err)
	eventually(t, 20*time.Second, "container to exit", func() bool {
		st, err := b.c.State(b.ctx)
		return err == nil && !st.Running
	})
	require.NoError(t, b.c.Start(b.ctx))
	b.waitBoot(2)
	assert.Contains(t, b.bootLines(2)["coder"], "prior_state=running action=started")
	b.waitUp("coder")
}

func TestMixedProfilesAndACorruptStateFile(t *testing.T) {
	b := start(t, nil)
	b.gw("register", "runner", "--start", "--", "sh", "-c", idleLoop, "runner")
	b.gw("register", "sleeper", "--start")
	b.waitUp("runner")
	b.waitUp("sleeper")
	b.gw("stop", "-p", "sleeper")
	b.gw("register", "broken")
	code, out := b.exec("gateway", "sh", "-c", "printf '{not json' > /opt/data/profiles/broken/gateway_state.json")
	require.Equal(t, 0, code, out)

	b.restart()
	b.waitBoot(2)
	lines := b.bootLines(2)
	assert.Contains(t, lines["runner"], "prior_state=running action=started")
	assert.Contains(t, lines["sleeper"], "prior_state=stopped action=registered")
	assert.Contains(t, lines["broken"], "prior_state=none action=registered")
	b.waitUp("runner")
	assert.False(t, b.status("sleeper").Up)
	assert.False(t, b.status("broken").Up)
	assert.Contains(t, b.logs(), "unusable state file", "the corrupt file was reported, not fatal")
}

func TestGatewayOutputReachesDockerLogsAndLogFile(t *testing.T) {
	gatewayOutputReachesDockerLogsAndLogFile(t)
}

func gatewayOutputReachesDockerLogsAndLogFile(t *testing.T, opts ...testcontainers.ContainerCustomizer) {
	b := start(t, nil, opts...)
	b.gw("register", "talker", "--start", "--", "sh", "-c", "echo marker-from-talker-$((6*7)); exec sleep 1000")
	b.waitUp("talker")
	eventually(t, 20*time.Second, "the line in docker logs and in the s6-log file", func() bool {
		_, file := b.exec("", "cat", "/opt/data/logs/gateways/talker/current")
		return strings.Contains(b.logs(), "marker-from-talker-42") && strings.Contains(file, "marker-from-talker-42")
	})
}

func TestDockerStopIsPromptAndPersistsRunning(t *testing.T) { dockerStopIsPromptAndPersistsRunning(t) }

func dockerStopIsPromptAndPersistsRunning(t *testing.T, opts ...testcontainers.ContainerCustomizer) {
	b := start(t, map[string]string{"S6_KILL_GRACETIME": "8000", "S6_SERVICES_GRACETIME": "8000"}, opts...)
	profiles := []string{"g1", "g2", "g3", "g4", "g5"}
	for _, p := range profiles {
		b.gw("register", p, "--start", "--", "sh", "-c", idleLoop, p)
	}
	for _, p := range profiles {
		b.waitUp(p)
	}
	upstream := b.s6Overlay()
	timeout := 30
	begin := time.Now()
	_, err := b.cli.ContainerStop(b.ctx, b.id(), client.ContainerStopOptions{Timeout: &timeout})
	require.NoError(t, err)
	took := time.Since(begin)
	if upstream {
		// A difference on purpose: upstream's stage 3 (s6-linux-init-shutdownd) sends every
		// process SIGTERM and then sleeps the whole S6_KILL_GRACETIME before its SIGKILL, even
		// when everything is already gone; s6gate's /init returns as soon as nothing is left.
		assert.GreaterOrEqual(t, took, 8*time.Second, "s6-overlay waits all of S6_KILL_GRACETIME")
		assert.Less(t, took, 12*time.Second, "and not much more: the gateways stopped at the SIGTERM")
	} else {
		assert.Less(t, took, 4*time.Second, "a stop returns as soon as everything is down, not after the 8 s grace")
	}
	insp, err := b.cli.ContainerInspect(b.ctx, b.id(), client.ContainerInspectOptions{})
	require.NoError(t, err)
	assert.Equal(t, 0, insp.Container.State.ExitCode)

	// What the gateways themselves persisted on the way down, read from the volume while the
	// container is stopped: running, as an unplanned (container) stop — not stopped.
	for _, p := range profiles {
		out := volumeFile(t, b.vol, "/opt/data/profiles/"+p+"/gateway_state.json", opts...)
		assert.Contains(t, out, `"gateway_state": "running"`, p)
		assert.Contains(t, out, "signal-initiated shutdown (unplanned", p)
	}

	// The states are on the volume; read them from the next boot before anything else runs.
	require.NoError(t, b.c.Start(b.ctx))
	b.waitBoot(2)
	for _, p := range profiles {
		assert.Contains(t, b.bootLines(2)[p], "prior_state=running action=started", p)
	}
	t.Logf("docker stop with %d gateways took %s", len(profiles), took)
}

// A profile deleted while the container was down does not come back from a stale slot
// (docker restart keeps the writable layer, and with it /run/service).
func TestDeletedProfileDoesNotComeBack(t *testing.T) {
	b := start(t, nil)
	b.gw("register", "doomed", "--start")
	b.gw("register", "keeper", "--start")
	b.waitUp("doomed")
	timeout := 20
	_, err := b.cli.ContainerStop(b.ctx, b.id(), client.ContainerStopOptions{Timeout: &timeout})
	require.NoError(t, err)

	// Delete the profile through another container on the same volume, as an admin would.
	onVolume(t, b.vol, "rm", "-rf", "/opt/data/profiles/doomed")

	require.NoError(t, b.c.Start(b.ctx))
	b.waitBoot(2)
	assert.NotContains(t, b.bootLines(2), "doomed")
	_, out := b.exec("", "ls", "/run/gateways")
	assert.NotContains(t, out, "gateway-doomed")
	assert.NotContains(t, b.gw("list"), "doomed")
	b.waitUp("keeper")
}
