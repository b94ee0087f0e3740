package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
)

// crashStatus is the part of status --json that explains a crash loop.
type crashStatus struct {
	gstatus
	Restarts            int  `json:"restarts"`
	ConsecutiveFailures int  `json:"consecutive_failures"`
	Failed              bool `json:"failed"`
	Healthy             bool `json:"healthy"`
	LastExit            *struct {
		Code *int `json:"code"`
	} `json:"last_exit"`
	FailedReason string `json:"failed_reason"`
}

func (b *box) crashStatus(p string) crashStatus {
	b.t.Helper()
	out := b.gw("status", "-p", p, "--json")
	var s []crashStatus
	require.NoError(b.t, json.Unmarshal([]byte(jsonPart(out)), &s), out)
	require.Len(b.t, s, 1)
	return s[0]
}

// health is Docker's own verdict on the container (State.Health.Status).
func (b *box) health() string {
	b.t.Helper()
	insp, err := b.cli.ContainerInspect(b.ctx, b.id(), client.ContainerInspectOptions{})
	require.NoError(b.t, err)
	if insp.Container.State == nil || insp.Container.State.Health == nil {
		return ""
	}
	return string(insp.Container.State.Health.Status)
}

// The operator's view end to end, in the image: an honest start, a crash loop that ends
// failed, Docker's health check following it (unhealthy while a running-intent gateway is
// failed, healthy again after `gateway stop`), and a container restart trying it again.
func TestFailedGatewayTurnsTheContainerUnhealthyUntilStopped(t *testing.T) {
	b := start(t, map[string]string{"GATEWAY_HEALTH_GRACE": "3s"},
		testcontainers.WithConfigModifier(func(c *container.Config) {
			c.Healthcheck = &container.HealthConfig{
				Test:     []string{"CMD", "/usr/local/bin/gateway", "status", "--check", "--timeout", "5s"},
				Interval: 500 * time.Millisecond, Timeout: 10 * time.Second, Retries: 1,
			}
		}))
	eventually(t, 60*time.Second, "docker reports healthy", func() bool { return b.health() == "healthy" })

	// An honest start: /bin/false exits 1 with its status, not "started".
	code, out := b.exec("gateway", "gateway", "register", "false", "--start", "--", "/bin/false")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "gateway 'false' did not start: command exited with status 1")
	b.gw("stop", "-p", "false")

	// A command that keeps failing, allowed 2 failures: failed, and s6 leaves it down.
	code, out = b.exec("gateway", "sh", "-c", `mkdir -p /opt/data/profiles/bad &&
		printf '%s\n' '{"command": ["/bin/sh", "-c", "echo bad-gateway-says-hello; exit 4"], "max_failures": 2}' > /opt/data/profiles/bad/profile.json`)
	require.Equal(t, 0, code, out)
	code, out = b.exec("gateway", "gateway", "register", "bad", "--start")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "command exited with status 4")
	assert.Contains(t, out, "bad-gateway-says-hello", "the last log lines follow the error")
	var st crashStatus
	eventually(t, 30*time.Second, "bad marked failed", func() bool { st = b.crashStatus("bad"); return st.Failed })
	assert.Equal(t, 2, st.ConsecutiveFailures)
	assert.Equal(t, 1, st.Restarts)
	require.NotNil(t, st.LastExit)
	assert.Equal(t, 4, *st.LastExit.Code)
	assert.Contains(t, st.FailedReason, "2 consecutive failures")
	eventually(t, 30*time.Second, "docker reports unhealthy", func() bool { return b.health() == "unhealthy" })

	out = b.gw("logs", "-p", "bad", "-n", "5")
	assert.Contains(t, out, "bad-gateway-says-hello")

	// Stopped on purpose: healthy again.
	b.gw("stop", "-p", "bad")
	eventually(t, 30*time.Second, "docker reports healthy after gateway stop", func() bool { return b.health() == "healthy" })

	// Intent running again, then a container restart: the next boot tries it again afresh.
	code, out = b.exec("gateway", "gateway", "start", "-p", "bad")
	assert.Equal(t, 1, code, out)
	eventually(t, 30*time.Second, "bad failed again", func() bool { return b.crashStatus("bad").Failed })
	bootBefore := b.state("bad")["boot_id"]
	b.restart()
	b.waitBoot(2)
	assert.Contains(t, b.bootLines(2)["bad"], "action=started", "failed is not an operator stop")
	eventually(t, 30*time.Second, "bad tried again in the new boot", func() bool {
		s := b.state("bad")
		return s["boot_id"] != bootBefore && s["boot_id"] != nil
	})
	assert.True(t, strings.Contains(b.logs(), "bad-gateway-says-hello"))
}
