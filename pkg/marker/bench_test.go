package marker_test

import (
	"os"
	"testing"
	"time"

	"github.com/s6gate/s6gate/pkg/marker"
	"github.com/s6gate/s6gate/pkg/safedir"
)

// BenchmarkRoundTrip writes a marker for this process (as stop does) and consumes it (as the
// gateway's SIGTERM handler does).
func BenchmarkRoundTrip(b *testing.B) {
	d, err := safedir.Open(b.TempDir(), "")
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	pid := os.Getpid()
	for b.Loop() {
		now := time.Now()
		m := marker.For(pid, now)
		if err := marker.Write(d, m); err != nil {
			b.Fatal(err)
		}
		planned, reason, err := marker.Consume(d, pid, m.TargetStartTime, now)
		if err != nil || !planned {
			b.Fatalf("consume: %v %s", err, reason)
		}
	}
}
