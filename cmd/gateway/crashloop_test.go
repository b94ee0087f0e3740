package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/s6"
)

// fullStatus is status --json with the crash-loop fields (docs/operations.md, "Status fields").
type fullStatus struct {
	statusJSON
	WantUp              bool     `json:"want_up"`
	Uptime              *float64 `json:"uptime_seconds"`
	Restarts            int      `json:"restarts"`
	ConsecutiveFailures int      `json:"consecutive_failures"`
	LastExit            *struct {
		Code    *int    `json:"code"`
		Signal  string  `json:"signal"`
		At      string  `json:"at"`
		Uptime  float64 `json:"uptime_seconds"`
		Failure bool    `json:"failure"`
	} `json:"last_exit"`
	BackoffUntil *time.Time `json:"backoff_until"`
	SettleUntil  *time.Time `json:"settle_until"`
	Failed       bool       `json:"failed"`
	FailedReason string     `json:"failed_reason"`
	Healthy      bool       `json:"healthy"`
}

func fullStatusOf(t *testing.T, e *s6test.Env, name string) fullStatus {
	t.Helper()
	r := e.Run("gateway", "status", "-p", name, "--json")
	require.Equal(t, 0, r.Code, r.Stderr)
	var out []fullStatus
	require.NoError(t, json.Unmarshal([]byte(r.Stdout), &out), r.Stdout)
	require.Len(t, out, 1)
	return out[0]
}

// registerWith registers name (down) with profileJSON as its profile.json, written into a home
// the service user owns, as an operator's editor would leave it.
func registerWith(t *testing.T, e *s6test.Env, name, profileJSON string) string {
	t.Helper()
	home := e.ProfileHome(name)
	s6test.WriteFile(t, filepath.Join(home, "profile.json"), profileJSON)
	e.GiveToServiceUser()
	e.MustRun("gateway", "register", name)
	return home
}

// startTimes reads the file a test command appends its start times to (seconds since the
// epoch, one per line).
func startTimes(t *testing.T, path string) []float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var out []float64
	for _, l := range strings.Fields(string(b)) {
		f, err := strconv.ParseFloat(l, 64)
		require.NoError(t, err, l)
		out = append(out, f)
	}
	return out
}

// countingCommand is a profile command that records each start in home/starts, then runs
// `sleep 1000` once home/ok exists and fails with status 3 otherwise.
func countingCommand(home string) string {
	q := func(p string) string { return strconv.Quote(filepath.Join(home, p)) }
	script := `date +%s.%N >> ` + q("starts") + `; test -e ` + q("ok") + ` || exit 3; exec sleep 1000`
	b, _ := json.Marshal([]string{"/bin/sh", "-c", script})
	return string(b)
}

// Honest start: `register --start -- /bin/false` exits 1 with the command's status, instead of
// reporting a gateway that was never up.
func TestStartOfAFailingCommandExits1WithItsStatus(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	begin := time.Now()
	r := e.Run("gateway", "register", "broken", "--start", "--", "/bin/false")
	assert.Equal(t, 1, r.Code, r.Stdout)
	assert.Contains(t, r.Stderr, "gateway: register: gateway 'broken' did not start: command exited with status 1")
	assert.NotContains(t, r.Stdout, "started")
	assert.Regexp(t, `(?s)last \d+ log lines of gateway 'broken':\n.*msg="command exited`, r.Stderr, "the log's last lines follow the error")
	assert.Less(t, time.Since(begin), 10*time.Second, "fails as soon as the command dies, not at the time-out")

	st := fullStatusOf(t, e, "broken")
	require.NotNil(t, st.LastExit)
	assert.Equal(t, 1, *st.LastExit.Code)
	assert.True(t, st.LastExit.Failure)
	assert.GreaterOrEqual(t, st.ConsecutiveFailures, 1)
}

// modes are the two supervision modes, as the image default (GATEWAY_SUPERVISION).
var modes = []string{"wrapper", "exec"}

