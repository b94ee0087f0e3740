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

// SPEC §14: what the last boot left under /run never slows the next boot materially nor breaks
// it. Each test below runs the image with /run in the container's writable layer (which `docker
// restart` keeps, unlike a tmpfs), measures a clean `docker restart` until every gateway meant
// to run is up and ready, leaves junk in /run, and requires the next `docker restart` to bring
// them all back within 2 s of the clean one.

// runningGateways are registered and started; "parked" is registered and stays down.
var runningGateways = []string{"g1", "g2", "g3", "g4"}

// bootRegistered starts a container with the gateways of runningGateways and "parked".
func bootRegistered(t *testing.T) *box {
	t.Helper()
	b := start(t, nil)
	for _, n := range runningGateways {
		b.gw("register", n, "--start")
	}
	b.gw("register", "parked")
	return b
}

// timedRestart runs `docker restart`, waits until every gateway of runningGateways is up and
// ready again, and returns how long the boot took: from the container's start (the engine's
// StartedAt) until the last of them went up (s6's own timestamp, from `gateway status`). Both
// are timestamps taken where things happened, so neither the stop before the boot nor the
// polling (a docker exec is slow on a loaded machine) adds to it.
func (b *box) timedRestart() time.Duration {
	b.t.Helper()
	b.restart()
	var lastUp time.Time
	eventually(b.t, 5*time.Minute, "every gateway meant to run back after docker restart", func() bool {
		code, out := b.exec("gateway", "gateway", "status", "--json", "--timeout", "60s")
		if code != 0 {
			return false
		}
		var st []struct {
			Profile string     `json:"profile"`
			Up      bool       `json:"up"`
			Ready   bool       `json:"ready"`
			Since   *time.Time `json:"since"`
		}
		if json.Unmarshal([]byte(jsonPart(out)), &st) != nil {
			return false
		}
		byName := map[string]int{}
		for i, s := range st {
			byName[s.Profile] = i
		}
		lastUp = time.Time{}
		for _, n := range runningGateways {
			i, ok := byName[n]
			if !ok || !st[i].Up || !st[i].Ready || st[i].Since == nil {
				return false
			}
			if st[i].Since.After(lastUp) {
				lastUp = *st[i].Since
			}
		}
		return true
	})
	insp, err := b.cli.ContainerInspect(b.ctx, b.id(), client.ContainerInspectOptions{})
	require.NoError(b.t, err)
	started, err := time.Parse(time.RFC3339Nano, insp.Container.State.StartedAt)
	require.NoError(b.t, err)
	require.True(b.t, lastUp.After(started), "the gateways went up in this start (%s after %s)", lastUp, started)
	return lastUp.Sub(started)
}

// restartOverJunk is the scenario: a clean restart as the baseline, then plant, then the
// restart under test. It returns the container for further checks.
func restartOverJunk(t *testing.T, what string, plant func(b *box)) *box {
	t.Helper()
	b := bootRegistered(t)
	clean := b.timedRestart()
	begin := time.Now()
	plant(b)
	t.Logf("%s: planted in %s", what, time.Since(begin).Round(time.Millisecond))
	after := b.timedRestart()
	t.Logf("%s: container start until all %d gateways run: clean boot %s, with %s left in /run %s",
		what, len(runningGateways), clean.Round(time.Millisecond), what, after.Round(time.Millisecond))
	assert.LessOrEqual(t, after, clean+2*time.Second, "the boot does not depend on what the last one left")
	assert.False(t, b.status("parked").Up, "a gateway not meant to run stays down")
	logs := b.logs()
	assert.NotContains(t, logs, "level=ERROR")
	assert.NotContains(t, logs, "does not start")
	return b
}

// waitOldRemoved waits until the scan directories earlier boots set aside are gone, removed in
// the background once the gateways were up (at idle priority: on a machine saturated at normal
// priority, as under make test-stress, that takes long, hence the generous limit).
func (b *box) waitOldRemoved() {
	b.t.Helper()
	eventually(b.t, 10*time.Minute, "the old scan directory removed in the background", func() bool {
		code, out := b.exec("", "sh", "-c", "ls -d /run/.gateways.old-* /run/gateways/.old-* 2>/dev/null | wc -l")
		return code == 0 && strings.TrimSpace(out) == "0"
	})
	assert.Contains(b.t, b.logs(), "removed the scan directories earlier boots set aside")
}

