package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
)

// cproc is a process of the container, read from its /proc.
type cproc struct {
	pid, ppid int
	uid, gid  [4]int // real, effective, saved, filesystem
	groups    string
	argv      []string
}

// procs lists the container's processes with one exec of sh and cat (the minimal image has
// nothing more).
func (b *box) procs() []cproc {
	b.t.Helper()
	code, out := b.exec("", "sh", "-c", `for p in /proc/[0-9]*; do
  [ -r "$p/status" ] || continue
  echo "@@ ${p#/proc/}"; cat "$p/status" 2>/dev/null; printf 'argv:'; cat "$p/cmdline" 2>/dev/null; echo
done`)
	require.Equal(b.t, 0, code, out)
	var ps []cproc
	for _, block := range strings.Split(out, "@@ ")[1:] {
		var p cproc
		lines := strings.Split(block, "\n")
		p.pid, _ = strconv.Atoi(strings.TrimSpace(lines[0]))
		for _, l := range lines[1:] {
			k, v, _ := strings.Cut(l, ":")
			f := strings.Fields(v)
			switch k {
			case "PPid":
				p.ppid, _ = strconv.Atoi(v[1:])
			case "Uid", "Gid":
				var ids [4]int
				for i := range min(4, len(f)) {
					ids[i], _ = strconv.Atoi(f[i])
				}
				if k == "Uid" {
					p.uid = ids
				} else {
					p.gid = ids
				}
			case "Groups":
				p.groups = strings.Join(f, " ")
			case "argv":
				p.argv = strings.Split(strings.TrimRight(v, "\x00"), "\x00")
			}
		}
		ps = append(ps, p)
	}
	return ps
}

// supervised returns the s6-supervise of the slot of profile p and the process it runs.
func supervised(ps []cproc, p string) (sup, child cproc, ok bool) {
	for _, s := range ps {
		if len(s.argv) == 2 && strings.HasSuffix(s.argv[0], "s6-supervise") && s.argv[1] == "gateway-"+p {
			sup, ok = s, true
		}
	}
	if !ok {
		return sup, child, false
	}
	for _, c := range ps {
		if c.ppid == sup.pid && len(c.argv) > 0 && c.argv[0] != "" {
			return sup, c, true
		}
	}
	return sup, child, false
}

// isolate does by hand, as the service user, what the service user's side of per-profile uids
// does when it publishes a slot: it writes the slot's s6gate-uid (and, until `gateway run`
// drops a command to its profile's uid itself, a run script that lets the shell do it: dash
// started with a real uid other than its effective one becomes the real one), then has the
// slot's supervisor exit so that gw-svscan starts it again — isolated. (Shell builtins, cat and
// s6-svc only: the minimal image has nothing more.)
func (b *box) isolate(p string, uid int) {
	b.t.Helper()
	slot := "/run/gateways/gateway-" + p
	code, out := b.exec("gateway", "sh", "-c", fmt.Sprintf(`set -e
printf '#!/bin/sh\nexec sleep 1000\n' > %[1]s/run
echo %[2]d > %[1]s/s6gate-uid
s6-svc -xd %[1]s`, slot, uid))
	require.Equal(b.t, 0, code, out)
}

// waitIsolated waits until profile p's slot has a supervisor with real uid and gid uid,
// effective and saved ones the service user's (10000) and no supplementary group, whose
// command runs as uid entirely; it returns the command's pid.
func (b *box) waitIsolated(p string, uid int) int {
	b.t.Helper()
	var sup, cmd cproc
	eventually(b.t, 30*time.Second, fmt.Sprintf("%s's supervisor with real uid %d and its command", p, uid), func() bool {
		var ok bool
		sup, cmd, ok = supervised(b.procs(), p)
		return ok && sup.uid[0] == uid && cmd.argv[0] == "sleep"
	})
	assert.Equal(b.t, [4]int{uid, 10000, 10000, 10000}, sup.uid, "%s: supervisor uids", p)
	assert.Equal(b.t, [4]int{uid, 10000, 10000, 10000}, sup.gid, "%s: supervisor gids", p)
	assert.Empty(b.t, sup.groups, "%s: no supplementary group", p)
	assert.Equal(b.t, [4]int{uid, uid, uid, uid}, cmd.uid, "%s: its command", p)
	assert.Equal(b.t, [4]int{uid, uid, uid, uid}, cmd.gid, "%s: its command", p)
	return cmd.pid
}

// Two gateways whose slots ask for uids of GATEWAY_UID_RANGE run their commands as those two
// uids, under supervisors that the service user still controls; gw-svscan does the same after
// a docker restart. The rest of the tree stays the service user's, and root's scanner is the
// only root process of it.
func TestIsolatedSupervisorsInAContainer(t *testing.T) { isolatedSupervisors(t) }

