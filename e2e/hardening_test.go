package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
)

// The service user cannot reach root (SPEC §11): it can neither add a service to the root
// tree nor make root's supervisors write through its symlinks, nor stop the container.
// What it may do — run services in its own tree — runs as the service user.
func TestServiceUserCannotReachRoot(t *testing.T) {
	b := start(t, nil)
	b.gw("register", "coder", "--start")
	before := b.waitUp("coder")
	as := func(script string) (int, string) {
		t.Helper()
		return b.exec("gateway", "sh", "-c", script)
	}

	// 1. A service directory in the root tree, then a rescan: both refused.
	code, out := as(`mkdir -p /run/service/evil && printf '#!/bin/sh\nid -u > /tmp/evil-root-tree\nexec sleep 1000\n' > /run/service/evil/run && chmod +x /run/service/evil/run`)
	assert.NotEqual(t, 0, code, "the service user wrote into /run/service: %s", out)
	code, out = as(`s6-svscanctl -a /run/service`)
	assert.NotEqual(t, 0, code, "the service user controls the root s6-svscan: %s", out)
	// In its own tree the same service runs, as the service user.
	code, out = as(`mkdir -p /run/gateways/mine && printf '#!/bin/sh\nid -u > /tmp/mine-uid\nexec sleep 1000\n' > /run/gateways/mine/run && chmod +x /run/gateways/mine/run && s6-svscanctl -a /run/gateways`)
	require.Equal(t, 0, code, out)
	eventually(t, 20*time.Second, "the service user's own service to run", func() bool { return b.fileExists("/tmp/mine-uid") })
	_, uid := b.exec("", "cat", "/tmp/mine-uid")
	assert.Equal(t, "10000", strings.TrimSpace(uid), "services of the gateways' tree run as the service user")
	assert.False(t, b.fileExists("/tmp/evil-root-tree"), "root ran the service user's program")

	// 2. Symlinks planted as supervise/status.new and death_tally.new in a slot, then a crash
	// makes s6-supervise rewrite both: nothing may appear in /etc.
	code, out = as(`cd /run/gateways/gateway-coder/supervise && ln -sf /etc/evil-status status.new && ln -sf /etc/evil-tally death_tally.new && kill -KILL ` + fmt.Sprint(*before.PID))
	require.Equal(t, 0, code, out)
	eventually(t, 20*time.Second, "s6-supervise to restart the gateway and try to write its status", func() bool {
		st := b.state("coder")
		return st["gateway_state"] == "running" && st["pid"] != float64(*before.PID) &&
			strings.Contains(b.logs(), "unable to write status file: Permission denied")
	})
	for _, p := range []string{"/etc/evil-status", "/etc/evil-tally"} {
		assert.False(t, b.fileExists(p), "%s was created through the service user's symlink", p)
	}

	// 3. Tearing the root tree down, or signalling PID 1: refused, the container keeps running.
	code, out = as(`s6-svscanctl -t /run/service`)
	assert.NotEqual(t, 0, code, "the service user told the root s6-svscan to stop: %s", out)
	code, _ = as(`kill -TERM 1`)
	assert.NotEqual(t, 0, code, "the service user signalled PID 1")
	st, err := b.c.State(b.ctx)
	require.NoError(t, err)
	assert.True(t, st.Running, "the container is still running")
	// Root's verbs still work, and what they create is the service user's.
	code, out = b.exec("", "gateway", "register", "rootmade")
	require.Equal(t, 0, code, out)
	_, owner := b.exec("", "stat", "-c", "%u", "/opt/data/profiles/rootmade/gateway_state.json", "/run/gateways/gateway-rootmade/run")
	assert.Equal(t, "10000\n10000", strings.TrimSpace(owner))

	// 4. A trap left for the next boot: the gateways' .s6-svscan swapped for a symlink to the
	// root tree's. The boot's root step never follows it: it rebuilds the gateways' tree, and
	// the gateway that was running comes back.
	code, out = as(`cd /run/gateways && mv .s6-svscan .old && ln -s /run/service/.s6-svscan .s6-svscan`)
	require.Equal(t, 0, code, out)
	b.restart()
	b.waitBoot(2)
	assert.Contains(t, b.bootLines(2)["coder"], "action=started")
	b.waitUp("coder")
	_, link := b.exec("", "stat", "-c", "%F", "/run/gateways/.s6-svscan")
	assert.Equal(t, "directory", strings.TrimSpace(link))
}

