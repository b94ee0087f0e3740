package main_test

import (
	"context"
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
	"github.com/s6gate/s6gate/pkg/gwlog"
)

// echoing is a gateway command that prints marker (and its pid, new at every start), then
// idles.
func echoing(marker string) []string {
	return []string{"--", "sh", "-c", "echo " + marker + "-$$; exec sleep 1000"}
}

// logsOf runs `gateway logs ARGS...` until its output contains want, and returns that output.
func logsUntil(t *testing.T, e *s6test.Env, want string, args ...string) s6test.Result {
	t.Helper()
	var r s6test.Result
	s6test.Eventually(t, 10*time.Second, "gateway logs "+strings.Join(args, " ")+" to print "+want, func() bool {
		r = e.Run("gateway", append([]string{"logs"}, args...)...)
		return r.Code == 0 && strings.Contains(r.Stdout, want)
	})
	return r
}

// The logs verb end to end: a real s6 tree, gateways registered through the binary, their
// output through the real s6-log, read back by `gateway logs` (as root, which becomes the
// service user, and as the service user itself).
func TestLogsShowsWhatTheGatewayPrinted(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	e.MustRun("gateway", append([]string{"register", "coder", "--start"}, echoing("coder-says-hello")...)...)
	e.MustRun("gateway", append([]string{"register", "writer", "--start"}, echoing("writer-says-hello")...)...)

	r := logsUntil(t, e, "coder-says-hello-", "-p", "coder", "-n", "5")
	lines := strings.Split(strings.TrimSuffix(r.Stdout, "\n"), "\n")
	assert.LessOrEqual(t, len(lines), 5, r.Stdout)
	for _, l := range lines {
		assert.NotEmpty(t, gwlog.Timestamp(l), "every line starts with s6-log's timestamp: %q", l)
		assert.NotContains(t, l, "writer-says-hello", "only coder's log")
		assert.False(t, strings.HasPrefix(l, "coder | "), "no prefix without --all: %q", l)
	}
	assert.Empty(t, r.Stderr)

	r = e.MustRun("gateway", "logs", "-p", "coder", "-n", "1")
	assert.Equal(t, 1, strings.Count(r.Stdout, "\n"), r.Stdout)
	r = e.MustRun("gateway", "logs", "-p", "coder", "-n", "0")
	assert.Empty(t, r.Stdout)
	if os.Geteuid() == 0 {
		r = e.RunAsService("gateway", "logs", "-p", "coder")
		assert.Equal(t, 0, r.Code, r.Stderr)
		assert.Contains(t, r.Stdout, "coder-says-hello-", "the service user reads it too")
	}

	// --all: both gateways, prefixed, in timestamp order.
	r = logsUntil(t, e, "writer | ", "--all", "-n", "1000")
	assert.Contains(t, r.Stdout, "writer-says-hello-")
	assert.Contains(t, r.Stdout, "coder-says-hello-")
	prev := ""
	for _, l := range strings.Split(strings.TrimSuffix(r.Stdout, "\n"), "\n") {
		name, text, ok := strings.Cut(l, " | ")
		require.True(t, ok, "prefixed: %q", l)
		assert.Contains(t, []string{"coder", "writer"}, name)
		ts := gwlog.Timestamp(text)
		require.NotEmpty(t, ts, l)
		assert.GreaterOrEqual(t, ts, prev, "merged in time order: %q", l)
		prev = ts
	}
	r = e.MustRun("gateway", "logs", "--all", "-n", "3")
	assert.Equal(t, 3, strings.Count(r.Stdout, "\n"), "-n applies to the merged stream: %s", r.Stdout)
}

// -f prints what the gateway prints afterwards, across a restart, until SIGINT (exit 0).
func TestLogsFollow(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	e.MustRun("gateway", append([]string{"register", "coder", "--start"}, echoing("hello")...)...)
	first := logsUntil(t, e, "hello-", "-p", "coder", "-n", "1000")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Bin["gateway"], "logs", "-p", "coder", "-n", "0", "-f")
	cmd.Env = e.Environ()
	out, errOut := &s6test.Buffer{}, &s6test.Buffer{}
	cmd.Stdout, cmd.Stderr = out, errOut
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	// -n 0: nothing of the past. Then a restart: the new process says hello with its new pid.
	e.MustRun("gateway", "restart", "-p", "coder")
	s6test.Eventually(t, 10*time.Second, "logs -f to print the restarted gateway's hello", func() bool {
		return strings.Contains(out.String(), "hello-")
	})
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		assert.NotContains(t, first.Stdout, l, "-n 0 -f prints only new lines")
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-done:
		assert.NoError(t, err, "SIGINT ends -f with exit 0; stderr: %s", errOut.String())
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f did not end on SIGINT")
	}
}

