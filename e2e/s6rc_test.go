package e2e

import (
	"context"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// s6rcFixture builds testdata/s6rc (a linuxserver-style s6-rc tree) FROM the image under test
// with the docker CLI (the legacy builder: nothing is pulled) and returns its tag.
func s6rcFixture(t *testing.T) string {
	t.Helper()
	requireEngine(t)
	tag := "s6gate-e2e-s6rc-fixture:" + randomName("t")
	out, err := exec.Command("docker", "build", "-q", "-t", tag, "--build-arg", "BASE="+Image, "testdata/s6rc").CombinedOutput()
	require.NoError(t, err, "docker build of the s6-rc fixture: %s", out)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", tag).Run() })
	return tag
}

// TestS6RCTree boots an image with an s6-rc source tree and checks s6-overlay's contract:
// the order base (cont-init.d) → user → legacy-services (services.d) → user2, a pipeline that
// delivers and survives restarts of either side, the s6-rc command, and the down scripts in
// reverse order at docker stop.
func TestS6RCTree(t *testing.T) {
	tag := s6rcFixture(t)
	ctx := context.Background()
	c, err := testcontainers.Run(ctx, tag, testcontainers.WithWaitStrategy(
		wait.ForExec([]string{"grep", "-qx", "late-one-up", "/run/order.log"}).
			WithStartupTimeout(60*time.Second).WithPollInterval(50*time.Millisecond)))
	b := &box{t: t, ctx: ctx, c: c}
	t.Cleanup(func() {
		if c != nil {
			if t.Failed() {
				t.Logf("container logs:\n%s", b.logs())
			}
			_ = c.Terminate(context.Background())
		}
	})
	require.NoError(t, err)
	b.cli, err = testcontainers.NewDockerClientWithOpts(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { b.cli.Close() })

	// What the scripts marked, in order; the services.d service's marks come asynchronously.
	orderLog := func() []string {
		_, out := b.exec("", "cat", "/run/order.log")
		return slices.DeleteFunc(strings.Fields(out), func(s string) bool { return s == "legacy-svc-run" })
	}
	// Boot order: cont-init.d, then the user oneshots in dependency order, then user2's
	// oneshot, which checked that the services.d service was supervised already.
	got := orderLog()
	assert.Equal(t, []string{"cont-init", "init-one-up", "init-two-up", "late-one-up"}, got)
	code, out := b.exec("", "cat", "/run/init-two.rcname")
	assert.Equal(t, "init-two\n", out, "RC_NAME in the up script (exit %d)", code)

	// s6-rc -a list: every active atomic service.
	code, out = b.exec("", "s6-rc", "-a", "list")
	require.Equal(t, 0, code, out)
	assert.Equal(t, []string{"fix-attrs", "init-one", "init-two", "late-one", "legacy-cont-init", "legacy-services", "svc-talker", "svc-talker-log"}, strings.Fields(out))
	code, out = b.exec("", "s6-rc", "-u", "change", "no-such-service")
	assert.Equal(t, 3, code, "unknown service name: %s", out)

	// The longruns are in /run/service, supervised.
	pid := func(name string) int {
		_, out := b.exec("", "s6-svstat", "-o", "up,pid", "/run/service/"+name)
		f := strings.Fields(out)
		if len(f) != 2 || f[0] != "true" {
			return 0
		}
		n, _ := strconv.Atoi(f[1])
		return n
	}
	lines := func() int {
		_, out := b.exec("", "sh", "-c", "wc -l < /run/talker.out")
		n, _ := strconv.Atoi(strings.TrimSpace(out))
		return n
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		require.Eventually(t, cond, 15*time.Second, 50*time.Millisecond, what)
	}
	eventually("lines through the pipeline", func() bool { return lines() > 3 })

	// The pipeline survives a restart of either side: the other side keeps running and
	// lines keep coming.
	prodPid, consPid := pid("svc-talker"), pid("svc-talker-log")
	require.NotZero(t, prodPid)
	require.NotZero(t, consPid)
	code, out = b.exec("", "s6-svc", "-k", "/run/service/svc-talker-log")
	require.Equal(t, 0, code, out)
	eventually("the consumer restarted", func() bool { p := pid("svc-talker-log"); return p != 0 && p != consPid })
	n := lines()
	eventually("lines after the consumer restarted", func() bool { return lines() > n+3 })
	assert.Equal(t, prodPid, pid("svc-talker"), "the producer must survive its consumer's restart")
	consPid = pid("svc-talker-log")
	code, out = b.exec("", "s6-svc", "-k", "/run/service/svc-talker")
	require.Equal(t, 0, code, out)
	eventually("the producer restarted", func() bool { p := pid("svc-talker"); return p != 0 && p != prodPid })
	n = lines()
	eventually("lines after the producer restarted", func() bool { return lines() > n+3 })
	assert.Equal(t, consPid, pid("svc-talker-log"), "the consumer must survive its producer's restart")

	// s6-rc -d change of the logger: it goes down with everything that depends on it (its
	// producer; legacy-services and user2 depend on the user bundle), then -u change brings
	// back the logger alone.
	code, out = b.exec("", "s6-rc", "-d", "change", "svc-talker-log")
	require.Equal(t, 0, code, out)
	assert.Zero(t, pid("svc-talker-log"), "the logger is down")
	assert.Zero(t, pid("svc-talker"), "its producer is down")
	_, out = b.exec("", "s6-rc", "-a", "list")
	assert.Equal(t, []string{"fix-attrs", "init-one", "init-two", "legacy-cont-init"}, strings.Fields(out))
	assert.Equal(t, "late-one-down", orderLog()[len(orderLog())-1], "user2's oneshot went down with legacy-services")
	code, out = b.exec("", "s6-rc", "-u", "change", "svc-talker-log")
	require.Equal(t, 0, code, out)
	assert.NotZero(t, pid("svc-talker-log"), "the logger is up again")
	assert.Zero(t, pid("svc-talker"), "only what the logger needs came up")
	code, out = b.exec("", "s6-rc", "-u", "change", "top")
	require.Equal(t, 0, code, out)
	assert.NotZero(t, pid("svc-talker"))
	assert.Equal(t, "late-one-up", orderLog()[len(orderLog())-1])

	// docker stop: the down scripts in reverse dependency order.
	_, _ = b.exec("", "sh", "-c", "echo --- >> /run/order.log")
	timeout := 20
	_, err = b.cli.ContainerStop(ctx, b.id(), client.ContainerStopOptions{Timeout: &timeout})
	require.NoError(t, err)
	r, err := c.CopyFileFromContainer(ctx, "/run/order.log")
	require.NoError(t, err)
	all, _ := io.ReadAll(r)
	r.Close()
	text := string(all)
	stop := slices.DeleteFunc(strings.Fields(text[strings.LastIndex(text, "---")+3:]), func(s string) bool { return s == "legacy-svc-run" })
	assert.Equal(t, []string{"late-one-down", "init-two-down", "init-one-down"}, stop, "down scripts at docker stop")
	st, err := c.State(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, st.ExitCode)
}

// TestS6RCBrokenTree: a dependency cycle is a boot failure naming the service; with
// S6_BEHAVIOUR_IF_STAGE2_FAILS=2 the container stops with exit code 1, with 0 the CMD still runs.
func TestS6RCBrokenTree(t *testing.T) {
	requireEngine(t)
	cycle := `set -e; d=/etc/s6-overlay/s6-rc.d; for s in a b; do mkdir -p $d/$s/dependencies.d; echo oneshot > $d/$s/type; echo true > $d/$s/up; done
touch $d/a/dependencies.d/b $d/b/dependencies.d/a; exec /init sh -c 'echo CMD-RAN'`
	for _, tc := range []struct {
		behaviour string
		code      int
		cmdRuns   bool
	}{{"2", 1, false}, {"0", 0, true}} {
		t.Run("S6_BEHAVIOUR_IF_STAGE2_FAILS="+tc.behaviour, func(t *testing.T) {
			code, out := runContainer(t, "", false,
				testcontainers.WithEntrypoint("sh", "-c", cycle),
				testcontainers.WithEnv(map[string]string{"S6_BEHAVIOUR_IF_STAGE2_FAILS": tc.behaviour}))
			assert.Equal(t, tc.code, code, out)
			assert.Contains(t, out, "dependency cycle")
			assert.Regexp(t, `service [ab]: dependency cycle: [ab] -> [ab] -> [ab]`, out)
			assert.Equal(t, tc.cmdRuns, strings.Contains(out, "CMD-RAN"), out)
		})
	}
}
