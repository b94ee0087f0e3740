package gatewayrun_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/gatewayrun"
	"github.com/s6gate/s6gate/pkg/marker"
	"github.com/s6gate/s6gate/pkg/pidlock"
	"github.com/s6gate/s6gate/pkg/proc"
	"github.com/s6gate/s6gate/pkg/safedir"
	"github.com/s6gate/s6gate/pkg/state"
)

func newRoot(t *testing.T, profiles ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, p := range profiles {
		require.NoError(t, os.MkdirAll(filepath.Join(root, "profiles", p), 0o755))
	}
	return root
}

func writeMarker(t *testing.T, home string, m marker.Marker) {
	t.Helper()
	d, err := safedir.Open(home, "")
	require.NoError(t, err)
	defer d.Close()
	require.NoError(t, marker.Write(d, m))
}

// runInProcess runs gatewayrun.Run for profile "coder" in this test process (so coverage
// counts) and returns a channel with its exit code, the home and the log.
func runInProcess(t *testing.T, ctx context.Context, command []string, profileJSON ...string) (<-chan int, string, *s6test.Buffer) {
	t.Helper()
	root := newRoot(t, "coder")
	for _, c := range profileJSON {
		require.NoError(t, os.WriteFile(filepath.Join(root, "profiles", "coder", "profile.json"), []byte(c), 0o600))
	}
	logs := &s6test.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- gatewayrun.Run(ctx, gatewayrun.Options{
			Settings: config.Settings{Home: root, User: strconv.Itoa(os.Getuid()), DrainTimeout: 300 * time.Millisecond},
			Profile:  "coder", Command: command, Logger: slog.New(slog.NewTextHandler(io.MultiWriter(logs), nil)),
		})
	}()
	return done, filepath.Join(root, "profiles", "coder"), logs
}

func stateIn(t *testing.T, home string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(home, "gateway_state.json"))
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

func waitRunning(t *testing.T, home string) {
	t.Helper()
	s6test.Eventually(t, 10*time.Second, "gateway_state=running", func() bool {
		st := stateIn(t, home)
		return st["gateway_state"] == "running" && st["pid"] == float64(os.Getpid())
	})
}

func exitCode(t *testing.T, done <-chan int) int {
	t.Helper()
	select {
	case code := <-done:
		return code
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return")
		return -1
	}
}

func TestRunInProcess(t *testing.T) {
	self := os.Getpid()
	start, err := proc.StartTime(self)
	require.NoError(t, err)
	tests := []struct {
		name      string
		command   []string
		config    string
		act       func(t *testing.T, cancel context.CancelFunc, home string)
		wantCode  int
		wantState string
		wantWhy   string
	}{
		{name: "context cancelled: unplanned, comes back", act: func(t *testing.T, cancel context.CancelFunc, _ string) { cancel() },
			wantCode: 1, wantState: "running", wantWhy: "unplanned"},
		{name: "SIGTERM with a matching marker: operator stop", act: func(t *testing.T, _ context.CancelFunc, home string) {
			writeMarker(t, home, marker.Marker{TargetPID: self, TargetStartTime: &start, StopperPID: 1, WrittenAt: time.Now().UTC().Format(time.RFC3339Nano)})
			require.NoError(t, syscall.Kill(self, syscall.SIGTERM))
		}, wantCode: 0, wantState: "stopped", wantWhy: "planned stop"},
		{name: "SIGUSR1: restart", act: func(t *testing.T, _ context.CancelFunc, _ string) {
			require.NoError(t, syscall.Kill(self, syscall.SIGUSR1))
		}, wantCode: exitcode.Restart, wantState: "stopped", wantWhy: "restart requested"},
		{name: "child exits by itself: its status, state unchanged", command: []string{"sh", "-c", "sleep 0.3; exit 3"},
			config: `{"settle": "100ms"}`, wantCode: 3, wantState: "running", wantWhy: "exited with status 3"},
		{name: "child exits before it settles: its status, never running", command: []string{"sh", "-c", "exit 4"},
			wantCode: 4, wantState: "starting", wantWhy: "exited with status 4"},
		{name: "child fails max_failures times: failed, gave up", command: []string{"sh", "-c", "exit 5"},
			config: `{"max_failures": 1}`, wantCode: exitcode.GaveUp, wantState: "failed", wantWhy: "exited with status 5"},
		{name: "child exits 125 by itself: not mistaken for giving up", command: []string{"sh", "-c", "exit 125"},
			wantCode: 1, wantState: "starting", wantWhy: "exited with status 125"},
		{name: "child ignores SIGTERM: killed after the drain", command: []string{"sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"},
			act: func(t *testing.T, cancel context.CancelFunc, _ string) { cancel() }, wantCode: 1, wantState: "running", wantWhy: "unplanned"},
		{name: "command not found: fatal configuration", command: []string{"/nonexistent/cmd"},
			wantCode: exitcode.FatalConfig, wantState: "startup_failed", wantWhy: "/nonexistent/cmd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var cfg []string
			if tt.config != "" {
				cfg = append(cfg, tt.config)
			}
			done, home, logs := runInProcess(t, ctx, tt.command, cfg...)
			if tt.act != nil {
				waitRunning(t, home)
				tt.act(t, cancel, home)
			}
			assert.Equal(t, tt.wantCode, exitCode(t, done), logs.String())
			st := stateIn(t, home)
			assert.Equal(t, tt.wantState, st["gateway_state"], logs.String())
			assert.Contains(t, st["exit_reason"], tt.wantWhy)
			assert.NotContains(t, st, "pid", "no pid is left behind")
			assert.NoFileExists(t, filepath.Join(home, pidlock.PIDFile))
			assert.NoFileExists(t, filepath.Join(home, marker.FileName))
		})
	}
}