// envIn is a started Env whose image default is supervision mode.
func envIn(t *testing.T, mode string) *s6test.Env {
	t.Helper()
	e := s6test.NewEnv(t, nil)
	e.Extra = append(e.Extra, "GATEWAY_SUPERVISION="+mode)
	e.Start()
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("supervision tree output:\n" + e.Scan.Output())
		}
	})
	return e
}

// A command that dies after 0.5 s has not settled (default settle time 1 s): start fails with
// its status. --settle asks for more: a command that lives past the profile's settle time but
// dies before --settle fails too. In both modes: under exec supervision the readers tell the
// settle time from the record, with nothing of s6gate running beside the command.
func TestStartWaitsForTheSettleTime(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := envIn(t, mode)
			r := e.Run("gateway", "register", "flaky", "--start", "--", "/bin/sh", "-c", "sleep 0.5; exit 7")
			assert.Equal(t, 1, r.Code, r.Stdout)
			assert.Contains(t, r.Stderr, "command exited with status 7 after 0.")

			// Lives past the profile's settle time (1 s) but not past --settle 3s.
			r = e.Run("gateway", "register", "slow", "--", "/bin/sh", "-c", "sleep 1.5; exit 8")
			require.Equal(t, 0, r.Code, r.Stderr)
			r = e.Run("gateway", "start", "-p", "slow", "--settle", "3s")
			assert.Equal(t, 1, r.Code, r.Stdout)
			assert.Contains(t, r.Stderr, "command exited with status 8 after 1.")

			// A command that stays up: start succeeds only once it has been up for the settle time.
			r = e.Run("gateway", "register", "steady", "--", "/bin/sleep", "1000")
			require.Equal(t, 0, r.Code, r.Stderr)
			begin := time.Now()
			e.MustRun("gateway", "start", "-p", "steady")
			assert.GreaterOrEqual(t, time.Since(begin), time.Second, "start returned before the settle time")
			st := fullStatusOf(t, e, "steady")
			assert.True(t, st.Up && st.Ready)
			require.NotNil(t, st.Uptime)
			assert.GreaterOrEqual(t, *st.Uptime, 1.0)
		})
	}
}

// A readiness check declared in profile.json: start returns only once it passed; the
// notify_fd descriptor may be s6's own number (3). Under exec supervision such a profile is
// supervised by the wrapper, which runs the check (logged at its start): the supervised
// process is `gateway run`, the command its child.
func TestStartWaitsForTheReadinessCheck(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := envIn(t, mode)
			for _, tt := range []struct{ name, ready, script string }{
				{"file", `{"file": %q}`, `sleep 1.5; touch %[1]q; exec sleep 1000`},
				{"notify", `{"notify_fd": 5}`, `sleep 1.5; touch %[1]q; echo >&5; exec sleep 1000`},
				{"notify3", `{"notify_fd": 3}`, `sleep 1.5; touch %[1]q; echo >&3; exec sleep 1000`},
			} {
				t.Run(tt.name, func(t *testing.T) {
					home := e.ProfileHome(tt.name)
					flag := filepath.Join(home, "ready-flag")
					ready := strings.Replace(tt.ready, "%q", strconv.Quote(flag), 1)
					script := strings.ReplaceAll(tt.script, "%[1]q", strconv.Quote(flag))
					cmd, _ := json.Marshal([]string{"/bin/sh", "-c", script})
					registerWith(t, e, tt.name, `{"command": `+string(cmd)+`, "ready": `+ready+`, "settle": "0s"}`)
					e.MustRun("gateway", "start", "-p", tt.name)
					assert.FileExists(t, flag, "start returned before the command said it was ready")
					st := fullStatusOf(t, e, tt.name)
					assert.True(t, st.Ready)
					assert.Equal(t, "running", str(st.GatewayState))
					kids := children(*st.PID)
					require.Len(t, kids, 1, "the command is the gateway's child")
					s6test.Eventually(t, 5*time.Second, "the command to exec sleep", func() bool {
						comm, _ := procStat(t, atoi(t, kids[0]))
						return comm == "sleep"
					})
					if mode == "exec" {
						s6test.Eventually(t, 5*time.Second, "the rule logged", func() bool {
							return strings.Contains(logOf(t, e, tt.name), "supervised by the wrapper, which runs it (a rule of exec supervision)")
						})
					}
				})
			}
		})
	}
}

