package operator_test

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/operator"
	"github.com/s6gate/s6gate/pkg/state"
)

// encoderJSON is what `gateway status --json` printed before AppendStatusJSON, and what it
// must keep printing byte for byte: encoding/json's Encoder, indented by two spaces.
func encoderJSON(v []operator.GatewayStatus) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	err := enc.Encode(v)
	return buf.Bytes(), err
}

func ptr[T any](v T) *T { return &v }

// full has every field set (no pointer nil, no string empty): the output has every key, so a
// field added to GatewayStatus or state.Exit without AppendStatusJSON knowing it fails the test.
func full() operator.GatewayStatus {
	t := time.Date(2026, 12, 1, 4, 5, 6, 789000000, time.UTC)
	return operator.GatewayStatus{
		Profile: "p1", Slot: "/run/gateways/gateway-p1", Supervised: true, Up: true, PID: ptr(42),
		Ready: true, WantUp: true, NormallyUp: true, Since: &t, ExitCode: ptr(3), Signal: ptr(9),
		GatewayState: ptr("running"), DesiredState: ptr("running"), ExitReason: "why", StateUpdated: "2026-12-01T04:05:06Z",
		Problem: "a problem", Uptime: ptr(12.345), Restarts: 7, ConsecutiveFailures: 2,
		LastExit:     &state.Exit{Code: ptr(1), Signal: "SIGKILL", At: "2026-12-01T04:05:06.1Z", Uptime: 0.5, Failure: true},
		BackoffUntil: &t, SettleUntil: &t, Failed: true, FailedReason: "crash loop", Healthy: true, DownSince: &t, ProfileChanged: true,
	}
}

func TestStatusJSONMatchesEncoder(t *testing.T) {
	f := full()
	v := reflect.ValueOf(f)
	for i := range v.NumField() {
		if !v.Type().Field(i).IsExported() {
			continue
		}
		require.False(t, v.Field(i).IsZero(), "full() must set %s", v.Type().Field(i).Name)
	}
	e := reflect.ValueOf(*f.LastExit)
	for i := range e.NumField() {
		require.False(t, e.Field(i).IsZero(), "full() must set LastExit.%s", e.Type().Field(i).Name)
	}
	local := time.Date(2026, 12, 1, 4, 5, 6, 0, time.FixedZone("X", 5*3600+30*60))
	zero := time.Time{}
	with := func(change func(*operator.GatewayStatus)) operator.GatewayStatus {
		g := full()
		change(&g)
		return g
	}
	for _, tc := range []struct {
		name string
		sts  []operator.GatewayStatus
	}{
		{"nil", nil},
		{"empty", []operator.GatewayStatus{}},
		{"zero value: nulls and omitted fields", []operator.GatewayStatus{{}}},
		{"every field", []operator.GatewayStatus{full()}},
		{"two", []operator.GatewayStatus{full(), {Profile: "default", GatewayState: ptr("")}}},
		{"unicode, control characters, HTML, invalid UTF-8", []operator.GatewayStatus{with(func(g *operator.GatewayStatus) {
			g.Profile = "ünï€😀 \x00\x01\x1f\x7f \b\f\n\r\t \"q\" \\ / <a href='x'>&amp;</a>"
			g.Problem = "bad \xff\xfe utf8 \xe2\x82 end \u2028 \u2029 \ufffd"
			g.ExitReason = "\xed\xa0\x80 surrogate, \xc0\xaf overlong"
			g.GatewayState = ptr("tab\there")
			g.LastExit.Signal = "<&>"
			g.LastExit.At = "\x00"
		})}},
		{"floats", []operator.GatewayStatus{
			with(func(g *operator.GatewayStatus) { g.Uptime = ptr(0.0); g.LastExit.Uptime = math.Copysign(0, -1) }),
			with(func(g *operator.GatewayStatus) { g.Uptime = ptr(1e-7); g.LastExit.Uptime = 1e21 }),
			with(func(g *operator.GatewayStatus) { g.Uptime = ptr(123456789.123); g.LastExit.Uptime = 1e-6 }),
			with(func(g *operator.GatewayStatus) { g.Uptime = ptr(-2.5e-10); g.LastExit.Uptime = 9.999999e20 }),
			with(func(g *operator.GatewayStatus) {
				g.Uptime = ptr(math.MaxFloat64)
				g.LastExit.Uptime = math.SmallestNonzeroFloat64
			}),
		}},
		{"integers", []operator.GatewayStatus{with(func(g *operator.GatewayStatus) {
			g.PID, g.ExitCode, g.Signal = ptr(math.MaxInt), ptr(-1), ptr(math.MinInt)
			g.Restarts, g.ConsecutiveFailures, g.LastExit.Code = -3, 0, ptr(0)
		})}},
		{"exit without code or signal", []operator.GatewayStatus{with(func(g *operator.GatewayStatus) {
			g.LastExit = &state.Exit{}
		})}},
		{"exit with signal only", []operator.GatewayStatus{with(func(g *operator.GatewayStatus) {
			g.LastExit = &state.Exit{Signal: "SIGTERM", At: "t", Uptime: 3}
		})}},
		{"times: zero, local zone, year 0 and 9999", []operator.GatewayStatus{with(func(g *operator.GatewayStatus) {
			g.Since, g.BackoffUntil, g.DownSince = &zero, &local, ptr(time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC))
		}), with(func(g *operator.GatewayStatus) {
			g.Since, g.BackoffUntil = ptr(time.Date(0, 1, 1, 0, 0, 0, 1, time.UTC)), ptr(time.Unix(1e9, 5).UTC())
		})}},
		{"omitempty fields empty, nullable ones null", []operator.GatewayStatus{with(func(g *operator.GatewayStatus) {
			g.Since, g.ExitCode, g.Signal, g.ExitReason, g.StateUpdated, g.Problem, g.FailedReason = nil, nil, nil, "", "", "", ""
			g.PID, g.GatewayState, g.DesiredState, g.Uptime, g.LastExit, g.BackoffUntil, g.DownSince = nil, nil, nil, nil, nil, nil, nil
		})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := encoderJSON(tc.sts)
			require.NoError(t, err)
			got, ok := operator.AppendStatusJSON([]byte("prefix:"), tc.sts)
			require.True(t, ok)
			assert.Equal(t, "prefix:"+string(want), string(got))
		})
	}
}

