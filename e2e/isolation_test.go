package e2e

import (
	"fmt"
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

// SPEC §13: profiles may belong to different tenants. These tests are the tenant's view: a
// command that forks without end, and a command that tries every write into another profile.

// uidOf is the uid profile p runs its command as (its slot's s6gate-uid).
func (b *box) uidOf(p string) int {
	b.t.Helper()
	code, out := b.exec("", "cat", "/run/gateways/gateway-"+p+"/s6gate-uid")
	require.Equal(b.t, 0, code, "s6gate-uid of %s: %s", p, out)
	uid, err := strconv.Atoi(strings.TrimSpace(out))
	require.NoError(b.t, err, out)
	return uid
}

// procsOf counts the live (not zombie) processes whose real and effective uids are uid.
func (b *box) procsOf(uid int) int {
	b.t.Helper()
	script := fmt.Sprintf(`cat /proc/[0-9]*/status 2>/dev/null | awk '/^Name:/{st=""} /^State:/{st=$2} /^Uid:/{if ($2==%d && $3==%d && st!="Z") n++} END{print n+0}'`, uid, uid)
	code, out := b.exec("", "sh", "-c", script)
	require.Equal(b.t, 0, code, out)
	n, err := strconv.Atoi(strings.TrimSpace(out))
	require.NoError(b.t, err, out)
	return n
}

// The acceptance test of issue 15 part 2: in a container limited to 500 processes, a profile
// that fork-bombs stops at its own limit (a quarter of the container's: 125), its neighbours —
// whose commands fork all the time — keep running and can be restarted, under both supervision
// modes; `gateway stop` of the bomb leaves no process of it and records stopped; and docker
// stop with a bomb running stays within its grace.
func TestForkBombStaysInItsProfile(t *testing.T) {
	limit := int64(500)
	b := start(t, nil, testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		hc.PidsLimit = &limit
	}))
	forking := "while :; do sleep 0.2; done" // a neighbour whose command forks all the time
	b.gw("register", "n1", "--start", "--", "sh", "-c", forking)
	code, out := b.exec("gateway", "sh", "-c", `mkdir -p /opt/data/profiles/n2 && printf '{"supervision":"exec"}' > /opt/data/profiles/n2/profile.json`)
	require.Equal(t, 0, code, out)
	b.gw("register", "n2", "--start", "--", "sh", "-c", forking)
	// Every child leaves the process group and the session (setsid), so only a stop that ends
	// the profile's whole uid, not the command's process group, can end it.
	bomb := `use POSIX; while (1) { my $p = fork; POSIX::setsid() if defined $p && $p == 0; select(undef, undef, undef, 0.01) }`
	b.gw("register", "bomb", "--start", "--", "perl", "-e", bomb)
	code, out = b.exec("gateway", "sh", "-c", `mkdir -p /opt/data/profiles/xbomb && printf '{"supervision":"exec"}' > /opt/data/profiles/xbomb/profile.json`)
	require.Equal(t, 0, code, out)
	b.gw("register", "xbomb", "--", "perl", "-e", bomb)

	uid := b.uidOf("bomb")
	for _, n := range []string{"n1", "n2", "xbomb"} {
		assert.NotEqual(t, uid, b.uidOf(n), "every profile has a uid of its own")
	}
	eventually(t, 60*time.Second, "the bomb to reach its limit", func() bool { return b.procsOf(uid) >= 110 })
	assert.LessOrEqual(t, b.procsOf(uid), 125, "the bomb is held at a quarter of the container's pids limit")

	// The neighbours live on, and restart (a restart forks a new command) while the bomb runs.
	for _, n := range []string{"n1", "n2"} {
		before := b.waitUp(n)
		b.gw("restart", "-p", n)
		after := b.waitUp(n)
		assert.NotEqual(t, *before.PID, *after.PID, "%s restarted into a new process", n)
	}

	// Stopping the bomb ends all of it, and only then is it recorded stopped: under the
	// wrapper, and under exec supervision (where the slot's finish does it).
	b.gw("stop", "-p", "bomb")
	assert.Equal(t, 0, b.procsOf(uid), "no process of the bomb's profile is left")
	assert.Equal(t, "stopped", b.state("bomb")["gateway_state"])
	xuid := b.uidOf("xbomb")
	b.gw("start", "-p", "xbomb")
	eventually(t, 60*time.Second, "the exec-supervised bomb to reach its limit", func() bool { return b.procsOf(xuid) >= 110 })
	b.gw("stop", "-p", "xbomb")
	eventually(t, 10*time.Second, "the exec-supervised bomb recorded stopped", func() bool {
		return b.state("xbomb")["gateway_state"] == "stopped"
	})
	assert.Equal(t, 0, b.procsOf(xuid), "no process of the exec-supervised bomb's profile is left")
	for _, n := range []string{"n1", "n2"} {
		assert.True(t, b.status(n).Up, "%s still runs", n)
	}

	// docker stop while a bomb runs: within its grace (no SIGKILL from Docker: not 137).
	b.gw("start", "-p", "bomb")
	eventually(t, 60*time.Second, "the bomb to reach its limit again", func() bool { return b.procsOf(uid) >= 110 })
	timeout := 10
	t0 := time.Now()
	_, err := b.cli.ContainerStop(b.ctx, b.id(), client.ContainerStopOptions{Timeout: &timeout})
	require.NoError(t, err)
	took := time.Since(t0)
	st, err := b.c.State(b.ctx)
	require.NoError(t, err)
	assert.NotEqual(t, 137, st.ExitCode, "docker stop had to SIGKILL the container (took %v)", took)
	assert.Less(t, took, 10*time.Second)
	t.Logf("docker stop with a fork bomb running: %v", took)
}