// 100,000 files planted by the service user in its scan directory (the measurement:
// 77,000 kept every gateway down for over 20 minutes while the boot deleted them one by one).
// Planting them on fuse-overlayfs takes about a minute and a half on a 2-core machine.
func TestRestartAfter100000FilesInTheScanDirectory(t *testing.T) {
	b := restartOverJunk(t, "100,000 files", func(b *box) {
		code, out := b.exec("gateway", "sh", "-ec", `mkdir /run/gateways/junk && cd /run/gateways/junk
for d in 0 1 2 3 4 5 6 7 8 9; do mkdir $d; (cd $d && seq 1 10000 | xargs touch); done`)
		require.Equal(b.t, 0, code, out)
	})
	// The boot set the tree aside whole; its removal (about as long as the planting here) runs
	// in the background at idle priority, and the verbs answer meanwhile.
	code, out := b.exec("", "sh", "-c", "ls -d /run/.gateways.old-* | wc -l")
	require.Equal(t, 0, code, out)
	begin := time.Now()
	b.gw("status")
	assert.Less(t, time.Since(begin), 5*time.Second, "verbs stay quick while the old tree is removed")

	// A stop while the remover is still at work is as prompt as any: it is an ordinary process
	// that the stop's TERM ends, never one the stop waits for (what is left is removed after the
	// next boot).
	_, out = b.exec("", "sh", "-c", "cat /proc/[0-9]*/comm 2>/dev/null | grep -cx gw-reconcile")
	require.Equal(t, "1", strings.TrimSpace(out), "the remover is at work")
	timeout := 20 * time.Second
	begin = time.Now()
	require.NoError(t, b.c.Stop(b.ctx, &timeout))
	assert.Less(t, time.Since(begin), 10*time.Second, "docker stop")
	logs := b.logs()
	last := logs[max(0, strings.LastIndex(logs, "stop: SIGTERM received")):]
	assert.Contains(t, last, "stop: all processes exited in", "the remover ended on TERM")
	assert.NotContains(t, last, "sending KILL")
}

// A corrupt tree: s6's files replaced by directories in every slot (supervise/lock,
// supervise/control, supervise/status, log/supervise/lock), the scan directory's own control
// FIFO and the verb locks too — and, as root, /init's own trees (/run/s6-rc/servicedirs a
// file, a service in /run/service whose lock is a directory): what made the deletion fail
// under load ("unlinkat …/supervise/lock: is a directory", "mkdir /run/s6-rc/servicedirs: file
// exists").
func TestRestartAfterACorruptTree(t *testing.T) {
	b := restartOverJunk(t, "a corrupt tree", func(b *box) {
		code, out := b.exec("gateway", "sh", "-ec", `cd /run/gateways
for s in gateway-*; do
  for f in supervise/lock supervise/control supervise/status log/supervise/lock log/supervise/control; do
    rm -rf "$s/$f"; mkdir -p "$s/$f/x"
  done
done
rm -rf .s6-svscan/control; mkdir -p .s6-svscan/control/x
for l in .s6gate-locks/*; do rm -rf "$l"; mkdir -p "$l/x"; done`)
		require.Equal(b.t, 0, code, out)
		code, out = b.exec("", "sh", "-ec", `rm -rf /run/s6-rc/servicedirs; echo junk > /run/s6-rc/servicedirs
mkdir -p /run/service/.junk/supervise/lock/x
rm -f /run/s6/legacy-services/s6gate-gateways/supervise/status; mkdir -p /run/s6/legacy-services/s6gate-gateways/supervise/status/x`)
		require.Equal(b.t, 0, code, out)
	})
	b.waitOldRemoved()
	eventually(t, 10*time.Minute, "/init's old trees removed too", func() bool {
		_, out := b.exec("", "sh", "-c", "ls -d /run/.s6.old-* /run/.s6-rc.old-* /run/.service.old-* 2>/dev/null | wc -l")
		return strings.TrimSpace(out) == "0"
	})
	assert.Contains(t, b.logs(), "s6gate-init: remove-old: removed what earlier boots left under /run")
}