// What encoding/json refuses, AppendStatusJSON refuses too (leaving the buffer as it was), so
// that the caller reports encoding/json's error.
func TestStatusJSONRefusesWhatEncoderRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*operator.GatewayStatus)
	}{
		{"NaN uptime", func(g *operator.GatewayStatus) { g.Uptime = ptr(math.NaN()) }},
		{"infinite exit uptime", func(g *operator.GatewayStatus) { g.LastExit.Uptime = math.Inf(-1) }},
		{"year 10000", func(g *operator.GatewayStatus) { g.DownSince = ptr(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)) }},
		{"year -1 since", func(g *operator.GatewayStatus) { g.Since = ptr(time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)) }},
		{"zone offset of 24 h", func(g *operator.GatewayStatus) {
			g.BackoffUntil = ptr(time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 24*3600)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := full()
			tc.change(&g)
			sts := []operator.GatewayStatus{full(), g}
			_, err := encoderJSON(sts)
			require.Error(t, err)
			got, ok := operator.AppendStatusJSON([]byte("prefix:"), sts)
			assert.False(t, ok)
			assert.Equal(t, "prefix:", string(got))
		})
	}
}

func FuzzStatusJSON(f *testing.F) {
	f.Add("p", "x\u2028<>&\x00", "\xff", 1.5, 2.0, int64(42), int64(-1), int64(0), true)
	f.Add("", "", "", 1e-7, 1e21, int64(0), int64(1<<40), int64(0), false)
	f.Fuzz(func(t *testing.T, s1, s2, s3 string, f1, f2 float64, i1, i2, ns int64, flag bool) {
		g := full()
		g.Profile, g.Problem, g.LastExit.At, g.LastExit.Signal = s1, s2, s3, s1+s3
		g.GatewayState, g.FailedReason = &s2, s3
		g.Uptime, g.LastExit.Uptime = &f1, f2
		g.PID, g.Restarts, g.LastExit.Code = ptr(int(i1)), int(i2), ptr(int(i1^i2))
		at := time.Unix(i1%(1<<36), ns%1e9).UTC()
		g.Since, g.Supervised, g.Healthy = &at, flag, !flag
		if flag {
			g.LastExit, g.DownSince = nil, nil
		}
		sts := []operator.GatewayStatus{g, {Profile: s3}}
		want, err := encoderJSON(sts)
		got, ok := operator.AppendStatusJSON(nil, sts)
		if err != nil {
			assert.False(t, ok, "encoding/json refused it: %v", err)
			return
		}
		require.True(t, ok)
		assert.Equal(t, string(want), string(got))
	})
}