// start reports the first failure of a start, not a later one: the command exits 3 on its
// first start and 4 on its second, which s6 runs after the back-off while start might still
// be looking.
func TestStartReportsTheFirstFailure(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			e := envIn(t, mode)
			home := e.ProfileHome("twice")
			starts := strconv.Quote(filepath.Join(home, "starts"))
			cmd, _ := json.Marshal([]string{"/bin/sh", "-c", `echo x >> ` + starts + `; exit $(($(wc -l < ` + starts + `) + 2))`})
			registerWith(t, e, "twice", `{"command": `+string(cmd)+`, "settle": "200ms"}`)
			r := e.Run("gateway", "start", "-p", "twice")
			assert.Equal(t, 1, r.Code, r.Stdout)
			assert.Contains(t, r.Stderr, "did not start: command exited with status 3 after ")
			assert.NotContains(t, r.Stderr, "status 4")
			e.MustRun("gateway", "stop", "-p", "twice")
		})
	}
}

// logOf is the gateway's log file (s6-log's current).
func logOf(t *testing.T, e *s6test.Env, name string) string {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(e.Home, "logs", "gateways", name, "current"))
	return string(b)
}

// The crash loop: consecutive failures back off 1, 2, 4 s; at max_failures the gateway is
// marked failed, s6 stops restarting it, the health check fails at once; `gateway start`
// clears the failure and, the command fixed, the gateway runs.
func TestCrashLoopBacksOffEndsFailedAndStartClearsIt(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	home := e.ProfileHome("loop")
	registerWith(t, e, "loop", `{"command": `+countingCommand(home)+`, "max_failures": 4, "settle": "200ms"}`)
	r := e.Run("gateway", "start", "-p", "loop")
	assert.Equal(t, 1, r.Code)
	assert.Contains(t, r.Stderr, "did not start: command exited with status 3")
	assert.Contains(t, r.Stderr, "s6 retries it after a back-off")

	var st fullStatus
	s6test.Eventually(t, 40*time.Second, "loop marked failed, and s6 told not to restart it", func() bool {
		st = fullStatusOf(t, e, "loop")
		return st.Failed && !st.Up && !st.WantUp
	})
	starts := startTimes(t, filepath.Join(home, "starts"))
	require.Len(t, starts, 4, "one start per allowed failure")
	for i, want := range []float64{1, 2, 4} {
		gap := starts[i+1] - starts[i]
		assert.GreaterOrEqual(t, gap, want*0.9, "back-off before start %d", i+2)
	}
	assert.Equal(t, 3, st.Restarts)
	assert.Equal(t, 4, st.ConsecutiveFailures)
	assert.Contains(t, st.FailedReason, "4 consecutive failures (limit 4); last: command exited with status 3")
	assert.Equal(t, "failed", str(st.GatewayState))
	assert.Equal(t, "running", str(st.DesiredState), "failed is not an operator stop: the next boot tries again")
	assert.False(t, st.Up)
	assert.False(t, st.WantUp, "s6 no longer restarts it")
	sv, err := s6.Tools{Dir: e.CommandDir}.ReadStatus(t.Context(), e.Slot("loop"))
	require.NoError(t, err)
	assert.False(t, sv.WantUp)
	assert.False(t, st.Healthy)
	r = e.Run("gateway", "status", "--check")
	assert.Equal(t, 1, r.Code, "a failed gateway meant to run is unhealthy at once")
	// s6-log writes the gateway's last line a moment after the gateway wrote it.
	logged := regexp.MustCompile(`(?s)last 5 log lines \(gateway logs -p loop\):\n.*msg="gateway failed`)
	s6test.Eventually(t, 10*time.Second, "status -p shows the log's last lines", func() bool {
		r = e.Run("gateway", "status", "-p", "loop")
		return logged.MatchString(r.Stdout)
	})
	assert.Regexp(t, `(?m)^loop\s+failed\s+-\s+-\s+3\s+status 3, .* ago\s+failed\s+running\s+failed: 4 consecutive failures`, r.Stdout)

	// Fixed and started by an operator: no back-off left over, up, healthy.
	s6test.WriteFile(t, filepath.Join(home, "ok"), "")
	begin := time.Now()
	e.MustRun("gateway", "start", "-p", "loop")
	assert.Less(t, time.Since(begin), 4*time.Second, "start after a failure does not wait out the old back-off")
	st = fullStatusOf(t, e, "loop")
	assert.True(t, st.Up)
	assert.False(t, st.Failed)
	assert.Zero(t, st.ConsecutiveFailures)
	assert.True(t, st.Healthy)
	e.MustRun("gateway", "status", "--check")
}

