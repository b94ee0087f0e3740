//go:build linux && (amd64 || arm64) && !s6gate_nosettlefork

package settlefork

import (
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// putTime formats as time.Format does, in both layouts, across leap years, centuries and the
// range a container's clock can show.
func TestPutTimeMatchesTimeFormat(t *testing.T) {
	times := []time.Time{
		time.Unix(0, 0), time.Date(2000, 2, 29, 23, 59, 59, 999e6, time.UTC),
		time.Date(2100, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 12, 31, 12, 0, 1, 5e6, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		times = append(times, time.Unix(r.Int64N(253402300799), r.Int64N(1e9)).UTC())
	}
	for _, tm := range times {
		b := []byte("x" + TimeLayout + "y")
		putTime(b, 1, tm.Unix(), -1)
		require.Equal(t, "x"+tm.Format(TimeLayout)+"y", string(b))
		b = []byte(LogTimeLayout)
		putTime(b, 0, tm.Unix(), int64(tm.Nanosecond()/1e6))
		require.Equal(t, tm.Truncate(time.Millisecond).Format(LogTimeLayout), string(b))
	}
}

// alive reads /proc/PID/stat: this process with its own start time is alive; another start
// time (a recycled PID) or a PID that does not exist is not.
func TestAlive(t *testing.T) {
	b, err := os.ReadFile("/proc/self/stat")
	require.NoError(t, err)
	s := string(b)
	start, err := strconv.ParseUint(strings.Fields(s[strings.LastIndexByte(s, ')')+2:])[19], 10, 64)
	require.NoError(t, err)
	c, err := prepare(&Plan{HomeFD: 0, LogFD: 2, PID: os.Getpid(), StartTime: start, Expect: []byte("x"),
		Next: []byte(TimeLayout), LogLine: []byte(LogTimeLayout), HandOffLine: []byte(LogTimeLayout), Argv: []string{"x"}})
	require.NoError(t, err)
	assert.True(t, alive(c))
	c.startTime++
	assert.False(t, alive(c), "another start time")
	c, err = prepare(&Plan{HomeFD: 0, LogFD: 2, PID: 1 << 30, Expect: []byte("x"),
		Next: []byte(TimeLayout), LogLine: []byte(LogTimeLayout), HandOffLine: []byte(LogTimeLayout), Argv: []string{"x"}})
	require.NoError(t, err)
	assert.False(t, alive(c), "no such process")
}

// A plan whose timestamps do not fit is refused before anything is forked.
func TestPrepareRefusesTimestampsOutside(t *testing.T) {
	_, err := prepare(&Plan{LogFD: 2, PID: 1, Expect: []byte("x"), Next: []byte("short"), LogLine: []byte(LogTimeLayout), HandOffLine: []byte(LogTimeLayout), Argv: []string{"x"}})
	assert.ErrorContains(t, err, "record's timestamp")
	_, err = prepare(&Plan{LogFD: 2, PID: 1, Expect: []byte("x"), Next: []byte(TimeLayout), LogLine: []byte("t"), LogTimeAt: 0, Argv: []string{"x"}})
	assert.ErrorContains(t, err, "log line's timestamp")
}
