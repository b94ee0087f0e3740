package e2e

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// s6logStamp is the time s6-log's T puts at the start of a line: "2026-12-01 01:02:03.123456789  ".
var s6logStamp = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9}  `)

// anyStamp finds a timestamp anywhere in a line: s6-log's, slog's time=, RFC 3339.
var anyStamp = regexp.MustCompile(`\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d`)

// docker logs carries every gateway's lines — its command's and `gateway run`'s own — each
// prefixed once with its profile ("talker | …", as docker compose logs does) and stamped once
// (s6-log's time, no slog time=); a crash is logged at WARN; the per-gateway log file keeps
// its lines unprefixed, stamped once.
func TestDockerLogsNameEachGatewayOnce(t *testing.T) {
	b := start(t, nil)
	b.gw("register", "talker", "--start", "--", "sh", "-c", "echo talker-says-1; echo talker-says-2; exec sleep 1000")
	b.gw("register", "hi", "--start", "--", "sh", "-c", "echo hi-says-1; exec sleep 1000")
	b.exec("gateway", "gateway", "register", "crashing", "--start", "--", "sh", "-c", "echo crashing-says-bye; exit 3")

	var logs string
	eventually(t, 30*time.Second, "the three gateways' lines in docker logs", func() bool {
		logs = b.logs()
		return strings.Contains(logs, "talker-says-2") && strings.Contains(logs, "hi-says-1") &&
			strings.Contains(logs, "command exited; s6 starts the gateway again")
	})
	seen := map[string]int{}
	for _, l := range strings.Split(logs, "\n") {
		for _, name := range []string{"talker", "hi", "crashing"} {
			if !strings.Contains(l, name+"-says-") && !strings.Contains(l, "profile="+name+" ") {
				continue
			}
			seen[name]++
			text, ok := strings.CutPrefix(l, name+" | ")
			if !assert.True(t, ok, "prefixed with its gateway: %q", l) {
				continue
			}
			assert.NotContains(t, text, " | ", "one prefix: %q", l)
			assert.Regexp(t, s6logStamp, text, "s6-log's time first: %q", l)
			assert.Len(t, anyStamp.FindAllString(l, -1), 1, "one timestamp: %q", l)
			if strings.Contains(l, "command exited") || strings.Contains(l, "backing off") || strings.Contains(l, "gateway failed") {
				assert.Regexp(t, `  level=(WARN|ERROR) `, l, "an incident is a warning or an error")
			}
		}
	}
	for _, name := range []string{"talker", "hi", "crashing"} {
		assert.GreaterOrEqual(t, seen[name], 2, "%s's lines in docker logs:\n%s", name, logs)
	}
	assert.Regexp(t, `(?m)^crashing \| \S+ \S+  level=WARN msg="command exited; s6 starts the gateway again`, logs)

	// The gateway's own file: the same lines, without the prefix, one timestamp each.
	code, file := b.exec("", "cat", "/opt/data/logs/gateways/talker/current")
	require.Equal(t, 0, code, file)
	assert.Contains(t, file, "talker-says-2")
	for _, l := range strings.Split(strings.TrimSuffix(file, "\n"), "\n") {
		assert.Regexp(t, s6logStamp, l)
		assert.False(t, strings.HasPrefix(l, "talker | "), "no prefix in the file: %q", l)
		assert.Len(t, anyStamp.FindAllString(l, -1), 1, "one timestamp: %q", l)
	}
}

// gatewayLogsPIDs lists the pids of `gateway logs` processes in the container (their pids
// only: never whole command lines).
func (b *box) gatewayLogsPIDs() string {
	b.t.Helper()
	_, out := b.exec("", "sh", "-c", `for p in /proc/[0-9]*; do
  if tr '\0' ' ' < "$p/cmdline" 2>/dev/null | grep -q '^gateway logs '; then echo "${p#/proc/}"; fi
done`)
	return strings.TrimSpace(out)
}

// `docker exec -i … gateway logs -f` ends inside the container once its client is gone (the
// client killed: what Ctrl-C does to a `docker exec` without -t): the hung-up stdin tells it,
// although nothing is printed meanwhile. (Without -i nothing reaches the process: dockerd
// keeps draining its stdout, and stdin is /dev/null; docs/operations.md.)
func TestLogsFollowEndsWithItsDockerExecClient(t *testing.T) {
	b := start(t, nil)
	b.gw("register", "quiet", "--start", "--", "sleep", "1000")
	eventually(t, 30*time.Second, "quiet's log", func() bool {
		code, _ := b.exec("", "test", "-s", "/opt/data/logs/gateways/quiet/current")
		return code == 0
	})
	client := exec.Command("docker", "exec", "-i", b.id(), "gateway", "logs", "-p", "quiet", "-n", "0", "-f")
	stdin, err := client.StdinPipe()
	require.NoError(t, err)
	defer stdin.Close()
	require.NoError(t, client.Start())
	done := make(chan error, 1)
	go func() { done <- client.Wait() }()
	defer client.Process.Kill()
	eventually(t, 30*time.Second, "gateway logs -f in the container", func() bool { return b.gatewayLogsPIDs() != "" })

	require.NoError(t, client.Process.Kill())
	<-done
	eventually(t, 10*time.Second, "gateway logs -f to end with its client", func() bool { return b.gatewayLogsPIDs() == "" })
}