// A held profile lock without --replace: the second gateway refuses, exit 1.
func TestRunInProcessRefusesAHeldLock(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done, home, _ := runInProcess(t, ctx, nil)
	waitRunning(t, home)
	root := filepath.Dir(filepath.Dir(home))
	var logs bytes.Buffer
	code := gatewayrun.Run(context.Background(), gatewayrun.Options{
		Settings: config.Settings{Home: root, User: strconv.Itoa(os.Getuid()), DrainTimeout: time.Second},
		Profile:  "coder", Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	assert.Equal(t, 1, code)
	assert.Contains(t, logs.String(), "another gateway holds the profile lock")
	cancel()
	assert.Equal(t, 1, exitCode(t, done))
}

// reservedPort binds a TCP socket to a free port of 127.0.0.1 without listening on it: a
// connection to addr is refused until listen is called, and meanwhile no other process (a
// concurrent test run's connection, say) can take the port, as it could after a Close.
func reservedPort(t *testing.T) (addr string, listen func()) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Close(fd) })
	require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	sa, err := syscall.Getsockname(fd)
	require.NoError(t, err)
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	return addr, func() { require.NoError(t, syscall.Listen(fd, 16)) }
}

// The tcp readiness check: the gateway reports running only once the declared port accepts.
func TestReadinessTCPWaitsForTheListener(t *testing.T) {
	addr, listen := reservedPort(t) // nothing listens yet
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, home, logs := runInProcess(t, ctx, []string{"sleep", "1000"}, `{"ready": {"tcp": "`+addr+`"}, "settle": "0s"}`)
	s6test.Eventually(t, 10*time.Second, "command started", func() bool { return stateIn(t, home)["command_started_at"] != nil })
	time.Sleep(300 * time.Millisecond) // several check intervals with nothing listening
	assert.Equal(t, "starting", stateIn(t, home)["gateway_state"], "not ready while the port refuses")
	listen() // the kernel completes the connections: nobody needs to accept them
	waitRunning(t, home)
	// The start line follows the state write: wait for it, it says which check passed.
	s6test.Eventually(t, 10*time.Second, "the start line names the check", func() bool {
		return strings.Contains(logs.String(), "ready=\"tcp "+addr+" accepts\"")
	})
	cancel()
	assert.Equal(t, 1, exitCode(t, done))
}

