package e2e

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"github.com/testcontainers/testcontainers-go/wait"
)

// helpersTag is the tag of this run's fixture image: a name of its own, so that a second test
// run beside this one (another image under test) cannot retag it; TestMain removes it.
var helpersTag = randomName("s6gate-e2e-helpers:")

// fixtureImage is e2e/testdata/helpers built FROM the image under test: an image that uses
// s6-overlay's helpers (with-contenv shebangs, logutil-service, with-retries, the
// s6-portable-utils commands, fix-attrs.d) the way s6-overlay images do.
var fixtureImage = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("docker", "build", "-q", "-t", helpersTag, "--build-arg", "BASE="+Image, "testdata/helpers").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("docker build testdata/helpers: %v: %s", err, out)
	}
	return helpersTag, nil
})

// helperBox is a running container of the fixture image.
type helperBox struct {
	t   *testing.T
	ctx context.Context
	c   *testcontainers.DockerContainer
}

// runFixture starts the fixture image with env and cmd, waiting with strategy.
func runHelpersFixture(t *testing.T, env map[string]string, strategy wait.Strategy, cmd ...string) *helperBox {
	t.Helper()
	requireEngine(t)
	img, err := fixtureImage()
	require.NoError(t, err)
	ctx := context.Background()
	opts := []testcontainers.ContainerCustomizer{testcontainers.WithEnv(env), testcontainers.WithWaitStrategy(strategy)}
	if len(cmd) > 0 {
		opts = append(opts, testcontainers.WithCmd(cmd...))
	}
	c, err := testcontainers.Run(ctx, img, opts...)
	h := &helperBox{t: t, ctx: ctx, c: c}
	t.Cleanup(func() {
		if c != nil {
			if t.Failed() {
				t.Logf("container logs:\n%s", h.logs())
			}
			_ = c.Terminate(context.Background())
		}
	})
	require.NoError(t, err)
	return h
}

func (h *helperBox) logs() string {
	r, err := h.c.Logs(context.Background())
	if err != nil {
		return err.Error()
	}
	defer r.Close()
	b, _ := io.ReadAll(r)
	return string(b)
}

func (h *helperBox) sh(script string) (int, string) {
	h.t.Helper()
	code, r, err := h.c.Exec(h.ctx, []string{"sh", "-c", script}, tcexec.Multiplexed())
	require.NoError(h.t, err)
	out, _ := io.ReadAll(r)
	return code, string(out)
}

// poll waits until `sh -c script` prints want (trimmed).
func (h *helperBox) poll(what, script, want string) {
	h.t.Helper()
	var got string
	eventually(h.t, 30*time.Second, what, func() bool {
		_, got = h.sh(script)
		return strings.TrimSpace(got) == want
	})
}

func (h *helperBox) kill(sig string) {
	h.t.Helper()
	cli, err := testcontainers.NewDockerClientWithOpts(h.ctx)
	require.NoError(h.t, err)
	defer cli.Close()
	_, err = cli.ContainerKill(h.ctx, h.c.GetContainerID(), client.ContainerKillOptions{Signal: sig})
	require.NoError(h.t, err)
}

// waitExit waits for the container to exit and returns its exit code.
func (h *helperBox) waitExit() int {
	h.t.Helper()
	var code int
	eventually(h.t, 30*time.Second, "the container to exit", func() bool {
		st, err := h.c.State(h.ctx)
		require.NoError(h.t, err)
		code = st.ExitCode
		return !st.Running
	})
	return code
}

var bootDone = wait.ForLog("s6gate-init: stage2: no CMD").WithStartupTimeout(60 * time.Second).WithPollInterval(50 * time.Millisecond)

// The helpers as s6-overlay images use them: a `#!/usr/bin/with-contenv bash` service gets the
// container environment, a log/run with logutil-service logs as nobody with S6_LOGGING_SCRIPT's
// default (timestamps), with-retries retries a flaky cont-init step, the s6-portable-utils
// commands work in cont-init.d, fix-attrs.d fixes owners and modes, and S6_STAGE2_HOOK runs
// before fix-attrs.d and cont-init.d. Then SIGWINCH does nothing and SIGUSR1 stops the
// container (s6-linux-init's poweroff).
func TestHelpersInAnImage(t *testing.T) {
	h := runHelpersFixture(t, map[string]string{"FIXTURE_VAR": "hello", "S6_STAGE2_HOOK": "/usr/local/bin/fixture-hook arg"}, bootDone)

	h.poll("with-contenv service env", "cat /run/fixture/svc-env", "FIXTURE_VAR=hello")
	h.poll("logutil-service writes as nobody", "stat -c %U /var/log/logged/current", "nobody")
	h.poll("logutil-service lines", "grep -c 'tick from logged' /var/log/logged/current | awk '$1>=2{print \"ok\"}'", "ok")
	_, first := h.sh("head -1 /var/log/logged/current")
	assert.Regexp(t, `^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\.\d+ +tick from logged\n$`, first, "S6_LOGGING_SCRIPT default: T timestamps")
	h.poll("with-retries ran the flaky step 3 times", "wc -l < /run/fixture/flaky-count", "3")
	assert.Contains(t, h.logs(), "fixture: with-retries done after 3 attempts")
	h.poll("fix-attrs.d", "stat -c '%U %a' /data /data/file /data/sub /data/sub/file | sort -u | tr '\\n' ' '", "nobody 640 nobody 750")
	h.poll("S6_STAGE2_HOOK ran first", "cat /run/fixture/hook", "hook arg before-cont-init before-fix-attrs")
	for _, name := range []string{"with-contenv", "printcontenv", "with-retries", "logutil-service", "logutil-newfifo", "s6-echo", "s6-mkdir", "s6-hiercopy"} {
		code, out := h.sh("test -x /usr/bin/" + name + " && test -x /command/" + name)
		assert.Equal(t, 0, code, "/usr/bin/%s and /command/%s: %s", name, name, out)
	}
	_, out := h.sh("printcontenv FIXTURE_VAR; /usr/bin/s6-echo -s , a b")
	assert.Equal(t, "hello\na,b\n", out)

	h.kill("SIGWINCH")
	// The tree still works after it: a service restarted now runs again.
	h.sh("rm -f /run/fixture/svc-env; s6-svc -r /run/service/contenv-svc")
	h.poll("service restarted after SIGWINCH", "cat /run/fixture/svc-env", "FIXTURE_VAR=hello")
	st, err := h.c.State(h.ctx)
	require.NoError(t, err)
	require.True(t, st.Running, "SIGWINCH must not stop the container")

	h.kill("SIGUSR1")
	assert.Equal(t, 0, h.waitExit())
	assert.Contains(t, h.logs(), "s6gate-init: stop: SIGUSR1 received")
}

