package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
)

// The image run the way a hardened deployment runs it: as the service user, on a read-only
// root, with tmpfs /run (exec: Docker's default is noexec) and /tmp, and the data root on a
// named volume:
//
//	docker run --user 10000 --read-only --tmpfs /run:exec --tmpfs /tmp -v VOL:/opt/data \
//	  -e S6_READ_ONLY_ROOT=1 -e S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES=1 IMAGE

const worldWritableRun = "S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES"

// nonRootEnv is the environment of a hardened run.
func nonRootEnv() map[string]string {
	return map[string]string{"S6_READ_ONLY_ROOT": "1", worldWritableRun: "1"}
}

// asUser runs the container as user (docker run --user).
func asUser(user string) testcontainers.ContainerCustomizer {
	return testcontainers.WithConfigModifier(func(c *container.Config) { c.User = user })
}

// readOnly gives the container a read-only root and these tmpfs mounts (path → options).
func readOnly(tmpfs map[string]string) testcontainers.ContainerCustomizer {
	return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		hc.ReadonlyRootfs = true
		hc.Tmpfs = tmpfs
	})
}

// hardened is `--user 10000 --read-only --tmpfs /run:exec --tmpfs /tmp`.
func hardened() []testcontainers.ContainerCustomizer {
	return []testcontainers.ContainerCustomizer{
		asUser("10000"),
		readOnly(map[string]string{"/run": "exec", "/tmp": ""}),
	}
}

func startHardened(t *testing.T, env map[string]string) *box {
	t.Helper()
	all := nonRootEnv()
	for k, v := range env {
		all[k] = v
	}
	b := start(t, all, hardened()...)
	b.requireAllUID("10000")
	return b
}

// requireAllUID checks that every process of the container runs as uid. A process that ends
// between the listing and the read (the check's own, a service restarting) is skipped, and so
// is runc's own init ("runc:[2:INIT]"): every docker exec, the HEALTHCHECK's included, enters
// the container through it as root and drops to the exec's user just before it executes the
// command, so a check that races a health probe sees it (seen in CI).
func (b *box) requireAllUID(uid string) {
	b.t.Helper()
	// One line per process: "NAME UID" (the name is the last Name: line held, the Uid: line
	// appended to it).
	code, out := b.exec("", "sh", "-c", `for f in /proc/[0-9]*/status; do sed -n -e '/^Name:/{s/^Name:[[:space:]]*//;h;}' -e '/^Uid:/{s/^Uid:[[:space:]]*\([0-9]*\).*/\1/;H;x;s/\n/ /p;}' "$f" 2>/dev/null; done; true`)
	require.Equal(b.t, 0, code, out)
	uids := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		name, u := line[:i], line[i+1:]
		if strings.HasPrefix(name, "runc:[") {
			continue
		}
		uids[u] = true
	}
	require.Equal(b.t, map[string]bool{uid: true}, uids, "uids of the container's processes")
	_, comm := b.exec("", "cat", "/proc/1/comm")
	require.Equal(b.t, "s6-svscan", strings.TrimSpace(comm))
}

func TestNonRootRunningGatewaySurvivesDockerRestart(t *testing.T) {
	b := startHardened(t, nil)
	assert.Contains(t, b.logs(), "S6_READ_ONLY_ROOT is set: nothing is written outside /run")
	b.gw("register", "coder", "--start")
	b.waitUp("coder")
	beforeStart := b.state("coder")["start_time"]

	b.restart()
	b.waitBoot(2)
	assert.Contains(t, b.bootLines(2)["coder"], "prior_state=running action=started")
	b.waitUp("coder")
	assert.NotEqual(t, beforeStart, b.state("coder")["start_time"], "a new process")
	b.requireAllUID("10000")
}

func TestNonRootStoppedGatewayStaysDownAfterDockerRestart(t *testing.T) {
	b := startHardened(t, nil)
	b.gw("register", "coder", "--start")
	b.waitUp("coder")
	b.gw("stop", "-p", "coder")
	assert.Equal(t, "stopped", b.state("coder")["gateway_state"])

	b.restart()
	b.waitBoot(2)
	assert.Contains(t, b.bootLines(2)["coder"], "prior_state=stopped action=registered")
	assert.False(t, b.status("coder").Up)
	assert.True(t, b.fileExists("/run/gateways/gateway-coder/down"))
	assert.Equal(t, "stopped", b.state("coder")["gateway_state"])
}