// seedFailures writes a crash-loop record of this boot into home: n consecutive failures, the
// last one just now, so the next gateway backs off.
func seedFailures(t *testing.T, home string, n int) {
	t.Helper()
	d, err := safedir.Open(home, "")
	require.NoError(t, err)
	defer d.Close()
	code := 1
	_, err = state.Update(d, time.Now(), func(s *state.State) {
		s.BootID, s.ConsecutiveFailures = state.CurrentBoot(""), n
		s.LastExit = &state.Exit{Code: &code, At: time.Now().UTC().Format(state.TimeFormat), Failure: true}
	})
	require.NoError(t, err)
}

// A gateway backing off after 3 failures (4 s): every stop signal is classified as ever, and an
// operator's start (the failure count cleared in the state file) ends the wait at once.
func TestBackoffHonoursSignalsAndAnOperatorStart(t *testing.T) {
	self := os.Getpid()
	start, err := proc.StartTime(self)
	require.NoError(t, err)
	tests := []struct {
		name      string
		act       func(t *testing.T, home string)
		wantCode  int
		wantState string
	}{
		{"operator stop (marked SIGTERM): stopped", func(t *testing.T, home string) {
			writeMarker(t, home, marker.Marker{TargetPID: self, TargetStartTime: &start, StopperPID: 1, WrittenAt: time.Now().UTC().Format(time.RFC3339Nano)})
			require.NoError(t, syscall.Kill(self, syscall.SIGTERM))
		}, 0, "stopped"},
		{"container stop (unmarked SIGTERM): running", func(t *testing.T, _ string) {
			require.NoError(t, syscall.Kill(self, syscall.SIGTERM))
		}, 1, "running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRoot(t, "coder")
			home := filepath.Join(root, "profiles", "coder")
			seedFailures(t, home, 3)
			logs := &s6test.Buffer{}
			done := make(chan int, 1)
			go func() {
				done <- gatewayrun.Run(context.Background(), gatewayrun.Options{
					Settings: config.Settings{Home: root, User: strconv.Itoa(os.Getuid()), DrainTimeout: 300 * time.Millisecond},
					Profile:  "coder", Command: []string{"sleep", "1000"}, Logger: slog.New(slog.NewTextHandler(logs, nil)),
				})
			}()
			s6test.Eventually(t, 10*time.Second, "backing off", func() bool { return stateIn(t, home)["backoff_until"] != nil })
			tt.act(t, home)
			assert.Equal(t, tt.wantCode, exitCode(t, done), logs.String())
			assert.Equal(t, tt.wantState, stateIn(t, home)["gateway_state"])
			assert.NotContains(t, stateIn(t, home), "command_started_at", "the command never ran")
		})
	}

	t.Run("operator start: the wait ends at once", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		root := newRoot(t, "coder")
		home := filepath.Join(root, "profiles", "coder")
		seedFailures(t, home, 3)
		done := make(chan int, 1)
		logs := &s6test.Buffer{}
		go func() {
			done <- gatewayrun.Run(ctx, gatewayrun.Options{
				Settings: config.Settings{Home: root, User: strconv.Itoa(os.Getuid()), DrainTimeout: 300 * time.Millisecond},
				Profile:  "coder", Command: []string{"sleep", "1000"}, Logger: slog.New(slog.NewTextHandler(logs, nil)),
			})
		}()
		var until time.Time
		s6test.Eventually(t, 10*time.Second, "backing off", func() bool {
			u, _ := stateIn(t, home)["backoff_until"].(string)
			until = state.ParseTime(u)
			return !until.IsZero()
		})
		d, err := safedir.Open(home, "")
		require.NoError(t, err)
		_, err = state.Update(d, time.Now(), func(s *state.State) { s.ConsecutiveFailures = 0 }) // what gateway start does
		d.Close()
		require.NoError(t, err)
		waitRunning(t, home)
		started := state.ParseTime(stateIn(t, home)["command_started_at"].(string))
		assert.True(t, started.Before(until.Add(-2*time.Second)), "the command started at %s, the back-off ran until %s", started, until)
		assert.Contains(t, logs.String(), "back-off cut short")
		cancel()
		assert.Equal(t, 1, exitCode(t, done))
	})
}

