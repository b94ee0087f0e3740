package s6_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/s6"
)

// statusLayout is where s6-supervise puts each field of supervise/status (s6_svstatus_pack):
// two TAI64N stamps (12 bytes each: the state change, then readiness), the pid as a
// big-endian uint64 at 24, in the pgid generation the pgid as a big-endian uint64 at 32,
// then the wait status as a big-endian uint16 and one byte of flags.
type statusLayout struct {
	name                        string
	size                        int
	pid, pgid, wstat, flagsByte int // offsets; pgid < 0 when the layout has none
}

var statusLayouts = []statusLayout{
	{name: "35 bytes (s6 2.11)", size: 35, pid: 24, pgid: -1, wstat: 32, flagsByte: 34},
	{name: "43 bytes (pgid)", size: 43, pid: 24, pgid: 32, wstat: 40, flagsByte: 42},
}

// Flag bits of the last byte.
const (
	stPaused    = 1 << 0
	stFinishing = 1 << 1
	stWantUp    = 1 << 2
	stReady     = 1 << 3
)

// putBE writes the n low bytes of v at b[off:], most significant first, one byte at a time.
func putBE(b []byte, off, n int, v uint64) {
	for i := 0; i < n; i++ {
		b[off+i] = byte(v >> (8 * (n - 1 - i)))
	}
}

// putTAI64N writes t as skalibs' TAI64N label: 2^62 + 10 s (TAI-UTC in 1970) + 27 leap seconds.
func putTAI64N(b []byte, off int, t time.Time) {
	putBE(b, off, 8, uint64(1<<62+37+t.Unix()))
	putBE(b, off+8, 4, uint64(t.Nanosecond()))
}

type rawStatus struct {
	stamp, readyStamp time.Time
	pid, pgid         uint64
	wstat             uint16
	flags             byte
}

func (r rawStatus) pack(l statusLayout) []byte {
	b := make([]byte, l.size)
	putTAI64N(b, 0, r.stamp)
	putTAI64N(b, 12, r.readyStamp)
	putBE(b, l.pid, 8, r.pid)
	if l.pgid >= 0 {
		putBE(b, l.pgid, 8, r.pgid)
	}
	putBE(b, l.wstat, 2, uint64(r.wstat))
	b[l.flagsByte] = r.flags
	return b
}

// wait statuses as the kernel reports them to s6-supervise.
func exited(code int) uint16        { return uint16(code&0xff) << 8 }
func killed(sig unix.Signal) uint16 { return uint16(sig) & 0x7f }

func TestParseStatusFileLayouts(t *testing.T) {
	stamp := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)
	ready := stamp.Add(2 * time.Second)
	// The pgid survives the process: s6 keeps the last one, so it is non-zero even when
	// down. A parser that reads the wait status from inside it gets the wrong answer.
	const lastPgid = 4242

	tests := []struct {
		name string
		raw  rawStatus
		want s6.Status
	}{
		{
			name: "down, exited 3, want up",
			raw:  rawStatus{stamp: stamp, readyStamp: ready, pgid: lastPgid, wstat: exited(3), flags: stWantUp},
			want: s6.Status{Since: stamp, Stamped: true, WantUp: true, ExitCode: 3},
		},
		{
			name: "down, exited 255, ready",
			raw:  rawStatus{stamp: stamp, readyStamp: ready, pgid: lastPgid, wstat: exited(255), flags: stReady},
			want: s6.Status{Since: stamp, Stamped: true, Ready: true, ExitCode: 255},
		},
		{
			name: "down, exited 0",
			raw:  rawStatus{stamp: stamp, readyStamp: ready, pgid: lastPgid, wstat: exited(0)},
			want: s6.Status{Since: stamp, Stamped: true, ExitCode: 0},
		},
		{
			name: "down, killed by SIGKILL, want up",
			raw:  rawStatus{stamp: stamp, readyStamp: ready, pgid: lastPgid, wstat: killed(unix.SIGKILL), flags: stWantUp},
			want: s6.Status{Since: stamp, Stamped: true, WantUp: true, ExitCode: -1, Signal: int(unix.SIGKILL)},
		},
		{
			name: "down, killed by SIGTERM with a core flag",
			raw:  rawStatus{stamp: stamp, readyStamp: ready, pgid: lastPgid, wstat: killed(unix.SIGTERM) | 0x80, flags: stReady},
			want: s6.Status{Since: stamp, Stamped: true, Ready: true, ExitCode: -1, Signal: int(unix.SIGTERM)},
		},
		{
			name: "up, ready, previous run exited 3",
			raw:  rawStatus{stamp: stamp, readyStamp: ready, pid: 4242, pgid: 4242, wstat: exited(3), flags: stWantUp | stReady},
			want: s6.Status{Since: stamp, Stamped: true, Up: true, PID: 4242, WantUp: true, Ready: true, ExitCode: -1},
		},
		{
			name: "up, paused, want down, previous run killed",
			raw:  rawStatus{stamp: stamp, readyStamp: ready, pid: 0x7fffffff, pgid: 0x7fffffff, wstat: killed(unix.SIGKILL), flags: stPaused},
			want: s6.Status{Since: stamp, Stamped: true, Up: true, PID: 0x7fffffff, Paused: true, ExitCode: -1},
		},
		{
			name: "finish script running after SIGKILL",
			raw:  rawStatus{stamp: stamp, readyStamp: ready, pid: 4243, pgid: 4243, wstat: killed(unix.SIGKILL), flags: stFinishing | stWantUp},
			want: s6.Status{Since: stamp, Stamped: true, Finishing: true, WantUp: true, ExitCode: -1, Signal: int(unix.SIGKILL)},
		},
		{
			name: "finish script running after exit 3",
			raw:  rawStatus{stamp: stamp, readyStamp: ready, pid: 4243, pgid: 4243, wstat: exited(3), flags: stFinishing},
			want: s6.Status{Since: stamp, Stamped: true, Finishing: true, ExitCode: 3},
		},
	}
	for _, l := range statusLayouts {
		for _, tt := range tests {
			t.Run(l.name+"/"+tt.name, func(t *testing.T) {
				b := tt.raw.pack(l)
				require.Len(t, b, l.size)
				got, err := s6.ParseStatusFile(b)
				require.NoError(t, err)
				assert.Equal(t, tt.want.ExitCode, got.ExitCode, "exit code")
				assert.Equal(t, tt.want.Signal, got.Signal, "signal")
				assert.Equal(t, tt.want.PID, got.PID, "pid")
				assert.Equal(t, tt.want, got)
			})
		}
	}
}

func TestParseStatusFileRejectsOtherSizes(t *testing.T) {
	for _, n := range []int{0, 1, 24, 34, 36, 42, 44, 64} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			st, err := s6.ParseStatusFile(make([]byte, n))
			require.ErrorContains(t, err, "unknown layout")
			assert.Zero(t, st)
		})
	}
}