// A profile's command tries, as itself, every write into another profile and every way to
// disturb it: each fails. Its own directory is the one place it can write.
func TestProfileCannotTouchAnother(t *testing.T) {
	b := start(t, nil)
	b.gw("register", "b", "--start", "--", "sleep", "1000")
	sb := b.waitUp("b")
	// Every attempt prints "<what> <exit code of the attempt>" into the command's own directory.
	attempts := []struct{ what, script string }{
		{"state", `echo '{"desired_state":"stopped"}' > /opt/data/profiles/b/gateway_state.json`},
		{"state-rename", `echo x > "$HOME/s" && mv "$HOME/s" /opt/data/profiles/b/gateway_state.json`},
		{"profile-json", `echo '{}' > /opt/data/profiles/b/profile.json`},
		{"marker", `echo '{}' > /opt/data/profiles/b/.gateway-planned-stop.json`},
		{"home", `echo x > /opt/data/profiles/b/home/planted`},
		{"slot-run", `echo 'exit 0' > /run/gateways/gateway-b/run`},
		{"slot-down", `touch /run/gateways/gateway-b/down`},
		{"slot-new", `mkdir /run/gateways/gateway-evil`},
		{"svc-down", `s6-svc -d /run/gateways/gateway-b`},
		{"svc-control", `printf d > /run/gateways/gateway-b/supervise/control`},
		{"lock", `exec 9>>/run/gateways/.s6gate-locks/b`},
		{"kill-gateway", `kill -STOP ` + strconv.Itoa(*sb.PID)},
		{"kill-command", `kill -STOP $(cat /proc/` + strconv.Itoa(*sb.PID) + `/task/*/children)`},
		{"uid-claim", `ln -s b /opt/data/.s6gate-uids/` + strconv.Itoa(b.uidOf("b"))},
		{"data-root", `echo x > /opt/data/planted`},
		{"own-dir", `echo x > "$HOME/mine"`},
	}
	var script strings.Builder
	for _, a := range attempts {
		fmt.Fprintf(&script, "( %s ) 2>/dev/null; echo %s $? >> \"$HOME/results\"\n", a.script, a.what)
	}
	script.WriteString("echo done >> \"$HOME/results\"; exec sleep 1000\n")
	b.gw("register", "a", "--start", "--", "sh", "-c", script.String())
	b.waitUp("a")
	var results string
	eventually(t, 30*time.Second, "a's attempts", func() bool {
		_, results = b.exec("", "cat", "/opt/data/profiles/a/home/results")
		return strings.Contains(results, "done")
	})
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(results), "\n") {
		if what, code, ok := strings.Cut(l, " "); ok {
			got[what] = code
		}
	}
	for _, a := range attempts {
		if a.what == "own-dir" {
			assert.Equal(t, "0", got[a.what], "a writes its own directory")
			continue
		}
		assert.NotEqual(t, "0", got[a.what], "a's command could %s (%s)", a.what, a.script)
	}
	// b did not notice.
	after := b.waitUp("b")
	assert.Equal(t, *sb.PID, *after.PID)
	assert.Equal(t, "running", b.state("b")["desired_state"])

	// What runs as what: a's gateway (the supervised process, under the wrapper) has a's uid
	// as its real uid and the service user as its effective one; its command, a's uid all
	// three, with no groups.
	ua := b.uidOf("a")
	sa := b.status("a")
	ids := func(pid string) string {
		_, out := b.exec("", "sh", "-c", "grep -E '^(Uid|Gid|Groups):' /proc/"+pid+"/status | tr -s '\\t ' ' '")
		return out
	}
	u := strconv.Itoa(ua)
	assert.Contains(t, ids(strconv.Itoa(*sa.PID)), "Uid: "+u+" 10000 10000 10000")
	_, child := b.exec("", "sh", "-c", fmt.Sprintf("cat /proc/%d/task/*/children", *sa.PID))
	out := ids(strings.Fields(child)[0])
	assert.Contains(t, out, "Uid: "+u+" "+u+" "+u+" "+u)
	assert.Contains(t, out, "Gid: "+u+" "+u+" "+u+" "+u)
	assert.Regexp(t, `Groups: ?\n`, out)
}