// A deep tree: 1,000 levels in the scan directory, 900 inside a slot's supervise/.
func TestRestartAfterADeepTree(t *testing.T) {
	b := restartOverJunk(t, "two trees 1,000 and 900 deep", func(b *box) {
		code, out := b.exec("gateway", "sh", "-ec", `deep() { printf 'd/%.0s' $(seq 1 "$1"); }
mkdir -p "/run/gateways/deep/$(deep 1000)"
mkdir -p "/run/gateways/gateway-g1/supervise/deep/$(deep 900)"
touch "/run/gateways/deep/$(deep 1000)bottom"`)
		require.Equal(b.t, 0, code, out)
	})
	b.waitOldRemoved()
}

// A boot step that fails (here: the data root belongs to another uid, so the service user
// cannot write it) starts nothing on the half-built tree and is loud everywhere: one ERROR
// line in docker logs naming the step and the fix, every verb says the boot failed and why
// (not "no such gateway" or "still booting"), status --check fails naming it and Docker's
// health check turns unhealthy; the gateways' tree service says it once and stays down. Fixed
// and restarted, everything is back.
func TestFailedBootIsLoud(t *testing.T) {
	b := start(t, nil, testcontainers.WithConfigModifier(func(c *container.Config) {
		c.Healthcheck = &container.HealthConfig{
			Test:     []string{"CMD", "/usr/local/bin/gateway", "status", "--check", "--timeout", "5s"},
			Interval: 500 * time.Millisecond, Timeout: 10 * time.Second, Retries: 1,
		}
	}))
	b.gw("register", "alpha", "--start")
	eventually(t, 60*time.Second, "healthy", func() bool { return b.health() == "healthy" })
	code, out := b.exec("", "chown", "4242:4242", "/opt/data")
	require.Equal(t, 0, code, out)
	b.restart()

	const reason = "data root /opt/data (owner uid 4242, gid 4242, mode 0755) is not writable by the service user gateway (uid 10000)"
	const fix = "give it to the service user (chown 10000:10000 on the volume), then restart the container"
	eventually(t, 60*time.Second, "the ERROR line in docker logs", func() bool {
		return strings.Contains(b.logs(), `level=ERROR msg="the boot failed: no gateway starts until this is fixed and the container restarted" prog=gw-reconcile step="check the data root" err="`+reason+`" fix="`+fix+`"`)
	})
	verbMsg := "the boot failed (check the data root): " + reason + "; fix: " + fix + "; no gateway runs until then (see docker logs)"
	for _, verb := range [][]string{{"start", "-p", "alpha"}, {"status"}, {"status", "-p", "alpha"}, {"list"}, {"register", "beta"}} {
		begin := time.Now()
		code, out := b.exec("gateway", append([]string{"gateway"}, verb...)...)
		assert.Equal(t, 1, code, "%v: %s", verb, out)
		assert.Contains(t, out, verbMsg, verb)
		assert.NotContains(t, out, "no such gateway", verb)
		assert.NotContains(t, out, "booting", verb)
		assert.Less(t, time.Since(begin), 5*time.Second, "%v: at once, not after the verb's time-out", verb)
	}
	code, out = b.exec("", "gateway", "status", "--check")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, verbMsg, "the HEALTHCHECK's command names it")
	eventually(t, 60*time.Second, "docker reports unhealthy", func() bool { return b.health() == "unhealthy" })
	logs := b.logs()
	assert.Equal(t, 1, strings.Count(logs, "gw-reconcile: ERROR: the gateways' tree does not start: "+verbMsg),
		"the gateways' tree service says it once and stays down:\n%s", logs)
	_, out = b.exec("", "sh", "-c", "cat /proc/[0-9]*/comm 2>/dev/null | grep -cx s6-svscan")
	assert.Equal(t, "1", strings.TrimSpace(out), "only the root tree's s6-svscan runs: nothing on the half-built scan directory")

	code, out = b.exec("", "chown", "10000:10000", "/opt/data")
	require.Equal(t, 0, code, out)
	b.restart()
	b.waitUp("alpha")
	eventually(t, 60*time.Second, "healthy again", func() bool { return b.health() == "healthy" })
}
