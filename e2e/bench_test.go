package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"
)

// BenchmarkContainer measures, in one run: how long after `docker restart` returns all of 20
// gateways are running again; how long `docker stop` takes with 20 gateways; the image size;
// and /init's boot time from the engine's StartedAt to the end of cont-init (both from the
// engine's own timestamps). Run with -benchtime 1x (make bench does).
func BenchmarkContainer(b *testing.B) {
	bx := start(b, nil)
	const n = 20
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("g%02d", i)
		bx.gw("register", names[i], "--start", "--", "sh", "-c", idleLoop, names[i])
	}
	allRunning := func() bool {
		code, out := bx.exec("gateway", "gateway", "status", "--json")
		if code != 0 {
			return false
		}
		var st []gstatus
		if json.Unmarshal([]byte(jsonPart(out)), &st) != nil {
			return false
		}
		up := 0
		for _, s := range st {
			if s.Up && s.Ready && s.GatewayState != nil && *s.GatewayState == "running" {
				up++
			}
		}
		return up == n
	}
	eventually(b, 60*time.Second, "20 gateways running", allRunning)

	var restartCall, restartToRunning, stop time.Duration
	boots := 1
	for b.Loop() {
		t0 := time.Now()
		bx.restart()
		restartCall = time.Since(t0)
		boots++
		t1 := time.Now()
		for !allRunning() {
			if time.Since(t1) > 60*time.Second {
				b.Fatal("gateways did not come back within 60 s")
			}
			time.Sleep(10 * time.Millisecond)
		}
		restartToRunning = time.Since(t1)
	}
	bootMS := initBootMS(b, bx)

	timeout := 30
	t2 := time.Now()
	_, err := bx.cli.ContainerStop(bx.ctx, bx.id(), client.ContainerStopOptions{Timeout: &timeout})
	require.NoError(b, err)
	stop = time.Since(t2)

	img, err := bx.cli.ImageInspect(bx.ctx, Image)
	require.NoError(b, err)

	b.ReportMetric(float64(restartCall.Milliseconds()), "ms-docker-restart-call")
	b.ReportMetric(float64(restartToRunning.Milliseconds()), "ms-restart-to-20-running")
	b.ReportMetric(float64(stop.Milliseconds()), "ms-docker-stop-20")
	b.ReportMetric(bootMS, "ms-init-to-cont-init-done")
	b.ReportMetric(float64(img.Size)/1e6, "MB-image")
}

// initBootMS is the time from the container's StartedAt to /init's "cont-init done" line of
// the last boot, both as the engine timestamps them.
func initBootMS(b *testing.B, bx *box) float64 {
	insp, err := bx.cli.ContainerInspect(bx.ctx, bx.id(), client.ContainerInspectOptions{})
	require.NoError(b, err)
	started, err := time.Parse(time.RFC3339Nano, insp.Container.State.StartedAt)
	require.NoError(b, err)
	r, err := bx.cli.ContainerLogs(bx.ctx, bx.id(), client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Since: insp.Container.State.StartedAt})
	require.NoError(b, err)
	defer r.Close()
	raw, _ := io.ReadAll(r)
	var done time.Time
	for _, l := range strings.Split(string(raw), "\n") {
		// Multiplexed frames carry an 8-byte header; the timestamp follows it.
		if i := strings.Index(l, "20"); i >= 0 {
			l = l[i:]
		}
		ts, rest, ok := strings.Cut(l, " ")
		if !ok || !strings.Contains(rest, "s6gate-init: stage2: cont-init.d done") {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil && t.After(started) {
			done = t
			break
		}
	}
	require.False(b, done.IsZero(), "no cont-init-done line in:\n%s", raw)
	return float64(done.Sub(started).Microseconds()) / 1000
}
