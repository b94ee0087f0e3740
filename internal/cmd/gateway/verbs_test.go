package gateway

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/operator"
	"github.com/s6gate/s6gate/pkg/svchealth"
)

// countingWriter counts the writes it gets (each would be a write(2) on stdout).
type countingWriter struct {
	bytes.Buffer
	writes int
}

func (w *countingWriter) Write(p []byte) (int, error) { w.writes++; return w.Buffer.Write(p) }

func statuses(n int) []operator.GatewayStatus {
	st := make([]operator.GatewayStatus, n)
	for i := range st {
		pid, up, running := 100+i, float64(i)*1.5, "running"
		st[i] = operator.GatewayStatus{Profile: fmt.Sprintf("p%04d", i), Slot: "/run/gateways/gateway-p", Supervised: true,
			Up: i%3 != 0, PID: &pid, Ready: true, Uptime: &up, GatewayState: &running, Healthy: true, Problem: strings.Repeat("x", i%5)}
	}
	return st
}

// The status verb writes its output in a few writes (one per 64 kB) whatever the number of
// gateways, and its JSON is what encoding/json writes.
func TestStatusOutputInFewWrites(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		write     func(*countingWriter, []operator.GatewayStatus) error
		reference func(*bytes.Buffer, []operator.GatewayStatus) error
	}{
		{"table", func(w *countingWriter, st []operator.GatewayStatus) error {
			writeStatusTable(w, st, now)
			return nil
		}, nil},
		{"json", func(w *countingWriter, st []operator.GatewayStatus) error { return writeStatusJSON(w, st) },
			func(b *bytes.Buffer, st []operator.GatewayStatus) error { return writeJSON(b, st) }},
	} {
		for _, n := range []int{0, 1, 1000} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, n), func(t *testing.T) {
				st := statuses(n)
				var w countingWriter
				require.NoError(t, tc.write(&w, st))
				assert.LessOrEqual(t, w.writes, 1+w.Len()/(64<<10), "writes for %d bytes", w.Len())
				if tc.reference != nil {
					var want bytes.Buffer
					require.NoError(t, tc.reference(&want, st))
					assert.Equal(t, want.String(), w.String())
				}
			})
		}
	}
}

// The NOTE column says what happened in plain words, once, and nothing internal (PIDs of a
// marker that are meaningless after a reboot); the records are the gateway's own (pkg/gatewayrun).
func TestPlainReason(t *testing.T) {
	for _, tc := range []struct{ record, want string }{
		{"command exited: command exited with status 3", "the command exited with status 3"},
		{"command exited: command killed by SIGKILL", "the command killed by SIGKILL"},
		{"command exited: could not be started: fork/exec /x: too many open files", "the command could not be started: fork/exec /x: too many open files"},
		{"planned stop: SIGTERM: marker written by pid 617 matches pid 512", "stopped by an operator (gateway stop)"},
		{"planned stop: command killed by SIGTERM: marker written by pid 9 matches pid 8", "stopped by an operator (gateway stop)"},
		{"restart requested: SIGUSR1", "restarted by an operator (gateway restart)"},
		{"signal-initiated shutdown (unplanned: container or supervisor stop): command killed by SIGTERM: restart requested: marker written by pid 1 matches pid 2", "restarted by an operator (gateway restart)"},
		{"signal-initiated shutdown (unplanned: container or supervisor stop): SIGTERM: no marker", "stopped by a signal, not by gateway stop (a container stop, s6-svc, a kill): meant to run again"},
		{"fatal configuration: profile.json: \"command\" must be an array of strings", "cannot run as configured: profile.json: \"command\" must be an array of strings"},
		{"something new", "something new"},
	} {
		got := plainReason(tc.record)
		assert.Equal(t, tc.want, got, tc.record)
		assert.NotContains(t, got, "marker", tc.record)
	}
}

// STATE never contradicts S6: a gateway s6 has down is not starting or running, one s6 has up
// has not stopped; --json keeps the record.
func TestShownStateAgreesWithS6(t *testing.T) {
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		g    operator.GatewayStatus
		want string
	}{
		{operator.GatewayStatus{Supervised: true, GatewayState: str("starting")}, "stopped"}, // crash loop, then gateway stop
		{operator.GatewayStatus{Supervised: true, GatewayState: str("running")}, "stopped"},
		{operator.GatewayStatus{Supervised: true, GatewayState: str("draining")}, "stopped"},
		{operator.GatewayStatus{Supervised: true, GatewayState: str("startup_failed")}, "startup_failed"},
		{operator.GatewayStatus{Supervised: true, GatewayState: str("failed")}, "failed"},
		{operator.GatewayStatus{Supervised: true, Up: true, GatewayState: str("stopped")}, "starting"},
		{operator.GatewayStatus{Supervised: true, Up: true, GatewayState: str("running")}, "running"},
		{operator.GatewayStatus{Supervised: false, GatewayState: str("running")}, "running"},
		{operator.GatewayStatus{Supervised: true}, "-"},
	} {
		assert.Equal(t, tc.want, shownState(tc.g), "%+v", tc.g)
	}
}

// status --check names every unhealthy gateway and the rule it broke, then every service of
// the container, in full sentences on one line.
func TestCheckHealthNamesEveryProblem(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	down := now.Add(-45 * time.Second)
	st := []operator.GatewayStatus{
		{Profile: "ok", Healthy: true},
		{Profile: "crashy", Failed: true, FailedReason: "5 consecutive failures (limit 5); last: command exited with status 3"},
		{Profile: "slow", DownSince: &down},
		{Profile: "lost", Problem: "no supervisor yet"},
	}
	require.NoError(t, checkHealth(st[:1], nil, 30*time.Second, now))
	err := checkHealth(st, []svchealth.Problem{{Service: "s6-rc/ess", Why: "down, not serving for 5s (GATEWAY_HEALTH_GRACE 2s)"}}, 30*time.Second, now)
	require.ErrorIs(t, err, errUnhealthy)
	msg := err.Error()
	assert.NotContains(t, msg, "'ok'")
	assert.Contains(t, msg, "Gateway 'crashy' is meant to run and has failed: 5 consecutive failures (limit 5); last: command exited with status 3 (gateway start -p crashy tries again).")
	assert.Contains(t, msg, "Gateway 'slow' is meant to run and has not been serving for 45s, longer than GATEWAY_HEALTH_GRACE (30s).")
	assert.Contains(t, msg, "Gateway 'lost' is meant to run and is not serving: no supervisor yet.")
	assert.Contains(t, msg, "The container's service s6-rc/ess is meant to run and has not been serving: down, not serving for 5s (GATEWAY_HEALTH_GRACE 2s).")
	assert.NotContains(t, msg, "\n")
}