// -f ends by itself once its reader is gone, also while no line comes: the read end of its
// stdout closed (`gateway logs -f | head`), or its stdin hung up (`docker exec -i`, whose
// client died). Nothing is printed meanwhile (-n 0, an idle gateway), so no write can fail:
// only the watch of the descriptors notices.
func TestLogsFollowEndsWithItsReader(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	e.MustRun("gateway", append([]string{"register", "coder", "--start"}, echoing("hello")...)...)
	logsUntil(t, e, "hello-", "-p", "coder", "-n", "1000")

	for _, tt := range []struct {
		name string
		// gone makes the reader go away: it closes the test's end of the pipe that is the
		// follower's stdout (out) or stdin (in).
		gone func(out, in *os.File)
	}{
		{"stdout's reader closes", func(out, _ *os.File) { out.Close() }},
		{"stdin hangs up", func(_, in *os.File) { in.Close() }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			outR, outW, err := os.Pipe()
			require.NoError(t, err)
			defer outR.Close()
			inR, inW, err := os.Pipe()
			require.NoError(t, err)
			defer inW.Close()
			cmd := exec.Command(e.Bin["gateway"], "logs", "-p", "coder", "-n", "0", "-f")
			cmd.Env = e.Environ()
			errOut := &s6test.Buffer{}
			cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errOut
			require.NoError(t, cmd.Start())
			outW.Close()
			inR.Close()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer cmd.Process.Kill()

			// It follows (it has its log open) before the reader goes.
			s6test.Eventually(t, 10*time.Second, "logs -f to open coder's log", func() bool {
				fds, _ := os.ReadDir(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "fd"))
				for _, fd := range fds {
					if l, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "fd", fd.Name())); strings.HasSuffix(l, "/current") {
						return true
					}
				}
				return false
			})
			tt.gone(outR, inW)
			select {
			case err := <-done:
				assert.NoError(t, err, "a reader gone is the follow's normal end; stderr: %s", errOut.String())
			case <-time.After(10 * time.Second):
				t.Fatal("logs -f still runs 10 s after its reader went away")
			}
		})
	}
}

func TestLogsErrors(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	e.MustRun("gateway", "register", "coder")
	s6test.Eventually(t, 10*time.Second, "the logger to make coder's log directory", func() bool {
		_, err := os.Stat(filepath.Join(e.Home, "logs", "gateways", "coder", "current"))
		return err == nil
	})
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-p", "nobody-here"}, 1, "no such gateway 'nobody-here'"},
		{[]string{}, 1, "no such gateway 'default'"},
		{[]string{"-p", "coder", "--all"}, 2, "exclude each other"},
		{[]string{"-p", "coder", "-n", "-1"}, 2, "must not be negative"},
		{[]string{"-p", "coder", "-n", "many"}, 2, "not a whole number"},
		{[]string{"-p", "../../etc"}, 2, `"../../etc"`},
		{[]string{"-p", "coder", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"-p", "coder", "--", "cmd"}, 2, "takes no command"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := e.Run("gateway", append([]string{"logs"}, tt.args...)...)
			assert.Equal(t, tt.code, r.Code, r.Stderr)
			assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line: %q", r.Stderr)
			assert.True(t, strings.HasPrefix(r.Stderr, "gateway: logs: "), r.Stderr)
			assert.Contains(t, r.Stderr, tt.msg)
			assert.Empty(t, r.Stdout)
		})
	}

	// Registered, but its log directory is missing (here: another, empty data root).
	empty := filepath.Join(e.Base, "empty-root")
	require.NoError(t, os.Mkdir(empty, 0o755))
	require.NoError(t, os.Chown(empty, e.UID, e.GID))
	e.Extra = []string{"GATEWAY_HOME=" + empty}
	r := e.Run("gateway", "logs", "-p", "coder")
	assert.Equal(t, 1, r.Code, r.Stderr)
	assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line: %q", r.Stderr)
	assert.Contains(t, r.Stderr, "gateway 'coder' has no log directory "+filepath.Join(empty, "logs", "gateways", "coder"))
	r = e.Run("gateway", "logs", "--all")
	assert.Equal(t, 0, r.Code, "--all skips gateways without a log yet: %s", r.Stderr)
	assert.Empty(t, r.Stdout)
}
