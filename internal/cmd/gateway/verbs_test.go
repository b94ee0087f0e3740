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