// A command that fails at once, with the default policy, is started at most 8 times in its
// first 30 s (1+2+4+8+16 s of back-off: 5 or 6 starts), where s6 alone would start it ~30 times.
func TestCrashLoopStartsAtMost8TimesIn30s(t *testing.T) {
	if testing.Short() {
		t.Skip("watches a crash loop for 30 s")
	}
	t.Parallel()
	e := s6test.NewEnv(t, nil)
	e.Start()
	home := e.ProfileHome("spin")
	registerWith(t, e, "spin", `{"command": `+countingCommand(home)+`}`)
	r := e.Run("gateway", "start", "-p", "spin")
	require.Equal(t, 1, r.Code)
	first := startTimes(t, filepath.Join(home, "starts"))
	require.NotEmpty(t, first)
	deadline := time.Unix(0, int64(first[0]*1e9)).Add(30 * time.Second)
	time.Sleep(time.Until(deadline)) // the observation window itself, not a wait for a condition
	var n int
	for _, s := range startTimes(t, filepath.Join(home, "starts")) {
		if s < first[0]+30 {
			n++
		}
	}
	assert.LessOrEqual(t, n, 8, "starts in the first 30 s")
	assert.GreaterOrEqual(t, n, 4, "it is still being restarted")
	st := fullStatusOf(t, e, "spin")
	assert.False(t, st.Failed, "10 failures take longer than 30 s")
	e.MustRun("gateway", "stop", "-p", "spin")
}

// A crash loop is unhealthy once it has lasted longer than the grace, and stays unhealthy
// across the loop's restarts (the first failure is remembered until the command is ready).
func TestCrashLoopIsUnhealthyPastTheGraceWithoutFlapping(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Extra = append(e.Extra, "GATEWAY_HEALTH_GRACE=2s")
	e.Start()
	home := e.ProfileHome("flap")
	registerWith(t, e, "flap", `{"command": `+countingCommand(home)+`, "max_failures": 100, "settle": "300ms"}`)
	r := e.Run("gateway", "start", "-p", "flap")
	require.Equal(t, 1, r.Code)
	var st fullStatus
	s6test.Eventually(t, 20*time.Second, "backing off", func() bool { st = fullStatusOf(t, e, "flap"); return st.BackoffUntil != nil })
	assert.True(t, st.BackoffUntil.After(time.Now().Add(-time.Second)))
	s6test.Eventually(t, 20*time.Second, "unhealthy past the grace", func() bool {
		return e.Run("gateway", "status", "--check").Code == 1
	})
	// Observe the loop for a few seconds: it goes through restarts, never back to healthy.
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); {
		r := e.Run("gateway", "status", "-p", "flap", "--json")
		require.Equal(t, 0, r.Code, r.Stderr)
		var out []struct {
			Healthy   bool       `json:"healthy"`
			DownSince *time.Time `json:"down_since"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.Stdout), &out))
		require.Len(t, out, 1)
		require.False(t, out[0].Healthy, "a crash loop past the grace flapped back to healthy: %s", r.Stdout)
		require.NotNil(t, out[0].DownSince)
	}
	// Fixed, started: healthy again at once.
	s6test.WriteFile(t, filepath.Join(home, "ok"), "")
	e.MustRun("gateway", "start", "-p", "flap")
	e.MustRun("gateway", "status", "--check")
}
