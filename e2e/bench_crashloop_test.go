package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"
)

// cpuNanos is the container's total CPU time so far, from the engine's stats.
func (b *box) cpuNanos() uint64 {
	b.t.Helper()
	r, err := b.cli.ContainerStats(b.ctx, b.id(), client.ContainerStatsOptions{})
	require.NoError(b.t, err)
	defer r.Body.Close()
	var s struct {
		CPUStats struct {
			CPUUsage struct {
				TotalUsage uint64 `json:"total_usage"`
			} `json:"cpu_usage"`
		} `json:"cpu_stats"`
	}
	require.NoError(b.t, json.NewDecoder(r.Body).Decode(&s))
	return s.CPUStats.CPUUsage.TotalUsage
}

// BenchmarkCrashLoopCPU measures what a crash-looping profile costs once its back-off has
// grown (the target: well under 1 % of a CPU after its first minute): the
// container's CPU time over its second minute, with one profile whose command fails at once
// (max_failures high enough never to end failed), next to the same container idle.
// It takes about 2 minutes per case, so it runs in `make bench` only.
func BenchmarkCrashLoopCPU(b *testing.B) {
	if testing.Short() {
		b.Skip("two minutes per case")
	}
	for _, tc := range []struct{ name, setup string }{
		{"idle", ""},
		{"one-looping-profile", `mkdir -p /opt/data/profiles/loop &&
			echo '{"command": ["/bin/sh", "-c", "exit 1"], "max_failures": 1000}' > /opt/data/profiles/loop/profile.json &&
			gateway register loop --start; true`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for range b.N {
				bx := start(b, nil)
				if tc.setup != "" {
					code, out := bx.exec("gateway", "sh", "-c", tc.setup)
					require.Equal(b, 0, code, out)
				}
				time.Sleep(time.Minute) // the first minute, while the back-off grows: not measured
				c0, t0 := bx.cpuNanos(), time.Now()
				time.Sleep(time.Minute) // the measured window
				c1, t1 := bx.cpuNanos(), time.Now()
				b.ReportMetric(float64(c1-c0)/float64(t1.Sub(t0).Nanoseconds())*100, "%cpu-minute2")
			}
		})
	}
}