func isolatedSupervisors(t *testing.T, opts ...testcontainers.ContainerCustomizer) {
	b := start(t, nil, opts...)
	uids := map[string]int{"iso-a": 20001, "iso-b": 20002}
	for _, boot := range []int{1, 2} {
		if boot == 2 {
			b.restart()
			b.waitBoot(2)
		}
		for _, p := range []string{"iso-a", "iso-b"} {
			if boot == 1 {
				b.gw("register", p, "--start", "--", "sleep", "1000")
			}
			b.waitUp(p)
			b.isolate(p, uids[p])
		}
		cmds := map[string]int{}
		for _, p := range []string{"iso-a", "iso-b"} {
			cmds[p] = b.waitIsolated(p, uids[p])
		}
		ps := b.procs()
		scanner := slices.IndexFunc(ps, func(p cproc) bool { return len(p.argv) > 0 && strings.HasSuffix(p.argv[0], "gw-svscan") })
		require.GreaterOrEqual(t, scanner, 0, "gw-svscan runs")
		for _, p := range ps {
			switch {
			case p.pid == ps[scanner].pid:
				assert.Equal(t, [4]int{0, 0, 0, 0}, p.uid, "gw-svscan is root's and never changes that")
			case p.ppid == ps[scanner].pid:
				// The service user's, or a profile's uid of GATEWAY_UID_RANGE (default 20000-59999:
				// every profile has one, the default gateway's is the one its name hashes to).
				inRange := p.uid[0] >= 20000 && p.uid[0] <= 59999
				assert.True(t, p.uid[0] == 10000 || inRange, "a supervisor of the gateways' tree has uid %d: %v", p.uid[0], p.argv)
				assert.Equal(t, 10000, p.uid[1], "its effective uid is the service user's: %v", p.argv)
			}
		}

		// The service user's s6-svc brings the command (uid P) down.
		code, out := b.exec("gateway", "s6-svc", "-wD", "-T", "10000", "-d", "/run/gateways/gateway-iso-a")
		require.Equal(t, 0, code, out)
		eventually(t, 10*time.Second, "iso-a's command to be gone", func() bool {
			return !slices.ContainsFunc(b.procs(), func(p cproc) bool { return p.pid == cmds["iso-a"] })
		})
		_, _, ok := supervised(b.procs(), "iso-b")
		assert.True(t, ok, "iso-b runs on")
	}
	assert.NotContains(t, b.logs(), "isolated slot not started")
}

// docker stop with isolated gateways is as prompt as with s6gate:latest's scanner (or
// $S6GATE_BASELINE_IMAGE's), alternated in one run.
func TestIsolatedDockerStopNotSlower(t *testing.T) {
	requireEngine(t)
	baseline := os.Getenv("S6GATE_BASELINE_IMAGE")
	if baseline == "" {
		baseline = "s6gate:latest"
	}
	if baseline == Image {
		t.Skipf("the image under test is the baseline %s", baseline)
	}
	imageSize(t, baseline, "the baseline image")
	stopTime := func(image string, isolate bool) time.Duration {
		b := start(t, map[string]string{"S6_KILL_GRACETIME": "8000", "S6_SERVICES_GRACETIME": "8000"}, testcontainers.WithImage(image))
		profiles := []string{"g1", "g2", "g3", "g4", "g5"}
		for _, p := range profiles {
			b.gw("register", p, "--start", "--", "sh", "-c", idleLoop, p)
		}
		for _, p := range profiles {
			b.waitUp(p)
		}
		if isolate {
			b.isolate("g1", 20001)
			b.isolate("g2", 20002)
			b.waitIsolated("g1", 20001)
			b.waitIsolated("g2", 20002)
		}
		timeout := 30
		begin := time.Now()
		_, err := b.cli.ContainerStop(b.ctx, b.id(), client.ContainerStopOptions{Timeout: &timeout})
		require.NoError(t, err)
		took := time.Since(begin)
		t.Logf("%s: docker stop took %s", image, took)
		return took
	}
	var mine, base []time.Duration
	for range 2 {
		mine = append(mine, stopTime(Image, true))
		base = append(base, stopTime(baseline, false))
	}
	slices.Sort(mine)
	slices.Sort(base)
	assert.Less(t, mine[0], base[len(base)-1]+time.Second, "docker stop: %v (isolated, %s) against %v (%s)", mine, Image, base, baseline)
	assert.Less(t, mine[0], 4*time.Second, "a stop returns as soon as everything is down")
}