// Two `gateway register X` at once, with different settings: exactly one wins, its files are
// intact, the loser exits non-zero having changed nothing, and every winner survives a real
// docker restart (SPEC §12).
func TestConcurrentRegisterHasOneWinner(t *testing.T) {
	b := start(t, nil)
	const rounds = 30
	type winner struct{ who, desired string }
	winners := map[string]winner{}
	for i := range rounds {
		name := fmt.Sprintf("race%02d", i)
		var wg sync.WaitGroup
		codes := make([]int, 2)
		outs := make([]string, 2)
		for j, who := range []string{"a", "b"} {
			args := []string{"gateway", "register", name, "--env", "WHO=" + who}
			if who == "b" {
				args = append(args, "--start")
			}
			args = append(args, "--", "sh", "-c", "echo "+who+"; exec sleep 100000")
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[j], outs[j] = b.exec("gateway", args...)
			}()
		}
		wg.Wait()
		require.True(t, (codes[0] == 0) != (codes[1] == 0), "round %d: exactly one register succeeds: %v %q", i, codes, outs)
		w := winner{"a", "stopped"}
		loser := outs[1]
		if codes[1] == 0 {
			w, loser = winner{"b", "running"}, outs[0]
		}
		assert.Contains(t, loser, "already registered", "round %d", i)
		winners[name] = w
		cfg := b.profileJSON(name)
		assert.Equal(t, w.who, cfg.Env["WHO"], "round %d: profile.json is the winner's", i)
		assert.Equal(t, []string{"sh", "-c", "echo " + w.who + "; exec sleep 100000"}, cfg.Command, "round %d", i)
		assert.Equal(t, w.desired, b.state(name)["desired_state"], "round %d", i)
	}

	b.restart()
	b.waitBoot(2)
	lines := b.bootLines(2)
	for name, w := range winners {
		assert.Contains(t, lines[name], "prior_state="+w.desired, name)
		cfg := b.profileJSON(name)
		assert.Equal(t, w.who, cfg.Env["WHO"], name)
		if w.desired == "running" {
			b.waitUp(name)
		}
	}
}

type profileConfig struct {
	Command []string          `json:"command"`
	Env     map[string]string `json:"env"`
}

func (b *box) profileJSON(name string) profileConfig {
	b.t.Helper()
	code, out := b.exec("", "cat", "/opt/data/profiles/"+name+"/profile.json")
	require.Equal(b.t, 0, code, out)
	var c profileConfig
	require.NoError(b.t, json.Unmarshal([]byte(out), &c), out)
	return c
}

// A verb issued the moment `docker run -d` returns, while cont-init is still running, waits
// for the boot and then acts: 8 containers of 8, with the machine's CPUs busy.
func TestVerbRightAfterDockerRun(t *testing.T) {
	requireEngine(t)
	stopLoad := cpuLoad(t, 2*runtime.NumCPU())
	defer stopLoad()
	for i := range 8 {
		vol := randomName("s6gate-e2e-boot-")
		ctx := context.Background()
		c, err := testcontainers.Run(ctx, Image, testcontainers.WithMounts(testcontainers.VolumeMount(vol, "/opt/data")))
		t.Cleanup(func() {
			if c != nil {
				_ = c.Terminate(context.Background(), testcontainers.RemoveVolumes(vol))
			}
		})
		require.NoError(t, err)
		b := &box{t: t, ctx: ctx, c: c, vol: vol}
		var code int
		var out string
		for try := 0; try < 3; try++ {
			code, out = b.exec("gateway", "gateway", "register", "x", "--start")
			// The engine itself can fail an exec that lands while PID 1 execs into s6-svscan
			// (runc cannot join its namespaces for that instant): gateway never ran, so try
			// again. Anything gateway says is judged below.
			if !strings.Contains(out, "OCI runtime exec failed") {
				break
			}
			t.Logf("container %d: the engine failed the exec, retrying: %s", i, strings.TrimSpace(out))
		}
		require.Equal(t, 0, code, "container %d: register right after docker run: %s\n%s", i, out, b.logs())
		assert.Contains(t, out, "registered and started gateway 'x'")
		assert.NotContains(t, out, "Permission denied")
	}
}

// cpuLoad starts n busy loops on the host and returns a function that stops them.
func cpuLoad(t *testing.T, n int) func() {
	t.Helper()
	var cmds []*exec.Cmd
	for range n {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		require.NoError(t, cmd.Start())
		cmds = append(cmds, cmd)
	}
	stop := func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		cmds = nil
	}
	t.Cleanup(stop)
	return stop
}

// Temp files of interrupted atomic writes and claimed markers are swept at boot; names at the
// longest valid length work in every verb.
func TestBootSweepsLeftoversAndLongNamesWork(t *testing.T) {
	b := start(t, nil)
	b.gw("register", "coder")
	home := "/opt/data/profiles/coder/"
	planted := []string{".gateway_state.json123", ".profile.json9876543210", ".gateway.pid42",
		"..gateway-planned-stop.json77", ".gateway-planned-stop.json.claimed-999999-1"}
	for _, f := range append(planted, ".keep-me") {
		code, out := b.exec("gateway", "touch", home+f)
		require.Equal(t, 0, code, out)
	}
	b.restart()
	b.waitBoot(2)
	for _, f := range planted {
		assert.False(t, b.fileExists(home+f), "%s survived the boot", f)
	}
	assert.True(t, b.fileExists(home+".keep-me"), "only leftovers of s6gate's own writes are swept")

	long := strings.Repeat("l", 243)
	b.gw("register", long, "--start")
	b.waitUp(long)
	b.gw("stop", "-p", long)
	assert.False(t, b.status(long).Up)
	b.gw("start", "-p", long)
	b.waitUp(long)
	b.gw("restart", "-p", long)
	b.waitUp(long)
	b.gw("unregister", long)
	assert.NotContains(t, b.gw("list"), long)
	code, out := b.exec("gateway", "gateway", "register", long+"l")
	assert.Equal(t, 2, code, "one byte over the limit is a usage error: %s", out)
	assert.Contains(t, out, "longer than 243 bytes")
}
