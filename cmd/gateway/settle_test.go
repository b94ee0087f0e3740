package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/gatewayrun"
	"github.com/s6gate/s6gate/pkg/slot"
)

// Under exec supervision a command without a readiness check is settled by a fork of `gateway
// run` (gateway-settle), not by the watcher program: it records running once the command has
// stayed up for its settle time, tells s6 the slot is ready, logs "gateway started", and holds
// none of the command's descriptors meanwhile (not the profile lock).

// settlers lists the PIDs of gateway-settle processes whose parent is one of ppids, read from
// their children (a walk of every process of the host finds another test run's, and beside a
// fork bomb it took longer than the settle time it was meant to see into).
func settlers(ppids []int) []int {
	var out []int
	for _, ppid := range ppids {
		for _, p := range s6test.Descendants(ppid) {
			if p.PPID == ppid && p.Comm == gatewayrun.SettleName {
				out = append(out, p.PID)
			}
		}
	}
	return out
}

// fdTargets are where pid's descriptors point (readlink of /proc/PID/fd/*).
func fdTargets(pid int) map[string]string {
	out := map[string]string{}
	ents, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	for _, e := range ents {
		if l, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + e.Name()); err == nil {
			out[e.Name()] = l
		}
	}
	return out
}

func logOf(t *testing.T, e *s6test.Env, name string) string {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(e.Home, "logs", "gateways", name, "current"))
	return string(b)
}

// startAsync runs `gateway start -p name` in the background; wait returns its result.
func startAsync(e *s6test.Env, name string) (wait func(t *testing.T) s6test.Result) {
	done := make(chan s6test.Result, 1)
	go func() { done <- e.Run("gateway", "start", "-p", name) }()
	return func(t *testing.T) s6test.Result {
		t.Helper()
		select {
		case r := <-done:
			return r
		case <-time.After(60 * time.Second):
			t.Fatal("gateway start still waiting after 60 s")
			return s6test.Result{}
		}
	}
}

func TestExecSupervisionSettlesWithAFork(t *testing.T) {
	e := execEnv(t)
	home := registerWith(t, e, "x", `{"command": ["/bin/sleep", "1000"], "settle": "2s"}`)
	wait := startAsync(e, "x")

	var settle int
	s6test.Eventually(t, 10*time.Second, "a gateway-settle child of the slot's s6-supervise", func() bool {
		require.Empty(t, watchers("x"), "no watcher program")
		if s := settlers(supervisorsOf("gateway-x")); len(s) == 1 {
			settle = s[0]
		}
		return settle != 0
	})
	st := s6Status(t, e, "x")
	require.True(t, st.Up)
	assert.False(t, st.Ready, "not ready before the settle time")
	assert.Equal(t, "starting", stateFile(t, e, "x")["gateway_state"])
	s6test.Eventually(t, 5*time.Second, "the command exec'd", func() bool {
		comm, _ := procStat(t, s6Status(t, e, "x").PID)
		return comm == "sleep"
	})
	// Its descriptors: stdin, the log pipe, s6's readiness pipe (3) and the profile home;
	// the exec pipe is closed once the command runs, and nothing else was kept.
	var fds map[string]string
	s6test.Eventually(t, 5*time.Second, "the settle child to keep only its own descriptors", func() bool {
		fds = fdTargets(settle)
		for fd, target := range fds {
			if strings.HasPrefix(target, "pipe:") && fd != "1" && fd != "2" && fd != "3" {
				return false
			}
		}
		return true
	})
	assert.Contains(t, fds, "3", "s6's readiness descriptor")
	var targets []string
	for _, target := range fds {
		targets = append(targets, target)
		assert.NotContains(t, target, "gateway.lock", "the profile lock is the command's alone")
	}
	assert.Contains(t, targets, home, "the profile home")
	assert.LessOrEqual(t, len(fds), 5, "%v", fds)

	r := wait(t)
	require.Equal(t, 0, r.Code, r.Stderr)
	st = s6Status(t, e, "x")
	assert.True(t, st.Up && st.Ready, "s6 told ready")
	sf := stateFile(t, e, "x")
	assert.Equal(t, "running", sf["gateway_state"])
	assert.Equal(t, float64(st.PID), sf["pid"])
	s6test.Eventually(t, 5*time.Second, "the settle child gone", func() bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(settle))
		return os.IsNotExist(err)
	})
	s6test.Eventually(t, 5*time.Second, "the started line in the log", func() bool {
		return strings.Contains(logOf(t, e, "x"), `msg="gateway started" profile=x pid=`+strconv.Itoa(st.PID)+` supervision=exec settled=2s ready=settled`)
	})
	// The times it wrote are now's, not the prepared placeholder's.
	updated, err := time.Parse(time.RFC3339, sf["updated_at"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), updated, time.Minute)
	assert.NotContains(t, logOf(t, e, "x"), "2006-01-02")
	ents, err := os.ReadDir(home)
	require.NoError(t, err)
	for _, ent := range ents {
		assert.False(t, strings.HasPrefix(ent.Name(), "."), "no temp file left: %s", ent.Name())
	}
}

