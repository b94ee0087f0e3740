package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
)

// svcHealthDockerfile adds two of the container's own services that fail until a file exists:
// a services.d service and an essential s6-rc longrun of the user bundle.
const svcHealthDockerfile = `ARG BASE
FROM ${BASE}
RUN mkdir -p /etc/services.d/flaky /etc/s6-overlay/s6-rc.d/ess /etc/s6-overlay/s6-rc.d/user/contents.d \
 && printf '#!/bin/sh\n[ -e /tmp/ok-legacy ] && exec sleep 100000\nexit 1\n' > /etc/services.d/flaky/run \
 && printf '#!/bin/sh\n[ -e /tmp/ok-rc ] && exec sleep 100000\nexit 1\n' > /etc/s6-overlay/s6-rc.d/ess/run \
 && chmod 0755 /etc/services.d/flaky/run /etc/s6-overlay/s6-rc.d/ess/run \
 && echo longrun > /etc/s6-overlay/s6-rc.d/ess/type \
 && touch /etc/s6-overlay/s6-rc.d/ess/flag-essential /etc/s6-overlay/s6-rc.d/user/contents.d/ess
`

// withImage runs another image than Image (a fixture built on it).
func withImage(tag string) testcontainers.CustomizeRequestOption {
	return func(req *testcontainers.GenericContainerRequest) error { req.Image = tag; return nil }
}

// The image's HEALTHCHECK covers the container's own services too: a services.d service and
// an essential s6-rc longrun that keep failing turn Docker's verdict unhealthy (each named by
// status --check), and healthy again once they run.
func TestHealthCheckCoversTheContainersOwnServices(t *testing.T) {
	requireEngine(t)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(svcHealthDockerfile), 0o644))
	tag := randomName("s6gate-e2e-svchealth:")
	docker(t, "build", "-q", "-t", tag, "--build-arg", "BASE="+Image, dir)
	t.Cleanup(func() { _ = exec.Command("docker", "image", "rm", "-f", tag).Run() })

	b := start(t, map[string]string{"GATEWAY_HEALTH_GRACE": "2s"}, withImage(tag),
		testcontainers.WithConfigModifier(func(c *container.Config) {
			c.Healthcheck = &container.HealthConfig{
				Test:     []string{"CMD", "/usr/local/bin/gateway", "status", "--check", "--timeout", "5s"},
				Interval: 500 * time.Millisecond, Timeout: 10 * time.Second, Retries: 1,
			}
		}))
	eventually(t, 60*time.Second, "docker reports unhealthy", func() bool { return b.health() == "unhealthy" })
	code, out := b.exec("", "gateway", "status", "--check")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "The container's service s6-rc/ess is meant to run and has not been serving: ")

	b.exec("", "touch", "/tmp/ok-rc")
	eventually(t, 30*time.Second, "only the services.d service left", func() bool {
		_, out := b.exec("", "gateway", "status", "--check")
		return strings.Contains(out, "service services.d/flaky is meant to run") && !strings.Contains(out, "s6-rc/ess")
	})
	b.exec("", "touch", "/tmp/ok-legacy")
	eventually(t, 30*time.Second, "docker reports healthy", func() bool { return b.health() == "healthy" })
	code, out = b.exec("gateway", "gateway", "status", "--check")
	assert.Equal(t, 0, code, "as the service user the root tree is not readable: gateways only: %s", out)
}
