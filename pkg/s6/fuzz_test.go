package s6_test

import (
	"bytes"
	"encoding/hex"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/s6"
)

var fuzzNow = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

// FuzzParseStatusFile: any bytes are safe; only the two known sizes parse, and what they parse
// to agrees with the documented layout (pid at 24; wait status and flags in the last three
// bytes) decoded independently here, with the kernel's wait-status rules.
func FuzzParseStatusFile(f *testing.F) {
	for _, h := range []string{status211Up, status211DownSignal} {
		b, err := hex.DecodeString(h)
		require.NoError(f, err)
		f.Add(b)
	}
	for _, l := range statusLayouts {
		for _, r := range []rawStatus{
			{pid: 42, pgid: 42, flags: stWantUp | stReady},
			{pgid: 42, wstat: exited(3), flags: stWantUp},
			{pgid: 42, wstat: killed(9)},
			{pid: 43, pgid: 43, wstat: exited(3), flags: stFinishing},
			{pgid: 42, wstat: 0x137f}, // stopped: neither exited nor signalled
			{pid: 1 << 63, wstat: 0xffff, flags: 0xff},
		} {
			r.stamp = fuzzNow
			f.Add(r.pack(l))
		}
	}
	f.Add([]byte{})
	f.Add(make([]byte, 34))
	f.Add(make([]byte, 44))

	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		st, err := s6.ParseStatusFile(b)
		assert.Equal(t, orig, b, "input modified")
		if len(b) != 35 && len(b) != 43 {
			require.Error(t, err, "%d bytes parsed", len(b))
			assert.Zero(t, st)
			return
		}
		require.NoError(t, err)

		flags := b[len(b)-1]
		ws := syscall.WaitStatus(uint32(b[len(b)-3])<<8 | uint32(b[len(b)-2]))
		var pid uint64
		for _, c := range b[24:32] {
			pid = pid<<8 | uint64(c)
		}

		assert.False(t, st.Supervised, "lives outside the file")
		assert.False(t, st.NormallyUp, "lives outside the file")
		assert.Equal(t, flags&stPaused != 0, st.Paused)
		assert.Equal(t, flags&stFinishing != 0, st.Finishing)
		assert.Equal(t, flags&stWantUp != 0, st.WantUp)
		assert.Equal(t, flags&stReady != 0, st.Ready)
		assert.Equal(t, pid != 0 && !st.Finishing, st.Up)

		if st.Up {
			assert.NotZero(t, st.PID, "up without a pid")
			assert.Equal(t, int(pid), st.PID)
			assert.Equal(t, -1, st.ExitCode)
			assert.Zero(t, st.Signal)
		} else {
			assert.Zero(t, st.PID, "pid of a process that is not up")
			assert.False(t, st.ExitCode >= 0 && st.Signal != 0, "both exit code %d and signal %d", st.ExitCode, st.Signal)
			switch {
			case ws.Exited():
				assert.Equal(t, ws.ExitStatus(), st.ExitCode)
				assert.Zero(t, st.Signal)
			case ws.Signaled():
				assert.Equal(t, int(ws.Signal()), st.Signal)
				assert.Equal(t, -1, st.ExitCode)
			default:
				assert.Equal(t, -1, st.ExitCode)
				assert.Zero(t, st.Signal)
			}
		}
		assert.GreaterOrEqual(t, st.ExitCode, -1)
		assert.LessOrEqual(t, st.ExitCode, 255)
		assert.GreaterOrEqual(t, st.Signal, 0)
		assert.Less(t, st.Signal, 0x7f)

		var secs uint64
		for _, c := range b[0:8] {
			secs = secs<<8 | uint64(c)
		}
		nanos := uint32(b[8])<<24 | uint32(b[9])<<16 | uint32(b[10])<<8 | uint32(b[11])
		const epoch = 1<<62 + 37
		switch {
		case secs < epoch:
			assert.True(t, st.Since.IsZero(), "stamp before 1970 decodes to %v", st.Since)
		case secs-epoch < 1<<40:
			assert.Equal(t, time.Unix(int64(secs-epoch), int64(nanos)).UTC(), st.Since)
		}
	})
}

// FuzzParseSvstat: the human s6-svstat line never panics, and "up" always comes with a pid.
func FuzzParseSvstat(f *testing.F) {
	for _, s := range []string{
		"up (pid 42) 17 seconds\n",
		"up (pid 42 pgid 42) 3 seconds, normally down, want down, ready 3 seconds",
		"up (pid 5952) 0 seconds, paused",
		"down (exitcode 0) 3 seconds, normally up, ready 3 seconds",
		"down (signal SIGTERM) 0 seconds, normally up, ready 0 seconds",
		"down (signal SIGBOGUS) 1 second",
		"down 5 seconds\n",
		"down (not started yet), normally up",
		"up 5 seconds",
		"up (pid x) 5 seconds",
		"up (pid 99999999999999999999) 5 seconds",
		"up (pid 0) 5 seconds, finishing",
		"down (exitcode 3 signal SIGKILL pid 7) 99999999999 seconds, want up",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, out string) {
		st, err := s6.ParseSvstat(out, fuzzNow)
		if err != nil {
			assert.Zero(t, st)
			return
		}
		assert.True(t, st.Supervised)
		if st.Up {
			assert.Positive(t, st.PID, "up without a valid pid: %q", out)
		}
	})
}

// FuzzParseSvstatFields: `s6-svstat -o` output never panics; the pid is never negative,
// never set when down, and — when the pid field was asked for — always set when up.
func FuzzParseSvstatFields(f *testing.F) {
	all := "up,wantedup,normallyup,ready,paused,pid,exitcode,signum,updownfor"
	for _, s := range [][2]string{
		{all, "true true true true false 5952 -1 -1 12\n"},
		{all, "false false true false false -1 -1 15 0"},
		{all, "false true true false false -1 3 -1 2"},
		{all, "true true"},
		{all, "yes true true true false 1 -1 -1 1"},
		{"up,pid", "1 42"},
		{"pid,up,pid", "42 true 7"},
		{"pgid,updownsince,bogus", "a b c"},
		{"", ""},
		{"updownfor", "9223372036854775807"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, fields, out string) {
		fs := strings.Split(fields, ",")
		st, err := s6.ParseSvstatFields(fs, out, fuzzNow)
		if err != nil {
			assert.Zero(t, st)
			return
		}
		assert.True(t, st.Supervised)
		assert.GreaterOrEqual(t, st.PID, 0)
		assert.GreaterOrEqual(t, st.Signal, 0)
		if !st.Up {
			assert.Zero(t, st.PID, "pid of a process that is not up")
		}
		if st.Up && slices.Contains(fs, "pid") {
			assert.Positive(t, st.PID, "up without a valid pid: fields %q, output %q", fields, out)
		}
	})
}