// A state file that changed while the command settled (an operator's tool wrote a key of its
// own) is not overwritten by the prepared record: the fork hands over to the watcher program,
// which merges, keeps the key and records running.
func TestExecSupervisionSettleForkHandsOverAChangedRecord(t *testing.T) {
	e := execEnv(t)
	home := registerWith(t, e, "x", `{"command": ["/bin/sleep", "1000"], "settle": "2s"}`)
	wait := startAsync(e, "x")
	s6test.Eventually(t, 10*time.Second, "a gateway-settle child", func() bool {
		return len(settlers(supervisorsOf("gateway-x"))) == 1
	})
	// As another writer would: a new file renamed into place, same owner.
	path := filepath.Join(home, "gateway_state.json")
	var st syscall.Stat_t
	require.NoError(t, syscall.Stat(path, &st))
	sf := stateFile(t, e, "x")
	require.Equal(t, "starting", sf["gateway_state"])
	sf["operator_note"] = "kept"
	b, err := json.MarshalIndent(sf, "", "  ")
	require.NoError(t, err)
	tmp := filepath.Join(home, ".note")
	require.NoError(t, os.WriteFile(tmp, b, 0o640))
	require.NoError(t, os.Chown(tmp, int(st.Uid), int(st.Gid)))
	require.NoError(t, os.Rename(tmp, path))

	r := wait(t)
	require.Equal(t, 0, r.Code, r.Stderr)
	sf = stateFile(t, e, "x")
	assert.Equal(t, "running", sf["gateway_state"])
	assert.Equal(t, "kept", sf["operator_note"], "the other writer's key survived")
	assert.True(t, s6Status(t, e, "x").Ready)
	s6test.Eventually(t, 5*time.Second, "the hand-over and the watcher program's started line in the log", func() bool {
		l := logOf(t, e, "x")
		return strings.Contains(l, "the watcher program takes over") && strings.Contains(l, `msg="gateway started" profile=x`)
	})
	assert.NotContains(t, logOf(t, e, "x"), "2006-01-02", "the hand-over line has the time it was written at")
}

// awaitSettling waits until name's command (a sleep) has been exec'd and its settle child
// waits, and returns both PIDs.
func awaitSettling(t *testing.T, e *s6test.Env, name string) (command, settle int) {
	t.Helper()
	s6test.Eventually(t, 10*time.Second, "the command exec'd, its settle child waiting", func() bool {
		st := s6Status(t, e, name)
		if st.PID <= 0 {
			return false
		}
		comm, _ := procStat(t, st.PID)
		s := settlers(supervisorsOf(slot.Name(name)))
		if comm == "sleep" && len(s) == 1 {
			command, settle = st.PID, s[0]
		}
		return command != 0
	})
	return command, settle
}

// A command that dies while it settles is not recorded running by the fork; s6 starts it
// again at once (the fork holds no profile lock that the next gateway run would wait for),
// and that start settles.
func TestExecSupervisionSettleForkCommandDiesFirst(t *testing.T) {
	e := execEnv(t)
	registerWith(t, e, "x", `{"command": ["/bin/sleep", "1000"], "settle": "2s"}`)
	wait := startAsync(e, "x")
	first, settle := awaitSettling(t, e, "x")
	killed := time.Now()
	require.NoError(t, syscall.Kill(first, syscall.SIGKILL))
	s6test.Eventually(t, 10*time.Second, "the first settle child gone", func() bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(settle))
		return os.IsNotExist(err)
	})
	sf := stateFile(t, e, "x")
	assert.False(t, sf["gateway_state"] == "running" && sf["pid"] == float64(first), "a dead command recorded running: %v", sf)
	s6test.Eventually(t, 15*time.Second, "the next start settled", func() bool {
		st := s6Status(t, e, "x")
		m := stateFile(t, e, "x")
		return st.Up && st.Ready && st.PID != first && m["gateway_state"] == "running" && m["pid"] == float64(st.PID)
	})
	// One failure: back-off 1 s, settle 2 s; a start that waited for a held lock would take
	// the drain time plus 3 s more.
	assert.Less(t, time.Since(killed), 8*time.Second)
	wait(t)
}

// A command that s6 stops while it settles (s6-svc -d, as a container stop does: no marker,
// and the slot's finish writes nothing for a SIGTERM) leaves the record starting: the fork
// finds the command gone and records nothing.
func TestExecSupervisionSettleForkCommandStoppedFirst(t *testing.T) {
	e := execEnv(t)
	registerWith(t, e, "x", `{"command": ["/bin/sleep", "1000"], "settle": "2s"}`)
	wait := startAsync(e, "x")
	first, settle := awaitSettling(t, e, "x")
	out, err := exec.Command(filepath.Join(e.CommandDir, "s6-svc"), "-d", e.Slot("x")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	s6test.Eventually(t, 10*time.Second, "the settle child gone", func() bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(settle))
		return os.IsNotExist(err)
	})
	sf := stateFile(t, e, "x")
	assert.Equal(t, "starting", sf["gateway_state"], "nothing recorded for a command that is gone")
	assert.Equal(t, float64(first), sf["pid"])
	wait(t)
}

// sigIgnored reports whether pid ignores sig (the SigIgn mask of /proc/PID/status).
func sigIgnored(t *testing.T, pid int, sig syscall.Signal) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "SigIgn:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			require.NoError(t, err)
			return mask&(1<<(uint(sig)-1)) != 0
		}
	}
	t.Fatal("no SigIgn")
	return false
}

// The command gets SIGPIPE's default action in both modes, as s6 would give it: a command
// writing to a closed pipe ends as programs expect, instead of looping on EPIPE.
func TestCommandGetsDefaultSIGPIPE(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	e.MustRun("gateway", "register", "w", "--start", "--", "/bin/sleep", "1000")
	registerWith(t, e, "x", `{"command": ["/bin/sleep", "1000"], "supervision": "exec"}`)
	e.MustRun("gateway", "start", "-p", "x")

	wrapper := s6Status(t, e, "w").PID
	kids := children(wrapper)
	require.Len(t, kids, 1, "the wrapper's command")
	assert.False(t, sigIgnored(t, atoi(t, kids[0]), syscall.SIGPIPE), "wrapper: the command's SIGPIPE")
	assert.False(t, sigIgnored(t, s6Status(t, e, "x").PID, syscall.SIGPIPE), "exec: the command's SIGPIPE")
}
