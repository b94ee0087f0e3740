package s6_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/s6"
)

// testdata/s6-2.15 holds what the s6 2.15.0.0 of a real s6-overlay 3.2.3.0 (the peer image,
// `make peer-image`) wrote for one service: supervise/status as s6-supervise left it, and
// `s6-svstat DIR`'s line, in three states: up; down after exit 3 (s6-svc -o); down after
// SIGKILL. s6gate:overlay reads these with the same code as Debian's s6 2.11.
func TestStatusOfRealS6_2_15(t *testing.T) {
	for _, tc := range []struct {
		name     string
		up       bool
		pid      int
		exitCode int
		signal   int
		wantUp   bool
	}{
		{name: "up", up: true, pid: 12, exitCode: -1, wantUp: true},
		{name: "down-exit3", exitCode: 3},
		{name: "down-signal", exitCode: -1, signal: int(unix.SIGKILL)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "s6-2.15", tc.name+".status"))
			require.NoError(t, err)
			require.Len(t, raw, 35, "s6 2.15 writes the 35-byte layout (no pgid)")
			st, err := s6.ParseStatusFile(raw)
			require.NoError(t, err)
			assert.Equal(t, tc.up, st.Up)
			assert.Equal(t, tc.pid, st.PID)
			assert.Equal(t, tc.exitCode, st.ExitCode)
			assert.Equal(t, tc.signal, st.Signal)
			assert.Equal(t, tc.wantUp, st.WantUp)
			assert.Equal(t, 2026, st.Since.Year(), "a TAI64N stamp of the capture day: %s", st.Since)

			line, err := os.ReadFile(filepath.Join("testdata", "s6-2.15", tc.name+".svstat"))
			require.NoError(t, err)
			sv, err := s6.ParseSvstat(string(line), time.Now())
			require.NoError(t, err, "%q", line)
			assert.Equal(t, tc.up, sv.Up)
			assert.Equal(t, tc.pid, sv.PID)
			assert.Equal(t, tc.exitCode, sv.ExitCode)
			assert.Equal(t, tc.signal, sv.Signal)
		})
	}
}