// SIGUSR2 (halt) and SIGPWR (poweroff) stop the container like docker stop.
func TestSignalsStopContainer(t *testing.T) {
	for _, sig := range []string{"SIGUSR2", "SIGPWR"} {
		t.Run(sig, func(t *testing.T) {
			h := runHelpersFixture(t, nil, bootDone)
			h.kill(sig)
			assert.Equal(t, 0, h.waitExit())
			assert.Contains(t, h.logs(), "s6gate-init: stop: "+sig+" received")
		})
	}
}

// S6_BEHAVIOUR_IF_STAGE2_FAILS=2 as s6-overlay: every cont-init.d script runs, then the
// container stops with exit code 1 without running the CMD.
func TestStage2FailsRunsAllContInit(t *testing.T) {
	h := runHelpersFixture(t, map[string]string{"FIXTURE_FAIL": "1", "S6_BEHAVIOUR_IF_STAGE2_FAILS": "2"},
		wait.ForExit().WithExitTimeout(60*time.Second), "sh", "-c", "echo fixture: CMD ran")
	assert.Equal(t, 1, h.waitExit())
	logs := h.logs()
	assert.Contains(t, logs, "cont-init: 40-fixture-maybe-fail exited 5")
	assert.Contains(t, logs, "fixture: 50-after ran", "later scripts still run")
	assert.NotContains(t, logs, "fixture: CMD ran")
	assert.Contains(t, logs, "exited nonzero and S6_BEHAVIOUR_IF_STAGE2_FAILS=2: stopping the container with exit code 1")
}

// S6_CMD_RECEIVE_SIGNALS: docker kill -s USR1 reaches the CMD; docker stop's SIGTERM too, and
// the CMD's exit code is the container's.
func TestCmdReceiveSignalsInContainer(t *testing.T) {
	h := runHelpersFixture(t, map[string]string{"S6_CMD_RECEIVE_SIGNALS": "1"},
		wait.ForLog("fixture-cmd: ready").WithStartupTimeout(60*time.Second).WithPollInterval(50*time.Millisecond),
		"/usr/local/bin/fixture-cmd")
	h.kill("SIGUSR1")
	eventually(t, 30*time.Second, "USR1 at the CMD", func() bool { return strings.Contains(h.logs(), "fixture-cmd: got USR1") })
	st, err := h.c.State(h.ctx)
	require.NoError(t, err)
	require.True(t, st.Running, "SIGUSR1 went to the CMD, not to the stop")
	timeout := 20 * time.Second
	require.NoError(t, h.c.Stop(h.ctx, &timeout))
	assert.Equal(t, 42, h.waitExit())
	assert.Contains(t, h.logs(), "fixture-cmd: got TERM")
}

// Every s6-overlay knob that s6gate does not implement gets one boot line naming the
// alternative: nothing is silently ignored.
func TestUnsupportedKnobsOneLineEach(t *testing.T) {
	env := map[string]string{"S6_RUNTIME_PROFILE": "dev", "S6_SERVICES_READYTIME": "100", "S6_WAIT_FOR_CLOSING_FD": "3"}
	h := runHelpersFixture(t, env, wait.ForExit().WithExitTimeout(60*time.Second), "true")
	assert.Equal(t, 0, h.waitExit())
	logs := h.logs()
	for knob := range env {
		assert.Equal(t, 1, strings.Count(logs, "s6gate-init: boot: warning: "+knob+"="), "one line for %s", knob)
	}
}

// S6_LOGGING=1: cont-init.d, services and the CMD go to the catch-all logger in
// /run/uncaught-logs and to docker logs; 2: to the logger only.
func TestCatchallLoggerInContainer(t *testing.T) {
	for _, mode := range []string{"1", "2"} {
		t.Run("S6_LOGGING="+mode, func(t *testing.T) {
			h := runHelpersFixture(t, map[string]string{"S6_LOGGING": mode, "S6_CATCHALL_USER": "nobody"},
				wait.ForExec([]string{"test", "-e", "/run/fixture/svc-env"}).WithStartupTimeout(60*time.Second).WithPollInterval(50*time.Millisecond))
			h.poll("the logger has cont-init.d's lines", "grep -c 'fixture: 50-after ran' /run/uncaught-logs/current", "1")
			h.poll("the logger runs as S6_CATCHALL_USER", "stat -c %U /run/uncaught-logs/current", "nobody")
			assert.Equal(t, mode == "1", strings.Contains(h.logs(), "fixture: 50-after ran"), "docker logs has a copy only with 1")
		})
	}
}
