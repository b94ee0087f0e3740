package main_test

import (
	"encoding/json"
	"fmt"
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
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/marker"
	"github.com/s6gate/s6gate/pkg/pidlock"
	"github.com/s6gate/s6gate/pkg/proc"
	"github.com/s6gate/s6gate/pkg/safedir"
)

// gw is a gateway process started from the outside, as s6-supervise starts it.
type gw struct {
	t      *testing.T
	cmd    *exec.Cmd
	home   string
	out    *s6test.Buffer
	done   chan struct{}
	status int
}

func startGateway(t *testing.T, root, profileName string, args []string, env []string, extra ...*os.File) *gw {
	t.Helper()
	bin := s6test.Binaries(t)["gateway"]
	return launch(t, exec.Command(bin, append([]string{"run", "-p", profileName}, args...)...), root, profileName, env, extra...)
}

// launch starts cmd, a `gateway run -p profileName ...` (possibly wrapped, see strace.Command),
// with the test environment. The service user is the caller: the gateway acts with the
// test's own rights.
func launch(t *testing.T, cmd *exec.Cmd, root, profileName string, env []string, extra ...*os.File) *gw {
	t.Helper()
	cmd.Env = append([]string{"GATEWAY_HOME=" + root, "GATEWAY_DRAIN_TIMEOUT=500ms", "PATH=/usr/bin:/bin", "GATEWAY_USER=" + strconv.Itoa(os.Getuid())}, env...)
	out := &s6test.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = extra
	// A child that outlives a killed gateway must not keep Wait (and the test) hanging on
	// the output pipe it inherited.
	cmd.WaitDelay = 2 * time.Second
	require.NoError(t, cmd.Start())
	g := &gw{t: t, cmd: cmd, home: root, out: out, done: make(chan struct{}), status: -1}
	if profileName != "default" {
		g.home = filepath.Join(root, "profiles", profileName)
	}
	go func() {
		_ = cmd.Wait()
		g.status = cmd.ProcessState.ExitCode()
		close(g.done)
	}()
	t.Cleanup(func() {
		if g.running() {
			_ = cmd.Process.Kill()
			<-g.done
		}
	})
	return g
}

func (g *gw) running() bool {
	select {
	case <-g.done:
		return false
	default:
		return true
	}
}