func TestNonRootKillThenStartBringsRunningGatewayBack(t *testing.T) {
	b := startHardened(t, nil)
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

func TestNonRootDockerStopIsPromptAndPersistsRunning(t *testing.T) {
	b := startHardened(t, map[string]string{"S6_KILL_GRACETIME": "8000", "S6_SERVICES_GRACETIME": "8000"})
	profiles := []string{"g1", "g2", "g3"}
	for _, p := range profiles {
		b.gw("register", p, "--start", "--", "sh", "-c", idleLoop, p)
	}
	for _, p := range profiles {
		b.waitUp(p)
	}
	timeout := 30
	begin := time.Now()
	_, err := b.cli.ContainerStop(b.ctx, b.id(), client.ContainerStopOptions{Timeout: &timeout})
	require.NoError(t, err)
	took := time.Since(begin)
	assert.Less(t, took, 4*time.Second, "a stop returns as soon as everything is down, not after the 8 s grace")
	insp, err := b.cli.ContainerInspect(b.ctx, b.id(), client.ContainerInspectOptions{})
	require.NoError(t, err)
	assert.Equal(t, 0, insp.Container.State.ExitCode)
	for _, p := range profiles {
		out := volumeFile(t, b.vol, "/opt/data/profiles/"+p+"/gateway_state.json")
		assert.Contains(t, out, `"gateway_state": "running"`, p)
	}
	t.Logf("non-root docker stop with %d gateways took %s", len(profiles), took)
}

// Every verb works for the service user through docker exec, and the image's HEALTHCHECK
// (its own command, run more often here) reports healthy.
func TestNonRootVerbsAndHealthcheck(t *testing.T) {
	all := append(hardened(), testcontainers.WithConfigModifier(func(c *container.Config) {
		c.Healthcheck = &container.HealthConfig{Interval: 300 * time.Millisecond, StartPeriod: time.Second}
	}))
	b := start(t, nonRootEnv(), all...)
	b.gw("register", "coder", "--env", "GREETING=hi", "--start", "--", "sh", "-c", idleLoop, "coder")
	first := b.waitUp("coder")
	b.gw("restart", "-p", "coder")
	eventually(t, 20*time.Second, "a new pid after restart", func() bool {
		s := b.status("coder")
		return s.Up && s.PID != nil && *s.PID != *first.PID
	})
	b.waitUp("coder")
	b.gw("stop", "-p", "coder")
	assert.False(t, b.status("coder").Up)
	b.gw("start", "-p", "coder")
	b.waitUp("coder")
	assert.Contains(t, b.gw("list"), "coder")
	b.gw("unregister", "coder")
	assert.NotContains(t, b.gw("list"), "coder")

	eventually(t, 30*time.Second, "docker health to be healthy", func() bool {
		insp, err := b.cli.ContainerInspect(b.ctx, b.id(), client.ContainerInspectOptions{})
		require.NoError(t, err)
		h := insp.Container.State.Health
		return h != nil && h.Status == container.Healthy
	})
	b.requireAllUID("10000")
}

// fatalLines returns the lines of /init's log that say fatal.
func fatalLines(logs string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "s6gate-init: fatal") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// kubernetesRun is a /run like a Kubernetes emptyDir: a directory of root's, mode 0777
// (no sticky bit), bind-mounted, exec. (Docker's --tmpfs cannot make one: it copies the
// image's /run mode, 1777, onto the tmpfs.)
func kubernetesRun(t *testing.T) testcontainers.ContainerCustomizer {
	t.Helper()
	dir, err := os.MkdirTemp("", "s6gate-e2e-run-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o777))
	return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		hc.Binds = append(hc.Binds, dir+":/run")
	})
}