// A command that has stayed up for stable_after clears its failure count.
func TestStableCommandClearsItsFailureCount(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := newRoot(t, "coder")
	home := filepath.Join(root, "profiles", "coder")
	require.NoError(t, os.WriteFile(filepath.Join(home, "profile.json"), []byte(`{"stable_after": "2s", "settle": "0s"}`), 0o600))
	d, err := safedir.Open(home, "")
	require.NoError(t, err)
	_, err = state.Update(d, time.Now(), func(s *state.State) { s.BootID, s.ConsecutiveFailures = state.CurrentBoot(""), 2 }) // no last exit: no back-off
	d.Close()
	require.NoError(t, err)
	done := make(chan int, 1)
	go func() {
		done <- gatewayrun.Run(ctx, gatewayrun.Options{
			Settings: config.Settings{Home: root, User: strconv.Itoa(os.Getuid()), DrainTimeout: 300 * time.Millisecond},
			Profile:  "coder", Command: []string{"sleep", "1000"}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
	}()
	waitRunning(t, home)
	assert.Equal(t, float64(2), stateIn(t, home)["consecutive_failures"], "not cleared before stable_after")
	s6test.Eventually(t, 10*time.Second, "failure count cleared", func() bool { return stateIn(t, home)["consecutive_failures"] == nil })
	cancel()
	assert.Equal(t, 1, exitCode(t, done))
}

// A ready file left by an earlier run does not make a new command ready.
func TestStaleReadyFileIsNotReadiness(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	flag := filepath.Join(t.TempDir(), "ready")
	require.NoError(t, os.WriteFile(flag, nil, 0o644))
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(flag, old, old))
	done, home, _ := runInProcess(t, ctx, []string{"sleep", "1000"}, `{"ready": {"file": "`+flag+`"}, "settle": "0s"}`)
	s6test.Eventually(t, 10*time.Second, "command started", func() bool { return stateIn(t, home)["command_started_at"] != nil })
	time.Sleep(400 * time.Millisecond) // several check intervals with only the stale file
	assert.Equal(t, "starting", stateIn(t, home)["gateway_state"], "a stale ready file is not readiness")
	now := time.Now()
	require.NoError(t, os.Chtimes(flag, now, now)) // the command touches it
	waitRunning(t, home)
	cancel()
	assert.Equal(t, 1, exitCode(t, done))
}

// The back-off a gateway records and waits for after n consecutive failures is exactly the
// schedule's (1, 2, 4, 8 s; capped at backoff_max), counted from the last failure.
func TestBackoffIsRecordedOnTheSchedule(t *testing.T) {
	for _, tt := range []struct {
		failures int
		config   string
		want     time.Duration
	}{
		{1, `{}`, time.Second},
		{2, `{}`, 2 * time.Second},
		{3, `{}`, 4 * time.Second},
		{4, `{}`, 8 * time.Second},
		{4, `{"backoff_max": "5s"}`, 5 * time.Second},
	} {
		t.Run(fmt.Sprintf("%d failures %s", tt.failures, tt.config), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			root := newRoot(t, "coder")
			home := filepath.Join(root, "profiles", "coder")
			require.NoError(t, os.WriteFile(filepath.Join(home, "profile.json"), []byte(tt.config), 0o600))
			seedFailures(t, home, tt.failures)
			done := make(chan int, 1)
			go func() {
				done <- gatewayrun.Run(ctx, gatewayrun.Options{
					Settings: config.Settings{Home: root, User: strconv.Itoa(os.Getuid()), DrainTimeout: 300 * time.Millisecond},
					Profile:  "coder", Command: []string{"sleep", "1000"}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				})
			}()
			var st map[string]any
			s6test.Eventually(t, 10*time.Second, "backing off", func() bool {
				st = stateIn(t, home)
				return st["backoff_until"] != nil
			})
			last := state.ParseTime(st["last_exit"].(map[string]any)["at"].(string))
			until := state.ParseTime(st["backoff_until"].(string))
			assert.Equal(t, tt.want, until.Sub(last))
			cancel()
			assert.Equal(t, 1, exitCode(t, done))
		})
	}
}