func (g *gw) state() map[string]any {
	b, err := os.ReadFile(filepath.Join(g.home, "gateway_state.json"))
	if err != nil {
		return nil
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func (g *gw) waitState(want string) {
	g.t.Helper()
	s6test.Eventually(g.t, 10*time.Second, "gateway_state="+want, func() bool {
		return g.state()["gateway_state"] == want
	})
}

func (g *gw) signal(sig syscall.Signal) { require.NoError(g.t, g.cmd.Process.Signal(sig)) }

func (g *gw) wait() int {
	g.t.Helper()
	select {
	case <-g.done:
		return g.status
	case <-time.After(60 * time.Second): // a deadline for a hang, not a bound on a busy machine
		g.t.Fatalf("gateway did not exit; output:\n%s", g.out.String())
		return -1
	}
}

func newRoot(t *testing.T, profiles ...string) string {
	root := t.TempDir()
	for _, p := range profiles {
		require.NoError(t, os.MkdirAll(filepath.Join(root, "profiles", p), 0o755))
	}
	return root
}

func writeMarker(t *testing.T, home string, m marker.Marker) {
	d, err := safedir.Open(home, "")
	require.NoError(t, err)
	defer d.Close()
	require.NoError(t, marker.Write(d, m))
}

func TestSignalClassificationAndPersistedState(t *testing.T) {
	tests := []struct {
		name      string
		signal    syscall.Signal
		marker    func(pid int, start uint64) *marker.Marker
		wantState string
		wantCode  int
	}{
		{name: "bare SIGTERM is unplanned", signal: syscall.SIGTERM, wantState: "running", wantCode: 1},
		{name: "SIGTERM with a matching marker is an operator stop", signal: syscall.SIGTERM,
			marker: func(pid int, start uint64) *marker.Marker {
				return &marker.Marker{TargetPID: pid, TargetStartTime: &start, StopperPID: 1, WrittenAt: time.Now().UTC().Format(time.RFC3339Nano)}
			}, wantState: "stopped", wantCode: 0},
		{name: "marker naming our PID with another start time stays unplanned", signal: syscall.SIGTERM,
			marker: func(pid int, start uint64) *marker.Marker {
				other := start + 12345
				return &marker.Marker{TargetPID: pid, TargetStartTime: &other, StopperPID: 1, WrittenAt: time.Now().UTC().Format(time.RFC3339Nano)}
			}, wantState: "running", wantCode: 1},
		{name: "marker older than 60 s stays unplanned", signal: syscall.SIGTERM,
			marker: func(pid int, start uint64) *marker.Marker {
				return &marker.Marker{TargetPID: pid, TargetStartTime: &start, StopperPID: 1, WrittenAt: time.Now().Add(-61 * time.Second).UTC().Format(time.RFC3339Nano)}
			}, wantState: "running", wantCode: 1},
		{name: "marker for another PID stays unplanned", signal: syscall.SIGTERM,
			marker: func(pid int, start uint64) *marker.Marker {
				return &marker.Marker{TargetPID: pid + 1, StopperPID: 1, WrittenAt: time.Now().UTC().Format(time.RFC3339Nano)}
			}, wantState: "running", wantCode: 1},
		{name: "SIGINT is a planned stop", signal: syscall.SIGINT, wantState: "stopped", wantCode: 0},
		{name: "SIGQUIT is unplanned", signal: syscall.SIGQUIT, wantState: "running", wantCode: 1},
		{name: "SIGUSR1 requests a restart", signal: syscall.SIGUSR1, wantState: "stopped", wantCode: exitcode.Restart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRoot(t, "coder")
			g := startGateway(t, root, "coder", nil, nil)
			g.waitState("running")
			pid := g.cmd.Process.Pid
			if tt.marker != nil {
				start, err := proc.StartTime(pid)
				require.NoError(t, err)
				writeMarker(t, g.home, *tt.marker(pid, start))
			}
			g.signal(tt.signal)
			assert.Equal(t, tt.wantCode, g.wait(), g.out.String())
			st := g.state()
			assert.Equal(t, tt.wantState, st["gateway_state"], g.out.String())
			assert.NotContains(t, st, "pid", "a gateway that exited leaves no pid behind")
			assert.NoFileExists(t, filepath.Join(g.home, marker.FileName), "the marker is single use, matched or not")
			assert.NoFileExists(t, filepath.Join(g.home, pidlock.PIDFile))
		})
	}
}

// TestStartingThenRunningRecordsIdentity pins SPEC §3/§7: a running gateway's state names its pid
// and start time, gateway.pid exists, and the idle gateway announces itself. (The order
// starting → running is pinned by TestGatewayRecordsStartingBeforeRunning.)
func TestStartingThenRunningRecordsIdentity(t *testing.T) {
	root := newRoot(t)
	g := startGateway(t, root, "default", nil, nil)
	g.waitState("running")
	st := g.state()
	assert.Equal(t, float64(g.cmd.Process.Pid), st["pid"])
	start, err := proc.StartTime(g.cmd.Process.Pid)
	require.NoError(t, err)
	assert.Equal(t, float64(start), st["start_time"])
	_, err = time.Parse(time.RFC3339, st["updated_at"].(string))
	assert.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(root, pidlock.PIDFile))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"pid":`)
	// The banner is logged after running is recorded (and after readiness): seeing the state
	// says nothing about the banner yet, so wait for the banner itself.
	s6test.Eventually(t, 10*time.Second, "the idle gateway's start banner", func() bool {
		return strings.Contains(g.out.String(), "built-in idle gateway")
	})
	g.signal(syscall.SIGTERM)
	g.wait()
}

func TestReadinessNotificationIsNotInheritedByTheChild(t *testing.T) {
	root := newRoot(t, "coder")
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	g := startGateway(t, root, "coder", []string{"--", "sleep", "300"}, []string{"GATEWAY_NOTIFY_FD=3"}, w)
	w.Close()
	buf := make([]byte, 8)
	n, err := r.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "\n", string(buf[:n]), "one newline when ready")
	// EOF while the child still runs: nobody else holds the descriptor.
	_, err = r.Read(buf)
	assert.Error(t, err)
	assert.True(t, g.running())
	assert.Equal(t, "running", g.state()["gateway_state"], "ready only after running is recorded")
	g.signal(syscall.SIGTERM)
	g.wait()
}

// hasLine reports whether out has a line that is exactly line. The gateway logs its child's
// command line, so a bare Contains would also match the script's own text in that log line.
func hasLine(out, line string) bool {
	return strings.Contains("\n"+out, "\n"+line+"\n")
}

// TestWrapperForwardsSignalsAndDrainsTheChild pins SPEC §7: the child's output reaches the
// gateway's stdout, other signals are forwarded to the child, and an unmarked SIGTERM drains it.
func TestWrapperForwardsSignalsAndDrainsTheChild(t *testing.T) {
	root := newRoot(t, "coder")
	flag := filepath.Join(t.TempDir(), "hup")
	script := `trap 'echo hup > ` + flag + `' HUP; trap 'echo child-got-term; exit 0' TERM; echo child-started; while :; do sleep 0.05; done`
	// The drain is the child's time to act on SIGTERM (a shell ends its `sleep 0.05` first):
	// generous, so that a busy machine does not turn the drain into a kill.
	g := startGateway(t, root, "coder", []string{"--", "sh", "-c", script}, []string{"GATEWAY_DRAIN_TIMEOUT=10s"})
	g.waitState("running")
	// The child's own line, printed once its traps are set (the gateway's log line that quotes
	// the script must not count, or SIGHUP can arrive before the trap and kill the child).
	s6test.Eventually(t, 5*time.Second, "child output on the gateway's stdout", func() bool {
		return hasLine(g.out.String(), "child-started")
	})
	g.signal(syscall.SIGHUP)
	s6test.Eventually(t, 5*time.Second, "SIGHUP forwarded to the child", func() bool {
		_, err := os.Stat(flag)
		return err == nil
	})
	g.signal(syscall.SIGTERM)
	assert.Equal(t, 1, g.wait())
	assert.True(t, hasLine(g.out.String(), "child-got-term"), "the child got SIGTERM to drain:\n%s", g.out.String())
	assert.Equal(t, "running", g.state()["gateway_state"])
}

func TestDrainTimeoutKillsAStubbornChild(t *testing.T) {
	root := newRoot(t, "coder")
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	g := startGateway(t, root, "coder", []string{"--", "sh", "-c", `trap '' TERM; echo $$ > ` + pidFile + `; while :; do sleep 0.05; done`}, nil)
	g.waitState("running")
	var childPID int
	s6test.Eventually(t, 5*time.Second, "child pid", func() bool {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		_, err = fmt.Sscan(strings.TrimSpace(string(b)), &childPID)
		return err == nil && childPID > 0
	})
	g.signal(syscall.SIGINT)
	assert.Equal(t, 0, g.wait(), g.out.String())
	assert.Contains(t, g.out.String(), "did not stop within the drain timeout")
	assert.False(t, proc.Alive(childPID, nil), "the stubborn child was killed")
	assert.Equal(t, "stopped", g.state()["gateway_state"])
}

func TestChildExitIsPassedThrough(t *testing.T) {
	root := newRoot(t, "coder")
	g := startGateway(t, root, "coder", []string{"--", "sh", "-c", "exit 9"}, nil)
	assert.Equal(t, 9, g.wait())
	st := g.state()
	assert.Contains(t, st["exit_reason"], "exited with status 9")
	assert.Equal(t, "starting", st["gateway_state"], "a command that dies before it settles never counts as running")
	assert.Equal(t, float64(1), st["consecutive_failures"])
	assert.Equal(t, map[string]any{"code": float64(9), "at": st["last_exit"].(map[string]any)["at"],
		"uptime_seconds": st["last_exit"].(map[string]any)["uptime_seconds"], "failure": true}, st["last_exit"])
}

func TestFatalConfiguration(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, home string)
		args  []string
		why   string
	}{
		{name: "child reports EX_CONFIG", args: []string{"--", "sh", "-c", "exit 78"}, why: "fatal configuration"},
		{name: "command not found", args: []string{"--", "/nonexistent/cmd"}, why: "/nonexistent/cmd"},
		{name: "invalid profile.json", setup: func(t *testing.T, home string) {
			require.NoError(t, os.WriteFile(filepath.Join(home, "profile.json"), []byte("{nope"), 0o600))
		}, why: "profile.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRoot(t, "coder")
			if tt.setup != nil {
				tt.setup(t, filepath.Join(root, "profiles", "coder"))
			}
			g := startGateway(t, root, "coder", tt.args, nil)
			assert.Equal(t, exitcode.FatalConfig, g.wait(), g.out.String())
			st := g.state()
			assert.Equal(t, "startup_failed", st["gateway_state"])
			assert.Contains(t, st["exit_reason"], tt.why)
		})
	}
	t.Run("missing home", func(t *testing.T) {
		g := startGateway(t, t.TempDir(), "ghost", nil, nil)
		assert.Equal(t, exitcode.FatalConfig, g.wait())
	})
}

func TestProfileJSONCommandAndEnv(t *testing.T) {
	root := newRoot(t, "coder")
	home := filepath.Join(root, "profiles", "coder")
	require.NoError(t, os.WriteFile(filepath.Join(home, "profile.json"),
		[]byte(`{"command":["sh","-c","echo value=$GREETING; exec sleep 300"],"env":{"GREETING":"hello world"}}`), 0o600))
	g := startGateway(t, root, "coder", nil, nil)
	s6test.Eventually(t, 5*time.Second, "child output", func() bool { return strings.Contains(g.out.String(), "value=hello world") })
	g.signal(syscall.SIGTERM)
	g.wait()
}

// --setenv is applied before the gateway reads its environment: its settings (here the data
// root) and its command see the values, in order (the last of a name wins); a carried value
// (--setenv NAME) comes from S6GATE_SETENV_NAME, which the command does not see, and is never
// on the gateway's command line.
func TestSetenvReachesTheSettingsAndTheCommand(t *testing.T) {
	root := newRoot(t, "coder")
	home := filepath.Join(root, "profiles", "coder")
	g := startGateway(t, root, "coder", []string{
		"--setenv", "GATEWAY_HOME=" + root, "--setenv", "HOME=/first", "--setenv", "SECRET", "--setenv", "HOME=/second",
		"--setenv", "EMPTY=", "--",
		"/bin/sh", "-c", `env > "$GATEWAY_HOME/profiles/coder/seen.new" && mv "$GATEWAY_HOME/profiles/coder/seen.new" "$GATEWAY_HOME/profiles/coder/seen"; exec sleep 300`,
	}, []string{"GATEWAY_HOME=" + filepath.Join(root, "missing"), "S6GATE_SETENV_SECRET=s3cr'et"})
	g.waitState("running") // in root: the data root came from --setenv
	s6test.Eventually(t, 5*time.Second, "the command's environment", func() bool {
		_, err := os.Stat(filepath.Join(home, "seen"))
		return err == nil
	})
	b, err := os.ReadFile(filepath.Join(home, "seen"))
	require.NoError(t, err)
	env := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	assert.Contains(t, env, "SECRET=s3cr'et")
	assert.Contains(t, env, "HOME=/second")
	assert.Contains(t, env, "EMPTY=")
	assert.Contains(t, env, "GATEWAY_HOME="+root)
	for _, kv := range env {
		assert.False(t, strings.HasPrefix(kv, "S6GATE_SETENV_"), "carrier %s reached the command", kv)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", g.cmd.Process.Pid))
	require.NoError(t, err)
	assert.NotContains(t, string(cmdline), "s3cr", "a carried value is not an argument")
	g.signal(syscall.SIGTERM)
	g.wait()
}

func TestProfileLockAndReplace(t *testing.T) {
	root := newRoot(t, "coder")
	first := startGateway(t, root, "coder", nil, nil)
	first.waitState("running")

	second := startGateway(t, root, "coder", nil, nil)
	assert.Equal(t, 1, second.wait(), "without --replace a held lock is an error")
	assert.Contains(t, second.out.String(), "another gateway holds the profile lock")
	assert.Contains(t, second.out.String(), "pid "+strconv.Itoa(first.cmd.Process.Pid))
	assert.True(t, first.running())

	third := startGateway(t, root, "coder", []string{"--replace"}, nil)
	assert.Equal(t, 1, first.wait(), "the stray gateway got an unplanned SIGTERM")
	s6test.Eventually(t, 10*time.Second, "replacement running", func() bool {
		st := third.state()
		return st["gateway_state"] == "running" && st["pid"] == float64(third.cmd.Process.Pid)
	})
	third.signal(syscall.SIGTERM)
	third.wait()
}
