package marker_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/marker"
)

// FuzzParse: a parsed marker names a real PID and a valid RFC 3339 time, survives a JSON
// round trip, matches its own target when it was written, and never matches another PID.
// Match is also driven with arbitrary pid, start time and clock.
func FuzzParse(f *testing.F) {
	good := `{"target_pid":100,"target_start_time":5000,"stopper_pid":7,"written_at":"2026-11-22T10:00:00Z"}`
	for _, s := range []string{
		good,
		`{"target_pid":100,"stopper_pid":7,"written_at":"2026-11-22T10:00:00.123456789+02:00"}`,
		`{"target_pid":1,"target_start_time":null,"written_at":"2026-11-22T10:00:00,5Z"}`,
		`{"target_pid":0,"written_at":"2026-11-22T10:00:00Z"}`,
		`{"target_pid":-5,"written_at":"2026-11-22T10:00:00Z"}`,
		`{"target_pid":100,"written_at":"yesterday"}`,
		`{"target_pid":100}`,
		`{"target_pid":"100","written_at":"2026-11-22T10:00:00Z"}`,
		`{"target_pid":100,"target_start_time":-1,"written_at":"2026-11-22T10:00:00Z"}`,
		`{"TARGET_PID":100,"Written_At":"0000-01-01T00:00:00Z"}`,
		`{"target_pid":9223372036854775807,"written_at":"9999-12-31T23:59:59.999999999-23:59"}`,
		`null`, `[]`, ``, `{`,
	} {
		f.Add([]byte(s), 100, uint64(5000), true, int64(time.Second))
	}
	f.Add([]byte(good), 101, uint64(5000), true, int64(0))
	f.Add([]byte(good), 100, uint64(5001), true, int64(0))
	f.Add([]byte(good), 100, uint64(0), false, int64(marker.TTL+time.Nanosecond))
	f.Add([]byte(good), 100, uint64(0), false, int64(-6*time.Second))
	f.Add([]byte(good), -100, uint64(0), false, int64(-1<<63))

	f.Fuzz(func(t *testing.T, b []byte, pid int, start uint64, hasStart bool, offset int64) {
		m, err := marker.Parse(b)
		if err != nil {
			assert.Zero(t, m)
			assert.Contains(t, err.Error(), "malformed marker")
			return
		}
		require.Positive(t, m.TargetPID)
		at, err := time.Parse(time.RFC3339, m.WrittenAt)
		require.NoError(t, err, "written_at %q is not RFC 3339", m.WrittenAt)

		enc, err := json.Marshal(m)
		require.NoError(t, err)
		again, err := marker.Parse(enc)
		require.NoError(t, err, "re-encoded marker %s", enc)
		assert.Equal(t, m, again)

		ok, why := m.Match(m.TargetPID, m.TargetStartTime, at)
		assert.True(t, ok, "a marker matches its own target when written: %s", why)
		ok, _ = m.Match(m.TargetPID, nil, at.Add(marker.TTL+time.Second))
		assert.False(t, ok, "a marker older than the TTL matches")

		var sp *uint64
		if hasStart {
			sp = &start
		}
		now := at.Add(time.Duration(offset))
		ok, why = m.Match(pid, sp, now)
		assert.NotEmpty(t, why)
		if pid != m.TargetPID {
			assert.False(t, ok, "marker for pid %d matches pid %d", m.TargetPID, pid)
		}
		if ok {
			assert.Equal(t, m.TargetPID, pid)
			if sp != nil && m.TargetStartTime != nil {
				assert.Equal(t, *m.TargetStartTime, *sp, "matched across a start-time change")
			}
			age := now.Sub(at)
			assert.LessOrEqual(t, age, marker.TTL, "stale marker matched")
			assert.GreaterOrEqual(t, age, -5*time.Second, "marker from the future matched")
		}
	})
}
