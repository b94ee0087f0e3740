package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// benchServicesDockerfile adds n trivial /etc/services.d longruns to BASE; each says
// "bench-up NAME" on stdout when it starts, then sleeps.
const benchServicesDockerfile = `ARG BASE
FROM ${BASE}
RUN for i in $(seq -w 1 %d); do d=/etc/services.d/bench$i; mkdir -p $d \
 && printf '#!/bin/sh\necho "bench-up bench%%s"\nexec sleep 100000\n' $i > $d/run && chmod 0755 $d/run; done
`

type initFigures struct {
	image          string
	bootMS, stopMS float64
	sizeMB         float64
}

// BenchmarkInitVsS6Overlay compares, side by side in one run, s6gate's /init (the image under
// test, s6gate:latest) with a real s6-overlay 3.2.3.0 (the peer image) on the same Debian base:
// the time from the engine's StartedAt until 20 /etc/services.d longruns have all started (the
// engine's timestamp of the 20th "bench-up" line), `docker stop` with those 20 up (default
// S6_SERVICES_GRACETIME and S6_KILL_GRACETIME, 3000 ms each), and the image size (the base
// image as shipped, without the 20 services). The s6gate image also starts its gateways' own
// supervision tree (s6gate-gateways, no gateway registered). Run with -benchtime 1x.
func BenchmarkInitVsS6Overlay(b *testing.B) {
	requireEngine(b)
	requirePeer(b)
	const n = 20
	var rows []initFigures
	for _, tc := range []struct{ name, image string }{{"s6gate", Image}, {"s6-overlay", PeerImage}} {
		b.Run(tc.name, func(b *testing.B) {
			df := filepath.Join(b.TempDir(), "Dockerfile")
			require.NoError(b, os.WriteFile(df, []byte(fmt.Sprintf(benchServicesDockerfile, n)), 0o644))
			tag := randomName("s6gate-bench:" + tc.name + "-")
			docker(b, "build", "-q", "-t", tag, "--build-arg", "BASE="+tc.image, "-f", df, b.TempDir())
			b.Cleanup(func() { _ = dockerOK("image", "rm", "-f", tag) })
			f := initFigures{image: tc.image}
			for b.Loop() {
				id := docker(b, "create", tag)
				b.Cleanup(func() { _ = dockerOK("rm", "-f", "-v", id) })
				docker(b, "start", id)
				started, err := time.Parse(time.RFC3339Nano, docker(b, "inspect", "-f", "{{.State.StartedAt}}", id))
				require.NoError(b, err)
				var last time.Time
				eventually(b, 60*time.Second, fmt.Sprintf("%d services up on %s", n, tc.image), func() bool {
					var ok bool
					last, ok = nthLineTime(docker(b, "logs", "-t", id), "bench-up ", n)
					return ok
				})
				f.bootMS = float64(last.Sub(started).Microseconds()) / 1000
				t0 := time.Now()
				docker(b, "stop", "-t", "30", id)
				f.stopMS = float64(time.Since(t0).Microseconds()) / 1000
			}
			size, err := strconv.ParseFloat(docker(b, "image", "inspect", "-f", "{{.Size}}", tc.image), 64)
			require.NoError(b, err)
			f.sizeMB = size / 1e6
			b.ReportMetric(f.bootMS, "ms-boot-to-20-up")
			b.ReportMetric(f.stopMS, "ms-docker-stop-20")
			b.ReportMetric(f.sizeMB, "MB-image")
			rows = append(rows, f)
		})
	}
	if len(rows) == 2 {
		fmt.Printf("\n%-12s %-34s %16s %18s %10s\n", "init", "image", "boot to 20 up", "docker stop (20)", "image")
		for i, r := range rows {
			fmt.Printf("%-12s %-34s %13.0f ms %15.0f ms %7.1f MB\n", []string{"s6gate", "s6-overlay"}[i], r.image, r.bootMS, r.stopMS, r.sizeMB)
		}
		fmt.Println()
	}
}

// nthLineTime returns the engine timestamp of the n-th distinct line of `docker logs -t` output
// that contains marker, in time order.
func nthLineTime(logs, marker string, n int) (time.Time, bool) {
	seen := map[string]time.Time{}
	for _, l := range strings.Split(logs, "\n") {
		ts, rest, ok := strings.Cut(l, " ")
		if !ok || !strings.Contains(rest, marker) {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			continue
		}
		if _, dup := seen[rest]; !dup {
			seen[rest] = t
		}
	}
	if len(seen) < n {
		return time.Time{}, false
	}
	times := make([]time.Time, 0, len(seen))
	for _, t := range seen {
		times = append(times, t)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	return times[n-1], true
}
