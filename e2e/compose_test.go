package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// `docker compose up -d --force-recreate` on the same named volume, with /run on a tmpfs as
// docker/compose.yaml has it: a new container, the old one's SIGTERM, the same data — running
// gateways come back, stopped ones stay down. Uses Debian's docker-compose v1 CLI (the compose
// v2 plugin is not installed on these machines).
func TestComposeForceRecreate(t *testing.T) {
	requireEngine(t)
	if _, err := exec.LookPath("docker-compose"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and docker-compose is missing (apt-get install -y docker-compose)")
		}
		t.Skip("docker-compose is not installed")
	}
	project := randomName("s6gatee2e")
	dir := t.TempDir()
	file := filepath.Join(dir, "compose.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`services:
  s6gate:
    image: `+Image+`
    pull_policy: never
    volumes:
      - data:/opt/data
    tmpfs:
      - /run:exec
volumes:
  data:
`), 0o644))
	compose := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "docker-compose", append([]string{"-p", project, "-f", file}, args...)...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "docker-compose %v: %s", args, out)
		return string(out)
	}
	t.Cleanup(func() {
		cmd := exec.Command("docker-compose", "-p", project, "-f", file, "down", "-v", "-t", "5")
		_ = cmd.Run()
	})
	dexec := func(user string, args ...string) (int, string) {
		id := strings.TrimSpace(compose("ps", "-q", "s6gate"))
		cmd := exec.Command("docker", append([]string{"exec", "-u", user, id}, args...)...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		require.NoError(t, err)
		return 0, string(out)
	}
	ready := func(boot int) {
		eventually(t, 60*time.Second, "boot to finish", func() bool {
			_, log := dexec("root", "cat", "/opt/data/logs/container-boot.log")
			code, _ := dexec("gateway", "gateway", "list")
			return code == 0 && strings.Count(log, " profile=default ") >= boot
		})
	}
	compose("up", "-d")
	ready(1)
	for _, args := range [][]string{{"register", "alive", "--start"}, {"register", "parked", "--start"}, {"stop", "-p", "parked"}} {
		code, out := dexec("gateway", append([]string{"gateway"}, args...)...)
		require.Equal(t, 0, code, out)
	}
	firstID := strings.TrimSpace(compose("ps", "-q", "s6gate"))

	compose("up", "-d", "--force-recreate")
	secondID := strings.TrimSpace(compose("ps", "-q", "s6gate"))
	require.NotEqual(t, firstID, secondID, "a new container")
	ready(2)
	_, log := dexec("root", "cat", "/opt/data/logs/container-boot.log")
	lines := strings.Split(strings.TrimSpace(log), "\n")
	last := strings.Join(lines[len(lines)-3:], "\n")
	assert.Contains(t, last, "profile=alive prior_state=running action=started")
	assert.Contains(t, last, "profile=parked prior_state=stopped action=registered")
	eventually(t, 30*time.Second, "alive up", func() bool {
		_, out := dexec("gateway", "gateway", "status", "-p", "alive", "--json")
		return strings.Contains(out, `"up": true`) && strings.Contains(out, `"gateway_state": "running"`)
	})
	_, out := dexec("gateway", "gateway", "status", "-p", "parked", "--json")
	assert.Contains(t, out, `"up": false`)
}

// The shipped compose file puts /run on a tmpfs, with exec (s6 runs the slots' scripts from it;
// Docker mounts a tmpfs noexec by default), as docs/operations.md recommends (SPEC §14).
func TestShippedComposeHasRunOnATmpfs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docker", "compose.yaml"))
	require.NoError(t, err)
	var file struct {
		Services map[string]struct {
			Tmpfs []string `json:"tmpfs"`
		} `json:"services"`
	}
	require.NoError(t, yaml.Unmarshal(b, &file))
	require.Contains(t, file.Services, "s6gate")
	var run string
	for _, m := range file.Services["s6gate"].Tmpfs {
		if p, _, _ := strings.Cut(m, ":"); filepath.Clean(p) == "/run" {
			run = m
		}
	}
	require.NotEmpty(t, run, "no tmpfs at /run")
	_, opts, _ := strings.Cut(run, ":")
	assert.Contains(t, strings.Split(opts, ","), "exec", "a noexec /run stops /init at once")
}
