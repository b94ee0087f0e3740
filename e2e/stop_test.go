package e2e

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
)

// stopBootGateways is how many exec-supervised gateways TestDockerStopDuringABootStaysInBudget
// boots (S6GATE_E2E_STOP_GATEWAYS changes it).
const stopBootGateways = 200

// A `docker stop` that comes while the container boots 200 exec-supervised gateways ends
// within /init's budget (S6_SERVICES_GRACETIME, then S6_KILL_GRACETIME): the time a user
// waits for, the whole docker stop. Before, the gateways' s6-svscan, busy with the boot's first
// scan (it starts every gateway, one fork after another, competing for the CPU with the
// gateways it started), handled the SIGTERM only once that scan was over, went on starting
// gateways meanwhile, and was killed only at the end of S6_KILL_GRACETIME: the stop took
// 6.7–32 s against 3 + 3 s (docs/PERFORMANCE.md). Now /init brings that nested tree down itself (the scanner
// stopped at once, its supervisors told to stop), and every step of its stop keeps one
// deadline. The stop persisted nothing wrong: after a start all of them run again.
func TestDockerStopDuringABootStaysInBudget(t *testing.T) {
	n := stopBootGateways
	if s := os.Getenv("S6GATE_E2E_STOP_GATEWAYS"); s != "" {
		var err error
		n, err = strconv.Atoi(s)
		require.NoError(t, err, "S6GATE_E2E_STOP_GATEWAYS")
	}
	const servicesGrace, killGrace = 3 * time.Second, 3 * time.Second
	b := start(t, map[string]string{
		"GATEWAY_SUPERVISION":   "exec",
		"S6_SERVICES_GRACETIME": strconv.FormatInt(servicesGrace.Milliseconds(), 10),
		"S6_KILL_GRACETIME":     strconv.FormatInt(killGrace.Milliseconds(), 10),
	}, testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		hc.Tmpfs = map[string]string{"/run": "exec"}
	}))
	if b.s6Overlay() {
		t.Skip("s6-overlay's own /init does not bring nested supervision trees down itself")
	}
	code, out := b.exec("gateway", "sh", "-c", `seq 1 "$1" | xargs -P 16 -I{} gateway register "s{}" --start --env LC_ALL=C -- sleep 100000 >/dev/null`, "grow", strconv.Itoa(n))
	require.Equal(t, 0, code, out)

	timeout := 30
	_, err := b.cli.ContainerStop(b.ctx, b.id(), client.ContainerStopOptions{Timeout: &timeout})
	require.NoError(t, err)
	require.NoError(t, b.c.Start(b.ctx))
	// The boot is under way: the gateways' s6-svscan has started an eighth of the supervisors
	// (a slot has two), counted in the container's own process tree, on the host.
	insp, err := b.cli.ContainerInspect(b.ctx, b.id(), client.ContainerInspectOptions{})
	require.NoError(t, err)
	root := insp.Container.State.Pid
	eventually(t, 60*time.Second, "the boot starting the gateways", func() bool {
		return countInTree(root, "s6-supervise") >= n/4
	})
	begin := time.Now()
	_, err = b.cli.ContainerStop(b.ctx, b.id(), client.ContainerStopOptions{Timeout: &timeout})
	require.NoError(t, err)
	took := time.Since(begin)
	stop := stopLines(b.logs())
	t.Logf("docker stop during a boot of %d exec-supervised gateways took %s; /init:\n%s", n, took, stop)
	assert.Less(t, took, servicesGrace+killGrace, "the stop overran /init's budget")
	assert.Contains(t, stop, "s6gate-gateways: nested supervision tree brought down by /init")

	require.NoError(t, b.c.Start(b.ctx))
	eventually(t, 120*time.Second, "every gateway running again", func() bool {
		code, out := b.exec("gateway", "gateway", "status", "--json")
		if code != 0 {
			return false
		}
		var st []gstatus
		if json.Unmarshal([]byte(jsonPart(out)), &st) != nil {
			return false
		}
		running := 0
		for _, s := range st {
			if s.Up && s.Ready && s.GatewayState != nil && *s.GatewayState == "running" {
				running++
			}
		}
		return running == n
	})
}

// stopLines are /init's lines about its last stop.
func stopLines(logs string) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		switch {
		case strings.Contains(l, "s6gate-init: stop:") && strings.Contains(l, "received: bringing services down"):
			out = []string{l} // a later stop
		case strings.Contains(l, "s6gate-init: stop:") && !strings.Contains(l, "s6-rc: info:"):
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// countInTree counts the processes named comm in the process tree under root (a container's
// first process, as the host sees it), from /proc: only that container's processes.
func countInTree(root int, comm string) int {
	n := 0
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); err == nil && strings.TrimSpace(string(b)) == comm {
			n++
		}
		tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
		for _, task := range tasks {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + task.Name() + "/children")
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					queue = append(queue, c)
				}
			}
		}
	}
	return n
}