// What /init refuses when it runs as a user, each with one line that names the fix, exit 100;
// and what a uid other than the service user's gets.
func TestNonRootRefusals(t *testing.T) {
	requireEngine(t)
	for _, tc := range []struct {
		name  string
		opts  []testcontainers.ContainerCustomizer
		code  int
		fatal string // the one fatal line, after "s6gate-init: fatal: "
	}{{
		name: "world-writable /run without the opt-in",
		opts: []testcontainers.ContainerCustomizer{asUser("10000"), kubernetesRun(t)},
		code: 100,
		fatal: "/run belongs to uid 0, not 10000, and is writable by others (mode 0777), which a non-root /init cannot fix: " +
			"give uid 10000 a /run it owns (docker run --tmpfs /run:exec,uid=10000), or accept it with " + worldWritableRun + "=1",
	}, {
		name:  "noexec tmpfs /run (docker's default)",
		opts:  []testcontainers.ContainerCustomizer{asUser("10000"), readOnly(map[string]string{"/run": ""})},
		code:  100,
		fatal: "/run is mounted noexec, so s6-supervise cannot start any service from it: mount it with exec (docker run --tmpfs /run:exec)",
	}, {
		name:  "read-only root and no /run of its own",
		opts:  []testcontainers.ContainerCustomizer{asUser("10000"), readOnly(nil)},
		code:  100,
		fatal: "/run is on a read-only file system: give uid 10000 a /run it owns (docker run --tmpfs /run:exec,uid=10000), or run as root",
	}, {
		name: "another uid (gid 0) and the image's sticky /run",
		opts: []testcontainers.ContainerCustomizer{asUser("1000"), readOnly(map[string]string{"/run": "exec"})},
		code: 100,
		fatal: "/run belongs to uid 0, not 1000, and is writable by others (mode 1777), which a non-root /init cannot fix: " +
			"give uid 1000 a /run it owns (docker run --tmpfs /run:exec,uid=1000), or accept it with " + worldWritableRun + "=1",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			code, logs := runContainer(t, "", false, append(tc.opts, testcontainers.WithCmd("true"))...)
			assert.Equal(t, tc.code, code, logs)
			assert.Equal(t, []string{"s6gate-init: fatal: " + tc.fatal}, fatalLines(logs))
		})
	}
}

// With the opt-in, the Kubernetes-like /run boots, as the service user.
func TestNonRootWorldWritableRunWithTheOptIn(t *testing.T) {
	requireEngine(t)
	code, logs := runContainer(t, "", false, asUser("10000"), kubernetesRun(t),
		testcontainers.WithEnv(map[string]string{worldWritableRun: "1"}),
		testcontainers.WithCmd("sh", "-c", "gateway register k8s --start && gateway status -p k8s --json && id -u"))
	require.Equal(t, 0, code, logs)
	assert.Contains(t, logs, "without a sticky bit: INSECURE, accepted because "+worldWritableRun+" is set")
	assert.Contains(t, logs, "registered and started gateway 'k8s'")
	assert.Empty(t, fatalLines(logs))
}

// A uid other than the service user's acts as itself (svcuser.Become): with a /run of its
// own it boots, and the boot reconciler says in one line that it cannot write the data root
// the image gave the service user.
func TestNonRootOtherUIDCannotWriteTheServiceUsersDataRoot(t *testing.T) {
	requireEngine(t)
	vol := randomName("s6gate-e2e-uid-")
	t.Cleanup(func() { removeVolume(t, vol) })
	code, logs := runContainer(t, vol, false, asUser("1000"),
		readOnly(map[string]string{"/run": "exec,uid=1000", "/tmp": ""}),
		testcontainers.WithEnv(map[string]string{"S6_BEHAVIOUR_IF_STAGE2_FAILS": "2"}),
		testcontainers.WithCmd("true"))
	assert.Equal(t, 1, code, logs)
	var lines []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "gw-reconcile:") || strings.Contains(l, "prog=gw-reconcile") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	require.Len(t, lines, 1, "one line: %s", logs)
	assert.Contains(t, lines[0], `level=ERROR msg="the boot failed: no gateway starts until this is fixed and the container restarted" prog=gw-reconcile `+
		`step="check the data root" err="data root /opt/data is not writable by uid 1000: permission denied" `+
		`fix="run the container as the service user gateway (uid 10000), or give uid 1000 a data root it can write"`)
}

func removeVolume(t *testing.T, vol string) {
	t.Helper()
	ctx := context.Background() // t.Context() is already cancelled in a Cleanup
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return
	}
	defer cli.Close()
	_, _ = cli.VolumeRemove(ctx, vol, client.VolumeRemoveOptions{Force: true})
}
