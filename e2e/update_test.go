package e2e

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An unregistered gateway stays gone across a real `docker restart` (which re-runs
// gw-reconcile --boot from the data volume), and a later register of the name starts from
// what the operator gives: nothing of the earlier env.
func TestUnregisterSticksAcrossDockerRestart(t *testing.T) {
	b := start(t, nil)
	b.gw("register", "gone", "--start", "--env", "OLD=1")
	b.gw("register", "keeper", "--start")
	b.waitUp("gone")
	b.gw("unregister", "gone")

	b.restart()
	b.waitBoot(2)
	assert.Contains(t, b.bootLines(2)["gone"], "action=unregistered")
	assert.NotContains(t, b.gw("list"), "gone")
	assert.False(t, b.fileExists("/run/gateways/gateway-gone"))
	b.waitUp("keeper")

	b.gw("register", "gone", "--env", "NEW=2")
	_, cfg := b.exec("", "cat", "/opt/data/profiles/gone/profile.json")
	assert.Contains(t, cfg, "NEW")
	assert.NotContains(t, cfg, "OLD", "register starts afresh: the earlier env is not merged in")

	// --purge: refused while it runs, then the data is gone for good and stays gone.
	b.gw("start", "-p", "gone")
	code, out := b.exec("gateway", "gateway", "unregister", "gone", "--purge")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "is running")
	b.gw("stop", "-p", "gone")
	b.gw("unregister", "gone", "--purge")
	assert.False(t, b.fileExists("/opt/data/profiles/gone"))
	b.restart()
	b.waitBoot(3)
	assert.NotContains(t, b.bootLines(3), "gone")
}

// update of a running gateway changes its command (and the change survives a docker restart);
// a stopped one stays stopped and runs the new command at its next start.
func TestUpdateChangesTheCommandOfARunningGateway(t *testing.T) {
	b := start(t, nil)
	b.gw("register", "web", "--start", "--", "sh", "-c", "echo web-v1; exec sleep 1001")
	b.gw("register", "idle", "--", "sh", "-c", "echo idle-v1; exec sleep 2001")
	before := b.waitUp("web")
	edit := func(p, cmd string) {
		code, out := b.exec("gateway", "sh", "-c", "printf '%s' '"+`{"command": ["sh", "-c", "`+cmd+`"]}`+"' > /opt/data/profiles/"+p+"/profile.json")
		require.Equal(t, 0, code, out)
	}
	edit("web", "echo web-v2; exec sleep 1002")
	edit("idle", "echo idle-v2; exec sleep 2002")
	assert.Contains(t, b.gw("status"), "gateway update web", "the edit is not ignored silently")

	out := b.gw("update", "--all")
	assert.Contains(t, out, "updated gateway 'web' and restarted it")
	assert.Contains(t, out, "updated gateway 'idle' (not running")
	assert.Contains(t, out, "web-v1")
	after := b.waitUp("web")
	assert.NotEqual(t, *before.PID, *after.PID)
	assert.True(t, running(b, "sleep 1002"), "the new command runs")
	assert.False(t, running(b, "sleep 1001"), "the old one is gone")
	assert.False(t, b.status("idle").Up, "a stopped gateway stays stopped")

	b.restart()
	b.waitBoot(2)
	b.waitUp("web")
	eventually(t, 20e9, "the new command after docker restart", func() bool { return running(b, "sleep 1002") })
	assert.False(t, b.status("idle").Up)
	b.gw("start", "-p", "idle")
	eventually(t, 20e9, "idle's new command at its start", func() bool { return running(b, "sleep 2002") })
}

// running reports whether a process whose command line contains s runs in the container.
func running(b *box, s string) bool {
	_, out := b.exec("", "sh", "-c", "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '; true")
	return strings.Contains(out, s)
}
